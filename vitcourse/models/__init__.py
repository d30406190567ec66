"""Models built from :mod:`vitcourse.layers`, with one registry for all of them (as in timm).

* :class:`ViT` (+ :class:`ViTConfig`): the Vision Transformer, sizes Ti/S/B/L/H and CPU sizes;
* :class:`DistilledViT` and the DeiT losses (:func:`soft_distillation_loss`,
  :func:`hard_distillation_loss`, :func:`deit_loss`);
* :class:`Swin` (+ :class:`SwinConfig`): hierarchical, shifted-window attention;
* :class:`HybridViT`: a CNN stem feeding a ViT;
* :class:`ResNet`: the CNN baseline (and DeiT's teacher);
* :class:`DETR` (+ :class:`DETRConfig`): the detection transformer (``models/detr/``);
* :class:`GPT` (+ :class:`GPTConfig`): the decoder-only language model, GPT-1, GPT-2 and GPT-3 sizes;
* :class:`Donut` (+ :class:`DonutConfig`): a Swin encoder and a text decoder with cross-attention (OCR-free).

Build any of them by name::

    from vitcourse.models import create_model, list_models
    list_models("vit_*")
    model = create_model("vit_base_patch16_224", num_classes=10)
"""

from .deit import DistilledViT, deit_loss, hard_distillation_loss, soft_distillation_loss
from .detr import DETR, DETRConfig
from .donut import Donut, DonutConfig, donut_loss
from .gpt import GPT, GPTConfig, lm_loss, sample_next_token
from .hybrid import HybridEmbedding, HybridViT, HybridViTConfig
from .registry import count_parameters, create_model, get_config, list_models, register_model
from .resnet import BasicBlock, ResNet, ResNetConfig
from .swin import Swin, SwinBlock, SwinConfig, SwinStage
from .vit import ViT, ViTConfig, state_dict_from_timm, state_dict_to_timm

__all__ = [
    "GPT",
    "BasicBlock",
    "DETR",
    "DETRConfig",
    "DistilledViT",
    "Donut",
    "DonutConfig",
    "GPTConfig",
    "HybridEmbedding",
    "HybridViT",
    "HybridViTConfig",
    "ResNet",
    "ResNetConfig",
    "Swin",
    "SwinBlock",
    "SwinConfig",
    "SwinStage",
    "ViT",
    "ViTConfig",
    "count_parameters",
    "create_model",
    "deit_loss",
    "donut_loss",
    "get_config",
    "hard_distillation_loss",
    "list_models",
    "lm_loss",
    "register_model",
    "sample_next_token",
    "soft_distillation_loss",
    "state_dict_from_timm",
    "state_dict_to_timm",
]
