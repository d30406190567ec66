"""Hugging Face's ``ImageGPTForCausalImageModeling`` into our :class:`~vitcourse.models.GPT`.

ImageGPT is GPT-2 with three differences, each a field of our
:class:`~vitcourse.models.GPTConfig`:

* its "layer norm" divides by the root mean square and multiplies by a gain, with no
  mean and no bias: ``norm="rmsnorm"`` (``ln_1``, ``ln_2``, ``ln_f`` have only a
  ``weight``);
* its output layer is a separate matrix, not the token embedding: ``lm_head="untied"``;
* its start-of-sequence token (id ``vocab_size - 1``) is read but never predicted, so
  the head has ``vocab_size - 1`` rows: ``start_token=True``.

The rest is GPT-2's layout: ``Conv1D`` weights stored ``(in, out)`` (transposed here),
one fused ``c_attn`` for Q, K and V, learned positions ``wpe``, the activation of the
config (``quick_gelu`` in the released models).
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from ..models import GPT
from .gpt import _config_from_hf as gpt2_config
from .mapping import Imported, build_uninitialised, load_exactly, refuse

__all__ = ["imagegpt_from_hf", "imagegpt_names", "tiny_imagegpt_config"]

# The activations ImageGPT may use (gpt.py maps each name to ours).
_ACTIVATIONS = ("quick_gelu", "gelu_new", "gelu", "relu")
_HINT = "convert an ImageGPTForCausalImageModeling (e.g. openai/imagegpt-small)"


def imagegpt_names(depth: int) -> list[tuple[str, str, bool]]:
    """``(hf_name, our_name, transpose)`` for every parameter (without ``transformer.``)."""
    pairs = [("wte.weight", "tok_embed.weight", False), ("wpe.weight", "pos_embed.weight", False)]
    for i in range(depth):
        h, b = f"h.{i}", f"blocks.{i}"
        pairs += [(f"{h}.ln_1.weight", f"{b}.norm1.weight", False), (f"{h}.ln_2.weight", f"{b}.norm2.weight", False)]
        for theirs, ours in (("attn.c_attn", "attn.qkv"), ("attn.c_proj", "attn.proj"),
                             ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):  # fmt: skip
            pairs += [(f"{h}.{theirs}.weight", f"{b}.{ours}.weight", True), (f"{h}.{theirs}.bias", f"{b}.{ours}.bias", False)]
    pairs.append(("ln_f.weight", "norm.weight", False))
    return pairs


def imagegpt_from_hf(hf_model: nn.Module) -> GPT:
    """Our GPT with the weights of a Hugging Face ``ImageGPTForCausalImageModeling``.

    Args:
        hf_model: from ``from_pretrained("openai/imagegpt-small")`` or an ``ImageGPTConfig``.

    Returns:
        A :class:`~vitcourse.models.GPT` (``norm="rmsnorm"``, ``lm_head="untied"``,
        ``start_token=True``) computing the same logits, in the source's train/eval mode.

    Raises:
        ConversionError: another class, an unknown activation, attention scaled
            otherwise, or parameters that don't correspond one to one.
    """
    name = type(hf_model).__name__
    what = f"Hugging Face {name} into vitcourse GPT (ImageGPT)"
    if name != "ImageGPTForCausalImageModeling":
        refuse(what, [f"expected ImageGPTForCausalImageModeling, got {name}"], _HINT)
    c = hf_model.config
    reasons = []
    if c.activation_function not in _ACTIVATIONS:
        reasons.append(f"activation_function={c.activation_function!r}: ours are {sorted(_ACTIVATIONS)}")
    if not c.scale_attn_weights or c.scale_attn_by_inverse_layer_idx:
        reasons.append("attention not scaled by exactly 1/√d_head")
    if c.add_cross_attention:
        reasons.append("add_cross_attention=True: not an ImageGPT for unconditional images")
    if reasons:
        refuse(what, reasons, _HINT)
    # GPT-2's layout and names (the checks above refused what differs), with ImageGPT's
    # norm, its own output layer and the start-of-image token.
    config = replace(gpt2_config(c), norm="rmsnorm", lm_head="untied", start_token=True)
    foreign = {k.removeprefix("transformer."): v for k, v in hf_model.state_dict().items()}
    state, origin = {}, {}
    for theirs, ours, transpose in imagegpt_names(config.depth):
        if theirs in foreign:
            state[ours] = foreign[theirs].T if transpose else foreign[theirs]
            origin[ours] = theirs
    if "lm_head.weight" in foreign:
        state["lm_head.weight"] = foreign["lm_head.weight"]
        origin["lm_head.weight"] = "lm_head.weight"
    known = {theirs for theirs, _, _ in imagegpt_names(config.depth)} | {"lm_head.weight"}
    unknown = [k for k in foreign if k not in known and not k.endswith(("attn.bias", "attn.masked_bias"))]
    imported = Imported({k: v.contiguous() for k, v in state.items()}, origin, unknown)
    model = load_exactly(build_uninitialised(lambda: GPT(config)), imported, what, _HINT)
    return model.train(hf_model.training)


def tiny_imagegpt_config():
    """A tiny ``ImageGPTConfig`` (the offline stand-in for ``openai/imagegpt-small``):
    16 colours + start token, 8×8 = 64 positions, 2 blocks, D=32."""
    from transformers import ImageGPTConfig

    return ImageGPTConfig(vocab_size=17, n_positions=64, n_embd=32, n_layer=2, n_head=4)
