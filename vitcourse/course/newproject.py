"""``vitcourse new-project``: a course project that starts at the pre-production stage.

The template ships inside the package (``vitcourse/templates/project``) and is rendered
with the real Cookiecutter library. What comes out follows the Cookiecutter Data Science
layout of the course's slides (``data/raw|interim|processed|external``, ``models``,
``notebooks``, ``references``, ``reports/figures``, ``src/{data,features,models,
visualization}``) and adds what the rubric asks of the code: a YAML config, logs to
files with levels, warnings handled on purpose, errors caught at the boundary with a
useful message, MLflow with a local SQLite store, tests, a Makefile and a CI workflow.
The technical report's skeleton and the presentation outline follow the current
edition's rubric (:mod:`vitcourse.course.rules`)::

    vitcourse new-project mi-proyecto --model vit --dataset fashion_mnist
    cd mi-proyecto && pip install -r requirements.txt && make all PROFILE=smoke

The model choices map to presets of :mod:`vitcourse.models` sized for 28×28 images
(:data:`MODELS`). ``clip`` needs chapter 5's ``vitcourse.models.clip``; until it exists
the option stops with one line saying so.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from .. import __version__
from .rules import Edition, load

__all__ = ["DATASETS", "MODELS", "ModelChoice", "NewProjectError", "new_project", "presentation_outline"]

TEMPLATE = "project"
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class NewProjectError(ValueError):
    """A bad option of ``new-project``: the message is one line saying what to pass instead."""


@dataclass(frozen=True)
class ModelChoice:
    """What ``--model`` puts into the project's ``configs/config.yaml``.

    Attributes:
        label: the name the README uses.
        preset: a name of :func:`vitcourse.models.list_models` (``None``: found at
            generation time, for models registered by later chapters).
        config: the preset's fields that change for 28×28 grey images.
        needs: a module that must be importable for this choice.
        teachers: per data set, a shipped checkpoint to distil from (DeiT).
    """

    label: str
    preset: str | None
    config: dict[str, Any] = field(default_factory=dict)
    needs: str | None = None
    teachers: dict[str, str] = field(default_factory=dict)


_GREY_28 = {"img_size": 28, "in_chans": 1, "num_classes": 10}
MODELS: dict[str, ModelChoice] = {
    # 4×4 patches: a 7×7 grid of 49 tokens, fine enough for attention maps.
    "vit": ModelChoice(
        "ViT",
        "vit_micro_patch4_32",
        {**_GREY_28, "patch_size": 4, "embed_dim": 64, "depth": 4, "num_heads": 4},
    ),
    # DeiT: the same encoder with a distillation token, taught by a CNN when one is shipped.
    "deit": ModelChoice(
        "DeiT (ViT con token de destilación)",
        "deit_micro_distilled_patch4_32",
        {**_GREY_28, "patch_size": 4, "embed_dim": 64, "depth": 4, "num_heads": 4},
        teachers={"fashion_mnist": "resnet_fashion"},
    ),
    # Swin: 2×2 patches (14×14 tokens) in windows of 7, merged once to one 7×7 window.
    "swin": ModelChoice(
        "Swin Transformer",
        "swin_micro_patch2_window4_32",
        {**_GREY_28, "patch_size": 2, "embed_dim": 32, "depths": [2, 2], "num_heads": [2, 4], "window_size": 7},
    ),
    # CLIP: its image encoder (ViT-B/32's preset resized like the ViT above) and a linear
    # head; the text tower is left out (src/models/train_model.py: clip_classifier).
    "clip": ModelChoice(
        "CLIP (codificador de imágenes)",
        "clip_vit_base_patch32",
        {**_GREY_28, "patch_size": 4, "vision_width": 64, "vision_depth": 4, "vision_heads": 4},
        needs="vitcourse.models.clip",
    ),
}

DATASETS: dict[str, dict[str, Any]] = {
    "fashion_mnist": {"label": "Fashion-MNIST", "flip": True},
    # Flipping a digit changes it (a mirrored 2 is no 2): no flips for MNIST.
    "mnist": {"label": "MNIST", "flip": False},
}


def _classes(dataset: str) -> tuple[str, ...]:
    from ..data import mnist

    return mnist.FASHION_CLASSES if dataset == "fashion_mnist" else tuple(str(d) for d in range(10))


def _check_options(name: str, model: str, dataset: str) -> None:
    if not NAME_PATTERN.match(name):
        raise NewProjectError(
            f"NAME must start with a letter and hold only letters, digits, '-' and '_' (it becomes a folder "
            f"and a Python name), got {name!r}; e.g. vitcourse new-project mi-proyecto"
        )
    if model not in MODELS:
        raise NewProjectError(f"--model must be one of {', '.join(MODELS)}; got {model!r}")
    if dataset not in DATASETS:
        raise NewProjectError(f"--dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")
    needs = MODELS[model].needs
    if needs and not _module_exists(needs):
        raise NewProjectError(
            f"--model {model} needs {needs} (chapter 5's CLIP), which this vitcourse {__version__} does not "
            f"have yet; choose --model vit, deit or swin"
        )


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def _preset(model: str) -> str:
    choice = MODELS[model]
    if choice.preset is not None:
        return choice.preset
    from ..models import list_models

    found = list_models(f"{model}*")
    if not found:
        raise NewProjectError(f"--model {model}: no {model}* preset is registered in vitcourse.models")
    return found[0]


def _teacher(model: str, dataset: str) -> str | None:
    name = MODELS[model].teachers.get(dataset)
    if name is None:
        return None
    from ..checkpoints import available

    return name if name in available() else None


def _yaml_block(config: dict[str, Any], indent: int = 4) -> str:
    """The preset's fields as YAML lines under ``model.config`` (lists inline)."""
    pad = " " * indent
    return "\n".join(f"{pad}{key}: {json.dumps(value)}" for key, value in config.items())


