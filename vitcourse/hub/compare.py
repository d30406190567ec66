"""Proof that two implementations compute the same thing: layer by layer, not just the logits.

Equal logits could hide two errors that cancel, or a difference the final LayerNorm
squashes. :func:`compare_models` runs both models on the same images and records the
input of the first encoder block (the embedded tokens), the output of every block and
the final output, then reports the largest absolute difference at each point.

Blocks are found by class: our ``EncoderBlock``/``SwinBlock``, Hugging Face's
``ViTLayer``/``SwinLayer``, timm's ``Block``/``SwinTransformerBlock``. Token maps
``(B, H, W, C)`` are flattened to ``(B, H·W, C)`` so that all three compare.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

__all__ = ["BLOCK_CLASSES", "compare_models", "trace"]

#: Class names of one encoder block, in every framework this module knows.
BLOCK_CLASSES = ("EncoderBlock", "SwinBlock", "ViTLayer", "SwinLayer", "Block", "SwinTransformerBlock")


def _blocks(model: nn.Module) -> list[nn.Module]:
    blocks = [module for module in model.modules() if type(module).__name__ in BLOCK_CLASSES]
    if not blocks:
        raise ValueError(
            f"found no encoder block in {type(model).__name__}; compare_models knows the classes {BLOCK_CLASSES}"
        )
    return blocks


def _tokens(x) -> torch.Tensor:
    """A block's output as ``(B, L, C)`` (Hugging Face blocks return tuples; Swin maps are 4-D)."""
    x = x[0] if isinstance(x, tuple) else x
    return x.reshape(x.shape[0], -1, x.shape[-1])


def _final_output(model: nn.Module, output) -> torch.Tensor:
    """The logits, or the pooled features of a model without head (what our ``num_classes=0`` returns)."""
    if isinstance(output, torch.Tensor):
        return output
    if getattr(output, "logits", None) is not None:
        return output.logits
    if type(model).__name__ == "ViTModel":
        return output.last_hidden_state[:, 0]  # the normalised [CLS] token; the pooler is left out
    return output.pooler_output


@torch.no_grad()
def trace(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``model`` in eval mode and keep what enters and leaves its encoder blocks.

    Args:
        model: ours, Hugging Face's or timm's ViT or Swin.
        images: ``(B, C, H, W)``.

    Returns:
        ``{"embeddings": (B, L, C), "block 0": …, …, "output": logits or features}``.
    """
    blocks = _blocks(model)
    record: dict[str, torch.Tensor] = {}

    def keep_input(module, args, kwargs):
        record["embeddings"] = _tokens(args[0] if args else next(iter(kwargs.values())))

    def keeper(i: int):
        def keep_output(module, args, output):
            record[f"block {i}"] = _tokens(output)

        return keep_output

    handles = [blocks[0].register_forward_pre_hook(keep_input, with_kwargs=True)]
    handles += [block.register_forward_hook(keeper(i)) for i, block in enumerate(blocks)]
    was_training = model.training
    try:
        model.eval()
        record["output"] = _final_output(model, model(images))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {"embeddings": record.pop("embeddings"), **record}


def compare_models(
    ours: nn.Module, theirs: nn.Module, images: torch.Tensor
) -> pd.DataFrame:
    """Largest absolute difference between two models, at the embeddings, after every
    block, at the output.

    Args:
        ours: one model (e.g. a converted :class:`~vitcourse.models.ViT`).
        theirs: the other (e.g. the Hugging Face or timm original).
        images: ``(B, C, H, W)``, the same for both.

    Returns:
        One row per point: ``layer``, ``tensor_shape``, ``max_abs_diff``,
        ``max_abs_value`` (the scale the difference compares with).

    Raises:
        ValueError: the two have different numbers of blocks or different shapes at a
            point.
    """
    a, b = trace(ours, images), trace(theirs, images)
    if a.keys() != b.keys():
        raise ValueError(f"the models have different blocks: {list(a)} vs {list(b)}")
    rows = []
    for layer in a:
        if a[layer].shape != b[layer].shape:
            raise ValueError(
                f"{layer}: shapes differ, {tuple(a[layer].shape)} vs "
                f"{tuple(b[layer].shape)}"
            )
        rows.append(
            {
                "layer": layer,
                "tensor_shape": tuple(a[layer].shape),
                "max_abs_diff": (a[layer] - b[layer]).abs().max().item(),
                "max_abs_value": b[layer].abs().max().item(),
            }
        )
    return pd.DataFrame(rows)
