"""DETR (Carion et al., 2020): detection as direct set prediction.

``image → backbone → 1×1 projection → encoder → decoder(N object queries) → heads``.
Each of the N decoder outputs becomes one prediction: a class among ``C + 1`` (the
last is *no object*, ∅) and a box ``(cx, cy, w, h)`` as fractions of the image. No
anchors, no non-maximum suppression: training matches the N predictions one-to-one
with the objects (:mod:`.matcher`) and the loss (:mod:`.loss`) punishes duplicates.

The parts live one per file, as in DETR's repository: :mod:`.backbone`,
:mod:`.position_encoding`, :mod:`.transformer`, :mod:`.matcher`, :mod:`.loss`; this
file composes them and registers the presets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..registry import register_model
from .backbone import Backbone
from .position_encoding import sine_position_encoding
from .transformer import DetrTransformer

__all__ = ["DETR", "DETRConfig", "MLPHead", "postprocess"]


@dataclass
class DETRConfig:
    """Hyper-parameters of a :class:`DETR`.

    Args:
        img_size: the image side the model is meant for (a CNN and the sine code
            take any size; kept for ``create_model(name, img_size=...)``).
        num_classes: object classes ``C`` (the head has ``C + 1`` outputs).
        backbone: ``"torchvision"`` or ``"vitcourse"`` (see :class:`.Backbone`).
        backbone_options: the body's arguments (``block``/``depths``/``widths`` or
            our ResNet's ``widths``/``depths``/``stem_stride``).
        backbone_pool: average-pool the backbone's map by this factor (fewer tokens).
        in_chans: image channels.
        pixel_mean, pixel_std: if set, the model standardises ``[0, 1]`` images itself
            (per channel) before the backbone; None: the caller does (Hugging Face's
            image processor, for instance).
        embed_dim: transformer width ``D`` (256 in DETR); a multiple of 4.
        num_heads: attention heads.
        enc_depth, dec_depth: encoder and decoder layers (6 and 6).
        mlp_dim: FFN hidden width (2048).
        num_queries: object queries ``N`` (100 for COCO): at most N detections.
        dropout: dropout rate (0.1).
        aux_loss: also return every earlier decoder layer's predictions.
        frozen_bn: freeze the backbone's batch norms.
    """

    img_size: int = 800
    num_classes: int = 91
    backbone: str = "torchvision"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    backbone_pool: int = 1
    in_chans: int = 3
    pixel_mean: tuple[float, ...] | None = None
    pixel_std: tuple[float, ...] | None = None
    embed_dim: int = 256
    num_heads: int = 8
    enc_depth: int = 6
    dec_depth: int = 6
    mlp_dim: int = 2048
    num_queries: int = 100
    dropout: float = 0.1
    aux_loss: bool = True
    frozen_bn: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.embed_dim % 4:
            problems.append(f"embed_dim must be a multiple of 4, got {self.embed_dim}")
        elif self.embed_dim % self.num_heads:
            problems.append(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.num_classes < 1 or self.num_queries < 1:
            problems.append(
                f"num_classes and num_queries must be >= 1, got {self.num_classes} and {self.num_queries}"
            )
        if problems:
            raise ValueError("invalid DETRConfig: " + "; ".join(problems))


class MLPHead(nn.Module):
    """DETR's box head: a small MLP with ReLU between layers (3 layers for boxes).

    Args:
        in_dim: input width.
        hidden_dim: width of the hidden layers.
        out_dim: output width (4 for a box).
        num_layers: number of linear layers.

    Shapes:
        ``(..., in_dim)`` → ``(..., out_dim)``.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 3) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class DETR(nn.Module):
    """The DEtection TRansformer.

    Args:
        config: the hyper-parameters (:class:`DETRConfig`).

    Shapes:
        images ``(B, C, H, W)`` (and an optional ``pixel_mask`` ``(B, H, W)``, True on
        image, False on padding) → a dict with ``pred_logits`` ``(B, N, C + 1)``,
        ``pred_boxes`` ``(B, N, 4)`` (``cx, cy, w, h`` in ``[0, 1]``) and, with
        ``aux_loss``, ``aux_outputs``: one such dict per earlier decoder layer.
    """

    def __init__(self, config: DETRConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.backbone = Backbone(
            c.backbone, c.backbone_options, c.in_chans, c.frozen_bn, c.backbone_pool
        )
        self.input_proj = nn.Conv2d(self.backbone.num_channels, c.embed_dim, kernel_size=1)
        self.query_embed = nn.Embedding(c.num_queries, c.embed_dim)
        self.transformer = DetrTransformer(
            c.embed_dim, c.num_heads, c.enc_depth, c.dec_depth, c.mlp_dim, c.dropout
        )
        self.class_embed = nn.Linear(c.embed_dim, c.num_classes + 1)
        self.bbox_embed = MLPHead(c.embed_dim, c.embed_dim, 4, num_layers=3)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Xavier-uniform for the transformer's matrices, as DETR; the backbone keeps its own."""
        for module in (self.transformer, self.input_proj):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    def forward_backbone(
        self, images: torch.Tensor, pixel_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardise (if configured) and run the CNN: ``(features (B, C, h, w), valid (B, h, w))``."""
        c = self.config
        if c.pixel_mean is not None:
            mean = images.new_tensor(c.pixel_mean)[:, None, None]
            std = images.new_tensor(c.pixel_std)[:, None, None]
            images = (images - mean) / std
        return self.backbone(images, pixel_mask)

    def forward_features(
        self, features: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The encoder's input from the CNN's map: projection to ``D`` and positions.

        Returns:
            ``(src, pos, valid)``: tokens ``(B, h·w, D)``, their sine positions
            ``(B, h·w, D)`` and which are image ``(B, h·w)``.
        """
        src = self.input_proj(features).flatten(2).transpose(1, 2)  # (B, h·w, D)
        pos = sine_position_encoding(valid, self.config.embed_dim).to(src.dtype)
        pos = pos.flatten(2).transpose(1, 2)  # (B, h·w, D)
        return src, pos, valid.flatten(1)

    def predict(self, hs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The heads on decoder outputs ``(..., N, D)``: class logits and boxes."""
        return {
            "pred_logits": self.class_embed(hs),  # (..., N, C + 1)
            "pred_boxes": self.bbox_embed(hs).sigmoid(),  # (..., N, 4) in [0, 1]
        }

    def forward_queries(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Encoder and decoder on the CNN's map: every decoder layer's N outputs ``(L, B, N, D)``."""
        src, pos, valid = self.forward_features(features, valid)
        hs, _ = self.transformer(src, pos, self.query_embed.weight, valid)  # (L, B, N, D)
        return hs

    def forward_head(
        self, features: torch.Tensor, valid: torch.Tensor
    ) -> dict[str, Any]:
        """Everything after the CNN (training on cached features calls this alone)."""
        hs = self.forward_queries(features, valid)  # (L, B, N, D)
        out = self.predict(hs[-1])
        if self.config.aux_loss:
            out["aux_outputs"] = [self.predict(h) for h in hs[:-1]]
        return out

    def forward(
        self, images: torch.Tensor, pixel_mask: torch.Tensor | None = None
    ) -> dict[str, Any]:
        """Detect (see the class docstring)."""
        return self.forward_head(*self.forward_backbone(images, pixel_mask))


# -- presets ----------------------------------------------------------------------


@register_model(DETR)
def detr_resnet50() -> DETRConfig:
    """DETR as published: torchvision's ResNet-50, D=256, 6+6 layers, 100 queries, COCO's 91 ids (41.5 M parameters)."""
    return DETRConfig(backbone="torchvision", backbone_options={"block": "bottleneck", "depths": (3, 4, 6, 3)})


@register_model(DETR)
def detr_mini() -> DETRConfig:
    """A CPU-sized DETR for the 64 px generated shapes: ``resnet_tiny``'s body (stride 4, pooled to 8), D=64, 2+3 layers, 10 queries."""
    from ...data.datasets import SHAPES_MEAN, SHAPES_STD

    return DETRConfig(
        img_size=64,
        num_classes=8,
        backbone="vitcourse",
        backbone_options={"widths": (32, 64, 128), "depths": (2, 2, 2), "stem_stride": 1},
        backbone_pool=2,
        pixel_mean=SHAPES_MEAN,
        pixel_std=SHAPES_STD,
        embed_dim=64,
        num_heads=4,
        enc_depth=2,
        dec_depth=3,
        mlp_dim=256,
        num_queries=10,
        dropout=0.0,
    )

def postprocess(
    outputs: dict[str, torch.Tensor], sizes: Sequence[tuple[int, int]], threshold: float = 0.0
) -> list[dict[str, torch.Tensor]]:
    """DETR's outputs → per image, boxes in pixels with a score and a class.

    Each query gives one detection: its most likely class other than ∅, with that
    class's probability as the score. No NMS: the set loss taught the queries not to
    repeat each other.

    Args:
        outputs: ``pred_logits`` ``(B, N, C + 1)`` and ``pred_boxes`` ``(B, N, 4)``.
        sizes: ``(H, W)`` of each image, for the pixel boxes.
        threshold: keep detections scoring at least this (0: all N, as COCO's AP wants).

    Returns:
        B dicts with ``boxes`` ``(K, 4)`` xyxy pixels, ``scores`` ``(K,)``, ``labels``
        ``(K,)``, highest score first.
    """
    from ...detection.boxes import denormalize_boxes

    prob = outputs["pred_logits"].softmax(-1)[..., :-1]  # (B, N, C): ∅ dropped
    scores, labels = prob.max(-1)  # (B, N)
    results = []
    for b, size in enumerate(sizes):
        keep = scores[b] >= threshold
        order = scores[b][keep].argsort(descending=True)
        boxes = denormalize_boxes(outputs["pred_boxes"][b][keep], size)
        results.append(
            {"boxes": boxes[order], "scores": scores[b][keep][order], "labels": labels[b][keep][order]}
        )
    return results