def vitcourse_requirement(track: bool) -> str:
    """How the project's ``pyproject.toml`` asks for vitcourse: this very version, from where it came.

    A checkout names its repository in ``_config.yml``; a package installed from git records
    it in ``direct_url.json``; otherwise the plain name.
    """
    extra = "[track]" if track else ""
    url = None
    try:
        import yaml

        from ..notebooks import repository_root

        config = yaml.safe_load((repository_root() / "_config.yml").read_text(encoding="utf-8"))
        url = config["repository"]["url"].rstrip("/")
    except (FileNotFoundError, KeyError, TypeError, OSError, ImportError, ValueError):
        try:
            direct = json.loads(distribution("vitcourse").read_text("direct_url.json") or "{}")
            if "vcs_info" in direct:
                url = direct["url"].removesuffix(".git")
        except (PackageNotFoundError, ValueError):
            url = None
    if url is None:
        return f"vitcourse{extra}>={__version__}"
    return f"vitcourse{extra} @ git+{url}@v{__version__}"


# Slides of the talk: title, minutes (out of 15), what to show, the role in the rubric.
_SLIDES = (
    ("El problema", 1.0, "qué se clasifica, para quién y por qué importa", None),
    ("Los datos", 1.5, "particiones, clases, ejemplos, balance", "evaluación"),
    ("Cómo ve un ViT", 2.5, "parches, token [CLS], posiciones, atención softmax(QKᵀ/√d)V", "concepto"),
    ("Nuestro modelo", 2.0, "tamaños, parámetros y las decisiones de diseño con su evidencia", "concepto"),
    ("El código", 1.5, "make all, configuración YAML, registros, MLflow, pruebas, CI", "código"),
    ("Métricas y resultados", 2.0, "por qué estas métricas; valores con su intervalo", "evaluación"),
    ("Los errores", 1.5, "matriz de confusión, ejemplos mal clasificados y por qué", "evaluación"),
    ("Dónde mira el modelo", 2.0, "mapas de atención, prueba de borrado, sus límites", "visual"),
    ("En un contexto real", 0.5, "dónde se usaría, con qué umbral, qué falta", None),
    ("Conclusiones", 0.5, "tres mensajes y preguntas", None),
)
_ROLE_WORDS = {
    "concepto": ("conceptual", "informe"),
    "código": ("código",),
    "evaluación": ("evaluación",),
    "visual": ("visualización",),
}


def _criterion_for(edition: Edition, role: str | None) -> str:
    if role is None:
        return "todos"
    for criterion in edition.rubric:
        if any(word in criterion.name.lower() for word in _ROLE_WORDS[role]):
            return criterion.name
    return "todos"


