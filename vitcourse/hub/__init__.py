"""Our models next to Hugging Face's and timm's: pretrained weights, conversions, proofs.

* :func:`load_pretrained` / :func:`load_processor`: a Hub model at a pinned revision
  (:data:`HUB_MODELS`), or, offline and in the ``smoke`` profile, a labelled stand-in.
* :func:`vit_from_hf`, :func:`vit_to_hf`, :func:`vit_from_timm`, :func:`swin_from_hf`,
  :func:`swin_to_hf`, :func:`swin_from_timm`, :func:`mae_from_hf`, :func:`imagegpt_from_hf`:
  the same weights in another implementation, or a :class:`ConversionError` naming what
  differs.
* :func:`detr_from_hf`: Hugging Face's ``DetrForObjectDetection`` as our
  :class:`~vitcourse.models.DETR`;
* :func:`gpt_from_hf`, :func:`gpt_to_hf`: our GPT and Hugging Face's ``GPT2LMHeadModel``.
* :func:`clip_from_hf`, :func:`clip_to_hf`: our CLIP and Hugging Face's ``CLIPModel``;
  :func:`clip_tokenizer`: CLIP's real tokenizer, offline.
* :func:`sam_from_hf`: Hugging Face's ``SamModel`` as our :class:`~vitcourse.models.Sam`.
* :func:`compare_models`: the largest difference between two models after every block.

``transformers`` and ``timm`` are imported only by the functions that need them, and
:func:`detr_from_hf` (DETR's torchvision backbone) only when it is first used.
"""

from typing import TYPE_CHECKING

from .clip import clip_from_hf, clip_to_hf, clip_tokenizer
from .compare import compare_models, trace
from .gpt import gpt_from_hf, gpt_to_hf
from .imagegpt import imagegpt_from_hf
from .mae import mae_from_hf
from .mapping import ConversionError
from .pretrained import (
    HUB_MODELS,
    HubModel,
    HubUnavailableError,
    Provenance,
    hub_offline,
    hub_reachable,
    load_pretrained,
    load_processor,
)
from .sam import sam_from_hf
from .swin import swin_from_hf, swin_from_timm, swin_to_hf
from .vit import replace_head, vit_from_hf, vit_from_timm, vit_to_hf

if TYPE_CHECKING:
    from .detr import detr_from_hf as detr_from_hf

__all__ = [
    "HUB_MODELS",
    "ConversionError",
    "HubModel",
    "HubUnavailableError",
    "Provenance",
    "clip_from_hf",
    "clip_to_hf",
    "clip_tokenizer",
    "compare_models",
    "detr_from_hf",
    "gpt_from_hf",
    "gpt_to_hf",
    "hub_offline",
    "hub_reachable",
    "imagegpt_from_hf",
    "load_pretrained",
    "load_processor",
    "mae_from_hf",
    "replace_head",
    "sam_from_hf",
    "swin_from_hf",
    "swin_from_timm",
    "swin_to_hf",
    "trace",
    "vit_from_hf",
    "vit_from_timm",
    "vit_to_hf",
]


def __getattr__(name: str):
    """:func:`detr_from_hf` on first use: importing DETR costs torchvision and scipy, which
    every process importing ``vitcourse.hub`` (TP3's checks, most chapters) would pay."""
    if name == "detr_from_hf":
        from .detr import detr_from_hf

        return detr_from_hf
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
