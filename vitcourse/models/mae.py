"""Masked autoencoders (MAE, He et al., 2022): hide 75 % of the patches, rebuild them.

The recipe, one line each:

* cut the image into ``N`` patches and **hide a random 75 %** of them
  (:func:`random_masking`: sort random noise, keep the smallest quarter);
* the **encoder**, a plain :class:`~vitcourse.models.ViT` with fixed 2-D sin-cos
  positions, sees **only the visible patches** (:meth:`ViT.forward_visible`): a quarter
  of the tokens, so about a quarter of the cost (attention less still);
* a **narrow decoder** puts a learned ``[M]`` token in every hidden place, adds
  sin-cos positions to all ``N`` tokens (an ``[M]`` token alone does not know where it
  is) and predicts the pixels of every patch;
* the **loss** is the mean squared error on the hidden patches only, optionally on
  pixels normalised per patch (``norm_pix_loss``, the paper's better targets).

After pre-training the decoder is thrown away; the encoder is the product
(:meth:`MAE.features`, :meth:`MAE.to_classifier`).

Names follow the paper's code and Hugging Face's ``ViTMAEForPreTraining``
(``mask_token``, ``decoder_embed``, ``decoder_pos_embed``, ``decoder_pred``), so that
:func:`vitcourse.hub.mae_from_hf` only renames.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..layers import EncoderBlock, patchify, sincos_2d_encoding, unpatchify
from .registry import register_model
from .vit import ViT, ViTConfig

__all__ = ["MAE", "MAEConfig", "MAEOutput", "Masking", "mae_loss", "random_masking"]


@dataclass
class MAEConfig:
    """Hyper-parameters of an :class:`MAE`; defaults are the paper's ViT-B/16.

    Args:
        img_size, patch_size, in_chans: the images and their patches.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: the encoder (a ViT).
        decoder_embed_dim, decoder_depth, decoder_num_heads: the decoder (the paper's
            default: 512 wide, 8 blocks; the paper's Table 1 shows 1 block still works).
        mask_ratio: fraction of patches hidden (0.75).
        norm_pix_loss: compare with each patch's pixels standardised by the patch's own
            mean and variance (sharper reconstructions of edges, better features).
        norm_eps: LayerNorm epsilon (1e-6 in the paper's code, 1e-12 in Hugging Face's).
    """

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if self.decoder_embed_dim % self.decoder_num_heads:
            raise ValueError(
                f"decoder_embed_dim={self.decoder_embed_dim} is not divisible by "
                f"decoder_num_heads={self.decoder_num_heads}"
            )
        if self.decoder_embed_dim % 4:
            raise ValueError(
                f"decoder_embed_dim must be a multiple of 4 for 2-D sin-cos positions, "
                f"got {self.decoder_embed_dim}"
            )

    def encoder_config(self, num_classes: int = 0) -> ViTConfig:
        """The encoder's :class:`ViTConfig` (fixed sin-cos positions, mean pooling)."""
        return ViTConfig(
            img_size=self.img_size,
            patch_size=self.patch_size,
            in_chans=self.in_chans,
            num_classes=num_classes,
            embed_dim=self.embed_dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            qkv_bias=self.qkv_bias,
            pool="mean",
            norm_eps=self.norm_eps,
            pos_embed="sincos",
        )


class Masking(NamedTuple):
    """Which patches an image keeps, as :func:`random_masking` draws them.

    Attributes:
        keep: ``(B, L)`` indices of the visible patches, in shuffled order.
        restore: ``(B, N)`` the inverse permutation: where each patch went.
        mask: ``(B, N)`` bool, True for a hidden patch (raster order).
    """

    keep: torch.Tensor
    restore: torch.Tensor
    mask: torch.Tensor


def random_masking(
    batch_size: int,
    num_patches: int,
    mask_ratio: float,
    noise: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> Masking:
    """Hide a random ``mask_ratio`` of the patches of every image (each its own draw).

    Sorting uniform noise gives a random permutation per image; the patches with the
    ``L = int(N (1 - mask_ratio))`` smallest noise values stay visible.

    Args:
        batch_size: ``B``.
        num_patches: ``N``.
        mask_ratio: fraction hidden, e.g. 0.75.
        noise: ``(B, N)`` values to sort (by default uniform noise); equal noise
            gives equal masks, which is how two implementations are compared.
        device: where to draw the noise.

    Returns:
        A :class:`Masking`: ``keep`` ``(B, L)``, ``restore`` and ``mask`` ``(B, N)``.
    """
    if noise is None:
        noise = torch.rand(batch_size, num_patches, device=device)
    if noise.shape != (batch_size, num_patches):
        raise ValueError(
            f"noise must be (B, N) = {(batch_size, num_patches)}, "
            f"got {tuple(noise.shape)}"
        )
    num_keep = int(num_patches * (1 - mask_ratio))
    shuffle = noise.argsort(dim=1)  # (B, N): patches by increasing noise
    restore = shuffle.argsort(dim=1)  # (B, N): position of each patch in the shuffle
    hidden = torch.ones(batch_size, num_patches, dtype=torch.bool, device=noise.device)
    hidden[:, :num_keep] = False  # the first L of the shuffle stay visible...
    mask = torch.gather(hidden, 1, restore)  # ...back in raster order
    return Masking(shuffle[:, :num_keep], restore, mask)


def mae_loss(
    pred: torch.Tensor,
    images: torch.Tensor,
    mask: torch.Tensor,
    patch_size: int,
    norm_pix: bool = False,
) -> torch.Tensor:
    """Mean squared error of the predicted pixels, over the hidden patches only.

    Args:
        pred: ``(B, N, P*P*C)`` predicted patches (raster order).
        images: ``(B, C, H, W)`` the originals.
        mask: ``(B, N)`` True for hidden patches.
        patch_size: ``P``.
        norm_pix: compare with each patch standardised by its own mean and variance.

    Returns:
        The scalar loss: per-patch MSE averaged over the hidden patches.
    """
    target = patchify(images, patch_size)  # (B, N, P*P*C)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = ((pred - target) ** 2).mean(dim=-1)  # (B, N)
    hidden = mask.to(per_patch.dtype)
    return (per_patch * hidden).sum() / hidden.sum()


class MAEOutput(NamedTuple):
    """What :meth:`MAE.forward` returns.

    Attributes:
        loss: scalar, :func:`mae_loss`.
        pred: ``(B, N, P*P*C)`` predicted patches (standardised with ``norm_pix_loss``).
        mask: ``(B, N)`` True for hidden patches.
        restore: ``(B, N)`` the unshuffling permutation.
    """

    loss: torch.Tensor
    pred: torch.Tensor
    mask: torch.Tensor
    restore: torch.Tensor


class MAE(nn.Module):
    """Masked autoencoder: a ViT encoder on the visible patches, a narrow decoder.

    Args:
        config: :class:`MAEConfig`.

    Shapes:
        images ``(B, C, H, W)`` → :class:`MAEOutput` with ``pred`` ``(B, N, P*P*C)``.
    """

    def __init__(self, config: MAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ViT(config.encoder_config())
        N, Dd = self.encoder.num_patches, config.decoder_embed_dim
        P, C = config.patch_size, config.in_chans
        self.decoder_embed = nn.Linear(config.embed_dim, Dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, Dd))
        positions = torch.zeros(1, 1 + N, Dd)  # fixed; the [CLS] row stays zero
        positions[0, 1:] = sincos_2d_encoding(*self.encoder.grid_size, Dd)
        self.register_buffer("decoder_pos_embed", positions)
        self.decoder_blocks = nn.ModuleList(
            EncoderBlock(
                Dd,
                config.decoder_num_heads,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=config.qkv_bias,
                norm_eps=config.norm_eps,
            )
            for _ in range(config.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(Dd, eps=config.norm_eps)
        self.decoder_pred = nn.Linear(Dd, P * P * C)
        self._init_decoder()

    @torch.no_grad()
    def _init_decoder(self) -> None:
        nn.init.normal_(self.mask_token, std=0.02)
        for name, module in self.named_modules():
            if name.startswith("decoder") and isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    @property
    def num_patches(self) -> int:
        """``N``."""
        return self.encoder.num_patches

    def no_weight_decay(self) -> set[str]:
        """Learned tokens weight decay should leave alone (see ``param_groups``)."""
        return {"cls_token", "mask_token"}

    def forward_encoder(
        self, images: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Masking]:
        """Mask, then encode the visible patches only.

        Returns:
            ``(latent, masking)``: ``latent`` is ``(B, 1 + L, D)`` ([CLS], then the
            visible patches in shuffled order).
        """
        B = images.shape[0]
        masking = random_masking(
            B, self.num_patches, self.config.mask_ratio, noise, images.device
        )
        return self.encoder.forward_visible(images, masking.keep), masking

    def forward_decoder(
        self, latent: torch.Tensor, restore: torch.Tensor
    ) -> torch.Tensor:
        """Put ``[M]`` tokens in the hidden places, unshuffle, add positions, decode.

        Args:
            latent: ``(B, 1 + L, D)`` from :meth:`forward_encoder`.
            restore: ``(B, N)`` from its :class:`Masking`.

        Returns:
            ``(B, N, P*P*C)`` predicted pixels of every patch, raster order.
        """
        x = self.decoder_embed(latent)  # (B, 1 + L, Dd)
        B, N = restore.shape
        Dd = x.shape[-1]
        hidden = self.mask_token.expand(B, N - (x.shape[1] - 1), Dd)  # (B, N - L, Dd)
        patches = torch.cat([x[:, 1:], hidden], dim=1)  # (B, N, Dd), shuffled order
        index = restore.unsqueeze(-1).expand(-1, -1, Dd)  # (B, N, Dd)
        patches = torch.gather(patches, 1, index)  # (B, N, Dd), raster order
        x = torch.cat([x[:, :1], patches], dim=1)  # (B, 1 + N, Dd)
        x = x + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # (B, N, P*P*C)

    def forward(
        self, images: torch.Tensor, noise: torch.Tensor | None = None
    ) -> MAEOutput:
        """Mask, encode, decode and score one batch.

        Args:
            images: ``(B, C, H, W)``.
            noise: optional ``(B, N)``, fixes the mask (see :func:`random_masking`).

        Returns:
            :class:`MAEOutput`.
        """
        latent, masking = self.forward_encoder(images, noise)
        pred = self.forward_decoder(latent, masking.restore)
        c = self.config
        loss = mae_loss(pred, images, masking.mask, c.patch_size, c.norm_pix_loss)
        return MAEOutput(loss, pred, masking.mask, masking.restore)

    # -- what the pre-trained model is for ---------------------------------------------

    def reconstruct(self, images: torch.Tensor, output: MAEOutput) -> torch.Tensor:
        """Images from a forward pass: visible patches as they were, the rest predicted.

        With ``norm_pix_loss`` the prediction is in per-patch standardised units; it is
        brought back with each true patch's mean and std (as the paper's figures do).

        Returns:
            ``(B, C, H, W)``.
        """
        P = self.config.patch_size
        target = patchify(images, P)  # (B, N, P*P*C)
        pred = output.pred
        if self.config.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            std = (target.var(dim=-1, keepdim=True) + 1e-6) ** 0.5
            pred = pred * std + mean
        mixed = torch.where(output.mask.unsqueeze(-1), pred, target)  # (B, N, P*P*C)
        return unpatchify(mixed, P, self.encoder.grid_size, self.config.in_chans)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """One vector per image from the encoder on the whole image (no masking).

        Returns:
            ``(B, D)``: the mean of the encoded patch tokens.
        """
        return self.encoder.pool(self.encoder.forward_features(images))

    def to_classifier(self, num_classes: int) -> ViT:
        """A ViT classifier starting from the encoder's weights (fine-tuning).

        Returns:
            A new :class:`ViT` (mean pooling, fixed sin-cos positions), fresh head.
        """
        model = ViT(self.config.encoder_config(num_classes=num_classes))
        state = self.encoder.state_dict()
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not key.startswith("head.") for key in missing):
            raise RuntimeError(f"encoder weights don't fit: {missing=}, {unexpected=}")
        return model.to(self.decoder_pred.weight.device)

    def forward_with_mask_tokens(
        self, images: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The ablation "encoder w/ [M]": the encoder gets all ``N`` tokens, hidden ones
        replaced by the decoder's ``[M]`` token projected back to ``D`` (only its cost
        matters here: it is the baseline of the speed-up the paper reports).

        Returns:
            ``(B, N, P*P*C)`` predicted patches.
        """
        B = images.shape[0]
        ratio = self.config.mask_ratio
        masking = random_masking(B, self.num_patches, ratio, noise, images.device)
        token = self.mask_token.reshape(-1) @ self.decoder_embed.weight  # (D,)
        patches = self.encoder.patch_tokens(images, masking.mask, token)  # (B, N, D)
        prefix = self.encoder.prefix_tokens(B)  # (B, 1, D)
        tokens = torch.cat([prefix, patches], dim=1)  # (B, 1 + N, D)
        latent = self.encoder.encode(tokens)  # (B, 1 + N, D)
        identity = torch.arange(self.num_patches, device=images.device).expand(B, -1)
        return self.forward_decoder(latent, identity)


# -- presets: the paper's sizes (decoder 512-d, 8 blocks) and a CPU size -----------


@register_model(MAE)
def mae_vit_base_patch16() -> MAEConfig:
    """MAE with a ViT-B/16 encoder (Hugging Face's ``facebook/vit-mae-base``)."""
    return MAEConfig()


@register_model(MAE)
def mae_vit_large_patch16() -> MAEConfig:
    """MAE with a ViT-L/16 encoder: D=1024, 24 blocks, 16 heads."""
    return dataclasses.replace(MAEConfig(), embed_dim=1024, depth=24, num_heads=16)


@register_model(MAE)
def mae_vit_huge_patch14() -> MAEConfig:
    """MAE with a ViT-H/14 encoder: D=1280, 32 blocks, 16 heads."""
    return dataclasses.replace(
        MAEConfig(), patch_size=14, embed_dim=1280, depth=32, num_heads=16
    )


@register_model(MAE)
def mae_tiny_patch4_28() -> MAEConfig:
    """A CPU-sized MAE for 28×28 grey images: 49 patches of 4×4, D=64, 4 blocks;
    decoder D=64, 2 blocks (our sizes, no paper defines them)."""
    return MAEConfig(
        img_size=28,
        patch_size=4,
        in_chans=1,
        embed_dim=64,
        depth=4,
        num_heads=4,
        mlp_ratio=2.0,
        decoder_embed_dim=64,
        decoder_depth=2,
        decoder_num_heads=4,
    )
