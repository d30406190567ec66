"""DALL-E's second stage: one transformer over a caption's tokens and an image's tokens.

DALL-E (Ramesh et al. 2021) writes a caption and an image as **one sequence**: the
caption's text tokens, then the image's ``h·w`` tokens from the dVAE
(:mod:`vitcourse.models.dvae`), and trains a decoder-only transformer (our
:class:`~vitcourse.models.GPT`) to predict every token from the ones before it. To draw
an image for a new caption, feed the caption and sample the image tokens one by one;
the dVAE's decoder turns them into pixels (:func:`generate_images`).

Here the captions are the generated world's Spanish descriptions of one shape
(*"una estrella roja grande arriba a la izquierda"*): shape, colour, size and position.
A few colour–shape pairs (:data:`HELD_OUT`) never appear in training, so generating
*"un círculo verde"* tests whether the model composes "círculo" and "verde", learnt
apart, into something it never saw.

The training objective is the bound of the slide,

    ln p(x, y) ≥ E_{z ~ q_φ(z|x)} [ln p_θ(x | y, z) - β KL(q_φ(y, z | x) ‖ p_ψ(y, z))],

with ``q_φ`` and ``p_θ`` the dVAE (stage one, then frozen) and ``p_ψ`` the transformer
(stage two); :func:`bound_terms` computes every term on a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..data.backgrounds import COLOR_NAMES
from ..data.captions import POSITIONS_ES, SIZES, describe_shape
from ..data.shapes import SHAPE_NAMES
from ..data.world import WorldConfig, generate
from .dvae import DVAE, gaussian_log_likelihood
from .gpt import GPT, GPTConfig, draw_categorical
from .registry import register_model

__all__ = [
    "DALLE_WORLD",
    "HELD_OUT",
    "CaptionTokenizer",
    "CaptionedShapes",
    "SequenceLayout",
    "bound_terms",
    "caption_for",
    "generate_images",
    "null_caption",
    "rerank",
    "world_layout",
]

DALLE_WORLD = WorldConfig(
    img_size=32, radius=(0.22, 0.40), rotation=0.0, backgrounds=("flat", "gradient")
)
"""The world DALL-E is trained on: the classification world of the shipped shape
classifier (one upright shape, radius 22–40 % of the side) with calm backgrounds
(plain or a gradient), so that the tiny dVAE's 64 tokens go to the shape."""

HELD_OUT: tuple[tuple[str, str], ...] = (
    ("circle", "green"),
    ("square", "yellow"),
    ("triangle", "purple"),
    ("star", "blue"),
    ("cross", "orange"),
    ("ring", "pink"),
    ("heart", "light blue"),
    ("crescent", "red"),
)
"""(shape, colour) pairs left out of every training image: one per shape, each colour
at most once. Both words are seen in training, never together."""

_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


@dataclass
class CaptionedShapes:
    """Images of the world with their Spanish captions, shape and colour labels.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (separate seed streams).
        size: number of images.
        seed: base seed.
        exclude_held_out: skip images showing a :data:`HELD_OUT` pair (training).
        config: the world (:data:`DALLE_WORLD`).

    Attributes (after :meth:`build`):
        images: ``(N, 3, 32, 32)`` uint8; captions: list of ``N`` strings;
        shapes, colors: ``(N,)`` int64 indices into ``SHAPE_NAMES`` and ``COLOR_NAMES``.
    """

    split: str = "train"
    size: int = 1000
    seed: int = 0
    exclude_held_out: bool = True
    config: WorldConfig = DALLE_WORLD

    def __post_init__(self) -> None:
        split_id = _SPLIT_IDS[self.split]
        images, captions, shapes, colors = [], [], [], []
        index = 0
        while len(captions) < self.size:
            sample = generate((self.seed, 100 + split_id, index), self.config)
            index += 1
            placed = sample.shapes[0]
            if self.exclude_held_out and (placed.shape, placed.color) in HELD_OUT:
                continue
            images.append(np.round(sample.image.numpy() * 255).astype(np.uint8))
            captions.append(sample.caption)
            shapes.append(SHAPE_NAMES.index(placed.shape))
            colors.append(COLOR_NAMES.index(placed.color))
        self.images = torch.from_numpy(np.stack(images))  # (N, 3, H, W) uint8
        self.captions: list[str] = captions
        self.shapes = torch.tensor(shapes)
        self.colors = torch.tensor(colors)

    def float_images(self) -> torch.Tensor:
        """``(N, 3, H, W)`` float32 in ``[0, 1]``."""
        return self.images.float() / 255.0


