"""Weights from ``diffusers``' ``DiTTransformer2DModel`` into our :class:`~.dit.DiT`.

The two are the same network with three differences of bookkeeping and one of numbers:

* ``diffusers`` gives **every block its own** timestep-and-class embedder
  (``transformer_blocks[i].norm1.emb``) and the final layer reads block 0's; DiT has one,
  shared. Converted DiT checkpoints hold identical copies, so we take block 0's and
  check that the others agree.
* Q, K and V are three linears there (``to_q``, ``to_k``, ``to_v``), one ``(3D, D)``
  matrix here (``qkv``), stacked in that order.
* The fixed 2-D sin/cos positions list the same sines and cosines in another order
  (columns first, then rows, each ``[sin | cos]``; ours rows first, interleaved); the
  table is a buffer, so it is copied across.
* The sinusoidal code of ``t``: ``diffusers``' DiT uses ``Timesteps(256,
  flip_sin_to_cos=True, downscale_freq_shift=1)``, frequencies ``10000^(-i/127)``;
  DiT's code (and ours, :func:`~.dit.timestep_embedding`) uses ``10000^(-i/128)``. This
  one changes the numbers; the test measures it and shows that with
  ``downscale_freq_shift=0`` the two models agree.

The MLP's layer norm has ``eps = norm_eps`` there (``1e-5`` by default) and ``1e-6``
here, as in DiT: build the ``diffusers`` model with ``norm_eps=1e-6`` to compare.
"""

from __future__ import annotations

import torch

from .dit import DiT, DiTConfig

__all__ = ["config_from_diffusers", "dit_from_diffusers"]


def config_from_diffusers(hf_config) -> DiTConfig:
    """Our :class:`DiTConfig` for a ``DiTTransformer2DModel`` config (ε only: ``out_channels == in_channels``)."""
    out = hf_config.out_channels or hf_config.in_channels
    if out != hf_config.in_channels:
        raise ValueError(
            f"our DiT predicts ε only (out_channels == in_channels); this model has out_channels={out} for "
            f"in_channels={hf_config.in_channels} (a learned variance): not supported"
        )
    return DiTConfig(
        img_size=hf_config.sample_size,
        patch_size=hf_config.patch_size,
        in_chans=hf_config.in_channels,
        embed_dim=hf_config.num_attention_heads * hf_config.attention_head_dim,
        depth=hf_config.num_layers,
        num_heads=hf_config.num_attention_heads,
        mlp_ratio=4.0,
        num_classes=hf_config.num_embeds_ada_norm,
    )


@torch.no_grad()
def dit_from_diffusers(hf_model) -> DiT:
    """Build our DiT with the weights of a ``diffusers`` ``DiTTransformer2DModel``.

    Args:
        hf_model: the ``diffusers`` model.

    Returns:
        A :class:`DiT` in eval mode.

    Raises:
        ValueError: the blocks' embedders differ (we have one shared embedder).
    """
    model = DiT(config_from_diffusers(hf_model.config)).eval()
    first = hf_model.transformer_blocks[0].norm1.emb
    for i, block in enumerate(hf_model.transformer_blocks):
        for a, b in zip(block.norm1.emb.parameters(), first.parameters()):
            if not torch.equal(a, b):
                raise ValueError(
                    f"block {i}'s timestep/class embedder differs from block 0's; our DiT shares one "
                    f"embedder, so it can only take models whose blocks hold copies of the same one"
                )
    model.patch_embed.proj.load_state_dict(hf_model.pos_embed.proj.state_dict())
    model.pos_embed.copy_(hf_model.pos_embed.pos_embed)
    model.t_embedder.mlp[0].load_state_dict(first.timestep_embedder.linear_1.state_dict())
    model.t_embedder.mlp[2].load_state_dict(first.timestep_embedder.linear_2.state_dict())
    model.y_embedder.weight.copy_(first.class_embedder.embedding_table.weight)
    for ours, theirs in zip(model.blocks, hf_model.transformer_blocks):
        attn = theirs.attn1
        ours.attn.qkv.weight.copy_(torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight]))
        ours.attn.qkv.bias.copy_(torch.cat([attn.to_q.bias, attn.to_k.bias, attn.to_v.bias]))
        ours.attn.proj.load_state_dict(attn.to_out[0].state_dict())
        ours.mlp.fc1.load_state_dict(theirs.ff.net[0].proj.state_dict())
        ours.mlp.fc2.load_state_dict(theirs.ff.net[2].state_dict())
        ours.adaLN_modulation[1].load_state_dict(theirs.norm1.linear.state_dict())
    model.final_layer.adaLN_modulation[1].load_state_dict(hf_model.proj_out_1.state_dict())
    model.final_layer.linear.load_state_dict(hf_model.proj_out_2.state_dict())
    return model
