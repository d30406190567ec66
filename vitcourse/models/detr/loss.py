"""DETR's set loss: once predictions are matched to objects, a loss per pair.

With σ̂ from the :class:`~.matcher.HungarianMatcher`, the Hungarian loss is

    L = Σᵢ [ −log p̂_σ̂(i)(cᵢ) + 1{cᵢ ≠ ∅} (λ_L1 ‖bᵢ − b̂_σ̂(i)‖₁ + λ_GIoU (1 − GIoU(bᵢ, b̂_σ̂(i)))) ]

* **classes**: cross-entropy over all N predictions; the unmatched ones must say
  ∅ ("no object"), whose term is down-weighted (``eos_coef = 0.1``) because it is
  the answer for most of the N slots and would otherwise drown the rest;
* **boxes**: only for matched predictions, L1 on ``cxcywh`` plus ``1 − GIoU``
  (``torchvision.ops.generalized_box_iou_loss``), both averaged over the objects of
  the batch;
* **auxiliary losses**: the same loss on every earlier decoder layer's
  predictions, each with its own matching, so every layer learns to detect.

Duplicates cost something: a second prediction on an already-claimed object is
unmatched, so it is pushed towards ∅. That is why DETR needs no NMS.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import generalized_box_iou_loss

from ...detection.boxes import cxcywh_to_xyxy
from .matcher import HungarianMatcher

__all__ = ["SetCriterion"]


class SetCriterion(nn.Module):
    """DETR's loss: Hungarian matching, then CE + L1 + GIoU, on every decoder layer.

    Args:
        num_classes: object classes ``C`` (class index ``C`` is ∅).
        matcher: the :class:`~.matcher.HungarianMatcher` (its default costs 1, 5, 2).
        eos_coef: weight of the ∅ class in the cross-entropy (0.1).
        weight_ce, weight_bbox, weight_giou: weights of the three terms (1, 5, 2).

    Call:
        ``criterion(outputs, targets)`` with DETR's outputs and targets as for the
        matcher.

    Returns:
        A dict of scalar losses: ``loss_ce``, ``loss_bbox``, ``loss_giou`` (last
        layer), the same with suffixes ``_0``, ``_1``… for the auxiliary layers,
        and ``loss``, their weighted sum (what to back-propagate).
    """

    def __init__(
        self,
        num_classes: int,
        matcher: HungarianMatcher | None = None,
        eos_coef: float = 0.1,
        weight_ce: float = 1.0,
        weight_bbox: float = 5.0,
        weight_giou: float = 2.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher or HungarianMatcher()
        self.weights = {"loss_ce": weight_ce, "loss_bbox": weight_bbox, "loss_giou": weight_giou}
        class_weight = torch.ones(num_classes + 1)
        class_weight[-1] = eos_coef  # the "no object" class
        self.register_buffer("class_weight", class_weight)

    def loss_classes(
        self,
        logits: torch.Tensor,
        targets: Sequence[dict],
        indices: list,
        num_boxes: float,
    ) -> torch.Tensor:
        """Cross-entropy over all N slots: matched ones say their object's class, the
        rest ∅.
        """
        B, N = logits.shape[:2]
        # all "no object"
        wanted = torch.full((B, N), self.num_classes, device=logits.device)
        for b, (pred, tgt) in enumerate(indices):
            wanted[b, pred] = targets[b]["labels"][tgt].to(logits.device)
        return F.cross_entropy(logits.transpose(1, 2), wanted, self.class_weight)

    def loss_boxes(
        self,
        boxes: torch.Tensor,
        targets: Sequence[dict],
        indices: list,
        num_boxes: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """L1 and 1 − GIoU of the matched slots only, averaged over the batch's objects.
        """
        # (K, 4)
        src = torch.cat([boxes[b, pred] for b, (pred, _) in enumerate(indices)])
        tgt = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)]).to(src)
        l1 = F.l1_loss(src, tgt, reduction="sum")
        giou = generalized_box_iou_loss(
            cxcywh_to_xyxy(src), cxcywh_to_xyxy(tgt), reduction="sum"
        )
        return l1 / num_boxes, giou / num_boxes

    def single_layer(
        self,
        outputs: dict[str, torch.Tensor],
        targets: Sequence[dict[str, torch.Tensor]],
        num_boxes: float,
    ) -> dict[str, torch.Tensor]:
        """Match, then the three terms, for one decoder layer's predictions."""
        indices = self.matcher(outputs, targets)  # per image: (slots, objects)
        loss_ce = self.loss_classes(outputs["pred_logits"], targets, indices, num_boxes)
        loss_bbox, loss_giou = self.loss_boxes(outputs["pred_boxes"], targets, indices, num_boxes)
        return {"loss_ce": loss_ce, "loss_bbox": loss_bbox, "loss_giou": loss_giou}

    def forward(
        self, outputs: dict, targets: Sequence[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """The set loss (see the class docstring)."""
        num_boxes = max(sum(len(t["labels"]) for t in targets), 1)
        losses = self.single_layer(outputs, targets, num_boxes)
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            layer = self.single_layer(aux, targets, num_boxes)
            losses.update({f"{k}_{i}": v for k, v in layer.items()})
        losses["loss"] = sum(
            self.weights[name.rsplit("_", 1)[0] if name[-1].isdigit() else name] * value
            for name, value in losses.items()
        )
        return losses
