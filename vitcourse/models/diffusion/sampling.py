"""Generating with a trained noise predictor: classifier-free guidance, DDPM and DDIM loops.

Classifier-free guidance (Ho and Salimans, 2021) asks the same network twice, with the
class and with the "no class" label, and extrapolates from the second towards the
first:

    ε̃ = ε(x_t, t, ∅) + s · (ε(x_t, t, y) - ε(x_t, t, ∅))

``s = 0`` ignores the class (unconditional samples), ``s = 1`` is the plain conditional
model, ``s > 1`` pushes the samples towards what makes them recognisably of class ``y``
(at some cost in variety).
"""

from __future__ import annotations

import torch

from .schedule import NoiseSchedule

__all__ = ["guided_eps", "sample"]


def guided_eps(
    model: torch.nn.Module,
    x_t: torch.Tensor,
    t: int,
    labels: torch.Tensor,
    guidance_scale: float,
) -> torch.Tensor:
    """The classifier-free guided noise ``ε(∅) + s (ε(y) - ε(∅))``.

    Args:
        model: ``model(x_t, t, labels) -> ε̂`` with a ``null_label`` attribute (a DiT).
        x_t: ``(B, C, H, W)``.
        t: the current step (the same for the whole batch).
        labels: ``(B,)`` classes.
        guidance_scale: ``s``; 0 and 1 need one forward pass, any other value two
            (run as one batch of ``2B``).

    Returns:
        ``(B, C, H, W)``.
    """
    B = x_t.shape[0]
    steps = torch.full((B,), t, dtype=torch.long, device=x_t.device)
    null = torch.full_like(labels, model.null_label)
    if guidance_scale == 0:
        return model(x_t, steps, null)
    if guidance_scale == 1:
        return model(x_t, steps, labels)
    # (2B, C, H, W)
    eps = model(
        torch.cat([x_t, x_t]), torch.cat([steps, steps]), torch.cat([labels, null])
    )
    eps_cond, eps_uncond = eps.chunk(2)
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    labels: torch.Tensor,
    guidance_scale: float = 1.0,
    num_steps: int = 25,
    method: str = "ddim",
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """Generate one image per label, from pure noise, with guidance.

    Args:
        model: a trained noise predictor (:class:`~vitcourse.models.diffusion.DiT`).
        schedule: the schedule it was trained with.
        labels: ``(B,)`` requested classes.
        guidance_scale: classifier-free guidance ``s``.
        num_steps: DDIM steps (ignored by ``"ddpm"``, which walks all ``T``).
        method: ``"ddim"`` (deterministic, skips steps) or ``"ddpm"`` (ancestral).
        generator: seeds the starting noise (and DDPM's added noise).
        return_trajectory: also return the images after every step.

    Returns:
        ``(B, C, H, W)`` images in ``[-1, 1]`` (and the list of intermediate ``x_t``).
    """
    if method not in ("ddim", "ddpm"):
        raise ValueError(f'method must be "ddim" or "ddpm", got {method!r}')
    model.eval()
    cfg = model.config
    shape = (labels.shape[0], cfg.in_chans, cfg.img_size, cfg.img_size)
    x = torch.randn(shape, generator=generator).to(labels.device)
    trajectory = [x]
    if method == "ddpm":
        for t in reversed(range(schedule.num_steps)):
            x = schedule.ddpm_step(guided_eps(model, x, t, labels, guidance_scale), t, x, generator)
            trajectory.append(x)
    else:
        steps = schedule.ddim_timesteps(num_steps)
        stride = schedule.num_steps // num_steps
        for t in steps:
            x = schedule.ddim_step(guided_eps(model, x, t, labels, guidance_scale), t, t - stride, x)
            trajectory.append(x)
    x = x.clamp(-1, 1)
    return (x, trajectory) if return_trajectory else x
