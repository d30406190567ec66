"""Hugging Face's ``ViTMAEForPreTraining`` into our :class:`~vitcourse.models.MAE`, same numbers.

The two compute the same function; a converter only renames:

* the encoder is ``vit.*`` there and ``encoder.*`` (a plain ViT) here, with the ViT's
  own renaming (:data:`~vitcourse.hub.vit.HF_VIT_RULES`: Q, K, V fused into ``qkv``);
* the decoder's blocks are ``decoder.decoder_layers.{i}`` there, ``decoder_blocks.{i}``
  here; ``mask_token``, ``decoder_embed``, ``decoder_norm``, ``decoder_pred`` keep
  their names;
* both position tables are fixed sin-cos values stored with the weights; they are
  copied as they are (Hugging Face orders the sines and cosines differently from
  :func:`~vitcourse.layers.sincos_2d_encoding`, which is why they are copied and not
  recomputed).

With the same ``noise`` both draw the same mask (:func:`~vitcourse.models.random_masking`
sorts the noise exactly as Hugging Face's ``random_masking`` does), so their
predictions, masks and losses can be compared directly.
"""

from __future__ import annotations

from torch import nn

from ..models import MAE, MAEConfig
from .mapping import Rule, build_uninitialised, import_state, load_exactly, refuse
from .vit import HF_VIT_RULES, mlp_ratio_for

__all__ = ["HF_MAE_RULES", "mae_from_hf", "tiny_mae_config"]

_WB = r"(weight|bias)"
_DEC = r"decoder\.decoder_layers\.(\d+)"


def _encoder_rules() -> list[Rule]:
    """The ViT's rules, moved under ``vit.`` (theirs) and ``encoder.`` (ours)."""
    rules = []
    for rule in HF_VIT_RULES:
        target = None if rule.target is None else f"encoder.{rule.target}"
        rules.append(Rule(rf"vit\.{rule.pattern}", target, rule.part))
    return rules


# Hugging Face name -> ours.
HF_MAE_RULES = [
    *_encoder_rules(),
    Rule(rf"decoder\.decoder_embed\.{_WB}", r"decoder_embed.\1"),
    Rule(r"decoder\.mask_token", "mask_token"),
    Rule(r"decoder\.decoder_pos_embed", "decoder_pos_embed"),
    Rule(rf"{_DEC}\.layernorm_before\.{_WB}", r"decoder_blocks.\1.norm1.\2"),
    Rule(rf"{_DEC}\.attention\.(?:q_proj|attention\.query)\.{_WB}", r"decoder_blocks.\1.attn.qkv.\2", part=0),
    Rule(rf"{_DEC}\.attention\.(?:k_proj|attention\.key)\.{_WB}", r"decoder_blocks.\1.attn.qkv.\2", part=1),
    Rule(rf"{_DEC}\.attention\.(?:v_proj|attention\.value)\.{_WB}", r"decoder_blocks.\1.attn.qkv.\2", part=2),
    Rule(rf"{_DEC}\.attention\.(?:o_proj|output\.dense)\.{_WB}", r"decoder_blocks.\1.attn.proj.\2"),
    Rule(rf"{_DEC}\.layernorm_after\.{_WB}", r"decoder_blocks.\1.norm2.\2"),
    Rule(rf"{_DEC}\.(?:mlp\.fc1|intermediate\.dense)\.{_WB}", r"decoder_blocks.\1.mlp.fc1.\2"),
    Rule(rf"{_DEC}\.(?:mlp\.fc2|output\.dense)\.{_WB}", r"decoder_blocks.\1.mlp.fc2.\2"),
    Rule(rf"decoder\.decoder_norm\.{_WB}", r"decoder_norm.\1"),
    Rule(rf"decoder\.decoder_pred\.{_WB}", r"decoder_pred.\1"),
]


def _square(value, name: str, what: str) -> int:
    if isinstance(value, int):
        return value
    if value[0] != value[1]:
        refuse(what, [f"{name}={tuple(value)} is not square"])
    return int(value[0])


def mae_from_hf(hf_model: nn.Module) -> MAE:
    """Our MAE with the weights of a Hugging Face ``ViTMAEForPreTraining``.

    Args:
        hf_model: the Hugging Face model (``from_pretrained("facebook/vit-mae-base")``
            or built from a ``ViTMAEConfig``). Its config sets ours: sizes, mask ratio,
            ``norm_pix_loss``, ``layer_norm_eps``.

    Returns:
        An :class:`~vitcourse.models.MAE` computing the same predictions and loss for
        the same ``noise``, in the source's train/eval mode.

    Raises:
        ConversionError: another class, an activation other than the exact GELU, an
            encoder and decoder with different MLP ratios, or parameters that don't
            map one to one; the message names them.
    """
    name = type(hf_model).__name__
    what = f"Hugging Face {name} into vitcourse MAE"
    hint = "convert a ViTMAEForPreTraining (e.g. facebook/vit-mae-base)"
    if name != "ViTMAEForPreTraining":
        refuse(what, [f"expected ViTMAEForPreTraining, got {name}"], hint)
    c = hf_model.config
    reasons = []
    if c.hidden_act != "gelu":
        reasons.append(f'hidden_act={c.hidden_act!r}: our MLP uses the exact GELU ("gelu")')
    ratio = mlp_ratio_for(c.intermediate_size, c.hidden_size)
    decoder_ratio = mlp_ratio_for(c.decoder_intermediate_size, c.decoder_hidden_size)
    if int(c.decoder_hidden_size * ratio) != c.decoder_intermediate_size:
        reasons.append(
            f"MLP ratios differ: encoder {c.intermediate_size}/{c.hidden_size}, decoder "
            f"{c.decoder_intermediate_size}/{c.decoder_hidden_size} ({decoder_ratio:.3f}); ours share one"
        )
    if reasons:
        refuse(what, reasons, hint)
    config = MAEConfig(
        img_size=_square(c.image_size, "image_size", what),
        patch_size=_square(c.patch_size, "patch_size", what),
        in_chans=c.num_channels,
        embed_dim=c.hidden_size,
        depth=c.num_hidden_layers,
        num_heads=c.num_attention_heads,
        mlp_ratio=ratio,
        qkv_bias=c.qkv_bias,
        decoder_embed_dim=c.decoder_hidden_size,
        decoder_depth=c.decoder_num_hidden_layers,
        decoder_num_heads=c.decoder_num_attention_heads,
        mask_ratio=c.mask_ratio,
        norm_pix_loss=bool(c.norm_pix_loss),
        norm_eps=c.layer_norm_eps,
    )
    imported = import_state(hf_model.state_dict(), HF_MAE_RULES)
    model = load_exactly(build_uninitialised(lambda: MAE(config)), imported, what, hint)
    model.encoder.pos_embed.weight.requires_grad_(False)  # fixed, as in the source
    return model.train(hf_model.training)


def tiny_mae_config():
    """A tiny Hugging Face ``ViTMAEConfig`` (the offline stand-in for ``facebook/vit-mae-base``):
    32×32 images, 4×4 patches, D=32, 2 blocks; decoder 32-d, 1 block."""
    from transformers import ViTMAEConfig

    return ViTMAEConfig(
        image_size=32,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=64,
    )
