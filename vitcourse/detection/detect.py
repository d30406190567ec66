"""``detect(images, prompts, box_threshold, text_threshold)``: boxes for what a text asks for.

One call, two models behind it:

* ``smoke`` (and by default offline): the mini text-prompted DETR this project trains
  on the generated world (``grounding_shapes``, Spanish phrases of shapes and colours);
* ``full``: ``IDEA-Research/grounding-dino-tiny`` at its pinned revision (English
  phrases, any object), through Hugging Face's processor.

The two thresholds are Grounding DINO's:

* ``box_threshold``: a query becomes a detection if its best phrase probability is
  at least this (its ``score``);
* ``text_threshold``: the detection is named by its best phrase only if that
  phrase's probability is at least this; otherwise its phrase is ``""`` (found
  something the prompt is about, but not sure which part).

Chapter 6 labels images with this call: text → boxes → SAM masks → a data set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .boxes import denormalize_boxes

__all__ = ["Detections", "GroundingDinoDetector", "MiniGroundingDetector", "detect", "load_detector", "split_prompt"]


def split_prompt(prompt: str | Sequence[str]) -> list[str]:
    """``"un círculo. una estrella."`` or ``["un círculo", "una estrella"]`` → the list of phrases."""
    phrases = re.split(r"\s*\.\s*", prompt) if isinstance(prompt, str) else list(prompt)
    phrases = [p.strip() for p in phrases if p and p.strip()]
    if not phrases:
        raise ValueError(f"the prompt has no phrase: {prompt!r}; pass e.g. 'círculo rojo. estrella.'")
    return phrases


@dataclass
class Detections:
    """One image's detections.

    Attributes:
        boxes: ``(K, 4)`` xyxy pixels of the input image.
        scores: ``(K,)`` the best phrase probability of each box (≥ ``box_threshold``).
        phrases: K strings, each box's best phrase, or ``""`` below ``text_threshold``.
        labels: ``(K,)`` index of that phrase in the prompt, −1 for ``""``.
        phrase_scores: ``(K, P)`` every phrase's probability for every box.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    phrases: list[str]
    labels: torch.Tensor
    phrase_scores: torch.Tensor

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, key: str) -> Any:  # dict-style access, as Hugging Face's post-processing
        return getattr(self, key)


def _select(
    boxes: torch.Tensor,
    probs: torch.Tensor,
    phrases: Sequence[str],
    box_threshold: float,
    text_threshold: float,
) -> Detections:
    """Apply both thresholds to boxes ``(N, 4)`` and phrase probabilities ``(N, P)``."""
    scores, best = probs.max(-1)  # (N,): each query's best phrase
    keep = (scores >= box_threshold).nonzero().flatten()
    keep = keep[scores[keep].argsort(descending=True)]  # highest score first
    scores, best, boxes, probs = scores[keep], best[keep], boxes[keep], probs[keep]
    named = scores >= text_threshold  # sure enough of the phrase to say it
    labels = torch.where(named, best, torch.full_like(best, -1))
    phrase_texts = [phrases[i] if i >= 0 else "" for i in labels.tolist()]
    return Detections(boxes, scores, phrase_texts, labels, probs)


def _as_batch(images) -> list[torch.Tensor]:
    """A ``(B, 3, H, W)`` tensor, a list of ``(3, H, W)`` tensors or of PIL images → list of ``(3, H, W)`` in [0, 1]."""
    if isinstance(images, torch.Tensor):
        images = list(images) if images.ndim == 4 else [images]
    out = []
    for image in images:
        if not isinstance(image, torch.Tensor):  # PIL or NumPy (H, W, 3)
            import numpy as np

            array = np.asarray(image, dtype=np.float32)
            image = torch.from_numpy(array / (255.0 if array.max() > 1 else 1.0)).permute(2, 0, 1)
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"expected RGB images shaped (3, H, W), got {tuple(image.shape)}")
        out.append(image.float())
    return out


