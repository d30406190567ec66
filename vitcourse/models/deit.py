"""DeiT (Touvron et al., 2021): data-efficient ViTs, trained with a teacher.

DeiT is ViT trained on ImageNet-1k alone, with strong augmentation, regularisation and
*distillation*: a student learns from the labels and from a teacher's predictions. A
CNN teacher works best; its inductive biases reach the transformer through its
outputs. The architecture changes in one place: a second learned token, the
**distillation token**, travels with ``[CLS]`` through every block; ``[CLS]``'s output is
trained against the label, the distillation token's output against the teacher::

    tokens = [x_cls; x_dist; x_1 E; …; x_N E] + E_pos           (B, 2 + N, D)
    z_cls  = head(LN(x)[:, 0])      z_dist = head_dist(LN(x)[:, 1])
    at inference: the average of the two heads' logits, (z_cls + z_dist) / 2

The non-distilled ``deit_*`` presets are plain :class:`~vitcourse.models.ViT` configs;
only training differs. The losses below take logits, so any student and teacher fit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model
from .vit import ViT, ViTConfig

__all__ = ["DistilledViT", "deit_loss", "hard_distillation_loss", "soft_distillation_loss"]


class DistilledViT(ViT):
    """A ViT with a distillation token and a second head (DeiT⚗).

    Args:
        config: a :class:`~vitcourse.models.ViTConfig`; ``pool`` must be ``"cls"``
            (each head reads its own token).

    Shapes:
        images ``(B, C, H, W)`` → logits ``(B, num_classes)``, the average of the two
        heads, in training mode too (timm returns the pair while training instead); to
        train, call :meth:`forward_distillation`, which returns both heads' logits, and
        :func:`deit_loss`.
    """

    num_prefix_tokens = 2  # [CLS] and [DIST]

    def __init__(self, config: ViTConfig) -> None:
        if config.pool != "cls":
            raise ValueError(f'DistilledViT reads its class and distillation tokens; use pool="cls", not {config.pool!r}')
        super().__init__(config)
        D = config.embed_dim
        self.dist_token = nn.Parameter(torch.zeros(1, 1, D))
        self.head_dist = nn.Linear(D, config.num_classes) if config.num_classes > 0 else nn.Identity()
        with torch.no_grad():
            nn.init.trunc_normal_(self.dist_token, std=0.02)
            if isinstance(self.head_dist, nn.Linear):
                nn.init.trunc_normal_(self.head_dist.weight, std=0.02)
                nn.init.zeros_(self.head_dist.bias)

    def prefix_tokens(self, batch_size: int) -> torch.Tensor:
        """``[CLS]`` and ``[DIST]`` with their positions: ``(B, 2, D)``."""
        cls = self.cls_token + self.pos_embed.weight[:, :1]  # (1, 1, D)
        dist = self.dist_token + self.pos_embed.weight[:, 1:2]  # (1, 1, D)
        return torch.cat([cls, dist], dim=1).expand(batch_size, -1, -1)

    def forward_heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both heads on the output tokens ``(B, T, D)``: ``(z_cls, z_dist)``, each ``(B, num_classes)``."""
        return self.head(features[:, 0]), self.head_dist(features[:, 1])

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Inference: the average of the class and distillation heads (as DeiT and timm do).
        """
        z_cls, z_dist = self.forward_heads(features)
        return (z_cls + z_dist) / 2

    def forward_distillation(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: the class head's and the distillation head's logits, for :func:`deit_loss`.

        Args:
            images: ``(B, C, H, W)``.

        Returns:
            ``(z_cls, z_dist)``, each ``(B, num_classes)``.
        """
        return self.forward_heads(self.forward_features(images))


# -- losses ---------------------------------------------------------------------------


def soft_distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float = 3.0
) -> torch.Tensor:
    r"""Soft distillation (Hinton et al., 2015): match the teacher's softened
    distribution.

    .. math::

        \mathcal{L}_{soft} = \tau^2 \, \mathrm{KL}\big(\psi(z_t / \tau) \,\|\, \psi(z_s
        / \tau)\big) = \tau^2 \sum_c p_t^{(c)} \big(\log p_t^{(c)} - \log p_s^{(c)}\big)

    with ``ψ`` the softmax. A temperature ``τ > 1`` flattens both distributions so the
    student also learns which wrong classes the teacher finds plausible ("dark
    knowledge"); ``τ²`` keeps the gradients' scale independent of ``τ``. The teacher
    gets no gradient. (DeiT's reference code divides the summed KL by ``B·K`` instead of
    ``B``, which only rescales ``α``.)

    Args:
        student_logits: ``(B, K)`` logits ``z_s``.
        teacher_logits: ``(B, K)`` logits ``z_t``.
        tau: temperature ``τ > 0``.

    Returns:
        Scalar loss, averaged over the batch (0 when the two distributions agree).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits must have the same shape (B, num_classes), "
            f"got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    if tau <= 0:
        raise ValueError(f"the temperature tau must be positive, got {tau}")
    log_p_student = F.log_softmax(student_logits / tau, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / tau, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * tau**2


def hard_distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor
) -> torch.Tensor:
    r"""Hard distillation (DeiT): the teacher's top class is the target.

    .. math::

        \mathcal{L}_{hard} = \mathrm{CE}\big(\psi(z_s),\; y_t\big), \qquad y_t =
        \arg\max_c z_t^{(c)}

    No temperature; DeiT found it better than soft distillation with a CNN teacher.

    Args:
        student_logits: ``(B, K)`` logits ``z_s``.
        teacher_logits: ``(B, K)`` logits ``z_t``.

    Returns:
        Scalar cross-entropy averaged over the batch.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits must have the same shape (B, num_classes), "
            f"got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    return F.cross_entropy(student_logits, teacher_logits.detach().argmax(dim=-1))


