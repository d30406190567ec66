"""A mini-CLIP's world: image–caption pairs from the generated world, in Spanish, and
the measurements of chapter 5 (zero-shot classification with prompt templates and
ensembling, image→text and text→image retrieval, unseen colour–shape combinations).

No captioned photo collection installs offline, so the pairs come from
:func:`vitcourse.data.world.generate`: every image's caption says each shape's class,
colour, size and position (*"una estrella roja pequeña arriba y un círculo azul
grande abajo"*). Eight colour–shape combinations (:data:`HELD_OUT`) never appear in
a training image; a test set made only of them measures whether the model composes a
colour and a shape it never saw together.

The text side uses a word-level vocabulary (:class:`WordTokenizer`): the words the
captions can contain, plus ``<pad>``, ``<sot>`` and ``<eot>`` (the last id, so that
``argmax`` finds it too, as in OpenAI's code).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data.backgrounds import COLOR_NAMES, COLORS
from .data.captions import _SIZES_ES, POSITIONS_ES, SIZES
from .data.shapes import SHAPE_NAMES, SHAPES
from .data.world import WorldConfig, generate

__all__ = [
    "FASHION_TEMPLATES",
    "HELD_OUT",
    "WORLD",
    "Pairs",
    "WordTokenizer",
    "class_embeddings",
    "clip_pixels",
    "encode_images",
    "encode_texts",
    "hf_ids",
    "make_pairs",
    "phrase",
    "preprocess",
    "retrieval_recall",
    "zero_shot_accuracy",
    "zero_shot_predict",
]

#: Colour–shape combinations no training image contains (one per shape, each colour
#: at most once), for the test of composition.
HELD_OUT: tuple[tuple[str, str], ...] = (
    ("circle", "blue"),
    ("square", "yellow"),
    ("triangle", "red"),
    ("star", "green"),
    ("cross", "purple"),
    ("ring", "orange"),
    ("heart", "light blue"),
    ("crescent", "pink"),
)

#: The world the mini-CLIP sees: 32×32 images with one or two shapes.
WORLD = WorldConfig(img_size=32, min_shapes=1, max_shapes=2)

#: Pixel normalisation of the mini-CLIP (images in [0, 1]).
MEAN, STD = 0.5, 0.25

_PAD, _SOT, _EOT = "<pad>", "<sot>", "<eot>"


def _caption_words() -> list[str]:
    words = {"un", "una", "y", ","}
    for shape in SHAPES.values():
        words.update(shape.name_es.split())
    for color in COLORS.values():
        words.update(color.es_masculine.split() + color.es_feminine.split())
    for forms in _SIZES_ES.values():
        words.update(forms)
    for position in POSITIONS_ES:
        words.update(position.split())
    return sorted(words)


class WordTokenizer:
    """Words of the world's Spanish captions to ids: ``<pad>`` 0, ``<sot>`` 1, the
    words in alphabetical order, ``<eot>`` last.

    Args:
        context_length: every row is padded (with ``<pad>``) to this many ids.
    """

    def __init__(self, context_length: int = 24) -> None:
        self.context_length = context_length
        self.tokens = [_PAD, _SOT, *_caption_words(), _EOT]
        self.ids = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def eot_token_id(self) -> int:
        """The end-of-text id (the largest)."""
        return self.ids[_EOT]

    def split(self, text: str) -> list[str]:
        """Lower-case words, a comma as its own word."""
        return text.lower().replace(",", " , ").split()

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Token ids ``(B, context_length)``: ``<sot>`` words ``<eot>`` ``<pad>``….

        Raises:
            ValueError: a word outside the vocabulary, or a text too long.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        rows = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            words = self.split(text)
            unknown = [w for w in words if w not in self.ids]
            if unknown:
                raise ValueError(
                    f"words {unknown} of {text!r} are not in the captions' vocabulary "
                    f"({len(self)} tokens); write prompts with the captions' words"
                )
            ids = [self.ids[_SOT], *(self.ids[w] for w in words), self.ids[_EOT]]
            if len(ids) > self.context_length:
                raise ValueError(
                    f"{text!r} takes {len(ids)} tokens, more than context_length="
                    f"{self.context_length}"
                )
            rows[i, : len(ids)] = torch.tensor(ids)
        return rows


def phrase(
    shape: str,
    color: str | None = None,
    size: str | None = None,
    position: int | None = None,
) -> str:
    """A Spanish noun phrase in the captions' word order, with what is given.

    ``phrase("star", "red", "small", 1)`` is ``"una estrella roja pequeña arriba"``
    (as in the captions); ``phrase("star")`` is ``"una estrella"``.

    Args:
        shape: an English shape id (``"star"``).
        color: an English colour name, or None to leave it out.
        size: ``"small"``, ``"medium"``, ``"large"`` or None.
        position: a 3×3 grid cell 0–8, or None.
    """
    kind = SHAPES[shape]
    f = int(kind.feminine)
    words = [("un", "una")[f], kind.name_es]
    if color is not None:
        paint = COLORS[color]
        words.append((paint.es_masculine, paint.es_feminine)[f])
    if size is not None:
        words.append(_SIZES_ES[size][f])
    if position is not None:
        words.append(POSITIONS_ES[position])
    return " ".join(words)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """World images in ``[0, 1]`` to the mini-CLIP's input, ``(x - 0.5) / 0.25``."""
    return (images - MEAN) / STD


