"""DiffusionCLIP's directional CLIP loss (Kim, Kwon and Ye, 2022).

To edit an image with text ("make the red star blue"), DiffusionCLIP fine-tunes a
diffusion model so that the *change* between the reference image and the generated one
points, in CLIP's space, the same way as the change between the two texts:

    ΔT = E_T(y_tar) - E_T(y_ref),   ΔI = E_I(x_gen) - E_I(x_ref)
    L_direction = 1 - ⟨ΔI, ΔT⟩ / (‖ΔI‖ ‖ΔT‖)

Matching directions rather than pulling ``x_gen`` towards ``y_tar`` keeps what the
texts do not mention (the shape, the background) and avoids the collapse of a plain
CLIP loss onto one image that maximises the similarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["directional_loss"]


def directional_loss(
    image_gen: torch.Tensor,
    image_ref: torch.Tensor,
    text_tar: torch.Tensor,
    text_ref: torch.Tensor,
    normalize: bool = True,
) -> torch.Tensor:
    """``1 - cos(E_I(x_gen) - E_I(x_ref), E_T(y_tar) - E_T(y_ref))``, per pair.

    Args:
        image_gen: CLIP image features of the edited images ``(B, d_e)``.
        image_ref: of the reference images ``(B, d_e)``.
        text_tar: CLIP text features of the target texts ``(B, d_e)`` or ``(d_e,)``.
        text_ref: of the reference texts, same shape as ``text_tar``.
        normalize: put every feature on the unit sphere first (CLIP compares
            directions; DiffusionCLIP's code does the same).

    Returns:
        ``(B,)`` losses in ``[0, 2]``; differentiable in the image features.
    """
    if image_gen.shape != image_ref.shape or text_tar.shape != text_ref.shape:
        raise ValueError(
            f"image_gen and image_ref must share a shape, and text_tar and text_ref "
            f"too; got {tuple(image_gen.shape)}, {tuple(image_ref.shape)}, "
            f"{tuple(text_tar.shape)}, {tuple(text_ref.shape)}"
        )
    if normalize:
        image_gen, image_ref = (
            F.normalize(image_gen, dim=-1),
            F.normalize(image_ref, dim=-1),
        )
        text_tar, text_ref = (
            F.normalize(text_tar, dim=-1),
            F.normalize(text_ref, dim=-1),
        )
    delta_i = image_gen - image_ref  # (B, d_e)
    delta_t = (text_tar - text_ref).expand_as(delta_i)  # (B, d_e)
    return 1 - F.cosine_similarity(delta_i, delta_t, dim=-1)