def caption_for(shape: str, color: str, size: int = 2, position: int = 4) -> str:
    """The world's Spanish caption for one shape (``size`` 0–2, ``position`` 0–8).

    >>> caption_for("circle", "green")
    'un círculo verde grande en el centro'
    """
    return describe_shape(shape, color, size, position).es


class CaptionTokenizer:
    """Word-level tokens for the world's captions; every caption fits in ``text_len``.

    The vocabulary is every word of every caption the world can write (all shapes,
    colours, sizes and positions), sorted, after ``<pad>`` (id 0). DALL-E uses BPE on
    free text; here the language is closed, so words suffice.
    """

    PAD = "<pad>"

    def __init__(self) -> None:
        words, longest = set(), 0
        for shape in SHAPE_NAMES:
            for color in COLOR_NAMES:
                for size in range(len(SIZES)):
                    for position in range(len(POSITIONS_ES)):
                        caption = caption_for(shape, color, size, position).split()
                        words.update(caption)
                        longest = max(longest, len(caption))
        self.vocab: list[str] = [self.PAD, *sorted(words)]
        self.ids = {word: i for i, word in enumerate(self.vocab)}
        self.text_len = longest

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, captions: list[str]) -> torch.Tensor:
        """``(B, text_len)`` int64 ids, right-padded with ``<pad>``.

        Raises:
            ValueError: an unknown word (the world never writes it) or too many.
        """
        rows = []
        for caption in captions:
            words = caption.split()
            unknown = [w for w in words if w not in self.ids]
            if unknown or len(words) > self.text_len:
                raise ValueError(
                    f"caption {caption!r}: the tokenizer knows the world's words only "
                    f"(unknown: {unknown}) and at most {self.text_len} of them"
                )
            ids = [self.ids[w] for w in words]
            rows.append(ids + [0] * (self.text_len - len(ids)))
        return torch.tensor(rows, dtype=torch.long)

    def decode(self, ids: torch.Tensor) -> str:
        """Words of one ``(text_len,)`` row, padding dropped."""
        return " ".join(self.vocab[i] for i in ids.tolist() if i != 0)


