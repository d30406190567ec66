"""The Hungarian matcher: which prediction answers for which object.

DETR predicts a *set* of N boxes; the image has M ≤ N objects. Before any loss can
be computed, each object needs exactly one prediction to answer for it, and the
rest answer for "no object". DETR picks the one-to-one assignment σ of least total
cost,

    σ̂ = argmin_σ Σᵢ L_match(yᵢ, ŷ_σ(i)),
    L_match = −λ_class · p̂_σ(i)(cᵢ) + λ_L1 · ‖bᵢ − b̂_σ(i)‖₁ − λ_GIoU · GIoU(bᵢ, b̂_σ(i)),

a linear assignment problem that the Hungarian algorithm solves exactly in
polynomial time (``scipy.optimize.linear_sum_assignment``). The class term is the
predicted probability, not its log (DETR's choice: it puts the three terms on
comparable scales). Matching is bookkeeping, not learning: no gradient flows
through it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from scipy.optimize import linear_sum_assignment

from ...detection.boxes import cxcywh_to_xyxy, generalized_box_iou

__all__ = ["HungarianMatcher"]


class HungarianMatcher:
    """One-to-one assignment of predictions to objects, per image.

    Args:
        cost_class: weight λ_class of the class-probability term.
        cost_bbox: weight λ_L1 of the L1 distance between ``cxcywh`` boxes.
        cost_giou: weight λ_GIoU of the (negated) generalised IoU.

    Call:
        ``matcher(outputs, targets)`` with ``outputs["pred_logits"]`` ``(B, N, C + 1)``,
        ``outputs["pred_boxes"]`` ``(B, N, 4)`` and ``targets`` a list of B dicts with
        ``labels`` ``(M_b,)`` and ``boxes`` ``(M_b, 4)`` (``cxcywh`` in ``[0, 1]``).

    Returns:
        A list of B pairs ``(pred_indices, target_indices)``, int64 tensors of length
        ``min(N, M_b)``: prediction ``pred_indices[j]`` answers for object
        ``target_indices[j]`` (sorted by prediction).
    """

    def __init__(self, cost_class: float = 1.0, cost_bbox: float = 5.0, cost_giou: float = 2.0) -> None:
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("at least one of cost_class, cost_bbox, cost_giou must be non-zero")
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    def __repr__(self) -> str:
        return (
            f"HungarianMatcher(cost_class={self.cost_class}, cost_bbox={self.cost_bbox}, "
            f"cost_giou={self.cost_giou})"
        )

    def class_cost(self, logits: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(N, M)``: minus the probability each prediction gives each object's class."""
        prob = logits.float().softmax(-1)  # (N, C + 1)
        return -prob[:, target["labels"]]  # likelier class, cheaper

    @torch.no_grad()
    def cost_matrix(
        self, logits: torch.Tensor, boxes: torch.Tensor, target: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The ``(N, M)`` matching cost of one image's predictions against its objects.

        Args:
            logits: ``(N, C + 1)`` class logits.
            boxes: ``(N, 4)`` predicted ``cxcywh`` boxes.
            target: ``labels`` ``(M,)`` and ``boxes`` ``(M, 4)`` ``cxcywh``.
        """
        boxes, target_boxes = boxes.float(), target["boxes"].float()
        cost_bbox = torch.cdist(boxes, target_boxes, p=1)  # (N, M) L1 distances
        giou = generalized_box_iou(cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(target_boxes))
        cost_class = self.class_cost(logits, target)
        return (
            self.cost_bbox * cost_bbox
            + self.cost_class * cost_class
            - self.cost_giou * giou
        )

    @torch.no_grad()
    def __call__(
        self, outputs: dict[str, torch.Tensor], targets: Sequence[dict[str, torch.Tensor]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        logits, boxes = outputs["pred_logits"], outputs["pred_boxes"]  # (B, N, ·)
        B, N = logits.shape[:2]
        if B != len(targets):
            raise ValueError(f"{B} images of predictions but {len(targets)} targets")
        # One cost matrix for the whole batch, (B·N, ΣM), as DETR computes it; only each
        # image's diagonal block is used (its predictions against its own objects).
        keys = [k for k in ("labels", "boxes", "positive") if k in targets[0]]
        merged = {k: torch.cat([t[k] for t in targets]) for k in keys}
        cost = self.cost_matrix(logits.flatten(0, 1), boxes.flatten(0, 1), merged)
        blocks = cost.view(B, N, -1).cpu().split([len(t["boxes"]) for t in targets], dim=-1)
        indices = []
        for b, block in enumerate(blocks):
            rows, cols = linear_sum_assignment(block[b].numpy())  # empty target: nothing
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices
