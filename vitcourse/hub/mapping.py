"""Moving weights between two implementations of the same network, by renaming.

Two implementations of one architecture hold the same numbers under different names:
Hugging Face calls ViT's first query projection ``layers.0.attention.q_proj.weight``,
timm and this package keep Q, K and V in one fused matrix, ``blocks.0.attn.qkv.weight``.
A converter here is a list of :class:`Rule` s, each turning one family of the other
framework's parameter names into ours, plus, for a fused tensor, which third of it the
parameter is. The same rules serve both directions:

* into our model: rename every tensor of the other model, concatenate Q, K, V, and load
  the result strictly (:func:`load_exactly`): every parameter we need must come, nothing
  may be left over, every shape must agree;
* out of our model: for every name the other model expects, look up (and, for Q, K, V,
  slice) our tensor (:func:`export_state`).

Anything else is an error (:class:`ConversionError`) whose message names the missing,
unexpected and mismatched parameters: a converter that silently dropped a tensor would
produce a model that runs and computes something else.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "ConversionError",
    "Imported",
    "Rule",
    "build_uninitialised",
    "export_state",
    "import_state",
    "load_exactly",
    "placement",
    "refuse",
    "translate",
]

#: How many names of each kind an error message lists before it says "and N more".
_SHOWN = 8


class ConversionError(ValueError):
    """Two models whose architectures differ: no renaming makes one into the other."""


@dataclass(frozen=True)
class Rule:
    """One family of parameter names of another framework and its name in ours.

    Args:
        pattern: regular expression matching the whole foreign name.
        target: our name, as a :func:`re.sub` template on ``pattern`` (``r"blocks.\\1.norm1.\\2"``)
            or a function of the match (to renumber, say);
            ``None`` for a tensor with no counterpart that is dropped on purpose (a buffer
            derived from the config, a pooler that the classifier doesn't use).
        part: for a third of a fused Q, K, V tensor, which one (Q = 0, K = 1, V = 2),
            stacked along dim 0 as ``nn.Linear(D, 3 * D)`` stores them.
    """

    pattern: str
    target: str | Callable[[re.Match], str] | None
    part: int | None = None


def placement(tensors: Iterable[torch.Tensor]) -> dict:
    """``{"device": …, "dtype": …}`` of the first floating-point tensor (for ``module.to(**…)``)."""
    first = next((t for t in tensors if t.is_floating_point()), None)
    return {} if first is None else {"device": first.device, "dtype": first.dtype}


def build_uninitialised(factory: Callable[[], nn.Module]) -> nn.Module:
    """Build a model whose parameters are all about to be overwritten, skipping their initialisation.

    Initialising ViT-B's 86 M weights takes seconds on a CPU, for nothing: a converter
    replaces every one. The model is built on the meta device (no memory, no
    arithmetic) and then given uninitialised memory. A model with buffers (computed
    in ``__init__``, not loaded, like Swin's relative-position index) is built normally.

    Args:
        factory: builds the model, e.g. ``lambda: ViT(config)``.

    Returns:
        The model on the CPU; its parameters hold arbitrary values until loaded.
    """
    with torch.device("meta"):
        model = factory()
    if any(True for _ in model.buffers()):
        return factory()
    return model.to_empty(device="cpu")


def translate(name: str, rules: Iterable[Rule]) -> tuple[str | None, int | None] | None:
    """Our name (and fused part) for a foreign parameter name.

    Args:
        name: the other framework's name, e.g. ``"layers.3.attention.k_proj.bias"``.
        rules: tried in order; the first whose ``pattern`` matches the whole name wins.

    Returns:
        ``(our_name, part)``; ``(None, None)`` for a name dropped on purpose; ``None`` when
        no rule knows the name.
    """
    for rule in rules:
        match = re.fullmatch(rule.pattern, name)
        if match:
            if rule.target is None:
                return None, None
            target = rule.target(match) if callable(rule.target) else match.expand(rule.target)
            return target, rule.part
    return None


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"\n  {title} ({len(items)}): {shown}{more}"


def refuse(
    what: str,
    reasons: list[str],
    hint: str = "",
    missing: Iterable[str] = (),
    unexpected: Iterable[str] = (),
    mismatched: Iterable[str] = (),
) -> None:
    """Raise a :class:`ConversionError` that says what differs and what to do.

    Args:
        what: ``"<source> into <target>"``.
        reasons: differences that parameter names can't show (an activation, a
            LayerNorm epsilon, a pooling rule).
        hint: what the user can do instead.
        missing: parameters the target needs and the source lacks.
        unexpected: parameters of the source with no place in the target.
        mismatched: ``"name: got shape, expected shape"`` lines.
    """
    message = f"cannot convert {what}: the architectures differ."
    message += "".join(f"\n  - {reason}" for reason in reasons)
    for title, items in (
        ("missing, the target needs them", missing),
        ("unexpected, no counterpart in the target", unexpected),
        ("mismatched shapes", mismatched),
    ):
        if items:
            message += _listing(title, sorted(items))
    raise ConversionError(message + ("\n  What to do: " + hint if hint else ""))


@dataclass
class Imported:
    """A foreign state dict renamed to ours (see :func:`import_state`).

    Attributes:
        state: our name → tensor (Q, K, V already concatenated).
        origin: our name → the foreign name(s) it came from, for error messages.
        unknown: foreign names no rule knows.
    """

    state: dict[str, torch.Tensor]
    origin: dict[str, str]
    unknown: list[str]


def import_state(foreign: dict[str, torch.Tensor], rules: list[Rule], prefix: str = "") -> Imported:
    """Rename a foreign state dict to our names, fusing split Q, K, V tensors.

    Args:
        foreign: the other model's ``state_dict()``.
        rules: the converter's renaming rules.
        prefix: stripped from every foreign name first (Hugging Face's ``"vit."`` in
            ``ViTForImageClassification``).

    Returns:
        An :class:`Imported` with our state dict, where each tensor came from, and the
        names no rule knows.
    """
    state, origin, unknown = {}, {}, []
    pieces: dict[str, dict[int, tuple[str, torch.Tensor]]] = defaultdict(dict)
    for name, tensor in foreign.items():
        short = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        found = translate(short, rules)
        if found is None:
            unknown.append(name)
        elif found[0] is None:
            continue
        elif found[1] is None:
            state[found[0]], origin[found[0]] = tensor, name
        else:
            pieces[found[0]][found[1]] = (name, tensor)
    for ours, parts in pieces.items():
        if sorted(parts) == [0, 1, 2]:  # Q, K and V all came
            state[ours] = torch.cat([parts[i][1] for i in range(3)], dim=0)
            origin[ours] = " + ".join(parts[i][0] for i in range(3))
        else:
            unknown.extend(name for name, _ in parts.values())
    return Imported(state, origin, unknown)


def load_exactly(model: nn.Module, imported: Imported, what: str, hint: str = "") -> nn.Module:
    """Load an imported state dict into ``model``, refusing any difference.

    Args:
        model: our freshly built model (its config inferred from the foreign one).
        imported: from :func:`import_state`.
        what: ``"<source> into <target>"`` for the error message.
        hint: what the user can do instead, appended to the message.

    Returns:
        ``model``, with the weights loaded, on the device and in the floating-point
        dtype of the source tensors.

    Raises:
        ConversionError: with the missing, unexpected and mismatched names and shapes.
    """
    expected = model.state_dict()
    missing = [name for name in expected if name not in imported.state]
    unexpected = list(imported.unknown) + [
        imported.origin[name] if imported.origin[name] == name else f"{imported.origin[name]} (as {name})"
        for name in imported.state
        if name not in expected
    ]
    mismatched = [
        f"{name} (from {imported.origin[name]}): got {tuple(tensor.shape)}, expected {tuple(expected[name].shape)}"
        for name, tensor in imported.state.items()
        if name in expected and tensor.shape != expected[name].shape
    ]
    if missing or unexpected or mismatched:
        refuse(what, [], hint, missing, unexpected, mismatched)
    model.to(**placement(imported.state.values()))  # the source's device and floating dtype
    with torch.no_grad():
        model.load_state_dict(imported.state, strict=True)
    return model


def export_state(
    ours: dict[str, torch.Tensor], target: nn.Module, rules: list[Rule], what: str, prefix: str = ""
) -> dict[str, torch.Tensor]:
    """Our tensors under the names (and split) a foreign model expects.

    Args:
        ours: our model's ``state_dict()``.
        target: the foreign model, built with the matching config.
        rules: the converter's renaming rules (foreign → ours, used backwards).
        what: ``"<source> into <target>"`` for the error message.
        prefix: the foreign model's prefix (see :func:`import_state`).

    Returns:
        A state dict for ``target.load_state_dict(..., strict=False)``: every foreign
        tensor that has a counterpart; the ones dropped on purpose (derived buffers) keep
        the target's own values.

    Raises:
        ConversionError: a foreign tensor we can't fill, one of ours left unused, or a
            shape that differs.
    """
    out, used, missing, mismatched = {}, set(), [], []
    for name, reference in target.state_dict().items():
        short = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        found = translate(short, rules)
        if found is None:
            missing.append(name)
            continue
        ours_name, part = found
        if ours_name is None:
            continue
        if ours_name not in ours:
            missing.append(f"{name} (ours: {ours_name})")
            continue
        tensor = ours[ours_name] if part is None else ours[ours_name].chunk(3, dim=0)[part]
        used.add(ours_name)
        if tensor.shape != reference.shape:
            got, expected = tuple(tensor.shape), tuple(reference.shape)
            mismatched.append(f"{name} (from {ours_name}): got {got}, expected {expected}")
        out[name] = tensor.detach().clone()
    unexpected = [name for name in ours if name not in used]
    if missing or unexpected or mismatched:
        refuse(what, [], "", missing, unexpected, mismatched)
    return out