@dataclass
class Pairs:
    """Image–caption pairs.

    Attributes:
        images: ``(n, 3, 32, 32)`` in ``[0, 1]``.
        captions: Spanish captions.
        shapes: per image, the list of ``(shape, colour)`` it contains.
    """

    images: torch.Tensor
    captions: list[str]
    shapes: list[list[tuple[str, str]]]


def make_pairs(
    n: int,
    seed: int,
    split: int,
    combos: str = "seen",
    config: WorldConfig = WORLD,
) -> Pairs:
    """Draw ``n`` image–caption pairs from the world.

    Args:
        n: number of pairs.
        seed, split: the generator's seed is ``(seed, split, index)``; different
            splits never share an image.
        combos: ``"seen"``: no shape in :data:`HELD_OUT` colours (training and its
            tests); ``"unseen"``: one shape per image, always a held-out combination.
        config: the world (one or two shapes at 32×32 by default).

    Returns:
        :class:`Pairs`.
    """
    if combos not in ("seen", "unseen"):
        raise ValueError(f'combos must be "seen" or "unseen", got {combos!r}')
    held = set(HELD_OUT)
    images, captions, shapes = [], [], []
    index = 0
    while len(images) < n:
        if combos == "unseen":
            shape, color = HELD_OUT[len(images) % len(HELD_OUT)]
            world = WorldConfig(
                img_size=config.img_size, shapes=(shape,), colors=(color,)
            )
        else:
            world = config
        sample = generate((seed, split, index), world)
        index += 1
        present = [(s.shape, s.color) for s in sample.shapes]
        if combos == "seen" and held.intersection(present):
            continue
        images.append(sample.image)
        captions.append(sample.caption)
        shapes.append(present)
    return Pairs(torch.stack(images), captions, shapes)


