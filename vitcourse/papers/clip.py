"""CLIP's numbers (Radford et al. 2021) as the course's slide copies them.

The slide reproduces the paper's table of CLIP-ViT hyper-parameters (appendix F) (learning rate,
joint embedding dimension, input resolution, and the width, depth and heads of each
tower). The book builds every row with :func:`vitcourse.models.create_model` (the
presets ``clip_vit_base_patch32``, …) and counts its parameters next to the table; the
counts are ours, computed, not the paper's (it prints none for these models).

Section 2.5 of the paper gives the training cost the slide quotes: the largest ResNet
(RN50x64) trained 18 days on 592 V100 GPUs, the largest ViT (ViT-L/14) 12 days on 256.
"""

from __future__ import annotations

from . import Source

__all__ = ["CLIP_SOURCE", "CLIP_TRAINING", "CLIP_TRAINING_SOURCE", "CLIP_VIT", "CLIP_VIT_SOURCE"]

CLIP_SOURCE = Source(
    authors="Radford et al.",
    year=2021,
    title="Learning Transferable Visual Models From Natural Language Supervision",
    where="",
    arxiv="2103.00020",
    bibkey="radford2021clip",
)

CLIP_VIT_SOURCE = Source(
    authors=CLIP_SOURCE.authors,
    year=CLIP_SOURCE.year,
    title=CLIP_SOURCE.title,
    where="Appendix F, the CLIP-ViT hyperparameters table, as on the course's slide",
    arxiv=CLIP_SOURCE.arxiv,
    bibkey=CLIP_SOURCE.bibkey,
)

#: One row per released CLIP-ViT, with the preset that builds it.
CLIP_VIT: list[dict] = [
    {"model": "ViT-B/32", "preset": "clip_vit_base_patch32", "learning_rate": 5e-4,
     "embed_dim": 512, "resolution": 224, "vision_layers": 12, "vision_width": 768,
     "vision_heads": 12, "text_layers": 12, "text_width": 512, "text_heads": 8},
    {"model": "ViT-B/16", "preset": "clip_vit_base_patch16", "learning_rate": 5e-4,
     "embed_dim": 512, "resolution": 224, "vision_layers": 12, "vision_width": 768,
     "vision_heads": 12, "text_layers": 12, "text_width": 512, "text_heads": 8},
    {"model": "ViT-L/14", "preset": "clip_vit_large_patch14", "learning_rate": 4e-4,
     "embed_dim": 768, "resolution": 224, "vision_layers": 24, "vision_width": 1024,
     "vision_heads": 16, "text_layers": 12, "text_width": 768, "text_heads": 12},
    {"model": "ViT-L/14-336px", "preset": "clip_vit_large_patch14_336", "learning_rate": 2e-5,
     "embed_dim": 768, "resolution": 336, "vision_layers": 24, "vision_width": 1024,
     "vision_heads": 16, "text_layers": 12, "text_width": 768, "text_heads": 12},
]

CLIP_TRAINING_SOURCE = Source(
    authors=CLIP_SOURCE.authors,
    year=CLIP_SOURCE.year,
    title=CLIP_SOURCE.title,
    where="Section 2.5 (Training)",
    arxiv=CLIP_SOURCE.arxiv,
    bibkey=CLIP_SOURCE.bibkey,
)

#: The training cost of the largest model of each kind.
CLIP_TRAINING: list[dict] = [
    {"model": "RN50x64", "days": 18, "gpus": 592, "gpu": "V100"},
    {"model": "ViT-L/14", "days": 12, "gpus": 256, "gpu": "V100"},
]
