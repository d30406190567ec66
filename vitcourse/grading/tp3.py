"""Checks of TP3: fine-tuning a pretrained ViT from the Hub, and comparing it with the model before tuning.

Parts graded by tests:

* ``tp3.splits``: ``make_splits(data, validation_size, seed)`` carves a stratified
  validation split out of ``train`` and leaves ``test`` alone (reference
  :func:`vitcourse.finetune.make_splits`);
* ``tp3.head``: ``replace_head(model, labels)`` gives a pretrained Hugging Face classifier
  a **new** head of ``len(labels)`` outputs with a config that agrees (``num_labels``,
  ``id2label``, ``label2id``). The original TP kept the 1000-class ImageNet head; the
  probes start from exactly that model (the offline stand-in for
  ``google/vit-base-patch16-224`` with random weights keeps the 1000 ImageNet classes);
* ``tp3.metrics``: ``course_metrics(predictions, targets, num_classes)``: accuracy, macro
  precision/recall/F1 and the confusion matrix (reference
  :func:`vitcourse.train.classification_metrics`);
* ``tp3.comparison``: the notebook's ``results``: one entry per model (``"antes"``,
  ``"sonda lineal"``, ``"ajuste fino"``) with its predictions, targets and metrics. The
  probes recompute every metric from the predictions and ask the fine-tuned model to
  beat the model before tuning.

The other parts (the choice of data set, the baselines, the hyper-parameters, the
analysis) are written answers, graded by the instructor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..finetune import make_splits, replace_classifier
from ..train.metrics import classification_metrics, confusion_matrix, precision_recall_f1
from .registry import Assignment, Variable

__all__ = ["TP", "reference_results"]

TP = Assignment("tp3", title="TP3: ajuste fino de un ViT preentrenado y comparación antes/después")

VIT = "google/vit-base-patch16-224"
BEANS = ["angular_leaf_spot", "bean_rust", "healthy"]
METRIC_KEYS = ("accuracy", "precision", "recall", "f1")
ROWS = ("antes", "sonda lineal", "ajuste fino")

TP.part(
    "dataset",
    title="Elección y justificación del conjunto de datos",
    points=1,
    manual=True,
    description="Qué conjunto elegiste, por qué sirve para medir un ajuste fino y en qué se parece y se diferencia "
    "de los datos con los que se preentrenó el modelo.",
)


# --------------------------------------------------------------------------- part 1: the splits

splits = TP.part(
    "splits",
    title="make_splits: validación estratificada sin tocar test",
    points=1,
    target="make_splits",
    reference=make_splits,
    description="Una función que separa una fracción de `train` como `validation`, con la misma proporción de cada "
    "clase, reproducible con una semilla, sin mover ni una imagen de `test`.",
)


def _pool(counts=(30, 20, 10), test=15):
    """A ``DatasetDict`` with ``train`` (``counts`` images per class) and ``test``; ``id`` tells images apart."""
    import datasets

    features = datasets.Features({"id": datasets.Value("int64"), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    labels = [label for label, count in enumerate(counts) for _ in range(count)]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(7)).tolist()  # classes interleaved
    train = datasets.Dataset.from_dict({"id": order, "label": [labels[i] for i in order]}, features=features)
    test_split = datasets.Dataset.from_dict(
        {"id": [1000 + i for i in range(test)], "label": [i % 3 for i in range(test)]}, features=features
    )
    return datasets.DatasetDict({"train": train, "test": test_split})


def _class_counts(split) -> list[int]:
    counts = [0] * split.features["label"].num_classes
    for label in split["label"]:
        counts[label] += 1
    return counts


@splits.test(
    "Devuelve train, validation y test con los tamaños pedidos",
    hint="Un DatasetDict({'train': ..., 'validation': ..., 'test': ...}); validation_size es la fracción de train.",
)
def split_sizes(fn):
    data = fn(_pool(), 0.2, 0)
    return {"splits": sorted(data), "tamaños": {name: len(part) for name, part in sorted(data.items())}}


@splits.test(
    "Validación estratificada: cada clase conserva su proporción",
    hint="train_test_split(test_size=..., stratify_by_column='label', seed=seed) de la librería datasets.",
)
def stratified(fn):
    data = fn(_pool(), 0.2, 0)
    return {"imágenes por clase en validation": _class_counts(data["validation"])}


@splits.test(
    "Ninguna imagen en dos splits, ninguna perdida, test sin cambios",
    weight=2,
    hint="validation sale de train (y solo de train); test pasa tal cual.",
)
def disjoint(fn):
    pool = _pool()
    data = fn(pool, 0.25, 3)
    train, validation = set(data["train"]["id"]), set(data["validation"]["id"])
    return {
        "imágenes en train y en validation a la vez": len(train & validation),
        "train + validation = el train original": sorted(train | validation) == sorted(pool["train"]["id"]),
        "test sin cambios": data["test"]["id"] == pool["test"]["id"],
    }


@splits.test(
    "La misma semilla da el mismo split; otra semilla, otro",
    hint="Pasale seed a train_test_split (o a tu generador); no uses el azar global.",
)
def reproducible(fn):
    first, again, other = (fn(_pool(), 0.2, seed)["validation"]["id"] for seed in (5, 5, 6))
    return {"misma semilla, mismo split": first == again, "otra semilla, otro split": first != other}


@splits.test("Conserva los nombres de las clases", hint="Trabajá con el Dataset: no pierdas la columna ClassLabel.")
def keeps_classes(fn):
    data = fn(_pool(), 0.2, 0)
    return {name: list(part.features["label"].names) for name, part in sorted(data.items())}


# --------------------------------------------------------------------------- part 2: the head

head = TP.part(
    "head",
    title="replace_head: una cabeza nueva para las clases nuevas",
    points=2.5,
    target="replace_head",
    reference=replace_classifier,
    description="Cambiar la capa `classifier` del modelo preentrenado (1000 clases de ImageNet) por una nueva de "
    "$C$ salidas y dejar la configuración de acuerdo (`num_labels`, `id2label`, `label2id`), sin tocar el resto.",
)


def _pretrained():
    """The offline stand-in of ViT-B/16 with the 1000 ImageNet classes: the original TP's starting point."""
    from ..hub import load_pretrained

    return load_pretrained(VIT, profile="smoke", stand_in="random", verbose=False)


