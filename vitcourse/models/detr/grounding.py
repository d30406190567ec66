"""A text-prompted DETR in the spirit of Grounding DINO: open-set detection, small.

DETR's class head has one output per class fixed at training time. Grounding DINO
replaces it with a comparison: each object query is scored against the embedding
of each noun phrase of a text prompt, so the "classes" are whatever the prompt says.
This is that idea at the smallest size that shows it:

* the image side is DETR's (backbone, encoder, N object queries, box MLP);
* a :class:`PhraseEncoder` (a two-layer transformer over words, from our layers)
  turns each phrase into one vector; any module with the same call, a CLIP text
  tower for instance, can take its place (``GroundingDETR(config, text_encoder=...)``);
* the score of query ``n`` for phrase ``p`` is ``s · cos(W qₙ, tₚ) + b`` (a learned
  scale and bias), a logit: ``sigmoid`` gives the probability that the box is
  something the phrase describes. Phrases are scored independently (Grounding
  DINO's sub-sentence representation also keeps them apart), so a prompt may list
  any number of phrases.

Training matches queries to objects as DETR does (the class cost becomes the mean
probability of the phrases that describe the object) and replaces the cross-entropy
with a sigmoid focal loss over (query, phrase) pairs: a query matched to a red star
must say yes to "estrella", "figura roja" and "estrella roja" in the prompt, and no
to the rest.

Grounding DINO itself fuses text and image much earlier (a feature enhancer with
cross-attention both ways, language-guided query selection, a cross-modality
decoder) and uses BERT and Swin; none of that is needed to see the idea work.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from ...layers import EncoderBlock, LearnedPositionalEmbedding
from ..registry import register_model
from .detr import DETR, DETRConfig
from .loss import SetCriterion
from .matcher import HungarianMatcher

__all__ = ["GroundingCriterion", "GroundingDETR", "GroundingDETRConfig", "GroundingMatcher", "PhraseEncoder"]

_SPECIALS = ("[PAD]", "[UNK]")


class PhraseEncoder(nn.Module):
    """Words → one embedding per phrase: word embeddings, a small transformer, a mean.

    Args:
        vocab: the known words (lower case); others become ``[UNK]``.
        embed_dim: width ``D``.
        depth: transformer blocks.
        num_heads: attention heads.
        max_words: longest phrase, in words.

    Call:
        ``encoder(phrases)`` with a list of P strings → ``(P, D)``.
    """

    def __init__(
        self, vocab: Sequence[str], embed_dim: int = 64, depth: int = 2, num_heads: int = 4, max_words: int = 6
    ) -> None:
        super().__init__()
        self.vocab = list(_SPECIALS) + [w for w in vocab if w not in _SPECIALS]
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_words = max_words
        self.embed = nn.Embedding(len(self.vocab), embed_dim, padding_idx=0)
        self.pos = LearnedPositionalEmbedding(max_words, embed_dim)
        self.blocks = nn.ModuleList(EncoderBlock(embed_dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)

    def tokenize(self, phrases: Sequence[str]) -> torch.Tensor:
        """``(P, max_words)`` word ids, ``0`` after the end (``[PAD]``)."""
        ids = torch.zeros(len(phrases), self.max_words, dtype=torch.long)
        for i, text in enumerate(phrases):
            words = re.findall(r"\w+", text.lower())[: self.max_words]
            if not words:
                raise ValueError(f"phrase {i} is empty: {text!r}; every phrase needs at least one word")
            ids[i, : len(words)] = torch.tensor([self.index.get(w, 1) for w in words])
        return ids

    def forward(self, phrases: Sequence[str]) -> torch.Tensor:
        """Encode P phrases → ``(P, D)``."""
        ids = self.tokenize(phrases).to(self.embed.weight.device)  # (P, T)
        words = ids != 0  # (P, T)
        x = self.pos(self.embed(ids))  # (P, T, D)
        mask = words[:, None, None, :]  # (P, 1, 1, T): attend to real words only
        for block in self.blocks:
            x = block(x, mask=mask)
        x = self.norm(x)
        return (x * words[..., None]).sum(1) / words.sum(1, keepdim=True)  # (P, D): mean over words


@dataclass
class GroundingDETRConfig(DETRConfig):
    """A :class:`DETRConfig` plus the text side.

    Args:
        vocab: words the :class:`PhraseEncoder` knows.
        text_depth: its transformer blocks; ``text_heads`` its heads; ``max_words``
            its longest phrase.
        prior: initial probability of every (query, phrase) pair (sets the logit bias,
            as focal-loss detectors do, so training doesn't start by unlearning "yes").
    """

    vocab: tuple[str, ...] = field(default_factory=tuple)
    text_depth: int = 2
    text_heads: int = 4
    max_words: int = 6
    prior: float = 0.01


class GroundingDETR(DETR):
    """DETR whose class head is replaced by scores against phrase embeddings.

    Args:
        config: :class:`GroundingDETRConfig` (``num_classes`` is unused).
        text_encoder: any module mapping a list of P phrases to ``(P, D)``; default a
            :class:`PhraseEncoder` over ``config.vocab``.

    Shapes:
        images ``(B, 3, H, W)`` and P phrases → ``pred_logits`` ``(B, N, P)``
        (one logit per query and phrase), ``pred_boxes`` ``(B, N, 4)``, and
        ``aux_outputs`` as in DETR.
    """

    def __init__(self, config: GroundingDETRConfig, text_encoder: nn.Module | None = None) -> None:
        super().__init__(config)
        del self.class_embed  # the phrases take its place
        D = config.embed_dim
        self.text_encoder = text_encoder or PhraseEncoder(
            config.vocab, D, config.text_depth, config.text_heads, config.max_words
        )
        self.query_proj = nn.Linear(D, D)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.logit_bias = nn.Parameter(torch.tensor(-math.log((1 - config.prior) / config.prior)))

    def encode_phrases(self, phrases: Sequence[str]) -> torch.Tensor:
        """``(P, D)`` unit-length phrase embeddings."""
        return F.normalize(self.text_encoder(list(phrases)), dim=-1)

    def score(self, hs: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., N, P)`` of decoder outputs ``(..., N, D)`` against phrases
        ``(P, D)``.
        """
        queries = F.normalize(self.query_proj(hs), dim=-1)
        return self.logit_scale.exp() * queries @ text.T + self.logit_bias

    def forward_head(
        self, features: torch.Tensor, valid: torch.Tensor, phrases: Sequence[str] | torch.Tensor
    ) -> dict[str, Any]:
        """Everything after the CNN; ``phrases`` as strings or as :meth:`encode_phrases`' output."""
        text = phrases if isinstance(phrases, torch.Tensor) else self.encode_phrases(phrases)
        hs = self.forward_queries(features, valid)  # (L, B, N, D)
        outputs = [{"pred_logits": self.score(h, text), "pred_boxes": self.bbox_embed(h).sigmoid()} for h in hs]
        out = outputs[-1]
        if self.config.aux_loss:
            out["aux_outputs"] = outputs[:-1]
        return out

    def forward(
        self, images: torch.Tensor, phrases: Sequence[str] | torch.Tensor, pixel_mask: torch.Tensor | None = None
    ) -> dict[str, Any]:
        """Detect what the phrases describe (see the class docstring)."""
        return self.forward_head(*self.forward_backbone(images, pixel_mask), phrases)


class GroundingMatcher(HungarianMatcher):
    """DETR's matcher with the class term for phrases: minus the mean probability of the object's phrases.

    Targets carry ``positive`` ``(M, P)``: which of the prompt's phrases describe
    each object (every object needs at least one).
    """

    def class_cost(self, logits: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(N, M)``: minus the mean probability of the phrases that describe each object."""
        prob = logits.float().sigmoid()  # (N, P)
        positive = target["positive"].float()  # (M, P)
        return -(prob @ positive.T) / positive.sum(1).clamp(min=1)


class GroundingCriterion(SetCriterion):
    """The set loss with a sigmoid focal loss over (query, phrase) pairs instead of the cross-entropy.

    Args:
        alpha, gamma: focal-loss parameters (0.25, 2).
        other arguments as :class:`~.loss.SetCriterion` (``num_classes`` unused).
    """

    def __init__(self, matcher: GroundingMatcher | None = None, alpha: float = 0.25, gamma: float = 2.0,
                 weight_ce: float = 2.0, weight_bbox: float = 5.0, weight_giou: float = 2.0) -> None:  # fmt: skip
        super().__init__(1, matcher or GroundingMatcher(2.0, 5.0, 2.0), 1.0, weight_ce, weight_bbox, weight_giou)
        self.alpha, self.gamma = alpha, gamma

    def loss_classes(self, logits, targets, indices, num_boxes):
        """Sigmoid focal loss over every (query, phrase) pair: matched queries say yes to their object's phrases."""
        wanted = torch.zeros_like(logits)  # (B, N, P): unmatched queries say no to every phrase
        for b, (pred, tgt) in enumerate(indices):
            wanted[b, pred] = targets[b]["positive"][tgt].to(logits)
        return sigmoid_focal_loss(logits, wanted, self.alpha, self.gamma, reduction="sum") / num_boxes


@register_model(GroundingDETR)
def grounding_detr_mini() -> GroundingDETRConfig:
    """detr_mini's image side with a 2-block phrase encoder over the generated world's words."""
    from dataclasses import asdict

    from ...detection.phrases import vocabulary
    from .detr import detr_mini

    return GroundingDETRConfig(**{**asdict(detr_mini()), "num_classes": 1}, vocab=tuple(vocabulary()))
