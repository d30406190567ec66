"""Language modelling on a token stream: batches, the L1 training loop, evaluation.

The corpus becomes one long stream of token ids (verses separated by a newline,
chapters by ``<|endoftext|>``). Training draws random windows of ``seq_len + 1``
tokens: the model reads the first ``seq_len`` and predicts each next one (the ``L1``
objective, :func:`~vitcourse.models.gpt.lm_loss`). Evaluation cuts the held-out stream
into consecutive windows and scores every token but each window's first, which is
exactly the set of positions :func:`target_mask` marks for the n-gram baselines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models.gpt import GPT, lm_loss
from .bpe import END_OF_TEXT
from .corpus import Verse

__all__ = [
    "TOKENIZER_DIR",
    "LMHistory",
    "encode_verses",
    "evaluate_lm",
    "load_tokenizer",
    "random_windows",
    "target_mask",
    "train_lm",
]

#: Tokenizers trained by this project's scripts, shipped with the package.
TOKENIZER_DIR = Path(__file__).resolve().parent / "tokenizers"


def load_tokenizer(name: str):
    """A shipped ``tokenizers.Tokenizer`` by name (e.g. ``"reina_valera_bpe512"``)."""
    from tokenizers import Tokenizer

    path = TOKENIZER_DIR / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in TOKENIZER_DIR.glob("*.json"))
        raise FileNotFoundError(f"no tokenizer {name!r} in {TOKENIZER_DIR}; shipped: {known}")
    return Tokenizer.from_file(str(path))


def encode_verses(tokenizer, verses: Sequence[Verse]) -> np.ndarray:
    """One token stream: a chapter's verses joined by newlines, chapters by ``<|endoftext|>``.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` with the ``<|endoftext|>`` token.
        verses: in order.

    Returns:
        ``int64`` token ids ``(T,)``.
    """
    eot = tokenizer.token_to_id(END_OF_TEXT)
    chapters, last = [], None
    for verse in verses:
        if (verse.book, verse.chapter) != last:
            chapters.append([])
            last = (verse.book, verse.chapter)
        chapters[-1].append(verse.text)
    ids = []
    for encoding in tokenizer.encode_batch(["\n".join(c) for c in chapters]):
        ids.extend(encoding.ids)
        ids.append(eot)
    return np.asarray(ids, dtype=np.int64)


def random_windows(stream: np.ndarray, seq_len: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """A batch of random windows of ``seq_len + 1`` consecutive tokens: ``(B, seq_len + 1)``."""
    starts = torch.randint(0, len(stream) - seq_len - 1, (batch_size,), generator=generator)
    index = starts[:, None] + torch.arange(seq_len + 1)  # (B, L + 1)
    return torch.from_numpy(stream)[index]


def target_mask(num_tokens: int, seq_len: int) -> np.ndarray:
    """The positions :func:`evaluate_lm` scores: every token but each window's first.

    Args:
        num_tokens: length of the held-out stream.
        seq_len: the window length.

    Returns:
        Boolean ``(num_tokens,)``, False at multiples of ``seq_len`` and in the
        incomplete last window (which is dropped).
    """
    usable = num_tokens // seq_len * seq_len
    mask = np.zeros(num_tokens, dtype=bool)
    mask[:usable] = True
    mask[:usable:seq_len] = False
    return mask


@torch.no_grad()
def evaluate_lm(model: GPT, stream: np.ndarray, seq_len: int, batch_size: int = 32,
                max_windows: int | None = None) -> float:
    """Cross-entropy (nats per token) on consecutive windows of a held-out stream.

    Args:
        model: the language model.
        stream: held-out tokens.
        seq_len: window length (at most the model's ``max_seq_len``).
        batch_size: windows per forward pass.
        max_windows: score only the first windows (a quick estimate).

    Returns:
        The mean negative log-likelihood over the positions of :func:`target_mask`.
    """
    was_training = model.training
    model.eval()
    windows = torch.from_numpy(stream[: len(stream) // seq_len * seq_len]).view(-1, seq_len)
    if max_windows is not None:
        windows = windows[:max_windows]
    total, count = 0.0, 0
    for batch in windows.split(batch_size):
        n = batch.shape[0] * (seq_len - 1)
        total += lm_loss(model(batch), batch).item() * n
        count += n
    model.train(was_training)
    return total / count


@dataclass
class LMHistory:
    """What :func:`train_lm` measured: steps, training and validation losses, seconds."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train_lm(
    model: GPT,
    train_stream: np.ndarray,
    val_stream: np.ndarray,
    steps: int,
    seq_len: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 0.01,
    warmup: int = 100,
    eval_every: int = 100,
    eval_windows: int = 64,
    seed: int = 0,
    log=print,
) -> LMHistory:
    """Maximise ``L1``: AdamW on random windows, linear warm-up then cosine decay.

    Args:
        model: the GPT to train (in place).
        train_stream, val_stream: token streams (:func:`encode_verses`).
        steps: optimiser steps.
        seq_len: window length.
        batch_size: windows per step.
        lr: peak learning rate.
        weight_decay: AdamW's decoupled L2 (the GPT-1 paper's 0.01), on matrices only.
        warmup: steps of linear warm-up.
        eval_every: steps between validation estimates.
        eval_windows: windows of the validation stream per estimate.
        seed: seeds the window sampling.
        log: called with one line per evaluation (None: silent).

    Returns:
        An :class:`LMHistory`.
    """
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.98),
    )

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(seed)
    history, start, running = LMHistory(), time.perf_counter(), []
    model.train()
    for step in range(1, steps + 1):
        batch = random_windows(train_stream, seq_len, batch_size, generator)
        loss = _window_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running.append(loss.item())
        if step % eval_every == 0 or step == steps:
            val = evaluate_lm(model, val_stream, seq_len, max_windows=eval_windows)
            history.steps.append(step)
            history.train_loss.append(float(np.mean(running)))
            history.val_loss.append(val)
            running = []
            if log:
                log(f"step {step:5d}  train {history.train_loss[-1]:.3f}  val {val:.3f}  "
                    f"{time.perf_counter() - start:.0f} s")
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


def _window_loss(model: GPT, batch: torch.Tensor) -> torch.Tensor:
    """``L1`` on windows of ``seq_len + 1``: read ``seq_len`` tokens, predict the next of each."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    logits = model(inputs)  # (B, L, V)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
