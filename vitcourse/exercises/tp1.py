"""TP1: how much of an image can a ``D``-dimensional linear patch embedding keep?

A patch embedding maps each flattened patch (``P·P·C`` numbers) to ``D`` numbers with
one linear layer. Whatever its weights, that map forgets everything outside a
``D``-dimensional subspace of patch space. The best subspace, in squared error, is the
span of the first ``D`` principal components of the patches (Eckart–Young), so

    variance kept = (σ₁² + … + σ_D²) / (σ₁² + … + σ_r²)

(``σ`` the singular values of the centred patch matrix) is an upper bound on the
fraction of the patches' variance that any ``D``-dimensional linear patch embedding
(weights and bias) can preserve. A trained embedding keeps what the task needs, not
necessarily the most variance; this is the ceiling, not the value.

The patches are cut exactly as :class:`~vitcourse.layers.PatchEmbedding` with
``pad=True`` cuts them: zeros at the bottom and on the right up to a multiple of ``P``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..layers import grid_size_for, patchify, unpatchify

__all__ = ["PatchPCA", "image_patches", "patch_pca", "pca_reconstruction", "variance_kept"]


def image_patches(image: torch.Tensor, patch_size: int) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """Cut one image into flattened patches, padding it like ``PatchEmbedding(pad=True)``.

    Args:
        image: ``(C, H, W)``.
        patch_size: side ``P`` of the patches.

    Returns:
        ``(patches, grid_size, padding)``: patches ``(N, P*P*C)`` in raster order, the
        ``(gh, gw)`` grid and the ``(pad_h, pad_w)`` rows and columns of zeros added.
    """
    if image.ndim != 3:
        raise ValueError(f"expected one image shaped (C, H, W), got {tuple(image.shape)}")
    (grid_h, grid_w), (pad_h, pad_w) = grid_size_for(tuple(image.shape[1:]), patch_size, pad=True)
    padded = F.pad(image, (0, pad_w, 0, pad_h))  # (C, gh*P, gw*P)
    return patchify(padded[None], patch_size)[0], (grid_h, grid_w), (pad_h, pad_w)


@dataclass(frozen=True)
class PatchPCA:
    """Principal components of an image's patches.

    Attributes:
        mean: ``(P*P*C,)`` the mean patch.
        components: ``(r, P*P*C)`` orthonormal directions, by decreasing variance.
        singular_values: ``(r,)`` of the centred patch matrix, decreasing.
        scores: ``(N, r)`` coordinates of every patch on the components.
        patch_size, grid_size, padding, image_size: how the image was cut.
    """

    mean: torch.Tensor
    components: torch.Tensor
    singular_values: torch.Tensor
    scores: torch.Tensor
    patch_size: int
    grid_size: tuple[int, int]
    padding: tuple[int, int]
    image_size: tuple[int, int, int]

    @property
    def max_rank(self) -> int:
        """Dimensions with any variance at most: ``min(N - 1, P*P*C)``."""
        return min(self.scores.shape[0] - 1, self.mean.shape[0])

    def variance_kept(self, embed_dim: int) -> float:
        """Fraction of the patches' variance on the first ``embed_dim`` components."""
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be positive, got {embed_dim}")
        energy = self.singular_values.double() ** 2
        return float(energy[:embed_dim].sum() / energy.sum())


def patch_pca(image: torch.Tensor, patch_size: int) -> PatchPCA:
    """PCA of the patches of one image (an SVD of the centred ``(N, P*P*C)`` matrix).

    Args:
        image: ``(C, H, W)`` float image.
        patch_size: side ``P`` of the patches.

    Returns:
        A :class:`PatchPCA`.
    """
    patches, grid_size, padding = image_patches(image, patch_size)
    patches = patches.double()  # (N, P*P*C)
    mean = patches.mean(dim=0)
    left, singular_values, right = torch.linalg.svd(patches - mean, full_matrices=False)  # (N, r), (r,), (r, P*P*C)
    return PatchPCA(
        mean=mean,
        components=right,
        singular_values=singular_values,
        scores=left * singular_values,  # (N, r)
        patch_size=patch_size,
        grid_size=grid_size,
        padding=padding,
        image_size=tuple(image.shape),
    )


def variance_kept(image: torch.Tensor, patch_size: int, embed_dim: int) -> float:
    """Upper bound on the fraction of patch variance a ``embed_dim``-dim linear patch embedding keeps."""
    return patch_pca(image, patch_size).variance_kept(embed_dim)


def pca_reconstruction(pca: PatchPCA, embed_dim: int) -> torch.Tensor:
    """The image rebuilt from the first ``embed_dim`` components of every patch.

    This is what the best ``embed_dim``-dimensional linear patch embedding, followed by
    the best linear decoder, would give back.

    Returns:
        ``(C, H, W)`` float32, clipped to ``[0, 1]``, the padding cropped away.
    """
    k = min(embed_dim, pca.components.shape[0])
    patches = pca.scores[:, :k] @ pca.components[:k] + pca.mean  # (N, P*P*C)
    channels, height, width = pca.image_size
    image = unpatchify(patches[None].float(), pca.patch_size, pca.grid_size, channels)[0]  # (C, gh*P, gw*P)
    return image[:, :height, :width].clamp(0.0, 1.0)