def _images(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32)


@head.test(
    "La cabeza nueva tiene una salida por clase",
    weight=2,
    hint="model.classifier = nn.Linear(model.config.hidden_size, len(labels)): la cabeza de 1000 clases de "
    "ImageNet no sirve para otras clases (el error del TP original).",
)
def head_outputs(fn):
    model = fn(_pretrained(), list(BEANS))
    classifier = model.classifier
    return {
        "model.classifier (salidas, entradas)": [classifier.out_features, classifier.in_features],
        "forma de los logits": list(model(_images()).logits.shape),
    }


def _named(mapping: dict) -> list[str]:
    """``{0: 'a'}`` → ``["0: 'a'"]``: the keys' types show (``0`` and ``'0'`` differ)."""
    return [f"{key!r}: {value!r}" for key, value in sorted(mapping.items(), key=lambda item: str(item[0]))]


@head.test(
    "La configuración dice cuántas clases hay y cómo se llaman",
    weight=2,
    hint="model.config.num_labels = C; model.config.id2label = {0: 'nombre', ...} (claves enteras); "
    "model.config.label2id = {'nombre': 0, ...}, la inversa.",
)
def head_config(fn):
    model = fn(_pretrained(), list(BEANS))
    return {
        "num_labels": model.config.num_labels,
        "id2label": _named(model.config.id2label),
        "label2id": _named(model.config.label2id),
    }


@head.test(
    "Funciona con cualquier cantidad de clases",
    hint="Usá len(labels), no un número fijo.",
)
def other_labels(fn):
    labels = ["avión", "auto", "pájaro", "gato", "ciervo"]
    model = fn(_pretrained(), labels)
    return {"forma de los logits": list(model(_images(3)).logits.shape), "num_labels": model.config.num_labels}


@head.test(
    "La pérdida del modelo es la entropía cruzada sobre las C clases nuevas",
    weight=2,
    hint="El modelo calcula la pérdida con config.num_labels: si queda en 1000 (o en 1, que es regresión), "
    "model(x, labels=y).loss falla o mide otra cosa.",
)
def head_loss(fn):
    model = fn(_pretrained(), list(BEANS))
    targets = torch.tensor([0, 2, 1])
    output = model(_images(3), labels=targets)
    output.loss.backward()
    return {
        "logits de una salida por clase": output.logits.shape[-1] == len(BEANS),
        "loss = cross_entropy(logits, labels)": bool(
            torch.isclose(output.loss, F.cross_entropy(output.logits, targets), atol=1e-5)
        ),
        "el gradiente llega a la cabeza nueva": model.classifier.weight.grad is not None,
    }