def presentation_outline(edition: Edition) -> list[tuple[int, float, str, str, str]]:
    """The talk slide by slide: ``(number, minutes, title, what to show, rubric criterion)``.

    The minutes are scaled to the edition's presentation length and add up to it.
    """
    total = sum(minutes for _, minutes, _, _ in _SLIDES)
    scale = edition.project.presentation_minutes / total
    return [
        (number, round(minutes * scale, 1), title, what, _criterion_for(edition, role))
        for number, (title, minutes, what, role) in enumerate(_SLIDES, start=1)
    ]


def _context(name: str, model: str, dataset: str, mlflow: bool, authors: str, edition: Edition) -> dict[str, str]:
    from .render import rubric_markdown

    choice, data = MODELS[model], DATASETS[dataset]
    initials = "".join(word[0] for word in re.split(r"[\s_-]+", authors) if word)[:3].lower() or "grp"
    outline = presentation_outline(edition)
    teacher = _teacher(model, dataset)
    return {
        "project_name": name,
        "project_slug": name.lower().replace("-", "_"),
        "authors": authors,
        "initials": initials,
        "year": str(dt.date.today().year),
        "model": model,
        "model_label": choice.label,
        "model_preset": _preset(model),
        "model_config": _yaml_block(choice.config),
        "teacher": teacher or "null",
        "dataset": dataset,
        "dataset_label": data["label"],
        "classes": "\n".join(f"  {index}. {label}" for index, label in enumerate(_classes(dataset))),
        "flip": "true" if data["flip"] else "false",
        "mlflow": "yes" if mlflow else "no",
        "vitcourse_requirement": vitcourse_requirement(track=False),  # mlflow is listed itself
        "vitcourse_version": __version__,
        "rubric_table": rubric_markdown(edition),
        "rubric_outline": "\n".join(
            f"| {number} | {minutes:g} | {title} | {what} | {criterion} |"
            for number, minutes, title, what, criterion in outline
        ),
        "project_due": edition.project.due.text(),
        "presentation_minutes": str(edition.project.presentation_minutes),
        "presentation_shows": edition.project.presentation_shows,
    }


def template_dir() -> Path:
    """The packaged Cookiecutter template (``vitcourse/templates/project``)."""
    return Path(str(resources.files("vitcourse.templates") / TEMPLATE))


def new_project(
    name: str,
    output_dir: str | Path = ".",
    model: str = "vit",
    dataset: str = "fashion_mnist",
    mlflow: bool = True,
    authors: str = "Integrantes del grupo",
    overwrite: bool = False,
    edition: str | None = None,
) -> Path:
    """Render the course's project template into ``output_dir/NAME``.

    Args:
        name: the project's folder (letters, digits, ``-``, ``_``; starts with a letter).
        output_dir: where to create it.
        model: ``"vit"``, ``"deit"``, ``"swin"`` or ``"clip"`` (see :data:`MODELS`).
        dataset: ``"fashion_mnist"`` or ``"mnist"``.
        mlflow: track runs with MLflow (local SQLite store); ``False`` leaves it out.
        authors: the group, for the README, the licence and the report.
        overwrite: render over an existing folder (files of the template are replaced).
        edition: the rules edition for the report's rubric (default: the current one).

    Returns:
        The new project's folder.

    Raises:
        NewProjectError: a bad option, an existing folder, or a model this vitcourse lacks.
    """
    _check_options(name, model, dataset)
    target = Path(output_dir) / name
    if target.exists() and not overwrite:
        raise NewProjectError(f"{target} already exists; choose another NAME or --output-dir, or pass --force")
    try:
        from cookiecutter.main import cookiecutter
    except ImportError:
        raise NewProjectError("new-project needs the cookiecutter package: pip install cookiecutter") from None
    context = _context(name, model, dataset, mlflow, authors, load(edition))
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        # Cookiecutter keeps a replay of every rendering in ~/.cookiecutter_replay: not ours to fill.
        settings = Path(scratch) / "cookiecutter.yaml"
        settings.write_text(f"replay_dir: {scratch}/replay\ncookiecutters_dir: {scratch}/templates\n")
        rendered = cookiecutter(
            str(template_dir()),
            no_input=True,
            extra_context=context,
            output_dir=str(output_dir),
            overwrite_if_exists=overwrite,
            accept_hooks=False,
            config_file=str(settings),
        )
    return Path(rendered)
