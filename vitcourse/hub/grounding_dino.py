"""Hugging Face's ``GroundingDinoForObjectDetection``: the Hub model in ``full``, a tiny offline twin in ``smoke``.

``IDEA-Research/grounding-dino-tiny`` (Swin-T image backbone, BERT text encoder) is
what chapter 6 labels images with on Colab. Offline there are neither its weights
nor BERT's vocabulary, so :func:`tiny_grounding_dino` builds the same architecture
with random weights and a tokenizer over a small vocabulary of our own. Its outputs
mean nothing; it shows that the same :func:`vitcourse.detection.detect` call runs
the real architecture end to end. Four constraints make a tiny one run:

* the vocabulary has at least 1 030 entries: the model finds the phrase separators
  by BERT's ids (``[CLS]`` 101, ``[SEP]`` 102, ``.`` 1012, ``?`` 1029), so those ids
  must exist and mean those tokens;
* ``d_model`` is a multiple of 32 (its group norms have 32 groups);
* images of at least 128 px (four feature levels, the last at stride 64 after a
  stride-2 convolution on stride 32);
* with one decoder layer, ``decoder_bbox_embed_share=False``.
"""

from __future__ import annotations

import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["GROUNDING_DINO_ID", "bert_like_vocab", "load_grounding_dino", "tiny_grounding_dino"]

GROUNDING_DINO_ID = "IDEA-Research/grounding-dino-tiny"
_SPECIAL_IDS = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".", 1029: "?"}


def _bert_normal(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.lower())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def bert_like_vocab(words: Sequence[str], size: int = 1100) -> list[str]:
    """A BERT-style vocabulary whose special tokens sit at BERT's ids, with ``words`` in free slots.

    Args:
        words: the words the tokenizer should know (lower-cased and stripped of accents,
            as BERT's uncased tokenizer reads them).
        size: entries in all (at least 1 030).

    Returns:
        The token of each id.
    """
    free = [i for i in range(104, size) if i not in _SPECIAL_IDS]
    words = [_bert_normal(w) for w in words]  # BERT's uncased tokenizer lowercases and strips accents
    words = [w for w in dict.fromkeys(words) if w not in _SPECIAL_IDS.values()]
    if size < 1030 or len(words) > len(free):
        raise ValueError(f"need size >= 1030 and room for {len(words)} words; got size={size}")
    vocab = [f"[unused{i}]" for i in range(size)]
    for i, token in _SPECIAL_IDS.items():
        vocab[i] = token
    for i, word in zip(free, words):
        vocab[i] = word
    return vocab


def tiny_grounding_dino(words: Sequence[str], image_size: int = 128, seed: int = 0):
    """A random-weight Grounding DINO and its processor, built offline.

    Args:
        words: the tokenizer's words (e.g. the generated world's); others become ``[UNK]``.
        image_size: the processor's image side (at least 128).
        seed: seed of the random weights (the global generator is left alone).

    Returns:
        ``(model, processor)``; the model in eval mode.
    """
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    if image_size < 128:
        raise ValueError(f"image_size must be at least 128 for four feature levels, got {image_size}")
    vocab = bert_like_vocab(words)
    folder = Path(tempfile.mkdtemp(prefix="vitcourse_gdino_"))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": image_size, "longest_edge": image_size})
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
    backbone = SwinConfig(
        image_size=image_size, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
        window_size=4, out_indices=[2, 3, 4],
    )  # fmt: skip
    text = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64,
    )  # fmt: skip
    config = GroundingDinoConfig(
        backbone_config=backbone, use_timm_backbone=False, use_pretrained_backbone=False, text_config=text,
        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, num_queries=20, num_feature_levels=4, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32, text_enhancer_dim=64, fusion_dropout=0.0, fusion_droppath=0.0,
        decoder_bbox_embed_share=False,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(config).eval()
    return model, processor


def load_grounding_dino(profile: str = "auto", words: Sequence[str] = (), verbose: bool = True) -> tuple[nn.Module, object]:
    """``IDEA-Research/grounding-dino-tiny`` at its pinned revision, or (offline, ``smoke``) the tiny twin.

    Args:
        profile: ``"auto"``, ``"smoke"`` or ``"full"``.
        words: the tiny twin's vocabulary (ignored by the Hub model).
        verbose: say which one loaded.

    Returns:
        ``(model, processor)``; ``model.provenance`` says what it is.
    """
    from ..runtime import resolve_profile
    from .pretrained import HUB_MODELS, Provenance, _label, _say, _why_not_the_hub, load_pretrained, load_processor

    profile = resolve_profile(profile)
    if profile == "full":
        model = load_pretrained(GROUNDING_DINO_ID, fallback="stand-in", profile=profile, verbose=verbose)
        if not model.provenance.stand_in:
            return model, load_processor(GROUNDING_DINO_ID, model=model, profile=profile, verbose=verbose)
    model, processor = tiny_grounding_dino(words or ("a",))
    entry = HUB_MODELS[GROUNDING_DINO_ID]
    reason = _why_not_the_hub(profile, 1.5) or "the Hub model could not be loaded"
    provenance = Provenance(GROUNDING_DINO_ID, entry.revision, "tiny GroundingDinoForObjectDetection with random "
                            "weights and a 1100-token vocabulary (its outputs mean nothing)", True, reason)  # fmt: skip
    _label(model, provenance)
    _say(str(provenance), verbose)
    return model, processor