@dataclass(frozen=True)
class SequenceLayout:
    """Where text and image tokens live in one sequence and one vocabulary.

    Sequence: ``[start] + text (text_len) + image (image_len)``. Vocabulary: text ids
    ``0 … text_vocab - 1``, image ids shifted by ``text_vocab``, then the start token.
    """

    text_vocab: int
    text_len: int
    image_vocab: int
    image_len: int

    @property
    def vocab_size(self) -> int:
        return self.text_vocab + self.image_vocab + 1

    @property
    def start_token(self) -> int:
        return self.vocab_size - 1

    @property
    def seq_len(self) -> int:
        return 1 + self.text_len + self.image_len

    def join(
        self, text: torch.Tensor, image: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, text_len)`` text ids (+ ``(B, image_len)`` image ids) → sequences."""
        start = torch.full_like(text[:, :1], self.start_token)  # (B, 1)
        parts = [start, text]
        if image is not None:
            parts.append(image + self.text_vocab)
        return torch.cat(parts, dim=1)

    def image_part(self, sequence: torch.Tensor) -> torch.Tensor:
        """The image ids (back in ``[0, image_vocab)``) of full sequences."""
        return sequence[:, 1 + self.text_len :] - self.text_vocab


def null_caption(batch: int, text_len: int) -> torch.Tensor:
    """Classifier-free guidance's empty caption: ``(batch, text_len)`` ``<pad>`` ids.

    A fine-tuning run with caption dropout (``train_dalle transformer --caption-dropout
    p``) shows the transformer this caption instead of the real one with probability
    ``p``, so that it also learns ``p(image)``, the image without a caption. No real
    caption starts with ``<pad>``, so the two never mix.
    """
    return torch.zeros(batch, text_len, dtype=torch.long)


def generate_images(
    transformer: GPT,
    dvae: DVAE,
    layout: SequenceLayout,
    text: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    guidance_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one image per caption: sample the image tokens, decode them with the dVAE.

    Only image tokens are allowed while sampling (text and start logits are masked), so
    every sampled id is a code the dVAE knows.

    With ``guidance_scale`` ``s ≠ 1`` it samples with classifier-free guidance (Ho &
    Salimans 2021; for autoregressive models Gafni et al. 2022, Yu et al. 2022): a
    second stream reads the same image tokens after the empty caption
    (:func:`null_caption`), both with their own key/value cache, and every step samples
    from

        ln p_s(z_i) = ln p(z_i | ∅) + s · (ln p(z_i | y) - ln p(z_i | ∅)) + const,

    which for ``s > 1`` pushes the drawing towards what the caption ``y`` changes.
    ``s = 1`` is plain sampling (one stream, the same draws). It only makes sense for a
    transformer trained with caption dropout.

    Args:
        transformer: the stage-two GPT.
        dvae: the stage-one dVAE.
        layout: the :class:`SequenceLayout` it was trained with.
        text: ``(B, text_len)`` caption ids.
        temperature, top_k: see :func:`~vitcourse.models.gpt.sample_next_token`.
        generator: for reproducible samples.
        guidance_scale: ``s > 0``; 1 means no guidance.

    Returns:
        ``(images, tokens)``: ``(B, 3, H, W)`` in ``[0, 1]`` and ``(B, image_len)``.

    Raises:
        ValueError: ``guidance_scale`` is not positive.
    """
    from .gpt import sample_next_token

    if not guidance_scale > 0:
        raise ValueError(
            f"guidance_scale must be > 0 (1 = no guidance), got {guidance_scale}"
        )
    guided = guidance_scale != 1
    transformer.eval()
    batch = text.shape[0]
    sequence = layout.join(text)
    new = sequence
    if guided:  # rows B … 2B - 1: the same drawing after the empty caption
        empty = null_caption(batch, layout.text_len).to(text.device)
        new = torch.cat([sequence, layout.join(empty)])
    cache = transformer.new_cache()
    allowed = torch.zeros(layout.vocab_size, dtype=torch.bool)
    allowed[layout.text_vocab : layout.text_vocab + layout.image_vocab] = True
    with torch.no_grad():
        for _ in range(layout.image_len):
            logits = transformer(new, cache=cache)[:, -1]  # (B or 2B, V)
            logits = logits.masked_fill(~allowed.to(logits.device), float("-inf"))
            if guided:
                cond, uncond = logits.log_softmax(-1).split(batch)
                logits = uncond + guidance_scale * (cond - uncond)
                logits = logits.masked_fill(~allowed.to(logits.device), float("-inf"))
            token = sample_next_token(logits, temperature, top_k, generator)  # (B, 1)
            sequence = torch.cat([sequence, token], dim=1)
            new = torch.cat([token, token]) if guided else token
        tokens = layout.image_part(sequence)
        return dvae.decode_tokens(tokens), tokens


