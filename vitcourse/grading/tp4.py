"""Checks of TP4: comparing pretrained models with per-class metrics, and a fine-tuning run tracked with MLflow.

Parts graded by tests:

* ``tp4.metrics``: ``per_class_metrics(predictions, targets, num_classes)``: the confusion
  matrix, precision, recall, F1 and support of every class, their macro averages and the
  accuracy, compared with scikit-learn's (``precision_recall_fscore_support`` with
  ``zero_division=0``, ``confusion_matrix``) on the same predictions;
* ``tp4.comparison``: the notebook's ``comparison``: one entry per model with its
  predictions on the same test images and its metrics; every number is recomputed with
  scikit-learn from the predictions;
* ``tp4.best_epoch``: ``best_epoch(history, monitor)``: the epoch whose validation metric is
  best (highest, or lowest for a loss), the first one on a tie;
* ``tp4.tracking``: the notebook's ``tracking``, what :func:`read_tracking` read from the
  student's MLflow store (a SQLite file) after the run: the run exists and finished, its
  parameters are the YAML configuration's, one value per epoch of every per-epoch metric,
  the logged ``best_epoch`` is the best on validation, the logged test metrics are the
  ones the saved predictions give, and the artefacts are there.

The store is read in the notebook's kernel (:func:`read_tracking`, plain SQL on the
SQLite file, no ``mlflow`` import) and graded as plain data, like every value a notebook
produces: the grader never opens a file a submission names. The other parts (the
comparison's and the project's analysis) are written answers, graded by the instructor.
"""

from __future__ import annotations

import csv
import math
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlparse

import torch

from ..train.metrics import classification_metrics, confusion_matrix, precision_recall_f1
from .registry import Assignment, Variable

__all__ = [
    "EPOCH_METRICS",
    "TEST_METRICS",
    "TP",
    "read_tracking",
    "reference_best_epoch",
    "reference_comparison",
    "reference_metrics",
    "reference_tracking",
]

TP = Assignment("tp4", title="TP4: comparación de modelos preentrenados y un ajuste fino con seguimiento en MLflow")

PER_CLASS = ("precision", "recall", "f1", "support")
MACRO = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
#: Metrics logged once per epoch (step = the epoch, from 1).
EPOCH_METRICS = ("train_loss", "val_loss", "val_accuracy", "val_f1")
#: Metrics of the chosen epoch's model on test, logged once at the end.
TEST_METRICS = {"test_accuracy": "accuracy", "test_precision": "macro_precision", "test_recall": "macro_recall",
                "test_f1": "macro_f1"}  # fmt: skip
PREDICTIONS = "predictions.csv"
MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
# scikit-learn's ready-made metrics, named without importing scikit-learn (slow) at import
# time: per_class_metrics must not lean on them (they are what it is checked against).
SKLEARN_METRICS = tuple(
    SimpleNamespace(__name__=name, __module__="sklearn.metrics")
    for name in ("precision_recall_fscore_support", "confusion_matrix", "classification_report", "f1_score",
                 "precision_score", "recall_score")
)  # fmt: skip


# --------------------------------------------------------------------------- the metrics, by scikit-learn


def reference_metrics(predictions, targets, num_classes: int) -> dict:
    """What ``per_class_metrics`` must return, computed by scikit-learn.

    Returns:
        ``confusion`` (C, C) int64 (rows: true class), ``precision``, ``recall``, ``f1``
        (C,) float64 and ``support`` (C,) int64 per class, and the floats ``accuracy``,
        ``macro_precision``, ``macro_recall``, ``macro_f1``.
    """
    from sklearn.metrics import confusion_matrix as sk_confusion
    from sklearn.metrics import precision_recall_fscore_support

    y_pred = torch.as_tensor(predictions).long().reshape(-1).numpy()
    y_true = torch.as_tensor(targets).long().reshape(-1).numpy()
    labels = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "confusion": torch.as_tensor(sk_confusion(y_true, y_pred, labels=labels)).long(),
        "precision": torch.as_tensor(precision, dtype=torch.float64),
        "recall": torch.as_tensor(recall, dtype=torch.float64),
        "f1": torch.as_tensor(f1, dtype=torch.float64),
        "support": torch.as_tensor(support).long(),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
    }


