"""Tracking a video with SAM 2, one frame at a time.

:class:`VideoPredictor` is the streaming interface: give it frames as they arrive (a
camera, a long file), with a prompt on any of them, and it answers each with a mask
before it sees the next; only the memory bank is carried from frame to frame.
:func:`track_video` is the same loop over a whole clip whose frames are encoded in one
batch (the image encoder does not depend on the memory, so that is allowed, and
faster): both give the same masks.

Prompts are a dict ``{frame: {"points": (B, N, 2), "labels": (B, N)}}`` or with
``"boxes": (B, 4)``, in pixels.
"""

from __future__ import annotations

import torch

from .sam2 import FrameOutput, Sam2

__all__ = ["VideoPredictor", "track_video"]


def _check_frames(frames: torch.Tensor, size: int, what: str) -> None:
    if frames.ndim != 4 or frames.shape[1] != 3 or frames.shape[-2:] != (size, size):
        raise ValueError(
            f"expected {what} shaped (B, 3, {size}, {size}) with values in [0, 1], got "
            f"{tuple(frames.shape)}; resize the frames to the model's img_size first"
        )


class VideoPredictor:
    """Streaming SAM 2: :meth:`step` one frame, get its mask.

    Args:
        model: a :class:`Sam2`.
        use_memory: read the bank (True) or segment every frame alone from its prompt
            (False: the ablation; unprompted frames then see only "no memory").

    Example::

        predictor = VideoPredictor(model)
        out = predictor.step(frame0, points=click, labels=torch.ones(1, 1))
        for frame in rest:
            out = predictor.step(frame)          # out.mask_logits (1, 1, 4g, 4g)
    """

    def __init__(self, model: Sam2, use_memory: bool = True) -> None:
        self.model = model
        self.use_memory = use_memory
        self.bank = model.new_bank()
        self.frame = 0

    def reset(self) -> None:
        """Start a new video."""
        self.bank.clear()
        self.frame = 0

    @torch.no_grad()
    def step(self, frames: torch.Tensor, **prompt: torch.Tensor) -> FrameOutput:
        """Segment the next frame.

        Args:
            frames: ``(B, 3, S, S)`` in ``[0, 1]``, this frame of ``B`` videos.
            **prompt: optional ``points`` ``(B, N, 2)`` and ``labels`` ``(B, N)``, or
                ``boxes`` ``(B, 4)``.

        Returns:
            A :class:`~vitcourse.models.sam2.sam2.FrameOutput`.
        """
        _check_frames(frames, self.model.sam.config.img_size, "frames")
        features = self.model.encode_frames(frames)
        return self.step_features(features, **prompt)

    @torch.no_grad()
    def step_features(self, features: torch.Tensor, **prompt: torch.Tensor) -> FrameOutput:
        """:meth:`step` on an already computed image embedding ``(B, C, g, g)``."""
        if not self.use_memory:
            self.bank.clear()
        out = self.model.track_step(features, self.bank, self.frame, **prompt)
        self.frame += 1
        return out


@torch.no_grad()
def track_video(
    model: Sam2,
    frames: torch.Tensor,
    prompts: dict[int, dict[str, torch.Tensor]],
    use_memory: bool = True,
    features: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[list[int]]]:
    """Track the prompted object(s) through whole clips.

    Args:
        model: a :class:`Sam2`.
        frames: ``(B, T, 3, S, S)`` in ``[0, 1]``, ``B`` videos of ``T`` frames.
        prompts: ``{frame: prompt}`` (see the module docstring); frame 0 needs one.
        use_memory: as in :class:`VideoPredictor`.
        features: ``(B, T, C, g, g)`` embeddings already computed, to skip the encoder.

    Returns:
        ``(mask_logits (B, T, 4g, 4g), bank_frames)``: the logits of every frame and,
        for every frame, the frames the bank held after it.
    """
    if frames.ndim != 5:
        raise ValueError(f"expected frames (B, T, 3, S, S), got {tuple(frames.shape)}")
    if 0 not in prompts:
        raise ValueError("the first frame needs a prompt: prompts[0] = {'points': ..., 'labels': ...}")
    B, T = frames.shape[:2]
    if features is None:
        _check_frames(frames[:, 0], model.sam.config.img_size, "frames[:, t]")
        features = model.encode_frames(frames.flatten(0, 1))  # (B·T, C, g, g)
        features = features.view(B, T, *features.shape[1:])
    predictor = VideoPredictor(model, use_memory)
    logits, held = [], []
    for t in range(T):
        out = predictor.step_features(features[:, t], **prompts.get(t, {}))
        logits.append(out.mask_logits[:, 0])
        held.append(predictor.bank.frames())
    return torch.stack(logits, dim=1), held
