"""Hugging Face's ``DetrForObjectDetection`` into our :class:`~vitcourse.models.DETR`.

The two compute the same function; they differ in names and in where the backbone
comes from:

* **backbone**: Hugging Face builds it either with timm (``use_timm_backbone=True``,
  what ``facebook/detr-resnet-50`` uses: torchvision's names, ``conv1``,
  ``layer1.0.conv1``…) or with its own ``ResNetBackbone`` (a ``ResNetConfig``,
  what runs offline: ``embedder.embedder.convolution``,
  ``encoder.stages.0.layers.0.layer.0.convolution``…); both become our
  :class:`~vitcourse.models.detr.TorchvisionResNet`. Its batch norms are frozen on
  both sides (buffers, not parameters).
* **attention**: ``q_proj``/``k_proj``/``v_proj``/``o_proj`` there, one fused ``qkv``
  and ``proj`` here.
* **layer names**: ``self_attn_layer_norm``, ``encoder_attn``, ``final_layer_norm`` →
  ``norm1``, ``cross_attn``, ``norm2``/``norm3``; ``class_labels_classifier`` →
  ``class_embed``; ``bbox_predictor`` → ``bbox_embed``.

Names of transformers 4 (``fc1`` directly in the layer, ``out_proj``,
``backbone.conv_encoder.model``) are recognised too.

One behaviour differs and is refused: with ``auxiliary_loss=True`` Hugging Face's
decoder feeds the *normalised* output of each layer to the next one, while DETR
(and this package) normalises only the copy it hands to the heads; the final
predictions then differ. ``facebook/detr-resnet-50`` has ``auxiliary_loss=False``.
"""

from __future__ import annotations

from torch import nn

from ..models.detr import DETR, DETRConfig
from .mapping import ConversionError, Rule, build_uninitialised, import_state, load_exactly, refuse

__all__ = ["HF_DETR_RULES", "detr_from_hf"]

_WB = r"(weight|bias)"
_BN = r"(weight|bias|running_mean|running_var)"
_BB = r"model\.backbone\.(?:conv_encoder\.)?model"
_ST = rf"{_BB}\.encoder\.stages\.(\d+)\.layers\.(\d+)"  # Hugging Face's own ResNet
_ENC = r"model\.encoder\.layers\.(\d+)"
_DEC = r"model\.decoder\.layers\.(\d+)"
_MLP = r"(?:mlp\.)?"  # transformers 5 | 4


def _stage(match, rest: str) -> str:
    return f"backbone.body.layer{int(match.group(1)) + 1}.{match.group(2)}.{rest}"


def _attention(prefix: str, theirs: str, ours: str) -> list[Rule]:
    return [
        Rule(rf"{prefix}\.{theirs}\.q_proj\.{_WB}", rf"{ours}.qkv.\2", part=0),
        Rule(rf"{prefix}\.{theirs}\.k_proj\.{_WB}", rf"{ours}.qkv.\2", part=1),
        Rule(rf"{prefix}\.{theirs}\.v_proj\.{_WB}", rf"{ours}.qkv.\2", part=2),
        Rule(rf"{prefix}\.{theirs}\.(?:o_proj|out_proj)\.{_WB}", rf"{ours}.proj.\2"),
    ]


HF_DETR_RULES = [
    # backbone, Hugging Face's ResNet
    Rule(rf"{_BB}\.embedder\.embedder\.convolution\.weight", "backbone.body.conv1.weight"),
    Rule(rf"{_BB}\.embedder\.embedder\.normalization\.{_BN}", r"backbone.body.bn1.\1"),
    Rule(rf"{_ST}\.shortcut\.convolution\.weight", lambda m: _stage(m, "downsample.0.weight")),
    Rule(rf"{_ST}\.shortcut\.normalization\.{_BN}", lambda m: _stage(m, f"downsample.1.{m.group(3)}")),
    Rule(rf"{_ST}\.layer\.(\d+)\.convolution\.weight", lambda m: _stage(m, f"conv{int(m.group(3)) + 1}.weight")),
    Rule(
        rf"{_ST}\.layer\.(\d+)\.normalization\.{_BN}",
        lambda m: _stage(m, f"bn{int(m.group(3)) + 1}.{m.group(4)}"),
    ),
    # backbone, timm's ResNet (torchvision's names)
    Rule(rf"{_BB}\.(.+)\.num_batches_tracked", None),
    Rule(rf"{_BB}\.((?:conv1|bn1|layer\d+)\..+)", r"backbone.body.\1"),
    # projection, queries
    Rule(rf"model\.input_projection\.{_WB}", r"input_proj.\1"),
    Rule(r"model\.query_position_embeddings\.weight", "query_embed.weight"),
    # encoder
    *_attention(_ENC, "self_attn", r"transformer.encoder.\1.self_attn"),
    Rule(rf"{_ENC}\.self_attn_layer_norm\.{_WB}", r"transformer.encoder.\1.norm1.\2"),
    Rule(rf"{_ENC}\.{_MLP}(fc1|fc2)\.{_WB}", r"transformer.encoder.\1.mlp.\2.\3"),
    Rule(rf"{_ENC}\.final_layer_norm\.{_WB}", r"transformer.encoder.\1.norm2.\2"),
    # decoder
    *_attention(_DEC, "self_attn", r"transformer.decoder.\1.self_attn"),
    Rule(rf"{_DEC}\.self_attn_layer_norm\.{_WB}", r"transformer.decoder.\1.norm1.\2"),
    *_attention(_DEC, "encoder_attn", r"transformer.decoder.\1.cross_attn"),
    Rule(rf"{_DEC}\.encoder_attn_layer_norm\.{_WB}", r"transformer.decoder.\1.norm2.\2"),
    Rule(rf"{_DEC}\.{_MLP}(fc1|fc2)\.{_WB}", r"transformer.decoder.\1.mlp.\2.\3"),
    Rule(rf"{_DEC}\.final_layer_norm\.{_WB}", r"transformer.decoder.\1.norm3.\2"),
    Rule(rf"model\.decoder\.layernorm\.{_WB}", r"transformer.decoder_norm.\1"),
    # heads
    Rule(rf"class_labels_classifier\.{_WB}", r"class_embed.\1"),
    Rule(rf"bbox_predictor\.layers\.(\d+)\.{_WB}", r"bbox_embed.layers.\1.\2"),
]

