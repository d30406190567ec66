"""Diffusion models: the noising process, DDPM/DDIM sampling, DiT, MM-DiT, DiffusionCLIP's loss.

One file per idea:

* :mod:`.schedule`: ``q(x_t | x_0)`` in closed form, the ε-prediction loss, one DDPM or
  DDIM step (checked against ``diffusers``' schedulers);
* :mod:`.dit`: the Diffusion Transformer with adaLN-Zero conditioning on ``t`` and class;
* :mod:`.sampling`: classifier-free guidance and the sampling loops;
* :mod:`.mmdit`: Stable Diffusion 3's joint attention over text and image tokens;
* :mod:`.direction`: DiffusionCLIP's directional CLIP loss;
* :mod:`.port`: weights from ``diffusers``' ``DiTTransformer2DModel``, and where the two differ.
"""

from .direction import directional_loss
from .dit import DiT, DiTBlock, DiTConfig, FinalLayer, TimestepEmbedder, modulate, timestep_embedding
from .mmdit import MMDiTBlock, joint_attention
from .port import config_from_diffusers, dit_from_diffusers
from .sampling import guided_eps, sample
from .schedule import NoiseSchedule, diffusion_loss

__all__ = [
    "DiT",
    "DiTBlock",
    "DiTConfig",
    "FinalLayer",
    "MMDiTBlock",
    "NoiseSchedule",
    "TimestepEmbedder",
    "config_from_diffusers",
    "diffusion_loss",
    "directional_loss",
    "dit_from_diffusers",
    "guided_eps",
    "joint_attention",
    "modulate",
    "sample",
    "timestep_embedding",
]
