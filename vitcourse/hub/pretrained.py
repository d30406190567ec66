"""Pretrained models from the Hugging Face Hub, at pinned revisions, with an offline stand-in.

One call serves both profiles of the book::

    model = load_pretrained("google/vit-base-patch16-224")

* ``full`` profile (Colab), Hub reachable: the real weights, at the revision pinned in
  :data:`HUB_MODELS` (a checkpoint changes on the Hub; a pinned revision doesn't).
* ``full`` profile, offline (``HF_HUB_OFFLINE=1``) or the Hub unreachable: the local
  cache if the model is there, else the fallback.
* ``smoke`` profile (CI, the book build): never a download; the fallback.

The fallback is a **stand-in** (the default) or an error (``fallback="raise"``), said in
one line, within seconds: the offline check reads the environment, and the
reachability check is one TCP connection with a short timeout, made once per process.
A stand-in is either a checkpoint this project trains and ships (a small ViT that has
really learnt something) or a tiny random-weight model of the same architecture
(:mod:`vitcourse.hub.standins`). It is labelled everywhere: the line printed when it
loads, ``model.provenance``, the first line of ``print(model)`` and
``model.config.name_or_path``.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from ..data.remote import reachable
from ..runtime import resolve_profile
from . import standins
from .gpt import GPT2_REVISION, tiny_gpt2_config
from .standins import IMAGENET_MEAN, IMAGENET_STD, STAND_IN_IMAGE_SIZE

__all__ = [
    "HUB_MODELS",
    "PLACEHOLDERS",
    "HubModel",
    "HubUnavailableError",
    "Provenance",
    "hub_offline",
    "hub_reachable",
    "load_pretrained",
    "load_processor",
]

#: Transformers classes for a task, for Hub ids that are not in :data:`HUB_MODELS`.
AUTO_CLASSES = {
    "image-classification": "AutoModelForImageClassification",
    "feature-extraction": "AutoModel",
    "zero-shot-image-classification": "AutoModelForZeroShotImageClassification",
    "object-detection": "AutoModelForObjectDetection",
    "zero-shot-object-detection": "AutoModelForZeroShotObjectDetection",
    "mask-generation": "AutoModelForMaskGeneration",
}


#: What a pinned revision looks like: a commit hash, full (40 hex digits) or short (7 or more).
#: The Hub resolves a short hash too (huggingface_hub caches it as ``refs/<short>`` -> full hash).
COMMIT_HASH = re.compile(r"[0-9a-f]{7,40}")

#: The revision written where no commit is known yet: a branch, which moves.
PLACEHOLDER = "main"


class HubUnavailableError(RuntimeError):
    """The Hub weights can't be had here, and the caller asked for them or nothing can stand in."""


@dataclass(frozen=True)
class HubModel:
    """A Hub model the course uses, pinned, with what stands in for it offline.

    Args:
        hub_id: ``"owner/name"`` on the Hub.
        revision: the commit to load (a hash, :data:`COMMIT_HASH`); :data:`PLACEHOLDER`
            (``"main"``) only for the ids listed in :data:`PLACEHOLDERS`.
        classes: task → transformers class name; the first task is the default.
        stand_in: builds a tiny config of the same architecture (:mod:`.standins`).
        processor: transformers class loading its pre-processing (``AutoImageProcessor``,
            or ``AutoProcessor`` where text is involved).
        stand_in_processor: builds a processor for the stand-in, from an image size.
        stand_in_image_size: the image size of the tiny stand-in.
        checkpoint: a shipped :mod:`vitcourse.checkpoints` name that stands in better
            than random weights, looked up only when needed (it may not be installed).
        ours: ``"vit"``, ``"swin"``, ``"gpt"``, ``"mae"`` or ``"imagegpt"``: converts to
            this package's model (``framework="vitcourse"``).
    """

    hub_id: str
    revision: str
    classes: dict[str, str]
    stand_in: Callable[[], Any]
    processor: str = "AutoImageProcessor"
    stand_in_processor: Callable[[int], Any] | None = None
    stand_in_image_size: int = STAND_IN_IMAGE_SIZE
    checkpoint: str | None = None
    ours: str | None = None

    @property
    def default_task(self) -> str:
        """The first task of ``classes``."""
        return next(iter(self.classes))

    @property
    def pinned(self) -> bool:
        """True when ``revision`` is a commit hash; a branch (``"main"``) or a tag is not a pin."""
        return COMMIT_HASH.fullmatch(self.revision) is not None