# --------------------------------------------------------------------------- part 1: the metrics

metrics = TP.part(
    "metrics",
    title="per_class_metrics: precisión, exhaustividad y F1 por clase y macro, y la matriz de confusión",
    points=2,
    target="per_class_metrics",
    reference=reference_metrics,
    forbidden=(*SKLEARN_METRICS, classification_metrics, confusion_matrix, precision_recall_f1),
    description="Las métricas de cada clase a partir de las predicciones, sus promedios *macro* y la matriz de "
    "confusión (filas = clase real, columnas = predicción), iguales a las de scikit-learn con `zero_division=0`.",
)


def _observe(out, keys=PER_CLASS + MACRO) -> dict:
    if not isinstance(out, dict):
        raise TypeError(f"per_class_metrics debe devolver un diccionario, no {type(out).__name__}")
    missing = [key for key in ("confusion", *keys) if key not in out]
    if missing:
        raise KeyError(f"faltan las claves {missing} en lo que devolvió per_class_metrics")
    observed = {"confusion": torch.as_tensor(out["confusion"]).long()}
    for key in keys:
        value = out[key]
        if key in PER_CLASS:
            observed[key] = torch.as_tensor(value).double().reshape(-1)
        else:
            observed[key] = float(value)
    return observed


@metrics.test(
    "Coinciden con scikit-learn en predicciones al azar",
    weight=2,
    rtol=1e-4,
    atol=1e-6,
    hint="precision_c = M[c, c] / M[:, c].sum(), recall_c = M[c, c] / M[c, :].sum(), F1_c su media armónica, "
    "support_c = M[c, :].sum(); macro: el promedio simple de las C clases.",
)
def random_predictions(fn):
    targets = torch.randint(0, 5, (80,))
    predictions = torch.where(torch.rand(80) < 0.6, targets, torch.randint(0, 5, (80,)))
    return _observe(fn(predictions, targets, 5))


@metrics.test(
    "Filas = clase real, columnas = predicción",
    hint="M[real, predicha] += 1, como sklearn.metrics.confusion_matrix(targets, predictions).",
)
def orientation(fn):
    targets, predictions = torch.tensor([0, 0, 0, 1, 2, 2]), torch.tensor([1, 1, 0, 1, 2, 1])
    return {"confusion": torch.as_tensor(fn(predictions, targets, 3)["confusion"]).long()}


@metrics.test(
    "Una clase nunca predicha o ausente vale 0 (no NaN) y cuenta en el promedio macro",
    weight=2,
    rtol=1e-4,
    atol=1e-6,
    hint="Con zero_division=0: precisión 0 para una clase que nunca se predice, exhaustividad 0 para una que no "
    "aparece en targets, F1 0 si ambas son 0. El promedio macro divide por C, todas las clases, aunque falten.",
)
def missing_classes(fn):
    targets = torch.tensor([0] * 8 + [1] * 3 + [2] * 1)  # class 3 never appears
    predictions = torch.tensor([0] * 7 + [1] + [1] * 2 + [0] + [0])  # classes 2 and 3 never predicted
    return _observe(fn(predictions, targets, 4))


@metrics.test(
    "Sirve para cualquier cantidad de clases y de imágenes",
    rtol=1e-4,
    atol=1e-6,
    hint="Usá num_classes para el tamaño de la matriz y de los vectores por clase, no un número fijo.",
)
def other_sizes(fn):
    targets = torch.randint(0, 3, (7,))
    predictions = torch.randint(0, 3, (7,))
    return _observe(fn(predictions, targets, 3))


# --------------------------------------------------------------------------- part 1: the comparison


def reference_comparison() -> dict:
    """A correct ``comparison`` on made-up predictions: three models, the same 60 test images."""
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(60) % 4
    comparison = {}
    for name, hit_rate in (("modelo A", 0.9), ("modelo B", 0.7), ("CLIP sin ejemplos", 0.3)):
        hits = torch.rand(60, generator=generator) < hit_rate
        predictions = torch.where(hits, targets, torch.randint(0, 4, (60,), generator=generator))
        comparison[name] = {"predictions": predictions, "targets": targets,
                            **reference_metrics(predictions, targets, 4)}  # fmt: skip
    return comparison


