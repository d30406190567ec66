"""Training a student with a teacher (DeiT): the pieces :func:`~vitcourse.train.fit` needs.

:func:`~vitcourse.train.fit` calls ``loss_fn(outputs, targets, images)`` when the loss
takes the images, so distillation fits the ordinary loop with two small adapters:

* :class:`DistillationWrapper` makes a :class:`~vitcourse.models.DistilledViT` return the
  logits of **both** heads while training (``(z_cls, z_dist)``) and their average at
  evaluation, which is how DeiT is trained and used;
* :class:`DistillationLoss` asks the teacher about the same images and applies
  :func:`~vitcourse.models.deit_loss` (hard or soft);
* :class:`CachedTeacher` remembers the teacher's answer for each image it has seen. A
  frozen teacher in eval mode gives the same logits for the same pixels, so when the
  training images are not augmented the (expensive) teacher runs once per image instead
  of once per epoch. With augmentation every view is new and it simply runs the teacher.

Example::

    student = DistillationWrapper(create_model("deit_micro_distilled_patch4_32", num_classes=8))
    loss = DistillationLoss(CachedTeacher(teacher), kind="hard", alpha=0.5)
    fit(student, train_loader, loss_fn=loss, epochs=10)
    evaluate(student, test_loader)  # the average of the two heads
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from ..models.deit import deit_loss

__all__ = ["CachedTeacher", "DistillationLoss", "DistillationWrapper"]


class DistillationWrapper(nn.Module):
    """A distilled student as :func:`~vitcourse.train.fit` wants it.

    Args:
        student: a model with ``forward_distillation(images) -> (z_cls, z_dist)``
            (:class:`~vitcourse.models.DistilledViT`). A plain classifier works too: both
            "heads" are then its single output (classic knowledge distillation).

    Shapes:
        training: images ``(B, C, H, W)`` → ``(z_cls, z_dist)``, each ``(B, K)``;
        evaluation: → ``(B, K)``, what ``student(images)`` returns (for DeiT, the average
        of the two heads).
    """

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not self.training:
            return self.student(images)
        if hasattr(self.student, "forward_distillation"):
            return self.student.forward_distillation(images)
        logits = self.student(images)
        return logits, logits


class CachedTeacher(nn.Module):
    """A frozen teacher that computes each image's logits once and then remembers them.

    Images are recognised by their exact bytes, so a cache hit returns exactly what the
    teacher would compute. Misses are computed together in one batch.

    Args:
        teacher: any classifier; it is put in eval mode and never trained.
        max_entries: stop adding to the cache beyond this many images (augmented views,
            which never repeat, would otherwise fill the memory); the teacher still answers.

    Attributes:
        hits, misses: images answered from the cache and by the teacher.

    Shapes:
        images ``(B, C, H, W)`` → logits ``(B, K)``.
    """

    def __init__(self, teacher: nn.Module, max_entries: int = 100_000) -> None:
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)
        self.max_entries = max_entries
        self._cache: dict[bytes, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def train(self, mode: bool = True) -> CachedTeacher:
        """The teacher stays in eval mode whatever the caller asks (its BatchNorm must not move)."""
        super().train(mode)
        self.teacher.eval()
        return self

    @staticmethod
    def _key(image: torch.Tensor) -> bytes:
        data = image.detach().contiguous().cpu().numpy().tobytes()
        return hashlib.blake2b(data, digest_size=16).digest() + str(tuple(image.shape)).encode()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        keys = [self._key(image) for image in images]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            fresh = self.teacher(images[missing]).float()  # (len(missing), K)
            for row, i in zip(fresh, missing):
                if len(self._cache) < self.max_entries:
                    self._cache[keys[i]] = row.cpu()
            found = dict(zip(missing, fresh))
        else:
            found = {}
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        rows = [found[i] if i in found else self._cache[key].to(images.device) for i, key in enumerate(keys)]
        return torch.stack(rows)  # (B, K)


class DistillationLoss(nn.Module):
    r"""DeiT's objective as a ``loss_fn(outputs, targets, images)`` for :func:`~vitcourse.train.fit`.

    .. math::

        \mathcal{L} = (1 - \alpha)\, \mathrm{CE}(\psi(z_{cls}), y) + \alpha\, \mathcal{L}_{distill}(z_{dist}, z_t)

    The teacher's logits ``z_t`` come from the same (possibly augmented or mixed) images
    the student sees; see :func:`~vitcourse.models.deit_loss`.

    Args:
        teacher: the frozen teacher (wrap it in :class:`CachedTeacher` to reuse answers).
        kind: ``"hard"`` (the teacher's top class) or ``"soft"`` (KL at temperature ``tau``).
        alpha: weight of the distillation term; 0 ignores the teacher.
        tau: temperature of the soft loss.
    """

    def __init__(self, teacher: nn.Module, kind: str = "hard", alpha: float = 0.5, tau: float = 3.0) -> None:
        super().__init__()
        if kind not in ("hard", "soft"):
            raise ValueError(f'kind must be "hard" or "soft", got {kind!r}')
        self.teacher = teacher
        self.kind, self.alpha, self.tau = kind, alpha, tau

    def forward(
        self,
        outputs: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
        targets: torch.Tensor,
        images: torch.Tensor,
    ) -> torch.Tensor:
        """Args: the student's ``(z_cls, z_dist)`` (or one logits tensor), the labels
        (indices or MixUp's soft ``(B, K)`` targets), and the images ``(B, C, H, W)``."""
        z_cls, z_dist = (
            outputs if isinstance(outputs, (tuple, list)) else (outputs, outputs)
        )
        self.teacher.eval()
        with torch.no_grad():
            z_teacher = self.teacher(images)
        return deit_loss(
            z_cls,
            z_dist,
            z_teacher,
            targets,
            kind=self.kind,
            alpha=self.alpha,
            tau=self.tau,
        )