def rerank(
    clip, clip_tokenizer, images: torch.Tensor, captions: list[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DALL-E's reranking: of ``N`` drawings per caption, keep the one CLIP prefers.

    Ramesh et al. (2021, sec. 2.6; :mod:`vitcourse.papers.dalle`) draw many images per
    caption and sort them by the
    similarity a CLIP model gives to the pair. Here a mini-CLIP
    (:mod:`vitcourse.clip_world`) reads the same Spanish captions: ``clip_dalle_world``,
    trained on stage 2's own pairs (``train_dalle reranker``).

    Args:
        clip: a :class:`~vitcourse.models.CLIP` trained on the world.
        clip_tokenizer: its :class:`~vitcourse.clip_world.WordTokenizer`.
        images: ``(N, B, 3, H, W)`` in ``[0, 1]``: ``N`` drawings of each of ``B``
            captions.
        captions: the ``B`` captions.

    Returns:
        ``(best, index, scores)``: ``(B, 3, H, W)`` the chosen drawings, ``(B,)``
        which of the ``N`` each is, ``(N, B)`` the cosine similarities.
    """
    from ..clip_world import encode_images, encode_texts

    n, b = images.shape[:2]
    if b != len(captions):
        raise ValueError(
            f"expected images shaped (N, B, 3, H, W), B = {len(captions)} captions; "
            f"got {tuple(images.shape)}"
        )
    clip.eval()
    texts = encode_texts(clip, clip_tokenizer, captions)  # (B, d)
    pictures = encode_images(clip, images.flatten(0, 1)).view(n, b, -1)  # (N, B, d)
    scores = (pictures * texts).sum(-1)  # (N, B)
    index = scores.argmax(0)  # (B,)
    return images[index, torch.arange(b)], index, scores


def bound_terms(
    transformer: GPT,
    dvae: DVAE,
    layout: SequenceLayout,
    images: torch.Tensor,
    text: torch.Tensor,
    beta: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Every term of the slide's bound on a batch, in nats per image.

    ``q_φ(y, z | x)`` puts all its mass on the observed caption ``y`` and on image
    tokens ``z ~ q_φ(z | x)`` (one sample per image, drawn from the dVAE encoder's
    categorical distributions), so

    * ``reconstruction`` = ``ln p_θ(x | y, z)`` (the dVAE decoder ignores ``y``);
    * ``text_nll`` = ``-ln p_ψ(y)``: the transformer's loss on the caption tokens;
    * ``image_nll`` = ``-ln p_ψ(z | y)``: its loss on the image tokens;
    * ``entropy`` = ``H(q_φ(z | x))``, summed over the grid cells;
    * ``kl`` = ``text_nll + image_nll - entropy`` (a one-sample estimate of
      ``KL(q_φ(y, z | x) ‖ p_ψ(y, z))``);
    * ``bound`` = ``reconstruction - beta · kl``.

    Returns:
        Those names → ``(B,)`` tensors.
    """
    transformer.eval()
    with torch.no_grad():
        logits = dvae.encode(images)  # (B, K, h, w)
        log_q = logits.log_softmax(dim=1).flatten(2)  # (B, K, h·w)
        probs = log_q.exp().transpose(1, 2)  # (B, h·w, K)
        B, L, K = probs.shape
        z = draw_categorical(probs.reshape(B * L, K), generator).view(B, L)
        recon = dvae.decode_tokens(z)
        reconstruction = gaussian_log_likelihood(images, recon, dvae.config.sigma)
        entropy = -(log_q.exp() * log_q).sum(dim=(1, 2))  # (B,)
        sequence = layout.join(text, z)  # (B, 1 + T + L)
        out = transformer(sequence)[:, :-1]  # (B, T + L, V): position i predicts i + 1
        targets = sequence[:, 1:]  # (B, T + L)
        nll = F.cross_entropy(out.transpose(1, 2), targets, reduction="none")
        text_nll = nll[:, : layout.text_len].sum(dim=1)
        image_nll = nll[:, layout.text_len :].sum(dim=1)
    kl = text_nll + image_nll - entropy
    return {
        "reconstruction": reconstruction,
        "text_nll": text_nll,
        "image_nll": image_nll,
        "entropy": entropy,
        "kl": kl,
        "bound": reconstruction - beta * kl,
    }


def world_layout(image_vocab: int = 128, image_len: int = 64) -> SequenceLayout:
    """The layout of the world's captions (:class:`CaptionTokenizer`) + dVAE tokens."""
    tokenizer = CaptionTokenizer()
    return SequenceLayout(len(tokenizer), tokenizer.text_len, image_vocab, image_len)


@register_model(GPT)
def dalle_tiny() -> GPTConfig:
    """The stage-two transformer for the world: captions + 8×8 dVAE tokens (128 codes),
    D=96, 4 blocks, 4 heads (our sizes)."""
    layout = world_layout()
    return GPTConfig(
        vocab_size=layout.vocab_size,
        max_seq_len=layout.seq_len,
        embed_dim=96,
        depth=4,
        num_heads=4,
        dropout=0.0,
        attn_dropout=0.0,
    )


@register_model(GPT)
def dalle_small() -> GPTConfig:
    """``dalle_tiny`` wider and deeper for a GPU run: D=192, 6 blocks, 6 heads (our
    sizes; 2.7 M parameters, six times the tiny one's)."""
    return replace(dalle_tiny(), embed_dim=192, depth=6, num_heads=6)