comparison = TP.part(
    "comparison",
    title="comparison: varios modelos sobre las mismas imágenes, con métricas que salen de sus predicciones",
    points=1.5,
    target=Variable("comparison"),
    reference=reference_comparison,
    description="`comparison` guarda, para cada modelo comparado (al menos tres), sus predicciones sobre las mismas "
    "imágenes de prueba, las etiquetas y las métricas de `per_class_metrics`; cada número se recalcula con "
    "scikit-learn a partir de las predicciones.",
)

ENTRY_KEYS = ("predictions", "targets", "confusion", *PER_CLASS, *MACRO)


def _models(value) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"comparison debe ser un diccionario {{modelo: {{...}}}}, no {type(value).__name__}")
    return value


@comparison.test(
    "Tiene al menos tres modelos, cada uno con predicciones, etiquetas y métricas",
    hint="comparison = {nombre: {'predictions': ..., 'targets': ..., **per_class_metrics(...)}} para cada modelo.",
    judge=lambda got, expected: (
        None
        if got["al menos tres modelos"] and not any(got["claves que faltan"].values())
        else (f"al menos tres modelos, cada uno con {list(ENTRY_KEYS)}", str(got))
    ),
)
def has_models(value):
    value = _models(value)
    return {
        "al menos tres modelos": len(value) >= 3,
        "claves que faltan": {
            str(name): [key for key in ENTRY_KEYS if not isinstance(entry, dict) or key not in entry]
            for name, entry in sorted(value.items())
        },
    }


def _recomputed(entry: dict) -> str:
    """``"coinciden"``, or which number disagrees with scikit-learn on the entry's predictions (Spanish)."""
    predictions = torch.as_tensor(entry["predictions"]).long().reshape(-1)
    targets = torch.as_tensor(entry["targets"]).long().reshape(-1)
    if predictions.shape != targets.shape:
        return f"hay {len(predictions)} predicciones para {len(targets)} etiquetas"
    confusion = torch.as_tensor(entry["confusion"]).long()
    num_classes = max(len(confusion), int(max(predictions.max(), targets.max())) + 1)
    truth = reference_metrics(predictions, targets, num_classes)
    for key in MACRO:
        if not math.isclose(float(entry[key]), truth[key], abs_tol=1e-4):
            return f"{key}: dice {float(entry[key]):.4f}, scikit-learn da {truth[key]:.4f} con sus predicciones"
    for key in PER_CLASS:
        mine = torch.as_tensor(entry[key]).double().reshape(-1)
        if mine.shape != truth[key].shape or not torch.allclose(mine, truth[key].double(), atol=1e-4):
            return f"{key} por clase: dice {[round(v, 4) for v in mine.tolist()]}, scikit-learn da " + str(
                [round(v, 4) for v in truth[key].double().tolist()]
            )
    if confusion.shape != truth["confusion"].shape:
        return f"la matriz de confusión es {tuple(confusion.shape)}; con {num_classes} clases debe ser {num_classes}²"
    if not torch.equal(confusion, truth["confusion"]):
        if torch.equal(confusion.T, truth["confusion"]):
            return "la matriz de confusión está transpuesta (filas: clase real; columnas: predicción)"
        return "la matriz de confusión no cuenta los pares (real, predicha) de sus predicciones"
    return "coinciden"


@comparison.test(
    "Las métricas de cada modelo son las que scikit-learn calcula con sus predicciones",
    weight=2,
    hint="Calculalas con per_class_metrics(predictions, targets, num_classes) sobre las predicciones guardadas.",
    judge=lambda got, expected: (
        None
        if all(verdict == "coinciden" for verdict in got.values())
        else ("cada modelo: 'coinciden'", str({k: v for k, v in got.items() if v != "coinciden"}))
    ),
)
def consistent(value):
    return {str(name): _recomputed(entry) for name, entry in sorted(_models(value).items())}