_IMAGENET_VIT = functools.partial(standins.vit_processor, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def _tiny_mae():
    from .mae import tiny_mae_config

    return tiny_mae_config()


def _tiny_imagegpt():
    from .imagegpt import tiny_imagegpt_config

    return tiny_imagegpt_config()


# Revisions. Every model is pinned to a commit of its Hub repository, and the comment next to
# each pin says where the hash was read: this project is built without network access to the
# Hub, so a hash comes from a public source that ties it to exactly that repository (never
# guessed). "Public GitHub files" are files found in an index of public GitHub code, which
# does not name their repository; the quoted form is what they contain.
#
# * The three short hashes are the ones transformers itself pins for its pipeline defaults
#   (transformers/pipelines/__init__.py, 5.x). Their full forms, from the snapshot folders of
#   public Hugging Face caches (models--<owner>--<name>/snapshots/<full hash>) and, for CLIP,
#   embeddings-benchmark/mteb mteb/models/model_implementations/clip_models.py, are
#   google/vit-base-patch16-224 3f49326eb077187dfe1c2a2bb15fbd74e6ab91e3,
#   openai/clip-vit-base-patch32 3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268 and
#   facebook/detr-resnet-50 1d5f47bd3bdd2c4bbfa585418ffe6da5028b4c0b. A short hash is kept
#   because the Hub resolves it and it is the one the book quotes; offline, the cache finds it
#   only if it was downloaded under that same short name (refs/<short>).
# * The full hashes were read off public sources (each comment) and not re-checked against
#   the Hub from here. On a machine with the network, `python -m vitcourse.hub revisions`
#   resolves every pin to its full hash and prints today's "main" next to it.
#
# A model whose commit is not known yet takes PLACEHOLDER ("main") and is listed in
# PLACEHOLDERS, so `python -m vitcourse.hub list`, the book's table and the tests say which.
HUB_MODELS: dict[str, HubModel] = {
    model.hub_id: model
    for model in (
        HubModel(
            "google/vit-base-patch16-224", "3f49326",
            {"image-classification": "ViTForImageClassification", "feature-extraction": "ViTModel"},
            standins.tiny_vit, stand_in_processor=standins.vit_processor, checkpoint="vit_fashion_tiny", ours="vit",
        ),
        HubModel(
            # public GitHub files: links to huggingface.co/facebook/deit-tiny-patch16-224/tree/<this hash>,
            # and MODEL_REVISION next to MODEL_ID = "facebook/deit-tiny-patch16-224" (10 files agree)
            "facebook/deit-tiny-patch16-224", "b3428f18dcc7b543470d07f14b4a4157815d1880",  # stored as a plain ViT
            {"image-classification": "ViTForImageClassification", "feature-extraction": "ViTModel"},
            standins.tiny_vit, stand_in_processor=_IMAGENET_VIT, checkpoint="vit_fashion_tiny", ours="vit",
        ),
        HubModel(
            # public GitHub files: links to huggingface.co/microsoft/swin-tiny-patch4-window7-224/tree/<this hash>
            # and /blob/<this hash>/preprocessor_config.json; a REVISION next to this MODEL_ID (3 files agree)
            "microsoft/swin-tiny-patch4-window7-224", "d00d478bfaf1f417d34a1186673ad4b4be264c51",
            {"image-classification": "SwinForImageClassification", "feature-extraction": "SwinModel"},
            standins.tiny_swin, stand_in_processor=_IMAGENET_VIT, ours="swin",
        ),
        HubModel(
            # one public GitHub file: a Hugging Face cache path
            # models--apple--mobilevit-small/snapshots/<this hash>, loaded with MobileViTImageProcessor
            "apple/mobilevit-small", "6c8612545dc98676d27bc518fa521d9e9af23e34",
            {"image-classification": "MobileViTForImageClassification", "feature-extraction": "MobileViTModel"},
            standins.tiny_mobilevit, stand_in_processor=standins.mobilevit_processor,
        ),
        HubModel(
            "openai/clip-vit-base-patch32", "3d74acf", {"zero-shot-image-classification": "CLIPModel"},
            standins.tiny_clip, processor="AutoProcessor",
        ),
        HubModel(
            # embeddings-benchmark/mteb, mteb/models/model_implementations/clip_models.py (the ModelMeta of
            # this name); public GitHub files agree (CLIP_REVISION, models--openai--clip-vit-large-patch14/snapshots/)
            "openai/clip-vit-large-patch14", "32bd64288804d66eefd0ccbe215aa642df71cc41",
            {"zero-shot-image-classification": "CLIPModel"},
            standins.tiny_clip, processor="AutoProcessor",
        ),
        HubModel(
            "facebook/detr-resnet-50", "1d5f47b", {"object-detection": "DetrForObjectDetection"},
            standins.tiny_detr, stand_in_processor=standins.detr_processor,
        ),
        HubModel(
            # public GitHub files: huggingface.co/IDEA-Research/grounding-dino-tiny/resolve/<this hash>/<file> for
            # config.json, model.safetensors and the tokenizer files, and revision= next to this id (10+ files)
            "IDEA-Research/grounding-dino-tiny", "a2bb814dd30d776dcf7e30523b00659f4f141c71",
            {"zero-shot-object-detection": "GroundingDinoForObjectDetection"},
            standins.tiny_grounding_dino, processor="AutoProcessor", stand_in_image_size=64,
        ),
        HubModel(
            # public GitHub files: snapshot_download("facebook/sam-vit-base", revision=<this hash>) for config.json,
            # preprocessor_config.json and model.safetensors; models--facebook--sam-vit-base/snapshots/<this hash>
            "facebook/sam-vit-base", "70c1a07f894ebb5b307fd9eaaee97b9dfc16068f", {"mask-generation": "SamModel"},
            standins.tiny_sam, processor="AutoProcessor", stand_in_processor=standins.sam_processor,
            stand_in_image_size=64,
        ),
        HubModel(
            # public GitHub files: revision next to "facebook/sam2.1-hiera-tiny" for transformers' Sam2Model
            # (model.safetensors, config.json), models--facebook--sam2.1-hiera-tiny/snapshots/<this hash> (8+ files)
            "facebook/sam2.1-hiera-tiny", "de431c4043854a71d8101e17995dfe596bf101a5", {"mask-generation": "Sam2Model"},
            standins.tiny_sam2, processor="AutoProcessor", stand_in_image_size=64,
        ),
        HubModel(
            # public GitHub files: MODEL_REVISION next to MODEL_ID = "facebook/vit-mae-base" (model.safetensors),
            # models--facebook--vit-mae-base/snapshots/<this hash> (10 files)
            "facebook/vit-mae-base", "25b184bea5538bf5c4c852c79d221195fdd2778d",
            {"masked-image-modeling": "ViTMAEForPreTraining"},
            _tiny_mae, ours="mae",
        ),
        HubModel(
            # one stored web page, a mirror of the Hub's file view: .../openai/imagegpt-small/blob/<this hash>/README.md
            # (https://huggingface.proxy.nlp.skieer.com, the commit "Update README.md" c05f236)
            "openai/imagegpt-small", "c05f2368b490e8529747c135b30e2ba81459a396",
            {"image-generation": "ImageGPTForCausalImageModeling"},
            _tiny_imagegpt, ours="imagegpt",
        ),
        HubModel(
            # public GitHub files (2, by different people): Hugging Face cache paths
            # models--naver-clova-ix--donut-base/snapshots/<this hash>, one of them in a Donut conversion
            # script (find_string ids 20671163018, 37584096318). The earlier pin 8036be3 had no source.
            "naver-clova-ix/donut-base", "a959cf33c20e09215873e338299c900f57047c61",
            {"image-to-text": "VisionEncoderDecoderModel"},
            standins.tiny_donut, processor="AutoProcessor",
        ),
        HubModel(
            # GPT2_REVISION (vitcourse.hub.gpt): the commit huggingface_hub's own docstring example resolves
            # "openai-community/gpt2" to (huggingface_hub/_revision.py, resolve_revision; 2.4.0)
            "openai-community/gpt2", GPT2_REVISION,
            {"text-generation": "GPT2LMHeadModel", "feature-extraction": "GPT2Model"},
            tiny_gpt2_config, processor="AutoTokenizer", ours="gpt",
        ),
    )
}  # fmt: skip

#: Hub ids whose revision is still :data:`PLACEHOLDER`: none; a model added without a known
#: commit goes here (and the book's table says "pendiente" for it).
PLACEHOLDERS: frozenset[str] = frozenset()


# -- can we reach the Hub? -----------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_reachability: dict[tuple[str, int], bool] = {}


def hub_offline() -> str | None:
    """The variable asking for no network, ``"HF_HUB_OFFLINE"`` or ``"TRANSFORMERS_OFFLINE"``, or None.

    Read now, from the environment (huggingface_hub reads it once, when imported).
    """
    return next(
        (var for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if os.environ.get(var, "").strip().lower() in _TRUE),
        None,
    )


def hub_address() -> tuple[str, int]:
    """Host and port of the Hub: ``huggingface.co:443``, or those of ``$HF_ENDPOINT`` (a mirror)."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def hub_reachable(timeout: float = 1.5) -> bool:
    """Whether a TCP connection to the Hub opens within ``timeout`` seconds (asked once per process and address)."""
    address = hub_address()
    if address not in _reachability:
        _reachability[address] = reachable(*address, timeout=timeout)
    return _reachability[address]


def _why_not_the_hub(profile: str, timeout: float) -> str | None:
    """Why we won't ask the Hub (a short phrase), or None when we may."""
    if profile == "smoke":
        return "PROFILE='smoke' downloads nothing"
    offline = hub_offline()
    if offline:
        return f"offline mode ({offline}={os.environ[offline]})"
    if not hub_reachable(timeout):
        host, port = hub_address()
        return f"{host}:{port} can't be reached (no connection within {timeout:g} s)"
    return None


# -- what was loaded -----------------------------------------------------------------


@dataclass(frozen=True)
class Provenance:
    """Where a model's weights came from.

    Attributes:
        hub_id: the Hub model asked for.
        revision: its pinned revision.
        weights: ``"pretrained weights from the Hub"`` (or ``the local cache``), or
            what the stand-in is.
        stand_in: True when these are not the Hub weights.
        reason: why not (``None`` for the Hub weights).
        checkpoint: the shipped :mod:`vitcourse.checkpoints` entry standing in, if one does
            (its processor then normalises as that checkpoint was trained).
    """

    hub_id: str
    revision: str
    weights: str
    stand_in: bool = False
    reason: str | None = None
    checkpoint: str | None = None

    def __str__(self) -> str:
        if not self.stand_in:
            return f"{self.hub_id} @ {self.revision}: {self.weights}"
        return f"{self.hub_id}: {self.reason} -> STAND-IN, {self.weights}"


def _label(model: nn.Module, provenance: Provenance) -> nn.Module:
    """Attach the provenance; a stand-in also says so in ``print(model)`` and its config."""
    model.provenance = provenance
    if provenance.stand_in:
        # A partial, not a lambda, so the model still pickles.
        model.extra_repr = functools.partial(str, f"STAND-IN for {provenance.hub_id}: {provenance.weights}")
        config = getattr(model, "config", None)
        if hasattr(config, "_name_or_path"):
            config._name_or_path = f"stand-in for {provenance.hub_id} ({provenance.weights})"
    return model


def _say(message: str, verbose: bool) -> None:
    if verbose:
        print(f"[vitcourse.hub] {message}", file=sys.stderr, flush=True)


# -- loading -------------------------------------------------------------------------


def _transformers_class(name: str):
    import transformers

    return getattr(transformers, name)


def _label_kwargs(labels: Sequence[str] | None) -> dict:
    if labels is None:
        return {}
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


def _from_hub(name: str, class_name: str, revision: str, labels, local_files_only: bool, **kwargs) -> nn.Module:
    if labels is not None:  # a new head for the new classes (TP3's 1000-class head must go)
        kwargs = {**_label_kwargs(labels), "ignore_mismatched_sizes": True, **kwargs}
    cls = _transformers_class(class_name)
    return cls.from_pretrained(name, revision=revision, local_files_only=local_files_only, **kwargs)


def _hub_failure(error: Exception) -> str:
    """One line for an exception of ``from_pretrained``."""
    lines = str(error).strip().splitlines()
    return f"the Hub failed ({type(error).__name__}: {lines[0][:120] if lines else ''})"


def _shipped_checkpoint(name: str | None) -> str | None:
    """``name`` if :mod:`vitcourse.checkpoints` is installed and ships it, else None."""
    if name is None:
        return None
    try:
        from .. import checkpoints
    except ImportError:
        return None
    return name if name in checkpoints.available() else None


def _stand_in(entry: HubModel, task: str, labels, stand_in: str, seed: int) -> tuple[nn.Module, str, str | None]:
    """Build the stand-in: a shipped checkpoint (converted to Hugging Face) or a tiny random model.

    Returns:
        The model, what it is (for :class:`Provenance`), and the checkpoint's name or None.
    """
    checkpoint = _shipped_checkpoint(entry.checkpoint) if stand_in == "auto" else None
    if checkpoint is not None:
        from .. import checkpoints
        from .vit import replace_head, vit_to_hf

        ours = checkpoints.load(checkpoint)
        if ours.config.in_chans == 1:  # trained on grey images: take RGB ones, as Hub ViTs do
            ours = standins.grey_to_rgb(ours)
        if task == "feature-extraction":
            ours = replace_head(ours, 0)
        elif labels is not None:
            ours = replace_head(ours, len(labels))
        meta = checkpoints.info(checkpoint)
        labels = labels or meta.get("labels") or meta.get("classes")  # the registry says "classes"
        model = vit_to_hf(ours, labels=labels if ours.config.num_classes else None).eval()
        what = meta.get("description") or f"trained on {meta.get('data', {}).get('name', '?')}"
        return model, f"vitcourse checkpoint {checkpoint!r} ({what}), not the Hub weights", checkpoint
    config = entry.stand_in()
    if labels is not None:
        for key, value in _label_kwargs(labels).items():
            setattr(config, key, value)
    class_name = entry.classes[task]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _transformers_class(class_name)(config).eval()
    return model, f"tiny {class_name} with random weights (its outputs mean nothing)", None


def _to_ours(model: nn.Module, entry: HubModel | None) -> nn.Module:
    from .gpt import gpt_from_hf
    from .imagegpt import imagegpt_from_hf
    from .mae import mae_from_hf
    from .swin import swin_from_hf
    from .vit import vit_from_hf

    converters = {"vit": vit_from_hf, "swin": swin_from_hf, "gpt": gpt_from_hf, "mae": mae_from_hf,
                  "imagegpt": imagegpt_from_hf}  # fmt: skip
    if entry is None or entry.ours not in converters:
        known = [m.hub_id for m in HUB_MODELS.values() if m.ours]
        raise ValueError(
            f"framework='vitcourse' converts only the ViT and Swin models and GPT-2 {known}; use framework='hf'"
        )
    ours = converters[entry.ours](model)
    provenance = getattr(model, "provenance", None)
    return _label(ours, provenance) if provenance is not None else ours


def load_pretrained(
    name: str,
    *,
    task: str | None = None,
    fallback: str = "stand-in",
    profile: str = "auto",
    framework: str = "hf",
    labels: Sequence[str] | None = None,
    revision: str | None = None,
    stand_in: str = "auto",
    seed: int = 0,
    timeout: float = 1.5,
    verbose: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """A Hub model at its pinned revision, or its labelled stand-in (or a clear error) when it can't be had.

    Args:
        name: a Hub id; those of :data:`HUB_MODELS` are pinned and have stand-ins.
        task: which head: ``"image-classification"``, ``"feature-extraction"`` (no head), …;
            by default the model's first task.
        fallback: ``"stand-in"`` or ``"raise"`` (:class:`HubUnavailableError`) when the Hub
            weights can't be had.
        profile: ``"auto"``, ``"smoke"`` (never downloads) or ``"full"``.
        framework: ``"hf"`` (a transformers model) or ``"vitcourse"`` (converted to
            :class:`~vitcourse.models.ViT` / :class:`~vitcourse.models.Swin`).
        labels: class names for a **new** classification head (fine-tuning); the Hub
            head (1000 ImageNet classes) is dropped.
        revision: overrides the pinned revision.
        stand_in: ``"auto"`` (a shipped checkpoint if there is one, else random weights)
            or ``"random"``.
        seed: seed of the stand-in's random weights (the global generator is left alone).
        timeout: seconds to wait for the Hub's TCP connection.
        verbose: print the one line saying what was loaded (to stderr).
        **kwargs: passed to ``from_pretrained`` (``torch_dtype``, ``attn_implementation``…).

    Returns:
        The model in eval mode, with ``model.provenance`` (:class:`Provenance`).

    Raises:
        HubUnavailableError: the Hub weights can't be had and ``fallback="raise"``, or
            nothing stands in for ``name``.
        ValueError: an unknown ``task``, ``fallback``, ``framework`` or ``stand_in``.
    """
    profile = resolve_profile(profile)
    for arg, value, allowed in (
        ("fallback", fallback, ("stand-in", "raise")),
        ("framework", framework, ("hf", "vitcourse")),
        ("stand_in", stand_in, ("auto", "random")),
    ):
        if value not in allowed:
            raise ValueError(f"{arg} must be one of {allowed}, got {value!r}")
    entry = HUB_MODELS.get(name)
    tasks = entry.classes if entry else AUTO_CLASSES
    task = task or (entry.default_task if entry else "image-classification")
    if task not in tasks:
        raise ValueError(f"{name}: task must be one of {list(tasks)}, got {task!r}")
    revision = revision or (entry.revision if entry else "main")
    class_name = tasks[task]

    model, reason = None, _why_not_the_hub(profile, timeout)
    if profile == "full":
        local_only = reason is not None  # offline or unreachable: the local cache may still have it
        try:
            model = _from_hub(name, class_name, revision, labels, local_only, **kwargs)
            where = "the local cache" if local_only else "the Hub"
            provenance = Provenance(name, revision, f"pretrained weights from {where}")
        except Exception as error:  # noqa: BLE001 - whatever failed, the answer is the fallback
            reason = f"{reason}; not in the local cache" if local_only else _hub_failure(error)

    if model is None:
        if fallback == "raise" or entry is None:
            why = "and fallback='raise'" if entry is not None else f"and no stand-in is known for {name}"
            raise HubUnavailableError(
                f"{name}: {reason}, {why}. To get the real weights: run with the network and PROFILE='full' "
                f"(unset HF_HUB_OFFLINE); to go on without them: fallback='stand-in' with one of {list(HUB_MODELS)}"
            )
        model, weights, checkpoint = _stand_in(entry, task, labels, stand_in, seed)
        provenance = Provenance(name, revision, weights, stand_in=True, reason=reason, checkpoint=checkpoint)
    _label(model, provenance)
    _say(str(provenance), verbose)
    return _to_ours(model, entry) if framework == "vitcourse" else model


def load_processor(
    name: str,
    *,
    model: nn.Module | None = None,
    fallback: str = "stand-in",
    profile: str = "auto",
    revision: str | None = None,
    timeout: float = 1.5,
    verbose: bool = True,
):
    """The pre-processing of a Hub model (resize, normalise; tokenise for text models), or its stand-in.

    Args:
        name: a Hub id.
        model: the model it will feed; a stand-in model gets a stand-in processor of
            its image size (whatever the network says), a Hub model the Hub processor.
        fallback, profile, revision, timeout, verbose: as in :func:`load_pretrained`.

    Returns:
        A transformers image processor or processor.

    Raises:
        HubUnavailableError: the Hub processor can't be had and ``fallback="raise"``, or
            nothing stands in (processors with a tokenizer need its vocabulary files).
    """
    profile = resolve_profile(profile)
    if fallback not in ("stand-in", "raise"):
        raise ValueError(f"fallback must be 'stand-in' or 'raise', got {fallback!r}")
    entry = HUB_MODELS.get(name)
    revision = revision or (entry.revision if entry else "main")
    provenance = getattr(model, "provenance", None)
    if provenance is not None and provenance.stand_in:
        reason = provenance.reason  # a stand-in model needs the processor of its own size
    elif profile == "full" or provenance is not None:
        reason = _why_not_the_hub("full", timeout)
        class_name = entry.processor if entry else "AutoProcessor"
        try:
            processor = _transformers_class(class_name).from_pretrained(
                name, revision=revision, local_files_only=reason is not None
            )
            _say(f"{name} @ {revision}: processor from {'the local cache' if reason else 'the Hub'}", verbose)
            return processor
        except Exception as error:  # noqa: BLE001
            reason = f"{reason}; not in the local cache" if reason else _hub_failure(error)
    else:
        reason = _why_not_the_hub(profile, timeout)
    if fallback == "raise" or entry is None or entry.stand_in_processor is None:
        why = (
            "and fallback='raise'"
            if fallback == "raise"
            else "and no processor stands in for it here (a text tokenizer needs its vocabulary files from the Hub)"
        )
        raise HubUnavailableError(f"{name}: {reason}, {why}. For the real one: the network and PROFILE='full'.")
    image_size = getattr(getattr(model, "config", None), "image_size", None) or entry.stand_in_image_size
    image_size = image_size if isinstance(image_size, int) else int(image_size[0])
    normalization = _checkpoint_normalization(provenance.checkpoint if provenance is not None else None)
    _say(f"{name}: {reason} -> STAND-IN processor for {image_size}x{image_size} images", verbose)
    if normalization is None:
        return entry.stand_in_processor(image_size)
    mean, std = normalization
    return entry.stand_in_processor(image_size, mean=mean, std=std)


def _checkpoint_normalization(name: str | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` a shipped checkpoint was trained with, or None (no checkpoint, or data it can't tell)."""
    if name is None:
        return None
    from .. import checkpoints
    from ..data import FASHION_MEAN, FASHION_STD, SHAPES_MEAN, SHAPES_STD

    data = checkpoints.info(name).get("data", {})
    if data.get("name") == "fashion_mnist":  # grey, normalised by FashionMNIST; RGB copies per channel
        return (FASHION_MEAN,) * 3, (FASHION_STD,) * 3
    if not data.get("normalize"):
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # trained on [0, 1] pixels
    if data.get("name") == "shapes":
        return SHAPES_MEAN, SHAPES_STD
    return None