def deit_loss(
    cls_logits: torch.Tensor,
    dist_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    kind: str = "hard",
    alpha: float = 0.5,
    tau: float = 3.0,
) -> torch.Tensor:
    r"""DeiT's objective: the class head learns the labels, the distillation head the teacher.

    .. math::

        \mathcal{L} = (1 - \alpha)\, \mathrm{CE}(\psi(z_{cls}), y) + \alpha\, \mathcal{L}_{distill}(z_{dist}, z_t)

    with :math:`\mathcal{L}_{distill}` the hard (:func:`hard_distillation_loss`; DeiT's
    choice with ``α = 1/2``) or soft (:func:`soft_distillation_loss`) loss. For a model
    without a distillation token, pass the same logits as ``cls_logits`` and
    ``dist_logits``: that is classic knowledge distillation.

    Args:
        cls_logits: ``(B, K)`` class-head logits.
        dist_logits: ``(B, K)`` distillation-head logits.
        teacher_logits: ``(B, K)`` the teacher's logits on the same images.
        labels: ``(B,)`` integer labels.
        kind: ``"hard"`` or ``"soft"``.
        alpha: weight ``α ∈ [0, 1]`` of the distillation term.
        tau: temperature of the soft loss (unused by the hard one).

    Returns:
        Scalar loss.
    """
    if kind not in ("hard", "soft"):
        raise ValueError(f'kind must be "hard" or "soft", got {kind!r}')
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    label_loss = F.cross_entropy(cls_logits, labels)
    if kind == "hard":
        distill = hard_distillation_loss(dist_logits, teacher_logits)
    else:
        distill = soft_distillation_loss(dist_logits, teacher_logits, tau)
    return (1 - alpha) * label_loss + alpha * distill


# -- presets ------------------------------------------------------------------------
# DeiT's models are ViT-Ti/S/B trained differently; the distilled ones add [DIST].


@register_model(ViT)
def deit_tiny_patch16_224() -> ViTConfig:
    """DeiT-Ti: ViT-Ti/16's architecture (5.7 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=192, depth=12, num_heads=3)


@register_model(ViT)
def deit_small_patch16_224() -> ViTConfig:
    """DeiT-S: ViT-S/16's architecture (22.1 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=384, depth=12, num_heads=6)


@register_model(ViT)
def deit_base_patch16_224() -> ViTConfig:
    """DeiT-B: ViT-B/16's architecture (86.6 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=768, depth=12, num_heads=12)


@register_model(DistilledViT)
def deit_tiny_distilled_patch16_224() -> ViTConfig:
    """DeiT-Ti⚗: DeiT-Ti with a distillation token and head (5.9 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=192, depth=12, num_heads=3)


@register_model(DistilledViT)
def deit_small_distilled_patch16_224() -> ViTConfig:
    """DeiT-S⚗ (22.4 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=384, depth=12, num_heads=6)


@register_model(DistilledViT)
def deit_base_distilled_patch16_224() -> ViTConfig:
    """DeiT-B⚗ (87.3 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=768, depth=12, num_heads=12)


@register_model(DistilledViT)
def deit_micro_distilled_patch4_32() -> ViTConfig:
    """:func:`~vitcourse.models.vit.vit_micro_patch4_32` with a distillation token, for 32×32 images."""
    return ViTConfig(
        img_size=32, patch_size=4, num_classes=10, embed_dim=128, depth=6, num_heads=4, mlp_ratio=2.0
    )


@register_model(DistilledViT)
def deit_pico_distilled_patch2_8() -> ViTConfig:
    """:func:`~vitcourse.models.vit.vit_pico_patch2_8` with a distillation token, for 8×8 digits."""
    return ViTConfig(
        img_size=8, patch_size=2, in_chans=1, num_classes=10, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0
    )
