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

from .clip import CLIP, CLIPConfig, CLIPVisionTower, clip_loss
from .vlm import VLM, VLMConfig
from .deit import DistilledViT, deit_loss, hard_distillation_loss, soft_distillation_loss
from .detr import DETR, DETRConfig
from .donut import Donut, DonutConfig, donut_loss
from .gpt import GPT, GPTConfig, lm_loss, parameter_formula, sample_next_token
from .hybrid import HybridEmbedding, HybridViT, HybridViTConfig
from .registry import count_parameters, create_model, get_config, list_models, register_model
from .resnet import BasicBlock, ResNet, ResNetConfig
from .sam import Sam, SamConfig
from .sam2 import Sam2, Sam2Config
from .swin import Swin, SwinBlock, SwinConfig, SwinStage
from .vit import ViT, ViTConfig, state_dict_from_timm, state_dict_to_timm
from .mae import MAE, MAEConfig, MAEOutput, Masking, mae_loss, random_masking
from .dvae import DVAE, DVAEConfig
from . import dalle, imagegpt
from .diffusion import DiT, DiTConfig

__all__ = [
    "CLIP",
    "GPT",
    "CLIPConfig",
    "CLIPVisionTower",
    "VLM",
    "VLMConfig",
    "clip_loss",
    "BasicBlock",
    "DETR",
    "DiT",
    "DiTConfig",
    "DETRConfig",
    "DVAE",
    "DVAEConfig",
    "DistilledViT",
    "Donut",
    "DonutConfig",
    "GPTConfig",
    "HybridEmbedding",
    "HybridViT",
    "HybridViTConfig",
    "MAE",
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
    "mae_loss",
    "parameter_formula",
    "random_masking",
    "register_model",
    "sample_next_token",
    "soft_distillation_loss",
    "state_dict_from_timm",
    "state_dict_to_timm",
]