class _ThresholdedDetector:
    """What both detectors share: each image's raw :meth:`outputs`, then the two thresholds."""

    def outputs(self, image: torch.Tensor, phrases: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __call__(self, images: list[torch.Tensor], prompts: list[list[str]], box_threshold: float,
                 text_threshold: float) -> list[Detections]:  # fmt: skip
        results = []
        for image, phrases in zip(images, prompts):
            boxes, probs = self.outputs(image, phrases)
            boxes = denormalize_boxes(boxes, tuple(image.shape[-2:]))
            results.append(_select(boxes, probs, phrases, box_threshold, text_threshold))
        return results


class MiniGroundingDetector(_ThresholdedDetector):
    """Our :class:`~vitcourse.models.detr.GroundingDETR` behind ``detect``: resize, score, scale back.

    Args:
        model: a trained ``GroundingDETR`` (default: the shipped ``grounding_shapes``).
    """

    def __init__(self, model: nn.Module | None = None) -> None:
        if model is None:
            from .. import checkpoints

            model = checkpoints.load("grounding_shapes")
        self.model = model.eval()
        self.size = int(model.config.img_size)

    @torch.no_grad()
    def outputs(self, image: torch.Tensor, phrases: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw outputs for one ``(3, H, W)`` image: every query's box ``(N, 4)``
        (cx, cy, w, h in ``[0, 1]``) and phrase probabilities ``(N, P)``, before any threshold."""
        x = F.interpolate(image[None], size=(self.size, self.size), mode="bilinear", antialias=True)
        out = self.model(x.clamp(0, 1), phrases)
        return out["pred_boxes"][0], out["pred_logits"][0].sigmoid()


class GroundingDinoDetector(_ThresholdedDetector):
    """Hugging Face's Grounding DINO behind ``detect`` (the Hub model, or the tiny offline twin).

    Args:
        model, processor: from :func:`vitcourse.hub.grounding_dino.load_grounding_dino`.
    """

    def __init__(self, model: nn.Module, processor: Any) -> None:
        self.model, self.processor = model.eval(), processor

    @torch.no_grad()
    def outputs(self, image: torch.Tensor, phrases: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw outputs for one ``(3, H, W)`` image: every query's box ``(N, 4)``
        (cx, cy, w, h in ``[0, 1]``) and phrase probabilities ``(N, P)``, before any threshold."""
        text = ". ".join(p.lower() for p in phrases) + "."
        pixels = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        inputs = self.processor(images=[pixels], text=[text], return_tensors="pt")
        inputs = {k: v.to(next(self.model.parameters()).device) for k, v in inputs.items()}
        out = self.model(**inputs)
        probs = self._phrase_probs(out.logits[0].sigmoid().cpu(), inputs["input_ids"][0].cpu())  # (N, P)
        return out.pred_boxes[0].cpu(), probs

    def _phrase_probs(self, token_probs: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Per-token probabilities ``(N, T)`` → per-phrase ``(N, P)``: the best token of each phrase's span."""
        tokenizer = self.processor.tokenizer
        separators = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.convert_tokens_to_ids(".")}
        spans, current = [], []
        for t, token in enumerate(input_ids.tolist()):
            if token in separators:
                if current:
                    spans.append(current)
                current = []
            else:
                current.append(t)
        columns = [token_probs[:, span].max(-1).values for span in spans]
        return torch.stack(columns, -1) if columns else token_probs[:, :0]


def load_detector(profile: str = "auto", backend: str = "auto") -> MiniGroundingDetector | GroundingDinoDetector:
    """The detector ``detect`` uses.

    Args:
        profile: ``"smoke"``, ``"full"`` or ``"auto"``.
        backend: ``"mini"`` (ours), ``"grounding-dino"`` (Hugging Face's; the tiny random
            twin when the Hub can't be used) or ``"auto"`` (Grounding DINO in ``full``,
            ours otherwise).
    """
    from ..runtime import resolve_profile

    profile = resolve_profile(profile)
    if backend == "auto":
        backend = "grounding-dino" if profile == "full" else "mini"
    if backend == "mini":
        return MiniGroundingDetector()
    if backend == "grounding-dino":
        from ..hub.grounding_dino import load_grounding_dino
        from .phrases import vocabulary

        return GroundingDinoDetector(*load_grounding_dino(profile, vocabulary()))
    raise ValueError(f"backend must be 'auto', 'mini' or 'grounding-dino', got {backend!r}")


def detect(
    images,
    prompts: str | Sequence[str] | Sequence[Sequence[str]],
    box_threshold: float = 0.35,
    text_threshold: float = 0.25,
    detector: MiniGroundingDetector | GroundingDinoDetector | None = None,
) -> list[Detections]:
    """Find what the prompts describe, image by image.

    Args:
        images: ``(B, 3, H, W)`` in ``[0, 1]``, or a list of ``(3, H, W)`` tensors or PIL images.
        prompts: one prompt for every image (``"círculo rojo. estrella."`` or a list of
            phrases) or one per image (a list of such).
        box_threshold: least best-phrase probability of a detection.
        text_threshold: least probability for a detection to be named by its phrase.
        detector: from :func:`load_detector` (default: the profile's).

    Returns:
        One :class:`Detections` per image (``boxes``, ``scores``, ``phrases``, ``labels``).
    """
    batch = _as_batch(images)
    if isinstance(prompts, str) or (len(prompts) and isinstance(prompts[0], str)):
        per_image = [split_prompt(prompts)] * len(batch)
    else:
        per_image = [split_prompt(p) for p in prompts]
    if len(per_image) != len(batch):
        raise ValueError(f"got {len(batch)} images but {len(per_image)} prompts; pass one prompt or one per image")
    detector = detector or load_detector()
    return detector(batch, per_image, box_threshold, text_threshold)
