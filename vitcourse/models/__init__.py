"""Models built from :mod:`vitcourse.layers`, with one registry for all of them (as in timm).

* :class:`ViT` (+ :class:`ViTConfig`): the Vision Transformer, sizes Ti/S/B/L/H and CPU sizes;
* :class:`DistilledViT` and the DeiT losses (:func:`soft_distillation_loss`,
  :func:`hard_distillation_loss`, :func:`deit_loss`);
* :class:`Swin` (+ :class:`SwinConfig`): hierarchical, shifted-window attention;
* :class:`HybridViT`: a CNN stem feeding a ViT;
* :class:`ResNet`: the CNN baseline (and DeiT's teacher);
* :class:`DETR` (+ :class:`DETRConfig`): the detection transformer (``models/detr/``).

Build any of them by name::

    from vitcourse.models import create_model, list_models
    list_models("vit_*")
    model = create_model("vit_base_patch16_224", num_classes=10)
"""

from .registry import count_parameters, create_model, get_config, list_models, register_model
from .vit import ViT, ViTConfig, state_dict_from_timm, state_dict_to_timm
from .deit import DistilledViT, deit_loss, hard_distillation_loss, soft_distillation_loss
from .resnet import BasicBlock, ResNet, ResNetConfig
from .hybrid import HybridEmbedding, HybridViT, HybridViTConfig
from .swin import Swin, SwinBlock, SwinConfig, SwinStage
from .detr import DETR, DETRConfig

__all__ = [
    "BasicBlock",
    "DETR",
    "DETRConfig",
    "DistilledViT",
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
    "get_config",
    "hard_distillation_loss",
    "list_models",
    "register_model",
    "soft_distillation_loss",
    "state_dict_from_timm",
    "state_dict_to_timm",
]
