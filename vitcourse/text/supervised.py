"""Supervised fine-tuning of a pretrained GPT: objectives L2 and L3 = L2 + λ·L1.

GPT-1's recipe: a labelled sequence ``x¹ … xᵐ`` with label ``y`` goes through the
pretrained model; the last token's ``h_l^m`` feeds a new linear layer ``W_y``::

    P(y | x¹, …, xᵐ) = softmax(h_l^m W_y)          L2 = Σ log P(y | x¹, …, xᵐ)

and, as an auxiliary objective, the model keeps predicting the next token of the same
labelled text: ``L3 = L2 + λ · L1``. The paper found the auxiliary term helps larger
data sets and reported λ = 0.5.

The task here is real and Spanish: from the text of one verse, say which of the six
sections of the Bible (:data:`~vitcourse.text.SECTIONS`) it comes from. A verse ends
with a newline, which plays the role of GPT-1's *extract* token: the feature is read at
it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..models.gpt import GPT
from .corpus import SECTIONS, Verse

__all__ = ["Labelled", "accuracy", "encode_labelled", "finetune", "l3_loss", "sample_by_section"]


@dataclass
class Labelled:
    """A labelled batch: ``tokens`` ``(n, L)`` right-padded, ``last`` ``(n,)`` position of
    each sequence's last token, ``labels`` ``(n,)``, ``mask`` ``(n, L)`` True on real tokens."""

    tokens: torch.Tensor
    last: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> Labelled:
        """The examples at ``index``."""
        return Labelled(self.tokens[index], self.last[index], self.labels[index], self.mask[index])


def sample_by_section(verses: Sequence[Verse], per_class: int, seed: int) -> list[Verse]:
    """``per_class`` random verses of each section (fewer if a section has fewer).

    Args:
        verses: the pool (the training chapters for training, held-out ones for testing).
        per_class: verses per section.
        seed: seeds the choice.

    Returns:
        The chosen verses, shuffled.
    """
    rng = np.random.default_rng(seed)
    chosen = []
    for section in SECTIONS:
        pool = [v for v in verses if v.section == section]
        take = rng.choice(len(pool), size=min(per_class, len(pool)), replace=False)
        chosen += [pool[i] for i in take]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def encode_labelled(tokenizer, verses: Sequence[Verse], max_len: int, pad_id: int = 0) -> Labelled:
    """Tokenise verses ending with the extract token ``"\\n"``, right-pad, label by section.

    Args:
        tokenizer: the model's ``tokenizers.Tokenizer``.
        verses: labelled verses.
        max_len: longer verses keep their last ``max_len`` tokens.
        pad_id: id used for padding (never read: features come from ``last``).

    Returns:
        A :class:`Labelled`.
    """
    ids = [e.ids[-max_len:] for e in tokenizer.encode_batch([v.text + "\n" for v in verses])]
    width = max(map(len, ids))
    tokens = torch.full((len(ids), width), pad_id, dtype=torch.long)
    for i, row in enumerate(ids):
        tokens[i, : len(row)] = torch.tensor(row)
    lengths = torch.tensor([len(row) for row in ids])
    mask = torch.arange(width)[None, :] < lengths[:, None]
    labels = torch.tensor([SECTIONS.index(v.section) for v in verses])
    return Labelled(tokens, lengths - 1, labels, mask)


def l3_loss(
    model: GPT, batch: Labelled, lam: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``-(L2 + λ·L1)`` per example, averaged: the classification loss plus λ times the
    next-token loss on the same texts (padding excluded).

    Args:
        model: a GPT with a classification head (``num_classes > 0``).
        batch: a :class:`Labelled` batch.
        lam: the weight λ of the auxiliary language-modelling term (0 gives ``L2``).

    Returns:
        ``(total, classification, language_modelling)``, each a scalar.
    """
    h = model.hidden_states(batch.tokens)  # (B, L, D)
    cls = F.cross_entropy(model.head(model.last_token(h, batch.last)), batch.labels)
    if lam == 0:
        return cls, cls, torch.zeros(())
    # no loss on padding
    targets = batch.tokens[:, 1:].masked_fill(~batch.mask[:, 1:], -100)
    lm = F.cross_entropy(
        model.logits(h[:, :-1]).flatten(0, 1), targets.flatten(), ignore_index=-100
    )
    return cls + lam * lm, cls, lm


@torch.no_grad()
def accuracy(model: GPT, data: Labelled, batch_size: int = 256) -> float:
    """Fraction of examples whose most probable class is the label."""
    model.eval()
    right = 0
    for start in range(0, len(data), batch_size):
        part = data.subset(torch.arange(start, min(start + batch_size, len(data))))
        right += (model.classify(part.tokens, part.last).argmax(-1) == part.labels).sum().item()
    return right / len(data)


def finetune(model: GPT, train: Labelled, lam: float, epochs: int, lr: float, batch_size: int = 16,
             seed: int = 0) -> list[dict[str, float]]:
    """Fine-tune every parameter with ``L3 = L2 + λ·L1`` (Adam, linear decay, as GPT-1).

    Args:
        model: a GPT with a classification head; trained in place.
        train: labelled training examples.
        lam: λ (0: plain ``L2``).
        epochs: passes over ``train``.
        lr: peak learning rate (linear warm-up over the first 10 % of steps, then decay).
        batch_size: examples per step.
        seed: seeds the order of the examples.

    Returns:
        Per epoch: the mean classification and language-modelling losses.
    """
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / (steps - warm))
    )
    log = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        cls_sum = lm_sum = 0.0
        for start in range(0, len(train), batch_size):
            batch = train.subset(order[start : start + batch_size])
            total, cls, lm = l3_loss(model, batch, lam)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            cls_sum += cls.item() * len(batch)
            lm_sum += lm.item() * len(batch)
        log.append({"classification": cls_sum / len(train), "lm": lm_sum / len(train)})
    model.eval()
    return log
