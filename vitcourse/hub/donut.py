"""Our Donut next to Hugging Face's: the same layout at the same size, part by part.

Hugging Face builds Donut as a ``VisionEncoderDecoderModel``: a ``DonutSwinModel``
encoder, an ``MBartForCausalLM`` decoder with cross-attention, and, when the two widths
differ, a linear ``enc_to_dec_proj`` between them. :func:`hf_donut_config` writes that
configuration for a :class:`~vitcourse.models.donut.DonutConfig`, and
:func:`parameter_table` counts both models' parameters by part, so that a table can
show where they agree and where the designs differ (mBART's extra LayerNorms, its
position table with two spare rows, its untied output layer).
"""

from __future__ import annotations

from torch import nn

from ..models.donut import Donut, DonutConfig

__all__ = ["hf_donut_config", "parameter_table"]


def hf_donut_config(config: DonutConfig):
    """A ``VisionEncoderDecoderConfig`` (Donut-Swin + mBART) of the same size as ``config``.

    Args:
        config: our Donut's hyper-parameters.

    Returns:
        The Hugging Face configuration; ``VisionEncoderDecoderModel(cfg)`` builds it.
    """
    from transformers import DonutSwinConfig, MBartConfig, VisionEncoderDecoderConfig

    swin = config.encoder_config()
    encoder = DonutSwinConfig(
        image_size=[config.img_size, config.img_size],
        patch_size=config.patch_size,
        num_channels=config.in_chans,
        embed_dim=config.encoder_dim,
        depths=list(config.encoder_depths),
        num_heads=list(config.encoder_heads),
        window_size=config.window_size,
        mlp_ratio=swin.mlp_ratio,
        qkv_bias=swin.qkv_bias,
    )
    decoder = MBartConfig(
        vocab_size=config.vocab_size,
        d_model=config.embed_dim,
        decoder_layers=config.depth,
        decoder_attention_heads=config.num_heads,
        decoder_ffn_dim=int(config.embed_dim * config.mlp_ratio),
        max_position_embeddings=config.max_len,
        is_decoder=True,
        add_cross_attention=True,
        pad_token_id=config.pad_id,
        eos_token_id=config.eos_id,
        decoder_start_token_id=config.task_id,
        tie_word_embeddings=False,
    )
    return VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def parameter_table(ours: Donut, hf: nn.Module) -> list[dict]:
    """Parameters of each part of our Donut and of a ``VisionEncoderDecoderModel``.

    Args:
        ours: a :class:`~vitcourse.models.donut.Donut`.
        hf: a ``VisionEncoderDecoderModel`` (e.g. built from :func:`hf_donut_config`).

    Returns:
        One row per part (``{"parte", "nuestro", "hugging_face"}``) and a total row;
        tied weights count once.
    """
    decoder = (
        hf.decoder.model.decoder
    )  # MBartForCausalLM → MBartDecoderWrapper → MBartDecoder
    hf_head = hf.decoder.lm_head
    tied = hf_head.weight is decoder.embed_tokens.weight
    blocks_ours = _count(ours.blocks)
    rows = [
        ("codificador Swin", _count(ours.encoder), _count(hf.encoder)),
        (
            "puente codificador → decodificador",
            _count(ours.enc_to_dec),
            _count(getattr(hf, "enc_to_dec_proj", None)),
        ),
        (
            "incrustaciones de tokens y posiciones",
            _count(ours.token_embed) + ours.pos_embed.numel(),
            _count(decoder.embed_tokens) + _count(decoder.embed_positions),
        ),
        ("bloques del decodificador", blocks_ours, _count(decoder.layers)),
        (
            "normalizaciones finales",
            _count(ours.norm),
            _count(decoder.layernorm_embedding) + _count(decoder.layer_norm),
        ),
        ("capa de salida (sin contar pesos atados)", 0, 0 if tied else _count(hf_head)),
    ]
    table = [{"parte": p, "nuestro": a, "hugging_face": b} for p, a, b in rows]
    table.append(
        {
            "parte": "total",
            "nuestro": sum(p.numel() for p in ours.parameters()),
            "hugging_face": sum(p.numel() for p in hf.parameters()),
        }
    )
    return table
