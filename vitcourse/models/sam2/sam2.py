"""SAM 2 (Ravi et al., 2024): SAM with a memory, for video.

SAM segments one image from a prompt. SAM 2 segments an object through a video from a
prompt on one frame, one frame at a time (streaming), remembering the frames it has
segmented. Per frame::

    features = image_encoder(frame)                              SAM's, (B, C, g, g)
    x        = memory_attention(features, memory bank)           or features + no_memory
    masks    = mask_decoder(x, prompt or "no prompt")            SAM's, and the output token
    memory   = memory_encoder(features, mask)                    into the bank, with
    pointer  = pointer_proj(output token)                        the object pointer

A frame without a prompt still goes through SAM's mask decoder, with a single
"not a point" token: what to segment comes from the memory. A click on any frame
(a correction) is decoded together with the memory and that frame joins the bank as a
prompted frame.

Here SAM 2 is built on our SAM (:class:`~vitcourse.models.sam.Sam`): its image
encoder, prompt encoder and mask decoder are used through their methods, and the
memory parts are new (:mod:`.memory_encoder`, :mod:`.memory_attention`,
:mod:`.memory_bank`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..registry import get_config, register_model
from ..sam import Sam, StackedMLP
from ..sam.prompt_encoder import NOT_A_POINT
from ..sam.training import normalize
from .memory_attention import MemoryAttention
from .memory_bank import MemoryBank, MemoryEntry
from .memory_encoder import MemoryEncoder

__all__ = ["FrameOutput", "Sam2", "Sam2Config"]


@dataclass
class Sam2Config:
    """Hyper-parameters of a :class:`Sam2`.

    Args:
        sam: the registered SAM preset it is built on.
        memory_dim: channels ``C_mem`` of a memory (64 in SAM 2).
        memory_depth: memory-attention layers (4 in SAM 2).
        memory_heads: their heads.
        memory_mlp_ratio: their MLP hidden size over ``C``.
        fuser_blocks: conv blocks of the memory encoder (2 in SAM 2).
        num_recent: ``N`` latest unprompted frames in the bank (6 in SAM 2).
        max_prompted: prompted frames in the bank.
    """

    sam: str = "sam_mini"
    memory_dim: int = 32
    memory_depth: int = 2
    memory_heads: int = 4
    memory_mlp_ratio: float = 2.0
    fuser_blocks: int = 2
    num_recent: int = 6
    max_prompted: int = 4


@dataclass
class FrameOutput:
    """What the tracker says about one frame.

    Attributes:
        frame: index of the frame.
        mask_logits: ``(B, 1, 4g, 4g)`` low-resolution logits of the chosen mask.
        iou: ``(B,)`` its predicted IoU.
        pointer: ``(B, C_mem)`` the object pointer.
        memory: ``(B, C_mem, g, g)`` the memory it left in the bank.
    """

    frame: int
    mask_logits: torch.Tensor
    iou: torch.Tensor
    pointer: torch.Tensor
    memory: torch.Tensor


class Sam2(nn.Module):
    """SAM plus a memory encoder, a memory attention, object pointers and time embeddings.

    Args:
        config: a :class:`Sam2Config`.

    Shapes:
        frames ``(B, 3, S, S)`` in ``[0, 1]``; prompts in pixels of ``S × S`` as in
        :meth:`Sam.predict`, one prompt per video (``P = 1``); masks ``(B, 1, 4g, 4g)``.
    """

    def __init__(self, config: Sam2Config) -> None:
        super().__init__()
        self.config = c = config
        self.sam = Sam(get_config(c.sam))
        C = self.sam.config.prompt_dim
        self.memory_encoder = MemoryEncoder(C, c.memory_dim, c.fuser_blocks)
        self.memory_attention = MemoryAttention(
            C, c.memory_dim, c.memory_depth, c.memory_heads, c.memory_mlp_ratio
        )
        self.pointer_proj = StackedMLP(C, C, c.memory_dim, 3)
        # row 0: a prompted frame; row d: a frame d steps ago (the farthest share row N)
        self.time_embed = nn.Parameter(torch.zeros(c.num_recent + 1, C))
        self.pointer_embed = nn.Parameter(torch.zeros(C))  # "this token is a pointer"
        self.no_memory = nn.Parameter(torch.zeros(1, C, 1, 1))  # the first frame's "nothing yet"

    def new_bank(self) -> MemoryBank:
        """An empty memory bank sized as the config says."""
        return MemoryBank(self.config.num_recent, self.config.max_prompted)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """SAM's image embedding of frames in ``[0, 1]``: ``(B, 3, S, S)`` → ``(B, C, g, g)``."""
        return self.sam.encode_image(normalize(frames))

    def memory_tokens(self, bank: MemoryBank, frame: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The bank as attention tokens, seen from ``frame``.

        Returns:
            ``(memory (B, M, C_mem), memory_pos (B, M, C))`` with ``M = E g² + E`` for
            ``E`` remembered frames (their memories, then their pointers), or None if the
            bank holds nothing but ``frame`` itself.
        """
        entries = [e for e in bank.entries() if e.frame != frame]
        if not entries:
            return None
        grid = self.sam.prompt_encoder.dense_positions().flatten(2).transpose(1, 2)  # (1, g², C)
        tokens, positions, pointers, pointer_pos = [], [], [], []
        for e in entries:
            row = 0 if e.prompted else min(abs(frame - e.frame), self.config.num_recent)
            when = self.time_embed[row]  # (C,)
            tokens.append(e.memory.flatten(2).transpose(1, 2))  # (B, g², C_mem)
            positions.append((grid + when).expand(e.memory.shape[0], -1, -1))
            pointers.append(e.pointer[:, None])  # (B, 1, C_mem)
            pointer_pos.append((self.pointer_embed + when).expand(e.pointer.shape[0], 1, -1))
        memory = torch.cat(tokens + pointers, dim=1)
        return memory, torch.cat(positions + pointer_pos, dim=1)

    def condition(self, features: torch.Tensor, bank: MemoryBank, frame: int) -> torch.Tensor:
        """A frame's features after reading the memory: ``(B, C, g, g)`` → the same."""
        tokens = self.memory_tokens(bank, frame)
        if tokens is None:
            return features + self.no_memory
        pos = self.sam.prompt_encoder.dense_positions()
        return self.memory_attention(features, pos, *tokens)

    def decode(
        self,
        conditioned: torch.Tensor,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SAM's prompt encoder and mask decoder on memory-conditioned features.

        One point: the best of the three ambiguity masks by predicted IoU; several
        points or a box: the single mask; no prompt: a "not a point" token and the
        single mask (the memory says what to segment).

        Args:
            conditioned: ``(B, C, g, g)`` from :meth:`condition`.
            points: ``(B, N, 2)`` pixels ``(x, y)``, or None.
            labels: ``(B, N)``: 1 foreground, 0 background.
            boxes: ``(B, 4)`` pixels ``(x0, y0, x1, y1)``, or None.

        Returns:
            ``(mask_logits (B, 1, 4g, 4g), iou (B,), token (B, C))``.
        """
        B = conditioned.shape[0]
        if points is None and boxes is None:
            points = conditioned.new_zeros(B, 1, 2)
            labels = torch.full((B, 1), NOT_A_POINT, dtype=torch.long, device=conditioned.device)
        multimask = boxes is None and points.shape[1] == 1 and bool((labels != NOT_A_POINT).all())
        sparse, dense = self.sam.prompt_encoder(
            None if points is None else points[:, None],  # one prompt per video: P = 1
            None if labels is None else labels[:, None],
            None if boxes is None else boxes[:, None],
        )
        masks, iou, tokens = self.sam.mask_decoder.decode(
            conditioned, self.sam.prompt_encoder.dense_positions(), sparse, dense.expand(B, -1, -1, -1)
        )
        masks, iou, tokens = masks[:, 0], iou[:, 0], tokens[:, 0]  # (B, M, ...)
        if multimask:
            pick = 1 + iou[:, 1:].argmax(dim=1)  # (B,)
        else:
            pick = torch.zeros(B, dtype=torch.long, device=conditioned.device)
        rows = torch.arange(B, device=conditioned.device)
        return masks[rows, pick][:, None], iou[rows, pick], tokens[rows, pick]

    def track_step(
        self,
        features: torch.Tensor,
        bank: MemoryBank,
        frame: int,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
    ) -> FrameOutput:
        """Segment one frame from the memory (and a prompt, if given) and remember it.

        Args:
            features: ``(B, C, g, g)`` the frame's image embedding
                (:meth:`encode_frames`).
            bank: the video's :class:`MemoryBank`, updated in place.
            frame: the frame's index.
            points, labels, boxes: an optional prompt, as in :meth:`decode`.

        Returns:
            A :class:`FrameOutput`.
        """
        conditioned = self.condition(features, bank, frame)
        logits, iou, token = self.decode(conditioned, points, labels, boxes)
        memory = self.memory_encoder(features, logits)
        pointer = self.pointer_proj(token)
        prompted = points is not None or boxes is not None
        bank.add(MemoryEntry(frame, memory, pointer, prompted))
        return FrameOutput(frame, logits, iou, pointer, memory)

    def upscale(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """Low-resolution logits ``(..., 4g, 4g)`` to the frame's size ``(..., S, S)``."""
        return self.sam.upscale(mask_logits)

    def memory_parameters(self) -> list[nn.Parameter]:
        """The parameters SAM 2 adds to SAM (what training the memory trains)."""
        sam = {id(p) for p in self.sam.parameters()}
        return [p for p in self.parameters() if id(p) not in sam]


@register_model(Sam2)
def sam2_mini() -> Sam2Config:
    """SAM 2 on the mini-SAM (64×64 frames, ``C = 64``): memories of 32 channels, 2 layers."""
    return Sam2Config()
