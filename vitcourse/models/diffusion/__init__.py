"""Diffusion models: the noising process, DDPM/DDIM sampling, DiT, MM-DiT, DiffusionCLIP's loss.

One file per idea:

* :mod:`.schedule`: ``q(x_t | x_0)`` in closed form, the ε-prediction loss, one DDPM or
  DDIM step (checked against ``diffusers``' schedulers);
* :mod:`.dit`: the Diffusion Transformer with adaLN-Zero conditioning on ``t`` and class;
* :mod:`.sampling`: classifier-free guidance and the sampling loops;
* :mod:`.mmdit`: Stable Diffusion 3's joint attention over text and image tokens;
* :mod:`.direction`: DiffusionCLIP's directional CLIP loss.
"""

from .dit import DiT, DiTBlock, DiTConfig, FinalLayer, TimestepEmbedder, modulate, timestep_embedding
from .sampling import guided_eps, sample
from .schedule import NoiseSchedule, diffusion_loss

__all__ = [
    "DiT",
    "DiTBlock",
    "DiTConfig",
    "FinalLayer",
    "NoiseSchedule",
    "TimestepEmbedder",
    "diffusion_loss",
    "guided_eps",
    "modulate",
    "sample",
    "timestep_embedding",
]