@comparison.test(
    "Todos los modelos se evalúan sobre las mismas imágenes de prueba",
    hint="Usá el mismo conjunto de prueba, en el mismo orden, para todos los modelos.",
)
def same_targets(value):
    targets = [torch.as_tensor(entry["targets"]).long().reshape(-1) for entry in _models(value).values()]
    same = bool(targets) and all(t.shape == targets[0].shape and torch.equal(t, targets[0]) for t in targets)
    return {"mismas etiquetas en todos": same}


TP.part(
    "comparison_analysis",
    title="Análisis de la comparación: qué modelo, para qué clases, y por qué",
    points=1.5,
    manual=True,
    description="Qué modelo conviene según las métricas macro y por qué clases; qué clases confunde cada uno según "
    "sus matrices; qué dice el resultado de CLIP sin ejemplos, y por qué la exactitud sola no alcanza.",
)


# --------------------------------------------------------------------------- part 2: the best epoch


def _lower_is_better(monitor: str) -> bool:
    return "loss" in monitor


def reference_best_epoch(history: list[dict], monitor: str) -> int:
    """The ``"epoch"`` of the row of ``history`` with the best ``monitor`` (lowest for a loss), the first on a tie."""
    if not history:
        raise ValueError("history is empty: there is no epoch to choose")
    for row in history:
        if monitor not in row:
            raise KeyError(f"monitor {monitor!r} is not in the history's rows ({sorted(row)})")
    sign = 1 if _lower_is_better(monitor) else -1
    best = min(range(len(history)), key=lambda index: (sign * history[index][monitor], index))
    return int(history[best]["epoch"])


best = TP.part(
    "best_epoch",
    title="best_epoch: la mejor época según validación",
    points=1,
    target="best_epoch",
    reference=reference_best_epoch,
    description="La época cuya métrica de validación (`monitor`) es la mejor: la más alta, o la más baja si es una "
    "pérdida; ante un empate, la primera.",
)


def _history(values: dict[str, list[float]], first_epoch: int = 1) -> list[dict]:
    length = len(next(iter(values.values())))
    return [{"epoch": first_epoch + i, **{key: series[i] for key, series in values.items()}} for i in range(length)]


@best.test("Con una métrica que sube (val_f1) elige la época del máximo", weight=2,
           hint="Para F1 o accuracy, la mejor es la más alta; devolvé row['epoch'], no el índice de la lista.")  # fmt: skip
def highest(fn):
    history = _history({"val_loss": [0.9, 0.5, 0.6, 0.7], "val_f1": [0.6, 0.7, 0.8, 0.75]})
    return {"época elegida": fn(history, "val_f1")}


@best.test("Con una pérdida (val_loss) elige la época del mínimo", weight=2,
           hint="Si monitor es una pérdida (tiene 'loss' en el nombre), la mejor es la más baja.")  # fmt: skip
def lowest(fn):
    history = _history({"val_loss": [0.9, 0.5, 0.6, 0.7], "val_f1": [0.6, 0.7, 0.8, 0.75]})
    return {"época elegida": fn(history, "val_loss")}


@best.test("Ante un empate elige la primera de las épocas empatadas",
           hint="Con > (no >=) al recorrer las épocas en orden, gana la primera.")  # fmt: skip
def ties(fn):
    history = _history({"val_loss": [0.8, 0.4, 0.4, 0.5], "val_f1": [0.5, 0.9, 0.7, 0.9]})
    return {"época elegida (val_f1)": fn(history, "val_f1"), "época elegida (val_loss)": fn(history, "val_loss")}


@best.test("Devuelve la época de la fila, aunque no empiecen en 1",
           hint="Devolvé history[i]['epoch'], no i.")  # fmt: skip
def epoch_numbers(fn):
    history = _history({"val_accuracy": [0.2, 0.9, 0.4]}, first_epoch=5)
    return {"época elegida": fn(history, "val_accuracy")}


# --------------------------------------------------------------------------- part 2: reading the store


