"""``make report``: the report's figures (``reports/figures``) and tables.

* ``learning_curves.png``: losses and validation accuracy per epoch (``history.json``);
* ``confusion_matrix.png``: test errors, each row normalised (``reports/metrics.json``);
* ``attention_rollout.png``: test images with their attention maps, right and wrong;
* ``attention_by_class.png``: the mean map of each class;
* ``results.md``: the numbers of ``metrics.json`` as Markdown tables, for the report.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no window, no screen needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..command import run  # noqa: E402
from ..errors import ProjectError  # noqa: E402
from ..features.build_features import load_split, mean_std  # noqa: E402
from ..models import tracking  # noqa: E402
from ..models.attention import attention_maps  # noqa: E402
from ..models.train_model import load_trained  # noqa: E402

logger = logging.getLogger(__name__)


def _read_json(path: Path, step: str) -> dict[str, Any]:
    if not path.exists():
        raise ProjectError(f"{path} does not exist: run `make {step}` first")
    return json.loads(path.read_text())


def learning_curves(history: dict[str, Any], path: Path) -> Path:
    rows = history["rows"]
    epochs = [row["epoch"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(
        epochs, [r["train_loss"] for r in rows], marker="o", label="entrenamiento"
    )
    left.plot(epochs, [r["val_loss"] for r in rows], marker="o", label="validación")
    left.set(xlabel="época", ylabel="pérdida (entropía cruzada)", title="Pérdida")
    left.legend()
    right.plot(epochs, [r["val_accuracy"] for r in rows], marker="o", color="C2")
    if history.get("best_epoch"):
        right.axvline(
            history["best_epoch"], color="grey", linestyle=":", label="mejor época"
        )
        right.legend()
    right.set(xlabel="época", ylabel="exactitud", title="Exactitud en validación")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_figure(metrics: dict[str, Any], path: Path) -> Path:
    confusion = torch.tensor(metrics["confusion"], dtype=torch.float64)
    rates = confusion / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    classes = metrics["classes"]
    fig, ax = plt.subplots(figsize=(6, 5.2))
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(
        xlabel="clase predicha",
        ylabel="clase verdadera",
        title="Matriz de confusión (test, por fila)",
    )
    for i in range(len(classes)):
        for j in range(len(classes)):
            if rates[i, j] >= 0.01:
                color = "white" if rates[i, j] > 0.5 else "black"
                ax.text(
                    j,
                    i,
                    f"{rates[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color=color,
                )
    fig.colorbar(image, ax=ax, label="fracción de la fila")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pick_examples(
    predicted: torch.Tensor, labels: torch.Tensor, count: int
) -> list[int]:
    """The first ``count // 2`` wrong test images and the first right ones."""
    wrong = torch.nonzero(predicted != labels).flatten().tolist()[: count // 2]
    right = torch.nonzero(predicted == labels).flatten().tolist()[: count - len(wrong)]
    return right + wrong


def attention_figure(
    images, maps, labels, predicted, classes, mean, std, path: Path
) -> Path:
    """Each image above its map; true and predicted class in the title, red if wrong."""
    from vitcourse.viz.attention import plot_attention_overlay

    count = len(images)
    fig, axes = plt.subplots(2, count, figsize=(1.7 * count, 3.9), squeeze=False)
    pixels = images * std + mean  # back to [0, 1] to show them
    for k in range(count):
        truth, guess = classes[int(labels[k])], classes[int(predicted[k])]
        axes[0, k].imshow(pixels[k, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0, k].set_title(
            f"{truth}\n→ {guess}",
            fontsize=8,
            color="black" if truth == guess else "red",
        )
        axes[0, k].axis("off")
        plot_attention_overlay(
            pixels[k], maps[k].flatten(), tuple(maps.shape[1:]), ax=axes[1, k]
        )
    fig.suptitle(
        "Mapas de atención (arriba la imagen, abajo el mapa sobre ella)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def class_means_figure(maps, labels, classes, path: Path) -> Path:
    """The mean attention map of each class: where the model looks for it."""
    fig, axes = plt.subplots(1, len(classes), figsize=(1.5 * len(classes), 2.0))
    for c, ax in enumerate(axes):
        chosen = maps[labels == c]
        if len(chosen):
            ax.imshow(chosen.mean(dim=0).numpy(), cmap="magma")
        ax.set_title(classes[c], fontsize=8)
        ax.axis("off")
    fig.suptitle("Atención media por clase (test)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def results_markdown(metrics: dict[str, Any]) -> str:
    """The report's tables: overall metrics, per class, the deletion check."""
    low, high = metrics["accuracy_ci95"]
    deletion = metrics["deletion"]
    lines = [
        "<!-- Written by `make report` from reports/metrics.json: do not edit. -->",
        "",
        f"Test: {metrics['num_test_images']} images (profile `{metrics['profile']}`).",
        "",
        "| Métrica | Valor |",
        "|---|---|",
        f"| Exactitud | {metrics['accuracy']:.4f} "
        f"(IC 95 % bootstrap: {low:.4f} a {high:.4f}) |",
        f"| Precisión macro | {metrics['precision_macro']:.4f} |",
        f"| Exhaustividad (*recall*) macro | {metrics['recall_macro']:.4f} |",
        f"| F1 macro | {metrics['f1_macro']:.4f} |",
        f"| Exactitud top-2 | {metrics['top2_accuracy']:.4f} |",
        f"| Error de calibración (ECE) | {metrics['calibration_error']:.4f} |",
        f"| Confianza media | {metrics['mean_confidence']:.4f} |",
        "",
        "| Clase | Precisión | Exhaustividad | F1 | Imágenes |",
        "|---|---|---|---|---|",
    ]
    for name, row in sorted(
        metrics["per_class"].items(), key=lambda item: item[1]["f1"]
    ):
        lines.append(
            f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} "
            f"| {row['f1']:.3f} | {row['support']} |"
        )
    lines += [
        "",
        f"Prueba de borrado sobre {deletion['images']} imágenes: ocultando el "
        f"{100 * deletion['fraction']:.0f} % de los parches que el mapa marca como "
        f"más atendidos, la exactitud pasa de {deletion['accuracy']:.3f} a "
        f"{deletion['accuracy_without_top']:.3f}; ocultando la misma "
        f"cantidad de parches al azar, a {deletion['accuracy_without_random']:.3f}.",
    ]
    return "\n".join(lines) + "\n"


def make_report(config: dict[str, Any]) -> list[Path]:
    """Every figure and ``results.md``; they are also added to the MLflow run."""
    reports = Path(config["paths"]["reports"])
    figures = Path(config["paths"]["figures"])
    figures.mkdir(parents=True, exist_ok=True)
    metrics = _read_json(reports / "metrics.json", "evaluate")
    history = _read_json(Path(config["paths"]["models"]) / "history.json", "train")
    model = load_trained(config)
    test = load_split(config, "test")
    count = config["evaluate"]["attention_images"]
    sample = min(len(test), config["evaluate"]["deletion_images"])
    images = test.inputs[:sample]  # (S, 1, H, W), normalised
    labels = test.labels[:sample]
    logits, maps = attention_maps(model, images)
    predicted = logits.argmax(dim=-1)
    chosen = pick_examples(predicted, labels, count)
    mean, std = mean_std(config["data"]["dataset"])
    written = [
        learning_curves(history, figures / "learning_curves.png"),
        confusion_figure(metrics, figures / "confusion_matrix.png"),
        attention_figure(
            images[chosen],
            maps[chosen],
            labels[chosen],
            predicted[chosen],
            test.classes,
            mean,
            std,
            figures / "attention_rollout.png",
        ),
        class_means_figure(
            maps, labels, test.classes, figures / "attention_by_class.png"
        ),
    ]
    results = reports / "results.md"
    results.write_text(results_markdown(metrics), encoding="utf-8")
    tracking.log_artifacts(config, written, "figures")
    tracking.log_artifacts(config, [results], "reports")
    logger.info("wrote %s and %s", ", ".join(p.name for p in written), results)
    return written


def main(argv: list[str] | None = None) -> int:
    return run("report", make_report, argv)


if __name__ == "__main__":
    sys.exit(main())