_TIMM_RESNETS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}


def _backbone_options(config, what: str, hint: str) -> dict:
    """Our :class:`TorchvisionResNet` arguments for Hugging Face's backbone config."""
    bb = config.backbone_config
    kind = getattr(bb, "model_type", None)
    if kind == "timm_backbone":
        name = bb.backbone
        if name not in _TIMM_RESNETS or getattr(bb, "output_stride", None) not in (None, 32):
            refuse(what, [f"timm backbone {name!r} (output_stride={getattr(bb, 'output_stride', None)}): "
                          f"ours takes {sorted(_TIMM_RESNETS)} at stride 32"], hint)  # fmt: skip
        block, depths = _TIMM_RESNETS[name]
        return {"block": block, "depths": depths}
    if kind != "resnet":
        refuse(what, [f"backbone {kind!r}: ours takes a ResNet (Hugging Face's or timm's)"], hint)
    reasons = []
    if bb.hidden_act != "relu":
        reasons.append(f"hidden_act={bb.hidden_act!r}: torchvision's blocks use ReLU")
    if bb.downsample_in_first_stage or getattr(bb, "downsample_in_bottleneck", False):
        reasons.append("downsample_in_first_stage / downsample_in_bottleneck: ours strides the 3×3 of stages 2+")
    last = f"stage{len(bb.depths)}"
    if list(bb.out_features) != [last]:
        reasons.append(f"out_features={bb.out_features}: DETR reads the last stage only ([{last!r}])")
    if reasons:
        refuse(what, reasons, hint)
    return {
        "block": bb.layer_type,
        "depths": tuple(bb.depths),
        "widths": tuple(bb.hidden_sizes),
        "stem_width": bb.embedding_size,
    }


def detr_from_hf(hf_model: nn.Module) -> DETR:
    """Our DETR with the weights of a Hugging Face ``DetrForObjectDetection``.

    Args:
        hf_model: from ``from_pretrained("facebook/detr-resnet-50")`` or built from a
            ``DetrConfig`` (offline: ``backbone_config=ResNetConfig(...)``,
            ``use_timm_backbone=False``).

    Returns:
        A :class:`~vitcourse.models.DETR` whose ``pred_logits`` and ``pred_boxes``
        are Hugging Face's ``logits`` and ``pred_boxes`` (images pre-processed the same
        way: ours doesn't standardise them), in the source's train/eval mode.

    Raises:
        ConversionError: another class, backbone, activation, position code,
            ``auxiliary_loss=True`` (see the module docstring), or parameters that
            don't map one to one.
    """
    name = type(hf_model).__name__
    what = f"Hugging Face {name} into vitcourse DETR"
    hint = "convert a DetrForObjectDetection with a ResNet backbone (facebook/detr-resnet-50)"
    if name != "DetrForObjectDetection":
        refuse(what, [f"expected DetrForObjectDetection, got {name}"], hint)
    c = hf_model.config
    reasons = []
    if c.activation_function != "relu":
        reasons.append(f"activation_function={c.activation_function!r}: ours is ReLU")
    if c.position_embedding_type != "sine":
        reasons.append(f"position_embedding_type={c.position_embedding_type!r}: ours is the sine code")
    if c.encoder_attention_heads != c.decoder_attention_heads or c.encoder_ffn_dim != c.decoder_ffn_dim:
        reasons.append("encoder and decoder differ in heads or FFN width: ours share them")
    if c.auxiliary_loss:
        reasons.append("auxiliary_loss=True: Hugging Face's decoder then normalises between layers, DETR doesn't")
    if getattr(c, "dilation", False):
        reasons.append("dilation=True (DC5): ours keeps stride 32")
    if reasons:
        refuse(what, reasons, hint)
    try:
        config = DETRConfig(
            num_classes=c.num_labels,
            backbone="torchvision",
            backbone_options=_backbone_options(c, what, hint),
            in_chans=c.num_channels,
            embed_dim=c.d_model,
            num_heads=c.encoder_attention_heads,
            enc_depth=c.encoder_layers,
            dec_depth=c.decoder_layers,
            mlp_dim=c.encoder_ffn_dim,
            num_queries=c.num_queries,
            dropout=c.dropout,
            aux_loss=False,
        )
    except ValueError as error:
        raise ConversionError(f"cannot convert {what}: {error}") from error
    imported = import_state(hf_model.state_dict(), HF_DETR_RULES)
    model = load_exactly(build_uninitialised(lambda: DETR(config)), imported, what, hint)
    return model.train(hf_model.training)