def _sqlite_path(tracking_uri: str) -> Path:
    if not str(tracking_uri).startswith("sqlite:///"):
        raise ValueError(
            f"tracking_uri debe ser un almacén SQLite local, sqlite:///<carpeta>/mlflow.db; llegó {tracking_uri!r}"
        )
    path = Path(str(tracking_uri).removeprefix("sqlite:///"))
    if not path.exists():
        raise FileNotFoundError(f"no existe el archivo del almacén de MLflow {path} (¿corrió el entrenamiento?)")
    return path


def _local(uri: str | None) -> Path | None:
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def _flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _read_predictions(path: Path) -> dict | str:
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if not rows or not {"target", "prediction"} <= set(rows[0]):
        columns = sorted(rows[0]) if rows else []
        return f"{PREDICTIONS} debe tener las columnas 'target' y 'prediction'; tiene {columns}"
    return {"target": [int(row["target"]) for row in rows], "prediction": [int(row["prediction"]) for row in rows]}


def read_tracking(tracking_uri: str, run_id: str | None, config_path: str | Path) -> dict:
    """What the checks of ``tp4.tracking`` grade: one run of a local MLflow store, as plain data.

    Reads the SQLite file with plain SQL (read-only; no ``mlflow`` import), the run's
    artefact folder and the YAML configuration.

    Args:
        tracking_uri: ``sqlite:///<folder>/mlflow.db``.
        run_id: the run to read (what ``train_and_track`` returned).
        config_path: the YAML file the run was configured with.

    Returns:
        ``{"run_id", "found", "status", "experiment", "params": {key: str},
        "metrics": {key: [[step, value], ...]}, "artifacts": [relative paths],
        "predictions": {"target": [...], "prediction": [...]} or a Spanish problem,
        "config": {key: value}}``.
    """
    import yaml

    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    path = _sqlite_path(tracking_uri)
    snapshot: dict[str, Any] = {"run_id": str(run_id), "found": False, "config": _flatten(config)}
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT r.status, r.artifact_uri, r.lifecycle_stage, e.name FROM runs r "
            "JOIN experiments e ON e.experiment_id = r.experiment_id WHERE r.run_uuid = ?",
            (str(run_id),),
        ).fetchone()
        if row is None:
            return snapshot
        status, artifact_uri, stage, experiment = row
        params = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (str(run_id),)).fetchall())
        metrics: dict[str, list] = {}
        for key, step, value in db.execute(
            "SELECT key, step, value FROM metrics WHERE run_uuid = ? ORDER BY key, step, timestamp", (str(run_id),)
        ):
            metrics.setdefault(key, []).append([int(step), float(value)])
    folder = _local(artifact_uri)
    artifacts = (
        sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        if folder is not None and folder.is_dir()
        else []
    )
    found = [a for a in artifacts if Path(a).name == PREDICTIONS]
    predictions = _read_predictions(folder / found[0]) if found else f"la corrida no tiene el artefacto {PREDICTIONS}"
    snapshot.update(found=True, status=status, deleted=stage != "active", experiment=experiment, params=params,
                    metrics=metrics, artifacts=artifacts, predictions=predictions)  # fmt: skip
    return snapshot


# --------------------------------------------------------------------------- part 2: the tracked run


def reference_tracking() -> dict:
    """A correct snapshot (what :func:`read_tracking` gives for a well tracked run), made up."""
    config = {"experiment": "tp4", "model": "facebook/deit-tiny-patch16-224", "dataset": "beans", "epochs": 4,
              "batch_size": 16, "learning_rate": 5e-05, "weight_decay": 0.05, "monitor": "val_f1", "seed": 0}  # fmt: skip
    val_f1 = [0.6, 0.8, 0.85, 0.82]
    generator = torch.Generator().manual_seed(1)
    targets = torch.arange(40) % 3
    predictions = torch.where(torch.rand(40, generator=generator) < 0.8, targets, (targets + 1) % 3)
    test = reference_metrics(predictions, targets, 3)
    metrics = {
        "train_loss": [[e, 1.0 / e] for e in range(1, 5)],
        "val_loss": [[e, 0.9 - 0.1 * e] for e in range(1, 5)],
        "val_accuracy": [[e, v + 0.02] for e, v in enumerate(val_f1, 1)],
        "val_f1": [[e, v] for e, v in enumerate(val_f1, 1)],
        "best_epoch": [[3, 3.0]],
        **{key: [[3, test[name]]] for key, name in TEST_METRICS.items()},
    }
    return {
        "run_id": "0" * 32, "found": True, "status": "FINISHED", "deleted": False, "experiment": "tp4",
        "config": config, "params": {key: str(value) for key, value in config.items()}, "metrics": metrics,
        "artifacts": ["config.yaml", "confusion_matrix.png", "model/model.safetensors", PREDICTIONS],
        "predictions": {"target": targets.tolist(), "prediction": predictions.tolist()},
    }  # fmt: skip


