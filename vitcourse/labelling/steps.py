"""The auto-labelling pipeline one step at a time: TP5's reference implementations.

:func:`~vitcourse.labelling.label_images` does everything in one call; TP5 asks for each
step on its own, and these are the answers its checks compare with:

* :func:`select_boxes`: a text-prompted detector's raw outputs (every query's box, in
  ``cx, cy, w, h`` normalised to ``[0, 1]``, and its phrase probabilities) → the named
  boxes, in pixel corners ``x0, y0, x1, y1``, best first (Grounding DINO's
  post-processing with its two thresholds);
* :class:`SamBoxPredictor` / :class:`Sam2BoxPredictor`: SAM (ours) or SAM 2 (Hugging
  Face) behind segment-anything's ``SamPredictor`` calls: ``set_image`` once,
  ``predict_logits`` per batch of boxes; :func:`masks_from_boxes` uses them;
* :func:`box_ap50_per_class`: AP at IoU 0.5 per class of the boxes of two COCO data
  sets (``pycocotools``);
* :func:`match_counts` and :func:`threshold_sweep`: precision, recall and AP50 for
  every pair of box and text thresholds; :func:`choose_operating_point`: the
  thresholds with the highest recall at a least precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "Sam2BoxPredictor",
    "SamBoxPredictor",
    "box_ap50_per_class",
    "choose_operating_point",
    "detector_outputs",
    "masks_from_boxes",
    "match_counts",
    "select_boxes",
    "threshold_sweep",
]


def detector_outputs(images, phrases: Sequence[str], detector=None) -> list[dict[str, torch.Tensor]]:
    """The detector's raw outputs, before any threshold, one dict per image.

    Args:
        images: ``(N, 3, H, W)`` in ``[0, 1]`` (or a list of ``(3, H, W)``).
        phrases: one phrase per class.
        detector: from :func:`vitcourse.detection.load_detector` (default: the profile's).

    Returns:
        Per image ``{"boxes": (Q, 4) cx, cy, w, h in [0, 1], "probs": (Q, P)}``.
    """
    from ..detection import load_detector
    from ..detection.detect import _as_batch

    detector = detector or load_detector()
    out = []
    for image in _as_batch(images):
        boxes, probs = detector.outputs(image, list(phrases))
        out.append({"boxes": boxes.detach().cpu(), "probs": probs.detach().cpu()})
    return out


def select_boxes(
    outputs: dict, image_size: tuple[int, int], box_threshold: float, text_threshold: float
) -> dict[str, torch.Tensor]:
    """Raw detector outputs → the named boxes of one image, in pixels, best first.

    A query is kept when its best phrase probability (its score) is at least
    ``box_threshold``, and named by that phrase when it is at least
    ``text_threshold``; unnamed boxes are dropped (a data set needs a class).

    Args:
        outputs: ``{"boxes": (Q, 4) cx, cy, w, h in [0, 1], "probs": (Q, P)}``.
        image_size: ``(H, W)`` in pixels.

    Returns:
        ``{"boxes": (K, 4) x0, y0, x1, y1 pixels, "scores": (K,), "labels": (K,)}``,
        by descending score; ``labels`` index the phrases.
    """
    from ..detection.boxes import denormalize_boxes
    from ..detection.detect import _select

    P = outputs["probs"].shape[-1]
    found = _select(
        denormalize_boxes(outputs["boxes"], tuple(image_size)), outputs["probs"], [""] * P,
        box_threshold, text_threshold,
    )  # fmt: skip
    named = found.labels >= 0
    return {"boxes": found.boxes[named], "scores": found.scores[named], "labels": found.labels[named]}


class SamBoxPredictor:
    """Our SAM behind ``SamPredictor``'s calls: encode an image once, then ask with boxes.

    Args:
        sam: a :class:`~vitcourse.models.Sam`.
        prepare: turns ``(1, 3, S, S)`` images in ``[0, 1]`` into SAM's input.
    """

    def __init__(self, sam: torch.nn.Module, prepare) -> None:
        self.sam, self.prepare, self.embedding = sam.eval(), prepare, None

    @torch.no_grad()
    def set_image(self, image: torch.Tensor) -> None:
        """Encode one ``(3, S, S)`` image (the expensive part, once per image)."""
        size = self.sam.config.img_size
        if tuple(image.shape[-2:]) != (size, size):
            raise ValueError(f"this SAM takes {size}x{size} images, got {tuple(image.shape[-2:])}; resize it first")
        self.embedding = self.sam.encode_image(self.prepare(image[None]))

    @torch.no_grad()
    def predict_logits(self, boxes: torch.Tensor, multimask_output: bool = False) -> torch.Tensor:
        """Mask logits for ``(K, 4)`` boxes whose corners are the first and last pixel inside.

        Returns:
            ``(K, M, H, W)`` logits at the image's size (``M`` = 3 or 1); a pixel is in
            the mask where its logit is above 0.
        """
        if self.embedding is None:
            raise RuntimeError("call set_image(image) before predict_logits(boxes)")
        logits, _ = self.sam.predict(self.embedding, boxes=boxes.float()[None], multimask_output=multimask_output)
        return self.sam.upscale(logits)[0]


class Sam2BoxPredictor:
    """Hugging Face's SAM 2 (``Sam2Model`` + its processor) behind the same two calls.

    Args:
        model, processor: e.g. ``load_pretrained("facebook/sam2.1-hiera-tiny")`` and its
            processor.
    """

    def __init__(self, model: torch.nn.Module, processor) -> None:
        self.model, self.processor, self.inputs, self.embeddings = model.eval(), processor, None, None

    @torch.no_grad()
    def set_image(self, image: torch.Tensor) -> None:
        """Encode one ``(3, H, W)`` image in ``[0, 1]``."""
        pixels = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        device = next(self.model.parameters()).device
        inputs = self.processor(images=pixels, return_tensors="pt").to(device)
        self.inputs = inputs
        self.embeddings = self.model.get_image_embeddings(inputs["pixel_values"])

    @torch.no_grad()
    def predict_logits(self, boxes: torch.Tensor, multimask_output: bool = False) -> torch.Tensor:
        """Mask logits ``(K, M, H, W)`` at the image's size for ``(K, 4)`` pixel boxes."""
        if self.inputs is None:
            raise RuntimeError("call set_image(image) before predict_logits(boxes)")
        H, W = (int(v) for v in self.inputs["original_sizes"][0])
        if len(boxes) == 0:
            return torch.zeros(0, 3 if multimask_output else 1, H, W)
        device = next(self.model.parameters()).device
        prompt = self.processor(
            images=None, input_boxes=[[b.tolist() for b in boxes.float()]],
            original_sizes=self.inputs["original_sizes"], return_tensors="pt",
        ).to(device)  # fmt: skip
        out = self.model(
            image_embeddings=self.embeddings, input_boxes=prompt["input_boxes"], multimask_output=multimask_output
        )
        logits = self.processor.post_process_masks(
            out.pred_masks.cpu(), self.inputs["original_sizes"].cpu(), binarize=False
        )[0]
        return logits.float()


def masks_from_boxes(predictor, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """One mask per detector box: encode the image once, ask with every box at once.

    Args:
        predictor: :class:`SamBoxPredictor` or :class:`Sam2BoxPredictor`.
        image: ``(3, H, W)`` in ``[0, 1]``.
        boxes: ``(K, 4)`` a detector's ``x0, y0, x1, y1``: ``x1, y1`` one past the
            last pixel.

    Returns:
        ``(K, H, W)`` bool.
    """
    H, W = image.shape[-2:]
    if len(boxes) == 0:
        return torch.zeros(0, H, W, dtype=torch.bool)
    predictor.set_image(image)
    # a detector's x1, y1 lie one past the last pixel; SAM's name the last pixel
    corners = boxes.float() - torch.tensor([0.0, 0.0, 1.0, 1.0])
    corners = torch.minimum(corners.clamp(min=0), torch.tensor([W - 1.0, H - 1.0, W - 1.0, H - 1.0]))
    logits = predictor.predict_logits(corners, multimask_output=False)  # (K, 1, H, W)
    return logits[:, 0] > 0


def box_ap50_per_class(reference: dict, predicted: dict) -> dict[str, float]:
    """AP at IoU 0.5 per class of the boxes (``pycocotools``; NaN for a class absent from the reference)."""
    from .pipeline import _ap50_per_class

    return _ap50_per_class(reference, predicted, "bbox")


def _xyxy(annotations: list[dict]) -> np.ndarray:
    boxes = np.array([a["bbox"] for a in annotations], dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def match_counts(reference: dict, predicted: dict, iou_threshold: float = 0.5) -> dict[str, int]:
    """True positives as COCO matches them: per image and class, best score first, each
    prediction takes the free reference box of highest IoU ≥ the threshold.

    Returns:
        ``{"correct": TP, "predicted": …, "reference": …}`` (precision = correct /
        predicted, recall = correct / reference).
    """
    from ..detection.ap import match_image

    def grouped(dataset):
        groups: dict[tuple[int, int], list[dict]] = {}
        for a in dataset["annotations"]:
            groups.setdefault((a["image_id"], a["category_id"]), []).append(a)
        return groups

    references, predictions = grouped(reference), grouped(predicted)
    correct = 0
    for key, found in predictions.items():
        scores = np.array([a.get("score", 1.0) for a in found], dtype=np.float64)
        _, hits, _ = match_image(_xyxy(found), scores, _xyxy(references.get(key, [])), iou_threshold)
        correct += int(hits.sum())
    return {"correct": correct, "predicted": len(predicted["annotations"]), "reference": len(reference["annotations"])}


def threshold_sweep(
    candidates: Sequence[Sequence[dict]],
    reference: dict,
    box_thresholds: Sequence[float],
    text_thresholds: Sequence[float],
) -> list[dict]:
    """Precision, recall and AP50 of the boxes for every pair of thresholds.

    Args:
        candidates: per image, labelled rows (``label``, ``score``, ``box``, ``mask``)
            found at thresholds no higher than any of the sweep's.
        reference: the reference COCO data set (its ``images`` and ``categories`` are
            used for the predictions too).
        box_thresholds, text_thresholds: the grid.

    Returns:
        One dict per pair, box threshold outer: ``box_threshold``, ``text_threshold``,
        ``predicted``, ``precision``, ``recall``, ``ap50`` (mean over the classes the
        reference has).
    """
    from .pipeline import to_coco

    categories = [c["name"] for c in reference["categories"]]
    sizes = [(image["height"], image["width"]) for image in reference["images"]]
    rows = []
    for box_threshold in box_thresholds:
        for text_threshold in text_thresholds:
            kept = [[r for r in image if r["score"] >= box_threshold and r["score"] >= text_threshold]
                    for image in candidates]  # fmt: skip
            predicted = to_coco(kept, categories, sizes)
            counts = match_counts(reference, predicted)
            ap = [v for v in box_ap50_per_class(reference, predicted).values() if not np.isnan(v)]
            rows.append({
                "box_threshold": float(box_threshold),
                "text_threshold": float(text_threshold),
                "predicted": counts["predicted"],
                "precision": counts["correct"] / max(counts["predicted"], 1),
                "recall": counts["correct"] / max(counts["reference"], 1),
                "ap50": float(np.mean(ap)) if ap else 0.0,
            })  # fmt: skip
    return rows


def choose_operating_point(sweep: Sequence[dict], min_precision: float) -> dict:
    """The row with the highest recall among those with precision ≥ ``min_precision``
    (ties: the higher AP50, then the higher thresholds: fewer boxes to review).

    Raises:
        ValueError: no row reaches that precision.
    """
    eligible = [row for row in sweep if row["precision"] >= min_precision]
    if not eligible:
        best = max(row["precision"] for row in sweep)
        raise ValueError(f"no threshold pair reaches precision {min_precision}; the best is {best:.3f}")
    return max(eligible, key=lambda r: (r["recall"], r["ap50"], r["box_threshold"], r["text_threshold"]))