@torch.no_grad()
def encode_images(model, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Normalised image features ``(n, d_e)`` of world images in ``[0, 1]``."""
    out = [
        model.encode_image(preprocess(images[i : i + batch_size]))
        for i in range(0, len(images), batch_size)
    ]
    return F.normalize(torch.cat(out), dim=-1)


@torch.no_grad()
def encode_texts(
    model, tokenizer: WordTokenizer, texts: Sequence[str], batch_size: int = 512
) -> torch.Tensor:
    """Normalised text features ``(n, d_e)``.

    ``tokenizer`` is any callable ``texts → (B, L)`` ids: a :class:`WordTokenizer`, or
    :func:`hf_ids` of CLIP's real tokenizer."""
    out = [
        model.encode_text(tokenizer(texts[i : i + batch_size]))
        for i in range(0, len(texts), batch_size)
    ]
    return F.normalize(torch.cat(out), dim=-1)


@torch.no_grad()
def class_embeddings(
    model, tokenizer: WordTokenizer, prompts: Sequence[Sequence[str]]
) -> torch.Tensor:
    """One vector per class: the prompts' normalised features, averaged (the
    *ensemble*), normalised again. One prompt per class is no ensemble.

    Args:
        prompts: per class, its prompts (the templates filled with the class).

    Returns:
        ``(C, d_e)``.
    """
    flat = [p for per_class in prompts for p in per_class]
    features = encode_texts(model, tokenizer, flat)
    out, start = [], 0
    for per_class in prompts:
        out.append(features[start : start + len(per_class)].mean(dim=0))
        start += len(per_class)
    return F.normalize(torch.stack(out), dim=-1)


def zero_shot_accuracy(
    image_features: torch.Tensor, classes: torch.Tensor, labels: Iterable[int]
) -> float:
    """Fraction of images whose most similar class vector is their label.

    Args:
        image_features: ``(n, d_e)`` normalised.
        classes: ``(C, d_e)`` from :func:`class_embeddings`.
        labels: ``n`` class indices.
    """
    labels = torch.as_tensor(list(labels))
    predicted = (image_features @ classes.T).argmax(dim=-1)
    return float((predicted == labels).float().mean())


def retrieval_recall(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    captions: Sequence[str],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@k of image→text and text→image retrieval over ``n`` pairs.

    Image ``i`` and caption ``i`` match. Two images may have word-for-word the same
    caption (the world is small): a retrieved caption counts as correct when its text
    equals the true one, and a retrieved image when its caption does.

    Args:
        image_features, text_features: ``(n, d_e)`` normalised.
        captions: the ``n`` captions.
        ks: the cut-offs.

    Returns:
        ``{"i2t_R@1": …, "t2i_R@1": …, …}``.
    """
    ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    label = torch.tensor([ids[c] for c in captions])  # (n,) same text, same label
    sims = image_features @ text_features.T  # (n, n)
    out = {}
    for name, matrix in (("i2t", sims), ("t2i", sims.T)):
        ranked = matrix.argsort(dim=-1, descending=True)  # (n, n)
        hit = label[ranked] == label[:, None]  # (n, n)
        for k in ks:
            out[f"{name}_R@{k}"] = float(hit[:, :k].any(dim=-1).float().mean())
    return out


# -- the measurements the card records and the chapter shows ------------------------

#: Size × position templates (colour left out) for zero-shot shape classification.
SHAPE_TEMPLATES: tuple[tuple[str | None, int | None], ...] = tuple(
    (size, position) for size in SIZES for position in range(9)
)


def shape_prompts(
    templates: Sequence[tuple[str | None, int | None]],
) -> list[list[str]]:
    """Per shape class, the templates filled: ``phrase(shape, None, size, position)``."""
    return [[phrase(s, None, size, pos) for size, pos in templates] for s in SHAPE_NAMES]


def combo_prompts(colors: Sequence[str] = COLOR_NAMES) -> tuple[list, list[list[str]]]:
    """The 80 colour–shape classes and their prompts (ensembled over size × position).

    Returns:
        ``(classes, prompts)`` with ``classes[i] = (shape, colour)``.
    """
    classes = [(s, c) for s in SHAPE_NAMES for c in colors]
    prompts = [
        [phrase(s, c, size, pos) for size in SIZES for pos in range(9)]
        for s, c in classes
    ]
    return classes, prompts


def evaluate(model, tokenizer: WordTokenizer, seed: int = 0, n: int = 400) -> dict:
    """Every number the mini-CLIP's card records, on freshly drawn test pairs.

    * retrieval R@1/5/10 both ways on ``n`` seen-combination pairs (split 2);
    * zero-shot shape accuracy on ``n`` one-shape images: the bare name
      (``"una estrella"``), each size × position template alone (mean), and the
      ensemble of all 27;
    * colour–shape classification among the 80 combinations (prompts ensembled) on
      seen combinations and on the held-out ones (:data:`HELD_OUT`), with the shape
      and colour accuracies on the held-out ones.
    """
    model.eval()
    metrics = {}
    pairs = make_pairs(n, seed, 2)
    img = encode_images(model, pairs.images)
    txt = encode_texts(model, tokenizer, pairs.captions)
    metrics.update(retrieval_recall(img, txt, pairs.captions))

    one = WorldConfig(img_size=WORLD.img_size)  # one shape per image
    single = make_pairs(n, seed, 3, config=one)
    single_img = encode_images(model, single.images)
    shape_labels = [SHAPE_NAMES.index(p[0][0]) for p in single.shapes]
    bare = class_embeddings(model, tokenizer, [[phrase(s)] for s in SHAPE_NAMES])
    metrics["zeroshot_shape_bare"] = zero_shot_accuracy(single_img, bare, shape_labels)
    alone = [
        zero_shot_accuracy(
            single_img, class_embeddings(model, tokenizer, shape_prompts([t])), shape_labels
        )
        for t in SHAPE_TEMPLATES
    ]
    metrics["zeroshot_shape_single_template_mean"] = sum(alone) / len(alone)
    metrics["zeroshot_shape_single_template_min"] = min(alone)
    metrics["zeroshot_shape_single_template_max"] = max(alone)
    ensemble = class_embeddings(model, tokenizer, shape_prompts(SHAPE_TEMPLATES))
    metrics["zeroshot_shape_ensemble"] = zero_shot_accuracy(
        single_img, ensemble, shape_labels
    )

    classes, prompts = combo_prompts()
    combos = class_embeddings(model, tokenizer, prompts)
    held = set(HELD_OUT)
    seen_idx = [i for i, p in enumerate(single.shapes) if p[0] not in held]
    seen_labels = [classes.index(single.shapes[i][0]) for i in seen_idx]
    metrics["combo_seen_accuracy"] = zero_shot_accuracy(
        single_img[seen_idx], combos, seen_labels
    )
    unseen = make_pairs(n, seed, 4, combos="unseen")
    unseen_img = encode_images(model, unseen.images)
    unseen_labels = [classes.index(p[0]) for p in unseen.shapes]
    predicted = (unseen_img @ combos.T).argmax(dim=-1).tolist()
    truth = [p[0] for p in unseen.shapes]
    metrics["combo_unseen_accuracy"] = zero_shot_accuracy(unseen_img, combos, unseen_labels)
    metrics["combo_unseen_shape_accuracy"] = sum(
        classes[p][0] == t[0] for p, t in zip(predicted, truth)
    ) / len(truth)
    metrics["combo_unseen_color_accuracy"] = sum(
        classes[p][1] == t[1] for p, t in zip(predicted, truth)
    ) / len(truth)
    metrics["chance_combo"] = 1 / len(classes)
    metrics["chance_shape"] = 1 / len(SHAPE_NAMES)
    metrics["temperature"] = model.temperature
    return {k: round(v, 4) for k, v in metrics.items()}


# -- a real CLIP on real images (chapter 5, full profile) -----------------------------

#: English prompt templates for a real CLIP on Fashion-MNIST (our choice, in the
#: spirit of the paper's ImageNet templates).
FASHION_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a black and white photo of a {}.",
    "a low resolution photo of a {}.",
    "a photo of a {}, a type of clothing.",
    "a centered photo of a {}.",
)


def clip_pixels(grey: torch.Tensor, size: int) -> torch.Tensor:
    """Grey images in ``[0, 1]`` to a real CLIP's input: resized (bicubic) to
    ``size``, repeated to three channels, normalised with CLIP's mean and std.

    Args:
        grey: ``(N, 1, H, W)`` in ``[0, 1]`` (e.g. Fashion-MNIST with
            ``normalize=False``).
        size: the model's input side (224 for ViT-B/32).

    Returns:
        ``(N, 3, size, size)``.
    """
    from .hub.clip import CLIP_MEAN, CLIP_STD

    x = F.interpolate(grey, size=(size, size), mode="bicubic", align_corners=False)
    x = x.clamp(0, 1).expand(-1, 3, -1, -1)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def hf_ids(tokenizer, context_length: int = 77):
    """A callable ``texts → (B, context_length)`` ids from Hugging Face's
    ``CLIPTokenizer`` (padded with the end-of-text token, as CLIP's own code does), for
    :func:`encode_texts` and :func:`class_embeddings`."""

    def tokenize(texts: Sequence[str]) -> torch.Tensor:
        return tokenizer(
            list(texts),
            padding="max_length",
            max_length=context_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids

    return tokenize


@torch.no_grad()
def zero_shot_predict(
    model, pixels: torch.Tensor, classes: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """Predicted class of each already-preprocessed image: the most similar row of
    ``classes`` (:func:`class_embeddings`).

    Args:
        model: a :class:`~vitcourse.models.CLIP`.
        pixels: ``(N, 3, H, W)`` model inputs.
        classes: ``(C, d_e)`` normalised class vectors.

    Returns:
        ``(N,)`` class indices.
    """
    out = []
    for i in range(0, len(pixels), batch_size):
        features = F.normalize(model.encode_image(pixels[i : i + batch_size]), dim=-1)
        out.append((features @ classes.T).argmax(dim=-1))
    return torch.cat(out)