tracking = TP.part(
    "tracking",
    title="El ajuste fino en MLflow: corrida, parámetros, métricas por época, mejor época, prueba y artefactos",
    points=3,
    target=Variable("tracking"),
    reference=reference_tracking,
    description="Lo que quedó en tu almacén de MLflow (`sqlite:///…/mlflow.db`): la corrida terminada, los parámetros "
    "iguales a los del YAML, un valor por época de cada métrica de entrenamiento y validación, la mejor época "
    "elegida con validación, las métricas de prueba de esa época recalculables desde las predicciones guardadas, "
    "y los artefactos (configuración, matriz de confusión, modelo, predicciones).",
)


def _snapshot(value) -> dict:
    if not isinstance(value, dict) or "found" not in value:
        raise TypeError("tracking debe ser lo que devuelve read_tracking(TRACKING_URI, run_id, CONFIG_PATH)")
    return value


def _run(value) -> dict:
    """The snapshot of a run that is in the store (the tests after ``run_exists`` need one)."""
    value = _snapshot(value)
    if not value["found"]:
        raise LookupError(f"la corrida {value.get('run_id')!r} no está en el almacén de MLflow")
    return value


def _passes(got, expected):
    """A judge for probes that return their own verdict: ``{"problemas": [...]}``, empty when right."""
    problems = got.get("problemas", [])
    return None if not problems else ("ningún problema", "; ".join(problems))


@tracking.test(
    "La corrida existe en el almacén y terminó bien",
    hint="train_and_track debe devolver el run_id de la corrida (tracker.run_id) y cerrarla con "
    "tracker.finish() (estado FINISHED).",
    judge=_passes,
)
def run_exists(value):
    value = _snapshot(value)
    problems = []
    if not value["found"]:
        problems.append(f"la corrida {value.get('run_id')!r} no está en el almacén")
    elif value.get("deleted"):
        problems.append("la corrida está borrada")
    elif value.get("status") != "FINISHED":
        problems.append(f"la corrida quedó en estado {value.get('status')}, no FINISHED")
    return {"problemas": problems}


def _same(param: str, value: Any) -> bool:
    if str(value) == param:
        return True
    try:
        return math.isclose(float(param), float(value), rel_tol=1e-9)
    except (TypeError, ValueError):
        return False


@tracking.test(
    "Los parámetros de la corrida son los del archivo YAML",
    weight=2,
    hint="Registrá cada clave del YAML como parámetro, con el mismo nombre y valor: MlflowTracker(..., "
    "params=config) o tracker.log_params(config), con el config leído del YAML (no los valores de antes).",
    judge=_passes,
)
def params_match(value):
    run = _run(value)
    params, problems = run["params"], []
    for key, expected in sorted(run["config"].items()):
        if key not in params:
            problems.append(f"falta el parámetro {key!r} (el YAML dice {expected!r})")
        elif not _same(params[key], expected):
            problems.append(f"{key}: la corrida dice {params[key]!r}, el YAML {expected!r}")
    return {"problemas": problems}


def _epochs(run: dict) -> int:
    epochs = run["config"].get("epochs")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"el YAML debe tener 'epochs', un entero positivo; tiene {epochs!r}")
    return epochs


