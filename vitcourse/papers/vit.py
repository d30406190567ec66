"""Numbers of the ViT paper (Dosovitskiy et al., 2021) and of the class-2 slides about it.

The slides say ImageNet has "1.2M imágenes"; the paper says 1.3M (ImageNet-1k's training
set has 1,281,167 images, so both are roundings). The book uses the paper's number,
cited, and records the slides' one here.
"""

from __future__ import annotations

from . import Source

__all__ = [
    "DATASETS",
    "DATASETS_SOURCE",
    "IMAGENET_ONLY",
    "IMAGENET_ONLY_SOURCE",
    "MODELS",
    "MODELS_SOURCE",
    "SLIDES_IMAGENET_IMAGES",
    "TRANSFER",
    "TRANSFER_SOURCE",
]

_VIT = dict(
    authors="Dosovitskiy et al.",
    year=2021,
    title="An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
    arxiv="2010.11929",
    bibkey="dosovitskiy2021vit",
)

DATASETS_SOURCE = Source(where="Section 4.1", **_VIT)
DATASETS: list[dict] = [
    {"dataset": "ImageNet", "classes": 1000, "images": 1.3e6},
    {"dataset": "ImageNet-21k", "classes": 21_000, "images": 14e6},
    {"dataset": "JFT", "classes": 18_000, "images": 303e6},
]
"""The pre-training data sets: classes and images, as the paper rounds them."""

SLIDES_IMAGENET_IMAGES = 1.2e6
"""What the class-2 slides say ImageNet-1k holds ("1.2M imágenes")."""

MODELS_SOURCE = Source(where="Table 1", **_VIT)
MODELS: list[dict] = [
    {"model": "ViT-Base", "layers": 12, "hidden_size": 768, "mlp_size": 3072, "heads": 12, "params": "86M"},
    {"model": "ViT-Large", "layers": 24, "hidden_size": 1024, "mlp_size": 4096, "heads": 16, "params": "307M"},
    {"model": "ViT-Huge", "layers": 32, "hidden_size": 1280, "mlp_size": 5120, "heads": 16, "params": "632M"},
]
"""The ViT sizes (Tiny and Small come from DeiT: :data:`vitcourse.papers.deit.MODELS`)."""

TRANSFER_SOURCE = Source(where="Table 2", **_VIT)
TRANSFER: list[dict] = [
    {"model": "ViT-H/14", "pretraining": "JFT-300M", "ImageNet": 88.55, "CIFAR-10": 99.50, "CIFAR-100": 94.55,
     "tpu_core_days": 2500},
    {"model": "ViT-L/16", "pretraining": "JFT-300M", "ImageNet": 87.76, "CIFAR-10": 99.42, "CIFAR-100": 93.90,
     "tpu_core_days": 680},
    {"model": "ViT-L/16", "pretraining": "ImageNet-21k", "ImageNet": 85.30, "CIFAR-10": 99.15, "CIFAR-100": 93.25,
     "tpu_core_days": 230},
    {"model": "BiT-L (ResNet152x4)", "pretraining": "JFT-300M", "ImageNet": 87.54, "CIFAR-10": 99.37,
     "CIFAR-100": 93.51, "tpu_core_days": 9900},
]  # fmt: skip
"""Fine-tuned top-1 accuracy (%) and pre-training cost (TPUv3-core-days)."""

IMAGENET_ONLY_SOURCE = Source(where="Table 5 (the ImageNet row); the class-2 slides quote it as 'Original'", **_VIT)
IMAGENET_ONLY: dict[str, float] = {"ViT-B/16": 77.91, "ViT-L/16": 76.53}
"""Top-1 accuracy (%) on ImageNet of ViTs pre-trained on ImageNet-1k only (no AugReg)."""
