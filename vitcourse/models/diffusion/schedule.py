"""The forward noising of DDPM in closed form, its ε-prediction loss, and one step back.

DDPM (Ho et al., 2020) destroys an image ``x_0`` in ``T`` small Gaussian steps,
``q(x_t | x_{t-1}) = N(√(1 - β_t) x_{t-1}, β_t I)``. Composing them gives any step at
once, with ``ᾱ_t = ∏_{s ≤ t} (1 - β_s)``:

    q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I),  i.e.  x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε.

A network ``ε_θ(x_t, t)`` is trained to recover the noise ``ε`` that was added (the
"simple" loss, a mean squared error). Generating runs the chain backwards from pure
noise ``x_T ~ N(0, I)``: DDPM's step (:meth:`NoiseSchedule.ddpm_step`) samples
``x_{t-1}`` from the Gaussian posterior; DDIM's (Song et al., 2021,
:meth:`NoiseSchedule.ddim_step`) moves deterministically and can skip steps, so 25
steps instead of 1000 give usable samples.

The numbers follow ``diffusers``' ``DDPMScheduler`` and ``DDIMScheduler`` with their
defaults (linear β from 1e-4 to 0.02, ``T = 1000``, ``"fixed_small"`` variance, the
predicted ``x̂_0`` clipped to ``[-1, 1]``, ``"leading"`` spacing); a test checks every
step against them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["NoiseSchedule", "diffusion_loss"]


class NoiseSchedule:
    """The β schedule of DDPM and the quantities derived from it.

    Args:
        num_steps: ``T``, the number of noising steps.
        beta_start: ``β_1``.
        beta_end: ``β_T`` (linear in between, as in DDPM).

    Attributes:
        betas: ``(T,)`` float64.
        alphas_cumprod: ``ᾱ_t``, ``(T,)`` float64, from nearly 1 down to nearly 0.
    """

    def __init__(self, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        if num_steps < 2 or not 0 < beta_start < beta_end < 1:
            raise ValueError(
                f"need num_steps >= 2 and 0 < beta_start < beta_end < 1, got {num_steps}, "
                f"{beta_start}, {beta_end}; DDPM uses 1000, 1e-4, 0.02"
            )
        self.num_steps = num_steps
        # diffusers builds the betas in float32; so do we, to agree with it bit for bit
        self.betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float32).double()
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas.float(), dim=0).double()

    def __repr__(self) -> str:
        return f"NoiseSchedule(num_steps={self.num_steps})"

    def _at(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped to broadcast over images ``like`` ``(B, C, H, W)``."""
        out = values.to(like.device)[t].to(like.dtype)  # (B,)
        return out.view(-1, *([1] * (like.ndim - 1)))  # (B, 1, 1, 1)

    def add_noise(
        self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Sample ``q(x_t | x_0)`` in one go: ``√ᾱ_t x_0 + √(1 - ᾱ_t) ε``.

        Args:
            x0: clean images ``(B, C, H, W)`` in ``[-1, 1]``.
            noise: ``ε ~ N(0, I)``, same shape.
            t: integer steps ``(B,)`` in ``[0, T)``.

        Returns:
            ``x_t``, ``(B, C, H, W)``.
        """
        if t.min() < 0 or t.max() >= self.num_steps:
            raise ValueError(
                f"t must lie in [0, {self.num_steps}), got [{int(t.min())}, {int(t.max())}]"
            )
        a = self._at(self.alphas_cumprod, t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`add_noise` with a predicted noise: ``(x_t - √(1 - ᾱ_t) ε) / √ᾱ_t``."""
        a = self._at(self.alphas_cumprod, t, x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def ddpm_step(
        self,
        eps: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One step of DDPM's ancestral sampler: draw ``x_{t-1} ~ q(x_{t-1} | x_t, x̂_0)``.

        The posterior of the forward process given ``x_0`` is Gaussian with mean
        ``c_0 x̂_0 + c_t x_t`` and variance ``β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) β_t``;
        ``x̂_0`` comes from the predicted noise. No noise is added at ``t = 0``.

        Args:
            eps: the network's ``ε_θ(x_t, t)``, ``(B, C, H, W)``.
            t: the current step, an int in ``[0, T)``.
            x_t: the current images.
            generator: seeds the added noise.

        Returns:
            ``x_{t-1}``, same shape.
        """
        a_t = float(self.alphas_cumprod[t])
        a_prev = float(self.alphas_cumprod[t - 1]) if t > 0 else 1.0
        beta_t = 1 - a_t / a_prev
        # images live in [-1, 1]
        x0 = ((x_t - (1 - a_t) ** 0.5 * eps) / a_t**0.5).clamp(-1, 1)
        mean = (a_prev**0.5 * beta_t / (1 - a_t)) * x0 + (
            (1 - beta_t) ** 0.5 * (1 - a_prev) / (1 - a_t)
        ) * x_t
        if t == 0:
            return mean
        variance = max((1 - a_prev) / (1 - a_t) * beta_t, 1e-20)
        noise = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype).to(x_t.device)
        return mean + variance**0.5 * noise

    def ddim_timesteps(self, num_inference_steps: int) -> list[int]:
        """The steps DDIM visits, from noisy to clean (``diffusers``' ``"leading"`` spacing).

        Returns:
            ``[T - T/n, …, T/n, 0]`` for ``n`` steps (every ``T // n``-th step).
        """
        if not 1 <= num_inference_steps <= self.num_steps:
            raise ValueError(f"num_inference_steps must be in [1, {self.num_steps}], got {num_inference_steps}")
        stride = self.num_steps // num_inference_steps
        return [i * stride for i in reversed(range(num_inference_steps))]

    def ddim_step(
        self, eps: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor, clip: bool = True
    ) -> torch.Tensor:
        """One deterministic DDIM step (``η = 0``) from step ``t`` to an earlier ``t_prev``.

        ``x_{t'} = √ᾱ_{t'} x̂_0 + √(1 - ᾱ_{t'}) ε_θ``: predict the clean image, then noise
        it again to the earlier level with the *same* predicted noise.

        Args:
            eps: ``ε_θ(x_t, t)``, ``(B, C, H, W)``.
            t: the current step.
            t_prev: the next (less noisy) step; a negative value means "clean" (``ᾱ = 1``).
            clip: clip ``x̂_0`` to ``[-1, 1]`` (``diffusers``' default).
            x_t: the current images.

        Returns:
            ``x_{t_prev}``.
        """
        a_t = float(self.alphas_cumprod[t])
        a_prev = float(self.alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
        x0 = (x_t - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        if clip:
            x0 = x0.clamp(-1, 1)  # diffusers keeps the unclipped ε for the direction
        return a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * eps


def diffusion_loss(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DDPM's simple loss: ``‖ε - ε_θ(√ᾱ_t x_0 + √(1 - ᾱ_t) ε, t, y)‖²`` at a random
    ``t``.

    Args:
        model: ``model(x_t, t, labels) -> ε̂`` (a
            :class:`~vitcourse.models.diffusion.DiT`).
        schedule: the noise schedule.
        x0: clean images ``(B, C, H, W)`` in ``[-1, 1]``.
        labels: classes ``(B,)``; the model drops some of them to learn the
            unconditional prediction too (classifier-free guidance).
        generator: seeds ``t`` and ``ε``.

    Returns:
        The scalar mean squared error.
    """
    B = x0.shape[0]
    t = torch.randint(0, schedule.num_steps, (B,), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    x_t = schedule.add_noise(x0, noise, t)
    return F.mse_loss(model(x_t, t, labels), noise)
