"""Hugging Face's ``SamModel`` into our :class:`~vitcourse.models.Sam`, with the same masks.

The two implementations compute the same function; the names differ, and a few
tensors are laid out differently:

* the ViT's Q, K, V are fused in both (``attn.qkv``); the two-way transformer's are
  three ``nn.Linear`` in Hugging Face (``q_proj``, ``k_proj``, ``v_proj``) and one
  ``qkv`` of :class:`~vitcourse.layers.MultiHeadAttention` here;
* the four point-type embeddings are four ``nn.Embedding(1, C)`` there, one
  ``nn.Embedding(4, C)`` here (stacked before renaming);
* the Fourier matrix is stored twice there (``shared_image_embedding`` and the prompt
  encoder's, the same tensor), once here (``prompt_encoder.pe_layer.gaussian``);
* the neck and the mask convolutions are ``nn.Sequential`` here (numbered layers).

Anything our :class:`~vitcourse.models.SamConfig` can't express (another activation,
a Fourier size that isn't half the embedding's channels, prompt and vision image sizes
that disagree) is refused with a :class:`~vitcourse.hub.ConversionError`.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from ..models.sam import Sam, SamConfig
from .mapping import Rule, build_uninitialised, import_state, load_exactly, refuse
from .vit import mlp_ratio_for

__all__ = ["hf_sam_rules", "sam_config_from_hf", "sam_from_hf"]

_WB = r"(weight|bias)"
_QKV = {"q": 0, "k": 1, "v": 2}
_FF = r"(?P<part>proj_in|proj_out|layers\.(?P<index>\d+))\.(?P<wb>weight|bias)"


def _feedforward(ours: str, last: int):
    """Renumber a Hugging Face ``SamFeedForward`` (``proj_in``, ``layers.i``, ``proj_out``)
    as our :class:`~vitcourse.models.sam.StackedMLP` (``layers.0`` … ``layers.{last}``).

    ``ours`` is a template with ``{0}`` for the match's first group (a hypernetwork's index).
    """

    def target(match: re.Match) -> str:
        part, index, wb = match.group("part"), match.group("index"), match.group("wb")
        number = 0 if part == "proj_in" else last if part == "proj_out" else int(index) + 1
        return f"{ours.format(match.group(1))}.layers.{number}.{wb}"

    return target


def hf_sam_rules(iou_head_depth: int) -> list[Rule]:
    """Hugging Face ``SamModel`` names → ours (the IoU head's depth numbers its last layer)."""
    enc, dec = r"vision_encoder", r"mask_decoder\.transformer"
    attn = r"(self_attn|cross_attn_token_to_image|cross_attn_image_to_token)"
    rules = [
        Rule(r"(?:shared_image_embedding|prompt_encoder\.shared_embedding)\.positional_embedding",
             "prompt_encoder.pe_layer.gaussian"),
        Rule(rf"{enc}\.pos_embed", "image_encoder.pos_embed"),
        Rule(rf"{enc}\.patch_embed\.projection\.{_WB}", r"image_encoder.patch_embed.proj.\1"),
        Rule(rf"{enc}\.layers\.(\d+)\.layer_norm([12])\.{_WB}", r"image_encoder.blocks.\1.norm\2.\3"),
        Rule(rf"{enc}\.layers\.(\d+)\.attn\.(rel_pos_[hw])", r"image_encoder.blocks.\1.\2"),
        Rule(rf"{enc}\.layers\.(\d+)\.attn\.(qkv|proj)\.{_WB}", r"image_encoder.blocks.\1.attn.\2.\3"),
        Rule(rf"{enc}\.layers\.(\d+)\.mlp\.lin([12])\.{_WB}", r"image_encoder.blocks.\1.mlp.fc\2.\3"),
        Rule(rf"{enc}\.neck\.conv1\.weight", "image_encoder.neck.0.weight"),
        Rule(rf"{enc}\.neck\.layer_norm1\.{_WB}", r"image_encoder.neck.1.\1"),
        Rule(rf"{enc}\.neck\.conv2\.weight", "image_encoder.neck.2.weight"),
        Rule(rf"{enc}\.neck\.layer_norm2\.{_WB}", r"image_encoder.neck.3.\1"),
        Rule(r"prompt_encoder\.point_embed\.weight", "prompt_encoder.point_embed.weight"),  # stacked
        Rule(r"prompt_encoder\.(not_a_point_embed|no_mask_embed)\.weight", r"prompt_encoder.\1.weight"),
        Rule(rf"prompt_encoder\.mask_embed\.conv1\.{_WB}", r"prompt_encoder.mask_downscaling.0.\1"),
        Rule(rf"prompt_encoder\.mask_embed\.layer_norm1\.{_WB}", r"prompt_encoder.mask_downscaling.1.\1"),
        Rule(rf"prompt_encoder\.mask_embed\.conv2\.{_WB}", r"prompt_encoder.mask_downscaling.3.\1"),
        Rule(rf"prompt_encoder\.mask_embed\.layer_norm2\.{_WB}", r"prompt_encoder.mask_downscaling.4.\1"),
        Rule(rf"prompt_encoder\.mask_embed\.conv3\.{_WB}", r"prompt_encoder.mask_downscaling.6.\1"),
        Rule(r"mask_decoder\.(iou_token|mask_tokens)\.weight", r"mask_decoder.\1.weight"),
        Rule(rf"{dec}\.layers\.(\d+)\.{attn}\.out_proj\.{_WB}", r"mask_decoder.transformer.blocks.\1.\2.proj.\3"),
        Rule(rf"{dec}\.layers\.(\d+)\.layer_norm([1-4])\.{_WB}", r"mask_decoder.transformer.blocks.\1.norm\2.\3"),
        Rule(rf"{dec}\.layers\.(\d+)\.mlp\.lin([12])\.{_WB}", r"mask_decoder.transformer.blocks.\1.mlp.fc\2.\3"),
        Rule(rf"{dec}\.final_attn_token_to_image\.out_proj\.{_WB}",
             r"mask_decoder.transformer.final_attn_token_to_image.proj.\1"),
        Rule(rf"{dec}\.layer_norm_final_attn\.{_WB}", r"mask_decoder.transformer.norm_final.\1"),
        Rule(rf"mask_decoder\.(upscale_conv[12])\.{_WB}", r"mask_decoder.\1.\2"),
        Rule(rf"mask_decoder\.upscale_layer_norm\.{_WB}", r"mask_decoder.upscale_norm.\1"),
        Rule(rf"mask_decoder\.output_hypernetworks_mlps\.(\d+)\.{_FF}",
             _feedforward("mask_decoder.hypernetworks.{0}", 2)),
        Rule(rf"mask_decoder\.(iou_prediction_head)\.{_FF}", _feedforward("mask_decoder.iou_head", iou_head_depth - 1)),
    ]
    for name, part in _QKV.items():
        rules.append(Rule(rf"{dec}\.layers\.(\d+)\.{attn}\.{name}_proj\.{_WB}",
                          r"mask_decoder.transformer.blocks.\1.\2.qkv.\3", part=part))
        rules.append(Rule(rf"{dec}\.final_attn_token_to_image\.{name}_proj\.{_WB}",
                          r"mask_decoder.transformer.final_attn_token_to_image.qkv.\1", part=part))
    return rules


def _stack_point_embeddings(state: dict[str, torch.Tensor], count: int = 4) -> dict[str, torch.Tensor]:
    """Hugging Face's ``point_embed.{i}.weight`` ``(1, C)`` × 4 → one ``(4, C)`` (ours)."""
    keys = [f"prompt_encoder.point_embed.{i}.weight" for i in range(count)]
    if not all(key in state for key in keys):
        return state  # load_exactly will name what is missing
    stacked = torch.cat([state[key] for key in keys], dim=0)
    state = {k: v for k, v in state.items() if k not in keys}
    state["prompt_encoder.point_embed.weight"] = stacked
    return state


def sam_config_from_hf(hf_config, what: str = "Hugging Face SamModel into vitcourse Sam") -> SamConfig:
    """Our :class:`SamConfig` for a Hugging Face ``SamConfig``, refusing what ours can't express."""
    v, p, d = hf_config.vision_config, hf_config.prompt_encoder_config, hf_config.mask_decoder_config
    hint = "convert a SamModel with SAM's activations and consistent sizes (as the released checkpoints)"
    reasons = []
    if v.hidden_act != "gelu" or p.hidden_act != "gelu" or d.hidden_act != "relu":
        reasons.append(
            f"activations vision={v.hidden_act!r}, prompt={p.hidden_act!r}, decoder={d.hidden_act!r}: "
            f'ours are "gelu", "gelu", "relu"'
        )
    if 2 * v.num_pos_feats != v.output_channels:
        reasons.append(
            f"vision_config.num_pos_feats={v.num_pos_feats} is not output_channels // 2 = "
            f"{v.output_channels // 2}: the Fourier positions must have the embedding's channels"
        )
    if not p.hidden_size == d.hidden_size == v.output_channels:
        reasons.append(
            f"prompt hidden_size={p.hidden_size}, decoder hidden_size={d.hidden_size} and vision "
            f"output_channels={v.output_channels} must be equal"
        )
    if p.image_size != v.image_size or p.image_embedding_size != v.image_size // v.patch_size:
        reasons.append(
            f"prompt image_size={p.image_size}, image_embedding_size={p.image_embedding_size} don't match "
            f"the vision image_size={v.image_size} / patch_size={v.patch_size}"
        )
    if p.num_point_embeddings != 4:
        reasons.append(f"num_point_embeddings={p.num_point_embeddings}; ours has 4 point types")
    if not v.layer_norm_eps == p.layer_norm_eps == d.layer_norm_eps:
        reasons.append(
            f"LayerNorm epsilons differ (vision {v.layer_norm_eps}, prompt {p.layer_norm_eps}, decoder "
            f"{d.layer_norm_eps}); ours has one"
        )
    if reasons:
        refuse(what, reasons, hint)
    mlp_dim = v.mlp_dim if v.mlp_dim is not None else int(v.hidden_size * v.mlp_ratio)
    try:
        return SamConfig(
            img_size=v.image_size,
            patch_size=v.patch_size,
            in_chans=v.num_channels,
            embed_dim=v.hidden_size,
            depth=v.num_hidden_layers,
            num_heads=v.num_attention_heads,
            mlp_ratio=mlp_ratio_for(mlp_dim, v.hidden_size),
            window_size=v.window_size,
            global_attn_indexes=tuple(v.global_attn_indexes),
            use_abs_pos=v.use_abs_pos,
            use_rel_pos=v.use_rel_pos,
            qkv_bias=v.qkv_bias,
            norm_eps=v.layer_norm_eps,
            prompt_dim=v.output_channels,
            mask_in_chans=p.mask_input_channels,
            decoder_depth=d.num_hidden_layers,
            decoder_heads=d.num_attention_heads,
            decoder_mlp_dim=d.mlp_dim,
            attention_downsample_rate=d.attention_downsample_rate,
            num_multimask_outputs=d.num_multimask_outputs,
            iou_head_depth=d.iou_head_depth,
            iou_head_hidden_dim=d.iou_head_hidden_dim,
        )
    except ValueError as error:
        refuse(what, [f"our Sam can't take this configuration: {error}"], hint)


def sam_from_hf(hf_model: nn.Module) -> Sam:
    """Our :class:`~vitcourse.models.Sam` with the weights of a Hugging Face ``SamModel``.

    Args:
        hf_model: ``transformers.SamModel`` (from ``from_pretrained``, e.g.
            ``facebook/sam-vit-base``, or built from a ``SamConfig``).

    Returns:
        A :class:`~vitcourse.models.Sam` whose ``predict``/``forward`` give the same mask
        logits as the source's ``pred_masks`` and the same predicted IoUs as its
        ``iou_scores`` (points and labels in the same pixels), in the source's
        train/eval mode.

    Raises:
        ConversionError: another class, a configuration ours can't express, or
            parameters that don't map one to one; the message names them.
    """
    name = type(hf_model).__name__
    what = f"Hugging Face {name} into vitcourse Sam"
    if name != "SamModel":
        refuse(what, [f"expected SamModel, got {name}"], "pass transformers.SamModel (SAM 2 is another model)")
    config = sam_config_from_hf(hf_model.config, what)
    state = _stack_point_embeddings(dict(hf_model.state_dict()), 4)
    imported = import_state(state, hf_sam_rules(config.iou_head_depth))
    model = load_exactly(build_uninitialised(lambda: Sam(config)), imported, what)
    return model.train(hf_model.training)
