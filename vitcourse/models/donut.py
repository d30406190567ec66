"""Donut (Kim et al., 2022): an image encoder and a text decoder, OCR-free document understanding.

The conventional pipeline detects text, recognises it, then parses it. Donut does the
three at once: a **Swin** encoder turns the page into a grid of feature vectors, and a
Transformer **decoder** writes the answer token by token, looking at those vectors
through cross-attention::

    image (B, 3, S, S) ─ Swin ─> (B, h, w, C) ─ flatten, Linear, + positions ─> memory (B, h·w, D)
    tokens (B, T) ─ embed + positions ─> [causal self-attn, cross-attn(memory), MLP] × depth
                  ─ LN, Linear ─> logits (B, T, vocab)

The answer is Donut's tagged text (:mod:`vitcourse.ocr.sequence`), which turns into JSON.
Training is **teacher forcing**: the decoder sees the true tokens ``0..t`` and is scored
on token ``t + 1`` at every position at once. Reading is **greedy decoding**: start
from the task token, append the most likely next token, repeat until ``</s>``; a
:class:`~vitcourse.layers.DecoderCache` per block keeps the keys and values already
computed, so each step runs the decoder on one token.

The real Donut is Swin-B (at 2560 × 1920 pixels) and the first four layers of mBART
(a 57 000-piece vocabulary); the presets here are small enough to train on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import DecoderBlock, DecoderCache, sincos_2d_encoding
from .registry import register_model
from .swin import Swin, SwinConfig

__all__ = ["Donut", "DonutConfig", "attention_guide_loss", "donut_loss"]


@dataclass
class DonutConfig:
    """Hyper-parameters of a :class:`Donut`.

    Args:
        img_size: side of the square input images.
        patch_size: Swin's first patches.
        in_chans: image channels.
        encoder_dim: Swin's channels in its first stage (doubling at each stage).
        encoder_depths: Swin blocks per stage.
        encoder_heads: Swin heads per stage.
        window_size: Swin's window side ``M``.
        vocab_size: decoder tokens (the tokenizer's length).
        max_len: longest token sequence, task token and ``</s>`` included.
        embed_dim: decoder width ``D``.
        depth: decoder blocks.
        num_heads: decoder heads.
        mlp_ratio: decoder MLP hidden size over ``D``.
        dropout: dropout in the decoder.
        memory_pos: add a learned position to each memory vector. Donut's Swin has no
            absolute positions (its windows only know relative ones) and the real model
            learns where to read from millions of pre-training pages; a small model
            trained from scratch finds the lines much sooner when each grid cell says
            where it is.
        memory_pos_init: how those positions start: ``"random"`` (small random values,
            as ViT's) or ``"sincos"`` (the fixed 2-D sine/cosine encoding,
            :func:`~vitcourse.layers.sincos_2d_encoding`, then trained): each cell
            starts knowing its row and column, and "one cell to the right" is the
            same rotation of the vector everywhere.
        pad_id, eos_id, task_id: the tokenizer's ``<pad>``, ``</s>`` and task token.
    """

    img_size: int = 128
    patch_size: int = 8
    in_chans: int = 3
    encoder_dim: int = 64
    encoder_depths: tuple[int, ...] = (3,)
    encoder_heads: tuple[int, ...] = (4,)
    window_size: int = 8
    vocab_size: int = 59
    max_len: int = 96
    embed_dim: int = 96
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    memory_pos: bool = True
    memory_pos_init: str = "random"
    pad_id: int = 0
    eos_id: int = 1
    task_id: int = 2

    def __post_init__(self) -> None:
        self.encoder_depths, self.encoder_heads = (
            tuple(self.encoder_depths),
            tuple(self.encoder_heads),
        )
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.memory_pos_init not in ("random", "sincos"):
            raise ValueError(f"memory_pos_init must be 'random' or 'sincos', got {self.memory_pos_init!r}")
        for name in ("pad_id", "eos_id", "task_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(
                    f"{name}={getattr(self, name)} is outside the vocabulary (vocab_size={self.vocab_size})"
                )

    def encoder_config(self) -> SwinConfig:
        """The Swin that encodes the image (no classification head)."""
        return SwinConfig(
            img_size=self.img_size,
            patch_size=self.patch_size,
            in_chans=self.in_chans,
            num_classes=0,
            embed_dim=self.encoder_dim,
            depths=self.encoder_depths,
            num_heads=self.encoder_heads,
            window_size=self.window_size,
        )


def donut_loss(
    logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0
) -> torch.Tensor:
    """Cross-entropy of each next token, padding ignored (teacher forcing).

    Args:
        logits: ``(B, T, V)`` from ``model(images, tokens[:, :-1])``.
        targets: ``(B, T)``, that is ``tokens[:, 1:]``.
        pad_id: the padding id, not scored.

    Returns:
        The mean loss over the real tokens (a scalar).
    """
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id)


def attention_guide_loss(
    weights: torch.Tensor,
    boxes: torch.Tensor,
    img_size: int,
    grid: int,
    shrink: float = 1.0,
) -> torch.Tensor:
    """How far the cross-attention is from the character it should be reading.

    For each position whose *next* token is a printed character with a known box, the
    share of attention (averaged over heads) that falls on the memory cells the box
    overlaps; the loss is ``-log`` of that share, averaged. It is the idea of the
    Focusing Attention Network (Cheng et al., 2017) for synthetic text, where every
    character's place is known: it tells a model trained from scratch *where* to look
    until it has learned it.

    Args:
        weights: ``(B, h, T, N)`` from :meth:`Donut.forward_with_attention` on
            ``tokens[:, :-1]``.
        boxes: ``(B, T, 4)`` pixel boxes of ``tokens[:, 1:]`` (NaN: not printed).
        img_size: side of the images; ``grid``: cells per side (``N = grid²``).
        shrink: pixels taken off each side of a box, so that a cell it barely touches
            does not count.

    Returns:
        A scalar (0 when no position has a box).
    """
    cell = img_size / grid
    edges = torch.arange(grid, dtype=boxes.dtype, device=boxes.device) * cell  # (grid,)
    x0, y0, x1, y1 = (boxes[..., i, None] for i in range(4))  # (B, T, 1) each
    cols = (x0 + shrink < edges + cell) & (x1 - shrink > edges)  # (B, T, grid)
    rows = (y0 + shrink < edges + cell) & (y1 - shrink > edges)
    # (B, T, N), row by row
    inside = (rows[..., :, None] & cols[..., None, :]).flatten(-2)
    known = ~boxes[..., 0].isnan()
    if not known.any():
        return weights.sum() * 0.0
    share = (weights.mean(1) * inside).sum(-1)  # (B, T)
    return -torch.log(share[known].clamp_min(1e-6)).mean()


class Donut(nn.Module):
    """A Swin encoder and a Transformer decoder with cross-attention.

    Args:
        config: :class:`DonutConfig`.

    Shapes:
        ``images`` ``(B, C, S, S)``, ``tokens`` ``(B, T)`` → logits ``(B, T, vocab_size)``.
    """

    def __init__(self, config: DonutConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Swin(config.encoder_config())
        D = config.embed_dim
        # Donut's (and Hugging Face's enc_to_dec_proj) bridge when the widths differ.
        self.enc_to_dec = nn.Linear(self.encoder.num_features, D) if self.encoder.num_features != D else nn.Identity()
        grid = config.img_size // config.patch_size // 2 ** (len(config.encoder_depths) - 1)
        self.memory_pos = nn.Parameter(torch.zeros(1, grid * grid, D)) if config.memory_pos else None
        self.token_embed = nn.Embedding(config.vocab_size, D)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.max_len, D))
        self.blocks = nn.ModuleList(
            DecoderBlock(
                D,
                config.num_heads,
                config.mlp_ratio,
                dropout=config.dropout,
                cross_attention=True,
            )
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, config.vocab_size, bias=False)
        self.head.weight = self.token_embed.weight  # tied, as in BART and GPT
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.memory_pos is not None and config.memory_pos_init == "sincos":
            with torch.no_grad():
                self.memory_pos.copy_(sincos_2d_encoding(grid, grid, D)[None])
        elif self.memory_pos is not None:
            nn.init.trunc_normal_(self.memory_pos, std=0.02)
        nn.init.normal_(self.token_embed.weight, std=0.02)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images to the decoder's memory: ``(B, C, S, S)`` → ``(B, h·w, D)``."""
        features = self.encoder.forward_features(images)  # (B, h, w, C_last)
        memory = self.enc_to_dec(features.flatten(1, 2))  # (B, h*w, D)
        return memory if self.memory_pos is None else memory + self.memory_pos

    def decode(
        self,
        tokens: torch.Tensor,
        memory: torch.Tensor,
        caches: list[DecoderCache] | None = None,
    ) -> torch.Tensor:
        """Next-token logits for every position of ``tokens``.

        Args:
            tokens: ``(B, T)`` ids (with ``caches``: only the tokens not seen yet).
            memory: ``(B, N, D)`` from :meth:`encode`.
            caches: one :class:`~vitcourse.layers.DecoderCache` per block, generating.

        Returns:
            ``(B, T, vocab_size)``.
        """
        start = len(caches[0]) if caches else 0
        T = tokens.shape[1]
        if start + T > self.config.max_len:
            raise ValueError(
                f"{start + T} tokens exceed max_len={self.config.max_len}; shorten the "
                f"sequence or build the model with a larger max_len"
            )
        x = self.token_embed(tokens) + self.pos_embed[:, start : start + T]  # (B, T, D)
        for i, block in enumerate(self.blocks):
            x = block(x, context=memory, cache=None if caches is None else caches[i])
        return self.head(self.norm(x))  # (B, T, V)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits ``(B, T, V)`` for the token after each of ``tokens``."""
        return self.decode(tokens, self.encode(images))

    def forward_with_attention(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing that also returns the last block's cross-attention, with gradients.

        Returns:
            ``(logits, weights)``: ``(B, T, V)`` and ``(B, num_heads, T, N)``, the weights
            with which each position's query attended to the ``N`` memory cells (for a
            loss on where the model looks, :func:`attention_guide_loss`).
        """
        memory = self.encode(images)
        T = tokens.shape[1]
        if T > self.config.max_len:
            raise ValueError(f"{T} tokens exceed max_len={self.config.max_len}")
        x = self.token_embed(tokens) + self.pos_embed[:, :T]
        for block in self.blocks[:-1]:
            x = block(x, context=memory)
        last = self.blocks[-1]
        if not last.norm_first:
            raise NotImplementedError("forward_with_attention follows the pre-norm block")
        x = x + last.drop(last.attn(last.norm1(x), causal=True))
        crossed, weights = last.cross_attn(last.norm_cross(x), context=memory, return_attention=True)
        x = x + last.drop(crossed)
        x = x + last.mlp(last.norm2(x))
        return self.head(self.norm(x)), weights

    @torch.no_grad()
    def cross_attention(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Where each token looked in the image: every block's cross-attention weights.

        Runs the model with teacher forcing on ``tokens`` and records, block by block,
        the weights with which each position's query attended to the memory (the image
        grid), through a hook on the blocks' cross-attention modules.

        Args:
            images: ``(B, C, S, S)``.
            tokens: ``(B, T)`` ids (e.g. what :meth:`generate` wrote).

        Returns:
            ``(depth, B, num_heads, T, N)``; ``N = h·w`` cells of the encoder's grid,
            row by row.
        """
        maps = []

        def keep(module, args, kwargs, output):
            # module.forward, not module(): calling the module would run this hook again
            _, weights = module.forward(*args, **{**kwargs, "return_attention": True})
            maps.append(weights)

        hooks = [block.cross_attn.register_forward_hook(keep, with_kwargs=True) for block in self.blocks]
        try:
            self(images, tokens)
        finally:
            for hook in hooks:
                hook.remove()
        return torch.stack(maps)

    @torch.no_grad()
    def generate(
        self, images: torch.Tensor, max_new_tokens: int | None = None
    ) -> torch.Tensor:
        """Greedy decoding from the task token until ``</s>`` (or ``max_new_tokens``).

        Args:
            images: ``(B, C, S, S)``.
            max_new_tokens: at most this many tokens after the task token (default: up
                to ``max_len``).

        Returns:
            ``(B, 1 + n)`` ids, task token first; a finished sequence is padded with
            ``pad_id`` after its ``</s>``.
        """
        config = self.config
        max_new_tokens = min(max_new_tokens or config.max_len, config.max_len) - 1
        memory = self.encode(images)
        B = images.shape[0]
        tokens = torch.full((B, 1), config.task_id, dtype=torch.long, device=images.device)
        caches = [DecoderCache() for _ in self.blocks]
        done = torch.zeros(B, dtype=torch.bool, device=images.device)
        step_input = tokens
        for _ in range(max_new_tokens):
            # (B, V): the last position
            logits = self.decode(step_input, memory, caches)[:, -1]
            next_token = logits.argmax(dim=-1)  # greedy
            next_token = torch.where(
                done, torch.full_like(next_token, config.pad_id), next_token
            )
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
            done |= next_token == config.eos_id
            if done.all():
                break
            step_input = next_token[:, None]  # (B, 1): the cache holds the rest
        return tokens


# -- presets ------------------------------------------------------------------------


@register_model(Donut)
def donut_receipts() -> DonutConfig:
    """Our size for 128-px receipts: a one-stage Swin on 8×8 patches (3 blocks of 64
    channels, a 16 × 16 memory) and a 2-block decoder of 96.

    ``vocab_size=59`` is :func:`vitcourse.ocr.receipts.receipt_tokenizer`'s length.
    """
    return DonutConfig()