@tracking.test(
    "Un valor por época de cada métrica de entrenamiento y validación",
    weight=2,
    hint=f"En cada época, tracker.log_metrics({{...}}, step=epoch) con {', '.join(EPOCH_METRICS)}, una sola vez, "
    "con epoch de 1 a config['epochs'].",
    judge=_passes,
)
def one_row_per_epoch(value):
    run = _run(value)
    expected = list(range(1, _epochs(run) + 1))
    problems = []
    for key in EPOCH_METRICS:
        steps = [step for step, _ in run["metrics"].get(key, [])]
        if not steps:
            problems.append(f"falta la métrica {key}")
        elif steps != expected:
            problems.append(f"{key}: pasos {steps}, se esperaban {expected} (uno por época)")
    return {"problemas": problems}


@tracking.test(
    "La mejor época registrada es la mejor en validación",
    weight=2,
    hint="Registrá best_epoch = best_epoch(history, config['monitor']) con tracker.log_metrics, y usá los pesos "
    "de esa época (no los de la última) para la prueba.",
    judge=_passes,
)
def best_is_best(value):
    run = _run(value)
    monitor = run["config"].get("monitor")
    series = run["metrics"].get(monitor, [])
    logged = run["metrics"].get("best_epoch", [])
    if not series:
        return {"problemas": [f"no hay métrica de validación {monitor!r} (el 'monitor' del YAML) registrada"]}
    if not logged:
        return {"problemas": ["falta la métrica best_epoch"]}
    history = [{"epoch": step, monitor: v} for step, v in series]
    truth = reference_best_epoch(history, monitor)
    said = logged[-1][1]
    if said != truth:
        values = ", ".join(f"{step}: {v:.4f}" for step, v in series)
        return {"problemas": [f"best_epoch dice {said:g}, pero según {monitor} ({values}) la mejor es {truth}"]}
    return {"problemas": []}


@tracking.test(
    "Las métricas de prueba registradas salen de las predicciones guardadas",
    weight=2,
    hint=f"Guardá las predicciones de prueba del modelo de la mejor época en {PREDICTIONS} (columnas target y "
    f"prediction), registralo como artefacto y registrá {', '.join(TEST_METRICS)} calculadas con esas predicciones.",
    judge=_passes,
)
def test_metrics(value):
    run = _run(value)
    predictions = run["predictions"]
    if isinstance(predictions, str):
        return {"problemas": [predictions]}
    targets = torch.tensor(predictions["target"], dtype=torch.long)
    predicted = torch.tensor(predictions["prediction"], dtype=torch.long)
    if not len(targets):
        return {"problemas": [f"{PREDICTIONS} no tiene filas"]}
    num_classes = int(max(targets.max(), predicted.max())) + 1
    truth = reference_metrics(predicted, targets, num_classes)
    problems = []
    for key, name in TEST_METRICS.items():
        logged = run["metrics"].get(key)
        if not logged:
            problems.append(f"falta la métrica {key}")
        elif not math.isclose(logged[-1][1], truth[name], abs_tol=1e-4):
            problems.append(
                f"{key} dice {logged[-1][1]:.4f}; de las {len(targets)} predicciones sale {truth[name]:.4f}"
            )
    return {"problemas": problems}


@tracking.test(
    "Los artefactos: configuración, matriz de confusión, modelo y predicciones",
    hint="tracker.log_artifact(...) del YAML, de la matriz de confusión (un archivo con 'confusion' en el nombre), "
    f"de los pesos del modelo ({', '.join(MODEL_SUFFIXES)}) y de {PREDICTIONS}.",
    judge=_passes,
)
def artifacts(value):
    run = _run(value)
    names = [Path(a).name.lower() for a in run["artifacts"]]
    wanted = {
        "la configuración (.yaml)": any(n.endswith((".yaml", ".yml")) for n in names),
        "la matriz de confusión": any("confusion" in n for n in names),
        "el modelo": any(n.endswith(MODEL_SUFFIXES) for n in names),
        f"las predicciones ({PREDICTIONS})": PREDICTIONS in names,
    }
    return {"problemas": [f"falta {what} entre los artefactos" for what, present in wanted.items() if not present]}


TP.part(
    "project_analysis",
    title="Análisis del proyecto: configuración, selección de la época y resultados",
    points=1,
    manual=True,
    description="Por qué la configuración va en un archivo y se registra, por qué la época se elige con validación y "
    "no con prueba, y qué muestran las curvas y la matriz de confusión del modelo elegido.",
)
