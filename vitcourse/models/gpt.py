"""GPT, the decoder-only Transformer (Radford et al. 2018, 2019; Brown et al. 2020).

A language model gives every continuation of a text a probability. GPT factors it
token by token, ``P(u) = ∏ᵢ P(uᵢ | u₁, …, uᵢ₋₁)``, and computes each factor with a
stack of causal decoder blocks (:class:`~vitcourse.layers.DecoderBlock`). In the
notation of the GPT-1 paper::

    h_0 = U W_e + W_p                      token embedding + learned position
    h_l = transformer_block(h_{l-1})       l = 1 … n
    P(u) = softmax(h_n W_eᵀ)               the output reuses W_e ("tied")

Training maximises ``L1 = Σᵢ log P(uᵢ | uᵢ₋ₖ, …, uᵢ₋₁)`` (:func:`lm_loss`). A linear
head on the last token's ``h_n`` gives the supervised objective ``L2``
(:meth:`GPT.classify`). :meth:`GPT.generate` samples one token at a time, with
temperature and top-k, keeping every layer's keys and values
(:class:`~vitcourse.layers.DecoderCache`) so that each new token costs one token's work.

GPT-1 uses post-norm blocks and no final norm; GPT-2 and GPT-3 pre-norm blocks and a
final LayerNorm. Both are presets of one :class:`GPTConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import (
    ACTIVATIONS,
    NORMS,
    DecoderBlock,
    DecoderCache,
    activation_layer,
    make_norm,
)
from .registry import register_model

__all__ = ["GPT", "GPTConfig", "draw_categorical", "lm_loss", "parameter_formula", "sample_next_token"]

_LM_HEADS = ("tied", "untied", "none")


@dataclass
class GPTConfig:
    """Hyper-parameters of a :class:`GPT`, with GPT-2 small's values as defaults.

    Args:
        vocab_size: number of tokens ``V`` (50257 for GPT-2's BPE).
        max_seq_len: context window ``k``: the most tokens the model sees at once
            (``n_positions``: 512 in GPT-1, 1024 in GPT-2, 2048 in GPT-3).
        embed_dim: token dimension ``D`` (``d_model``).
        depth: number of decoder blocks ``n`` (``n_layers``).
        num_heads: attention heads ``h``; ``embed_dim`` must be divisible by it.
        mlp_ratio: hidden size of the MLP over ``D`` (4 in every GPT).
        qkv_bias: bias in the Q, K, V projections.
        dropout: dropout on the embeddings, on each block's residual branches and inside
            the MLP (GPT-2: 0.1).
        attn_dropout: dropout on the attention weights.
        activation: the MLP's activation, a key of :data:`vitcourse.layers.ACTIVATIONS`
            (``"gelu_tanh"``: GPT's tanh approximation of GELU, Hugging Face's
            ``gelu_new``).
        norm: ``"layernorm"`` or ``"rmsnorm"`` (ImageGPT's norm: no mean, no bias).
        norm_eps: the norms' ε (1e-5 in GPT-2).
        norm_first: pre-norm blocks (GPT-2, GPT-3) or post-norm (GPT-1).
        final_norm: a norm after the last block (GPT-2 and later; not GPT-1).
        lm_head: how logits are made: ``"tied"`` (``h_n W_eᵀ``, every GPT),
            ``"untied"`` (a separate ``(V, D)`` matrix without bias, ImageGPT) or
            ``"none"`` (no language-model output, e.g. a text encoder whose features
            are pooled).
        num_classes: classes of a linear head on the last token (the ``L2`` objective);
            0 for none.
        cross_attention: give every block a cross-attention sub-layer (a decoder that
            reads an encoder's output, as in Donut); ``forward`` then needs ``context``.
        start_token: the last id, ``vocab_size - 1``, only ever starts a sequence: it
            is embedded but never predicted, so the output scores ``vocab_size - 1``
            tokens (ImageGPT's start-of-sequence token and its 512-way head).

    Extending it: other models (ImageGPT, CLIP's text tower, a captioning decoder) add a
    field **with a default that keeps today's behaviour**, handle it in :class:`GPT`
    (or in a subclass or a model that calls :meth:`GPT.hidden_states`), validate it in
    ``__post_init__``, and never change an existing field's meaning or default: every
    preset and shipped checkpoint then rebuilds unchanged. Already provided for them:
    ``norm="rmsnorm"`` and ``lm_head="untied"`` (ImageGPT; its start-of-sequence token
    is token ``vocab_size - 1``, prepended by the caller; ``start_token=True`` keeps it
    out of the output), ``lm_head="none"`` with
    :meth:`GPT.features` at ``last_index=ids.argmax(-1)`` (CLIP's end-of-text pooling;
    CLIP's own projection belongs to the CLIP model), ``activation="quick_gelu"``.
    """

    vocab_size: int = 50257
    max_seq_len: int = 1024
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    dropout: float = 0.1
    attn_dropout: float = 0.1
    activation: str = "gelu_tanh"
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    norm_first: bool = True
    final_norm: bool = True
    lm_head: str = "tied"
    num_classes: int = 0
    cross_attention: bool = False
    start_token: bool = False

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            divisors = [
                h
                for h in range(1, min(self.embed_dim, 128) + 1)
                if self.embed_dim % h == 0
            ]
            raise ValueError(
                f"embed_dim={self.embed_dim} is not divisible by "
                f"num_heads={self.num_heads}; every head gets embed_dim // num_heads "
                f"dimensions. Pick num_heads in {divisors[-8:]}"
            )
        for name, value, known in (
            ("activation", self.activation, tuple(ACTIVATIONS)),
            ("norm", self.norm, tuple(NORMS)),
            ("lm_head", self.lm_head, _LM_HEADS),
        ):
            if value not in known:
                raise ValueError(f"{name}={value!r} is not one of {known}")
        if min(self.vocab_size, self.max_seq_len, self.depth) < 1:
            raise ValueError(
                "vocab_size, max_seq_len and depth must be positive, got "
                f"{self.vocab_size}, {self.max_seq_len}, {self.depth}"
            )

    @property
    def num_outputs(self) -> int:
        """Tokens the output layer scores: ``vocab_size``, less the start token if any."""
        return self.vocab_size - int(self.start_token)

    @property
    def head_dim(self) -> int:
        """Dimensions per head, ``D / h``."""
        return self.embed_dim // self.num_heads


def parameter_formula(
    depth: int,
    embed_dim: int,
    vocab_size: int,
    max_seq_len: int,
    mlp_hidden: int | None = None,
    final_norm: bool = True,
) -> int:
    """Parameters of a GPT-2-style model with a tied output, counted by formula.

    Per block: two LayerNorms (``4D``), Q, K, V (``3D² + 3D``), the output projection
    (``D² + D``) and the MLP (``2 D h + h + D``); with ``h = 4D`` that is
    ``12 D² + 13 D``. Plus the token and position tables ``(V + k) D`` and the final
    LayerNorm ``2D``. The number of heads does not appear: heads split ``D``, they don't
    add weights.

    Args:
        depth: blocks ``n``.
        embed_dim: ``D`` (``d_model``); any value, even one no head count divides.
        vocab_size: ``V``.
        max_seq_len: ``k`` (positions).
        mlp_hidden: the MLP's hidden size ``h`` (default ``4D``).
        final_norm: count the final LayerNorm (GPT-2 and GPT-3 have it; GPT-1 not).

    Returns:
        The count, equal to :func:`~vitcourse.models.count_parameters` of the model.
    """
    D = embed_dim
    h = 4 * D if mlp_hidden is None else mlp_hidden
    per_block = 4 * D + (3 * D * D + 3 * D) + (D * D + D) + (2 * D * h + h + D)
    return (
        depth * per_block
        + (vocab_size + max_seq_len) * D
        + (2 * D if final_norm else 0)
    )


def lm_loss(
    logits: torch.Tensor, tokens: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    """Next-token cross-entropy, ``-L1 / (number of predictions)``, in nats per token.

    Position ``i``'s logits predict token ``i + 1``, so the last position has nothing to
    predict and the first token is never predicted.

    Args:
        logits: ``(B, N, V)`` from :meth:`GPT.forward`.
        tokens: ``(B, N)`` the same token ids the logits were computed from.
        ignore_index: targets with this id (padding) are left out of the mean.

    Returns:
        The mean negative log-likelihood (a scalar); ``exp`` of it is the perplexity.
    """
    predicted = logits[:, :-1].reshape(-1, logits.shape[-1])  # (B (N-1), V)
    targets = tokens[:, 1:].reshape(-1)  # (B (N-1),)
    return F.cross_entropy(predicted, targets, ignore_index=ignore_index)


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token from the last position's logits.

    ``temperature`` divides the logits before the softmax: below 1 it sharpens the
    distribution (0 means always the most probable token, *greedy*), above 1 it flattens
    it. ``top_k`` keeps only the ``k`` most probable tokens.

    Args:
        logits: ``(B, V)``.
        temperature: ≥ 0.
        top_k: keep this many candidates (None: all).
        generator: random generator, for reproducible samples. A CPU generator also
            serves logits on the GPU: the draw happens on the generator's device, so a
            seed gives the same tokens on either.

    Returns:
        ``(B, 1)`` token ids.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1): the k-th largest
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1)  # (B, V)
    return draw_categorical(probs, generator)


def draw_categorical(
    probs: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One index per row of ``probs`` ``(N, K)``, as ``(N, 1)``: ``torch.multinomial``
    run on the generator's device and the result moved back. A CPU generator (a
    chapter's seed) thus serves probabilities on the GPU (a model on Colab), and a seed
    gives the same draws on either device."""
    if generator is None or generator.device == probs.device:
        return torch.multinomial(probs, 1, generator=generator)
    drawn = torch.multinomial(probs.to(generator.device), 1, generator=generator)
    return drawn.to(probs.device)


class GPT(nn.Module):
    """A decoder-only Transformer language model (GPT-1, GPT-2, GPT-3 and tiny ones).

    Args:
        config: a :class:`GPTConfig`.

    Submodules: ``tok_embed`` (``W_e``, ``(V, D)``), ``pos_embed`` (``W_p``,
    ``(k, D)``), ``drop``, ``blocks`` (:class:`~vitcourse.layers.DecoderBlock`),
    ``norm`` (identity without ``final_norm``), ``lm_head`` (only
    ``lm_head="untied"``), ``head`` (only ``num_classes > 0``).

    Shapes:
        token ids ``(B, N)`` with ``N ≤ max_seq_len`` → logits ``(B, N, V)``.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = c = config
        self.tok_embed = nn.Embedding(c.vocab_size, c.embed_dim)  # W_e
        self.pos_embed = nn.Embedding(c.max_seq_len, c.embed_dim)  # W_p
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            DecoderBlock(
                c.embed_dim,
                c.num_heads,
                mlp_ratio=c.mlp_ratio,
                qkv_bias=c.qkv_bias,
                dropout=c.dropout,
                attn_dropout=c.attn_dropout,
                cross_attention=c.cross_attention,
                norm_first=c.norm_first,
                norm=c.norm,
                norm_eps=c.norm_eps,
                act_layer=activation_layer(c.activation),
            )
            for _ in range(c.depth)
        )
        self.norm = (
            make_norm(c.norm, c.embed_dim, c.norm_eps)
            if c.final_norm
            else nn.Identity()
        )
        if c.lm_head == "untied":
            self.lm_head = nn.Linear(c.embed_dim, c.num_outputs, bias=False)
        if c.num_classes > 0:
            self.head = nn.Linear(c.embed_dim, c.num_classes)
        self.apply(self._init_weights)
        # GPT-2's scaling: each block adds two residual branches; shrinking their output
        # projections by 1/sqrt(2 n) keeps the residual stream's variance flat in depth.
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp.fc2):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * c.depth))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self) -> list[DecoderCache]:
        """An empty key/value cache: one ``DecoderCache`` per block."""
        return [DecoderCache() for _ in self.blocks]

    def embed(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """``h_0 = U W_e + W_p`` for tokens at positions ``start, start + 1, …``.

        Args:
            tokens: ``(B, N)`` token ids.
            start: position of the first token (the number already in a cache).

        Returns:
            ``(B, N, D)``.
        """
        if tokens.ndim != 2 or tokens.dtype not in (torch.long, torch.int):
            raise ValueError(
                "expected integer token ids shaped (B, N), got "
                f"{tuple(tokens.shape)} {tokens.dtype}"
            )
        N = tokens.shape[1]
        if start + N > self.config.max_seq_len:
            raise ValueError(
                f"{start + N} tokens ({start} cached + {N} new) exceed the context "
                f"window max_seq_len={self.config.max_seq_len}; keep the last "
                f"{self.config.max_seq_len} tokens (generate() does so itself)"
            )
        positions = torch.arange(start, start + N, device=tokens.device)  # (N,)
        return self.drop(
            self.tok_embed(tokens) + self.pos_embed(positions)
        )  # (B, N, D)

    def hidden_states(
        self,
        tokens: torch.Tensor,
        context: torch.Tensor | None = None,
        cache: list[DecoderCache] | None = None,
        return_attention: bool = False,
        num_blocks: int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``h_n``: the last block's output (after the final norm), a vector per token.

        These are the features a linear head reads (:meth:`features`, :meth:`classify`).

        Args:
            tokens: ``(B, N)`` token ids (with a cache: only the new ones).
            context: ``(B, M, D)`` encoder output for the cross-attention, if any.
            cache: from :meth:`new_cache`; read and extended in place.
            return_attention: also return every block's self-attention weights.
            num_blocks: run only the first ``num_blocks`` blocks (then the final
                norm): features from inside the network, where ImageGPT's linear
                probes find the best ones. Default: all of them.

        Returns:
            ``(B, N, D)``; with ``return_attention`` also a list of ``depth`` tensors
            ``(B, h, N, P + N)``.
        """
        start = len(cache[0]) if cache else 0
        x = self.embed(tokens, start)
        maps = []
        for i, block in enumerate(self.blocks[:num_blocks]):
            out = block(
                x,
                context=context,
                cache=None if cache is None else cache[i],
                return_attention=return_attention,
            )
            if return_attention:
                out, weights = out
                maps.append(weights)
            x = out
        x = self.norm(x)
        return (x, maps) if return_attention else x

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """``h_n W_eᵀ``: a score per vocabulary token (softmax of it is ``P(u)``).

        Args:
            h: ``(B, N, D)`` from :meth:`hidden_states`.

        Returns:
            ``(B, N, V)`` (``V - 1`` scores with ``start_token``).
        """
        if self.config.lm_head == "none":
            raise ValueError(
                'this GPT was built with lm_head="none" and has no language-model '
                "output"
            )
        weight = (
            self.tok_embed.weight[: self.config.num_outputs]
            if self.config.lm_head == "tied"
            else self.lm_head.weight
        )
        return F.linear(h, weight)  # (B, N, V)

    def forward(
        self,
        tokens: torch.Tensor,
        context: torch.Tensor | None = None,
        cache: list[DecoderCache] | None = None,
    ) -> torch.Tensor:
        """Next-token logits at every position.

        Args:
            tokens: ``(B, N)`` token ids.
            context: ``(B, M, D)`` encoder output (only with ``cross_attention``).
            cache: from :meth:`new_cache`, while generating.

        Returns:
            ``(B, N, V)``: position ``i`` scores token ``i + 1``.
        """
        return self.logits(self.hidden_states(tokens, context=context, cache=cache))

    @staticmethod
    def last_token(
        h: torch.Tensor, last_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The hidden state of each sequence's last token, ``h_l^m`` in the GPT-1 paper.

        Args:
            h: ``(B, N, D)``.
            last_index: ``(B,)`` position of each sequence's last real token (for
                right-padded batches, or CLIP's end-of-text token); default ``N - 1``.

        Returns:
            ``(B, D)``.
        """
        if last_index is None:
            return h[:, -1]
        return h[torch.arange(h.shape[0], device=h.device), last_index]  # (B, D)

    def features(
        self,
        tokens: torch.Tensor,
        last_index: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One vector per sequence: ``h_n`` at its last token (see :meth:`last_token`).

        Args:
            tokens: ``(B, N)`` token ids, right-padded if lengths differ.
            last_index: ``(B,)`` position of each sequence's last token (default
                ``N - 1``).
            context: encoder output, with ``cross_attention``.

        Returns:
            ``(B, D)``.
        """
        return self.last_token(self.hidden_states(tokens, context=context), last_index)

    def classify(
        self, tokens: torch.Tensor, last_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``h_l^m W_y``: class logits from the last token (the model of ``L2``).

        Args:
            tokens: ``(B, N)`` token ids.
            last_index: ``(B,)`` position of each sequence's last token.

        Returns:
            ``(B, num_classes)``.
        """
        if self.config.num_classes <= 0:
            raise ValueError(
                "this GPT has no classification head; build it with num_classes > 0"
            )
        return self.head(self.features(tokens, last_index))

    @torch.no_grad()
    def generate(
        self,
        tokens: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        use_cache: bool = True,
        context: torch.Tensor | None = None,
        stop_token: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue ``tokens`` by sampling one token at a time.

        With ``use_cache`` each step feeds only the newest token and reuses every
        layer's stored keys and values; without it each step recomputes the whole
        window. Both give the same tokens. When the text outgrows the context window
        only the last ``max_seq_len`` tokens are kept (the cache then starts over, since
        every kept token's position changed).

        Args:
            tokens: ``(B, N)`` the prompt, ``N ≥ 1``.
            max_new_tokens: tokens to add.
            temperature: see :func:`sample_next_token` (0: greedy).
            top_k: see :func:`sample_next_token`.
            use_cache: keep keys and values between steps.
            context: ``(B, M, D)`` encoder output, with ``cross_attention``.
            stop_token: stop early once every sequence has produced it.
            generator: random generator for reproducible samples.

        Returns:
            ``(B, N + T)`` with ``T ≤ max_new_tokens`` (fewer only with
            ``stop_token``).
        """
        window = self.config.max_seq_len
        cache = self.new_cache() if use_cache else None
        new = tokens  # what the next step feeds: everything at first, then one token
        done = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
        for _ in range(max_new_tokens):
            if cache is None or len(cache[0]) + new.shape[1] > window:
                cache = self.new_cache() if use_cache else None
                new = tokens[:, -window:]
            logits = self(new, context=context, cache=cache)[:, -1]  # (B, V)
            new = sample_next_token(logits, temperature, top_k, generator)  # (B, 1)
            tokens = torch.cat([tokens, new], dim=1)
            if stop_token is not None:
                done |= new[:, 0] == stop_token
                if done.all():
                    break
        return tokens


# -- presets -----------------------------------------------------------------------
# GPT-1 and GPT-2 as released (Hugging Face's OpenAIGPTConfig and GPT2Config); GPT-3's
# eight sizes from Table 2.1 of Brown et al. (2020), context 2048, GPT-2's vocabulary.


@register_model(GPT)
def gpt1() -> GPTConfig:
    """GPT-1 (Radford et al. 2018): 12 post-norm blocks, 768 dims, 512 positions."""
    return GPTConfig(
        vocab_size=40478, max_seq_len=512, norm_first=False, final_norm=False
    )


@register_model(GPT)
def gpt2() -> GPTConfig:
    """GPT-2 small (124 M parameters): 12 blocks, 768 dims, 12 heads."""
    return GPTConfig()


@register_model(GPT)
def gpt2_medium() -> GPTConfig:
    """GPT-2 medium (355 M): 24 blocks, 1024 dims, 16 heads."""
    return GPTConfig(embed_dim=1024, depth=24, num_heads=16)


@register_model(GPT)
def gpt2_large() -> GPTConfig:
    """GPT-2 large (774 M): 36 blocks, 1280 dims, 20 heads."""
    return GPTConfig(embed_dim=1280, depth=36, num_heads=20)


@register_model(GPT)
def gpt2_xl() -> GPTConfig:
    """GPT-2 XL (1.5 B): 48 blocks, 1600 dims, 25 heads."""
    return GPTConfig(embed_dim=1600, depth=48, num_heads=25)


def _gpt3(depth: int, embed_dim: int, num_heads: int) -> GPTConfig:
    return GPTConfig(
        max_seq_len=2048, embed_dim=embed_dim, depth=depth, num_heads=num_heads
    )


@register_model(GPT)
def gpt3_small() -> GPTConfig:
    """GPT-3 Small (125 M): 12 blocks, d_model 768, 12 heads of 64."""
    return _gpt3(12, 768, 12)


@register_model(GPT)
def gpt3_medium() -> GPTConfig:
    """GPT-3 Medium (350 M): 24 blocks, d_model 1024, 16 heads of 64."""
    return _gpt3(24, 1024, 16)


@register_model(GPT)
def gpt3_large() -> GPTConfig:
    """GPT-3 Large (760 M): 24 blocks, d_model 1536, 16 heads of 96."""
    return _gpt3(24, 1536, 16)


@register_model(GPT)
def gpt3_xl() -> GPTConfig:
    """GPT-3 XL (1.3 B): 24 blocks, d_model 2048, heads of 128.

    The paper's table says 24 heads of 128, i.e. 3072 ≠ 2048 dimensions. We keep
    d_model = 2048 and d_head = 128, hence 16 heads; the parameter count does not depend
    on how ``D`` is split into heads, and with 2048 it gives the paper's 1.3 B.
    """
    return _gpt3(24, 2048, 16)


@register_model(GPT)
def gpt3_2_7b() -> GPTConfig:
    """GPT-3 2.7B: 32 blocks, d_model 2560, 32 heads of 80."""
    return _gpt3(32, 2560, 32)


@register_model(GPT)
def gpt3_6_7b() -> GPTConfig:
    """GPT-3 6.7B: 32 blocks, d_model 4096, 32 heads of 128."""
    return _gpt3(32, 4096, 32)


@register_model(GPT)
def gpt3_13b() -> GPTConfig:
    """GPT-3 13B: 40 blocks, 40 heads of 128, so d_model = 5120.

    The paper's table (and the course's slide) prints d_model = 5140, which 40 heads of
    128 cannot give (5140 / 40 = 128.5); 5120 is the width the heads imply.
    """
    return _gpt3(40, 5120, 40)


@register_model(GPT)
def gpt3_175b() -> GPTConfig:
    """GPT-3 175B, "GPT-3": 96 blocks, d_model 12 288, 96 heads of 128."""
    return _gpt3(96, 12288, 96)
