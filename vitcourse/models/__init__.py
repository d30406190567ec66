"""Models built from :mod:`vitcourse.layers`, with one registry for all of them (as in timm).

* :class:`ViT` (+ :class:`ViTConfig`): the Vision Transformer, sizes Ti/S/B/L/H and CPU sizes;
* :class:`DistilledViT` and the DeiT losses (:func:`soft_distillation_loss`,
  :func:`hard_distillation_loss`, :func:`deit_loss`);
* :class:`Swin` (+ :class:`SwinConfig`): hierarchical, shifted-window attention;
* :class:`HybridViT`: a CNN stem feeding a ViT;
* :class:`ResNet`: the CNN baseline (and DeiT's teacher);
* :class:`DETR` (+ :class:`DETRConfig`): the detection transformer (``models/detr/``);
* :class:`GPT` (+ :class:`GPTConfig`): the decoder-only language model, GPT-1, GPT-2 and GPT-3 sizes;
* :class:`MAE` (+ :class:`MAEConfig`): masked autoencoder pre-training of a ViT;
* :mod:`.imagegpt`: ImageGPT's palette, raster order and density on top of :class:`GPT`;
* :class:`DVAE` and :mod:`.dalle`: DALL-E's discrete image tokenizer and its transformer's presets.
* :class:`Donut` (+ :class:`DonutConfig`): a Swin encoder and a text decoder with cross-attention (OCR-free);
* :class:`CLIP` (+ :class:`CLIPConfig`, :func:`clip_loss`): a ViT and a causal text encoder trained contrastively.
* :class:`Sam` (+ :class:`SamConfig`): Segment Anything, image encoder + prompt encoder + mask decoder.

Build any of them by name::

    from vitcourse.models import create_model, list_models
    list_models("vit_*")
    model = create_model("vit_base_patch16_224", num_classes=10)
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING

from .registry import count_parameters, create_model, get_config, list_models, register_model

# Every other name is imported from its module on first use (PEP 562), so `import vitcourse.models`
# (and everything that imports it, e.g. `vitcourse.train`) costs no DETR, torchvision or scipy
# unless one of them is used. The registry imports the modules of its presets on its own first
# use (`registry.PRESET_MODULES`).
_EXPORTS = {
    "clip": ("CLIP", "CLIPConfig", "CLIPVisionTower", "clip_loss"),
    "vlm": ("VLM", "VLMConfig"),
    "deit": ("DistilledViT", "deit_loss", "hard_distillation_loss", "soft_distillation_loss"),
    "detr": ("DETR", "DETRConfig"),
    "donut": ("Donut", "DonutConfig", "donut_loss"),
    "gpt": ("GPT", "GPTConfig", "lm_loss", "parameter_formula", "sample_next_token"),
    "hybrid": ("HybridEmbedding", "HybridViT", "HybridViTConfig"),
    "resnet": ("BasicBlock", "ResNet", "ResNetConfig"),
    "sam": ("Sam", "SamConfig"),
    "sam2": ("Sam2", "Sam2Config"),
    "swin": ("Swin", "SwinBlock", "SwinConfig", "SwinStage"),
    "vit": ("ViT", "ViTConfig", "state_dict_from_timm", "state_dict_to_timm"),
    "mae": ("MAE", "MAEConfig", "MAEOutput", "Masking", "mae_loss", "random_masking"),
    "dvae": ("DVAE", "DVAEConfig"),
    "diffusion": ("DiT", "DiTConfig"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from . import dalle as dalle
    from . import imagegpt as imagegpt
    from .clip import CLIP, CLIPConfig, CLIPVisionTower, clip_loss
    from .deit import DistilledViT, deit_loss, hard_distillation_loss, soft_distillation_loss
    from .detr import DETR, DETRConfig
    from .diffusion import DiT, DiTConfig
    from .donut import Donut, DonutConfig, donut_loss
    from .dvae import DVAE, DVAEConfig
    from .gpt import GPT, GPTConfig, lm_loss, parameter_formula, sample_next_token
    from .hybrid import HybridEmbedding, HybridViT, HybridViTConfig
    from .mae import MAE, MAEConfig, MAEOutput, Masking, mae_loss, random_masking
    from .resnet import BasicBlock, ResNet, ResNetConfig
    from .sam import Sam, SamConfig
    from .sam2 import Sam2, Sam2Config
    from .swin import Swin, SwinBlock, SwinConfig, SwinStage
    from .vit import ViT, ViTConfig, state_dict_from_timm, state_dict_to_timm
    from .vlm import VLM, VLMConfig


def __getattr__(name: str):
    """A name of ``__all__`` (or a submodule), imported on first use."""
    module = _MODULE_OF.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # sets the attribute too
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "CLIP",
    "DETR",
    "DVAE",
    "GPT",
    "MAE",
    "VLM",
    "BasicBlock",
    "CLIPConfig",
    "CLIPVisionTower",
    "DETRConfig",
    "DVAEConfig",
    "DiT",
    "DiTConfig",
    "DistilledViT",
    "Donut",
    "DonutConfig",
    "GPTConfig",
    "HybridEmbedding",
    "HybridViT",
    "HybridViTConfig",
    "MAEConfig",
    "MAEOutput",
    "Masking",
    "ResNet",
    "ResNetConfig",
    "Sam",
    "Sam2",
    "Sam2Config",
    "SamConfig",
    "Swin",
    "SwinBlock",
    "SwinConfig",
    "SwinStage",
    "VLMConfig",
    "ViT",
    "ViTConfig",
    "clip_loss",
    "count_parameters",
    "create_model",
    "deit_loss",
    "donut_loss",
    "get_config",
    "hard_distillation_loss",
    "list_models",
    "lm_loss",
    "mae_loss",
    "parameter_formula",
    "random_masking",
    "register_model",
    "sample_next_token",
    "soft_distillation_loss",
    "state_dict_from_timm",
    "state_dict_to_timm",
]