@head.test(
    "El resto del modelo queda con los pesos preentrenados",
    weight=2,
    hint="Cambiá solo model.classifier: crear un modelo nuevo desde la config pierde el preentrenamiento.",
)
def backbone_kept(fn):
    model = fn(_pretrained(), list(BEANS))
    fresh = _pretrained().vit.state_dict()
    kept = all(torch.equal(value, fresh[key]) for key, value in model.vit.state_dict().items())
    return {
        "el backbone conserva los pesos preentrenados": kept and set(model.vit.state_dict()) == set(fresh),
        "y la cabeza es la nueva, de una salida por clase": model.classifier.out_features == len(BEANS),
    }


@head.test(
    "La cabeza es nueva: no es un recorte de la de ImageNet",
    hint="Recortar las primeras C filas de la cabeza vieja asigna a cada clase nueva los pesos de una clase de "
    "ImageNet que no tiene nada que ver; la cabeza nueva se inicializa desde cero.",
)
def new_head(fn):
    pretrained = _pretrained()
    old = pretrained.classifier.weight.detach().clone()  # (1000, D)
    model = fn(pretrained, list(BEANS))
    weight = model.classifier.weight.detach()
    return {"cabeza distinta de las primeras filas de la vieja": not torch.equal(weight, old[: len(weight)])}


# --------------------------------------------------------------------------- part 3 and 4: written answers

TP.part(
    "before",
    title="Antes del ajuste: la cabeza nueva sin entrenar y la sonda lineal",
    points=1,
    manual=True,
    description="Qué da la cabeza nueva sin entrenar y por qué; qué mide una sonda lineal (solo la cabeza entrena).",
)

TP.part(
    "hyperparameters",
    title="Los hiperparámetros del ajuste fino",
    points=1.5,
    manual=True,
    description="Tasa de aprendizaje, épocas, tamaño del lote, weight decay, warm-up y capas congeladas: qué valores "
    "elegiste, por qué son distintos de los de entrenar desde cero, y qué pasó al cambiarlos.",
)


# --------------------------------------------------------------------------- part 5: the metrics


def _course_metrics(predictions, targets, num_classes):
    """The reference of ``course_metrics``: :func:`classification_metrics` with the keys the TP asks for."""
    metrics = classification_metrics(torch.as_tensor(predictions), torch.as_tensor(targets), num_classes)
    return {key: metrics[key] for key in (*METRIC_KEYS, "confusion")}


metrics = TP.part(
    "metrics",
    title="course_metrics: exactitud, precisión, exhaustividad y F1 macro y matriz de confusión",
    points=1,
    target="course_metrics",
    reference=_course_metrics,
    forbidden=(classification_metrics, confusion_matrix, precision_recall_f1),
    description="Las métricas del curso a partir de las predicciones: promedios *macro* (cada clase pesa lo mismo), "
    "precisión 0 para una clase nunca predicha, matriz con filas = clase real y columnas = predicción.",
)


def _observe_metrics(out) -> dict:
    return {
        **{key: float(out[key]) for key in METRIC_KEYS},
        "confusion": torch.as_tensor(out["confusion"]).long(),
    }


@metrics.test(
    "Coinciden con las del curso en predicciones al azar",
    weight=2,
    rtol=1e-4,
    hint="precision_c = M[c, c] / M[:, c].sum(), recall_c = M[c, c] / M[c, :].sum(), F1 su media armónica; "
    "macro: el promedio simple sobre las clases.",
)
def random_predictions(fn):
    targets = torch.randint(0, 5, (60,))
    predictions = torch.where(torch.rand(60) < 0.6, targets, torch.randint(0, 5, (60,)))
    return _observe_metrics(fn(predictions, targets, 5))


@metrics.test(
    "Filas = clase real, columnas = predicción",
    hint="M[real, predicha] += 1 (como sklearn.metrics.confusion_matrix(targets, predictions)).",
)
def orientation(fn):
    targets, predictions = torch.tensor([0, 0, 0, 1, 2, 2]), torch.tensor([1, 1, 0, 1, 2, 1])
    return {"confusion": torch.as_tensor(fn(predictions, targets, 3)["confusion"]).long()}


@metrics.test(
    "Promedio macro, y 0 (no NaN) para una clase que nunca se predice",
    rtol=1e-4,
    hint="Una clase sin predicciones tiene precision 0 (zero_division=0); con clases desbalanceadas el promedio "
    "macro no es el ponderado por soporte.",
)
def unbalanced_and_missing(fn):
    targets = torch.tensor([0] * 8 + [1] * 3 + [2] * 1 + [3] * 2)
    predictions = torch.tensor([0] * 7 + [1] + [1] * 2 + [0] + [0] + [1, 1])  # class 2 and 3 never predicted
    return _observe_metrics(fn(predictions, targets, 4))


# --------------------------------------------------------------------------- part 5: the comparison


def reference_results() -> dict:
    """A correct ``results`` (what the notebook leaves), on made-up predictions: better model, better metrics."""
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(60) % 4
    results = {}
    for row, hit_rate in zip(ROWS, (0.25, 0.6, 0.9)):
        hits = torch.rand(60, generator=generator) < hit_rate
        predictions = torch.where(hits, targets, torch.randint(0, 4, (60,), generator=generator))
        results[row] = {"predictions": predictions, "targets": targets, **_course_metrics(predictions, targets, 4)}
    return results


comparison = TP.part(
    "comparison",
    title="results: antes y después, con métricas que salen de las predicciones",
    points=1,
    target=Variable("results"),
    reference=reference_results,
    description="`results` guarda, para el modelo antes del ajuste, la sonda lineal y el ajuste fino, las "
    "predicciones sobre test, las etiquetas y sus métricas; el ajuste fino tiene que superar al modelo de antes.",
)


def _rows(value) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"results debe ser un diccionario {{modelo: {{...}}}}, no {type(value).__name__}")
    return value


@comparison.test(
    "Tiene una entrada por modelo con predicciones, etiquetas y métricas",
    hint="results = {'antes': {...}, 'sonda lineal': {...}, 'ajuste fino': {...}}; cada una con 'predictions', "
    "'targets', 'accuracy', 'precision', 'recall', 'f1' y 'confusion'.",
)
def has_rows(value):
    value = _rows(value)
    needed = ("predictions", "targets", *METRIC_KEYS, "confusion")
    return {
        "modelos": sorted(value),
        "claves que faltan": {row: [k for k in needed if k not in value.get(row, {})] for row in ROWS if row in value},
    }


def _recomputed(entry: dict) -> str:
    """``"coinciden"``, or which metric disagrees with the predictions and by how much (Spanish)."""
    predictions = torch.as_tensor(entry["predictions"]).long().reshape(-1)
    targets = torch.as_tensor(entry["targets"]).long().reshape(-1)
    if predictions.shape != targets.shape:
        return f"hay {len(predictions)} predicciones para {len(targets)} etiquetas"
    confusion = torch.as_tensor(entry["confusion"]).long()
    num_classes = max(len(confusion), int(max(predictions.max(), targets.max())) + 1)
    truth = _course_metrics(predictions, targets, num_classes)
    for key in METRIC_KEYS:
        if abs(float(entry[key]) - truth[key]) > 1e-4:
            return f"{key}: dice {float(entry[key]):.4f}, de sus predicciones sale {truth[key]:.4f}"
    if confusion.shape != truth["confusion"].shape:
        return f"la matriz de confusión es {tuple(confusion.shape)}, con {num_classes} clases debe ser {num_classes}²"
    if not torch.equal(confusion, truth["confusion"]):
        if torch.equal(confusion.T, truth["confusion"]):
            return "la matriz de confusión está transpuesta (filas: clase real; columnas: predicción)"
        return "la matriz de confusión no cuenta los pares (real, predicha) de sus predicciones"
    return "coinciden"


@comparison.test(
    "Las métricas de cada modelo salen de sus predicciones",
    weight=2,
    hint="Calculalas con course_metrics(predictions, targets, num_classes) sobre las predicciones guardadas, "
    "todas sobre el mismo conjunto de test.",
)
def consistent(value):
    return {row: _recomputed(entry) for row, entry in sorted(_rows(value).items()) if row in ROWS}


@comparison.test(
    "Todos los modelos se evalúan sobre las mismas imágenes de test",
    hint="Usá el mismo data set de test (y en el mismo orden) para los tres modelos.",
)
def same_targets(value):
    value = _rows(value)
    targets = [torch.as_tensor(value[row]["targets"]).long() for row in ROWS if row in value]
    return {"mismas etiquetas en todos": all(torch.equal(t, targets[0]) for t in targets)}


@comparison.test(
    "El ajuste fino supera al modelo antes de ajustar",
    weight=2,
    hint="Si no mejora, revisá la tasa de aprendizaje (demasiado alta lo destruye, demasiado baja no lo mueve), "
    "las épocas y que la cabeza se haya reemplazado y entrenado.",
)
def improves(value):
    value = _rows(value)
    before, after = value["antes"], value["ajuste fino"]
    return {
        "accuracy del ajuste fino > la de antes": float(after["accuracy"]) > float(before["accuracy"]),
        "F1 macro del ajuste fino > el de antes": float(after["f1"]) > float(before["f1"]),
    }


TP.part(
    "analysis",
    title="Análisis: antes, sonda lineal y ajuste fino",
    points=1,
    manual=True,
    description="Qué cambió entre los tres modelos en las métricas y en las matrices de confusión, y por qué.",
)
