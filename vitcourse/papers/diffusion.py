"""Numbers of the diffusion papers the book cites (DDPM, score SDE, DiT, SD3).

* DDPM (Ho et al. 2020): the noise schedule of Section 4 and the CIFAR-10 result of the
  abstract and Table 1 (unconditional, FID over 50 000 samples; lower is better).
* Score SDE (Song et al. 2021): the CIFAR-10 result of the abstract.
* DiT (Peebles and Xie 2023): the model sizes of Table 1 (Gflops at 32×32 latents and
  patch 4) and the best ImageNet 256×256 result (abstract; DiT-XL/2 with classifier-free
  guidance, Table 4 for the scale).
* SD3 (Esser et al. 2024): the text encoders of the MM-DiT and its largest size.
"""

from __future__ import annotations

from . import Source

__all__ = [
    "CIFAR10_FID",
    "CIFAR10_FID_SOURCES",
    "DDPM_SCHEDULE",
    "DDPM_SCHEDULE_SOURCE",
    "DIT_BEST",
    "DIT_BEST_SOURCE",
    "DIT_MODELS",
    "DIT_MODELS_SOURCE",
    "SD3",
    "SD3_SOURCE",
]

_DDPM = {"authors": "Ho et al.", "year": 2020, "title": "Denoising Diffusion Probabilistic Models",
         "arxiv": "2006.11239", "bibkey": "ho2020ddpm"}  # fmt: skip
_SDE = {"authors": "Song et al.", "year": 2021,
        "title": "Score-Based Generative Modeling through Stochastic Differential Equations",
        "arxiv": "2011.13456", "bibkey": "song2021sde"}  # fmt: skip
_DIT = {"authors": "Peebles and Xie", "year": 2023, "title": "Scalable Diffusion Models with Transformers",
        "arxiv": "2212.09748", "bibkey": "peebles2023dit"}  # fmt: skip

DDPM_SCHEDULE_SOURCE = Source(**_DDPM, where="Section 4 (experiments)")
DDPM_SCHEDULE: dict = {"T": 1000, "beta_1": 1e-4, "beta_T": 0.02, "schedule": "linear"}
"""The forward process's steps and β range used for every experiment of the paper."""

CIFAR10_FID_SOURCES = {"DDPM": Source(**_DDPM, where="abstract and Table 1"),
                       "score SDE": Source(**_SDE, where="abstract")}  # fmt: skip
CIFAR10_FID: list[dict] = [
    {"model": "DDPM", "fid": 3.17, "inception_score": 9.46},
    {"model": "score SDE", "fid": 2.20, "inception_score": 9.89},
]
"""Unconditional CIFAR-10 generation (FID lower and Inception score higher are better)."""

DIT_MODELS_SOURCE = Source(**_DIT, where="Table 1 (Gflops for 32x32 latents, patch 4)")
DIT_MODELS: list[dict] = [
    {"model": "DiT-S", "layers": 12, "hidden": 384, "heads": 6, "gflops_p4": 1.4},
    {"model": "DiT-B", "layers": 12, "hidden": 768, "heads": 12, "gflops_p4": 5.6},
    {"model": "DiT-L", "layers": 24, "hidden": 1024, "heads": 16, "gflops_p4": 19.7},
    {"model": "DiT-XL", "layers": 28, "hidden": 1152, "heads": 16, "gflops_p4": 29.1},
]
"""The four DiT sizes; halving the patch side quadruples the tokens and about the Gflops."""

DIT_BEST_SOURCE = Source(**_DIT, where="abstract and Table 4 (ImageNet 256x256, class-conditional)")
DIT_BEST: dict = {"model": "DiT-XL/2", "fid": 2.27, "guidance_scale": 1.5}
"""The best class-conditional ImageNet 256×256 result, with classifier-free guidance."""

SD3_SOURCE = Source(authors="Esser et al.", year=2024,
                    title="Scaling Rectified Flow Transformers for High-Resolution Image Synthesis",
                    where="Sections 4 and 5", arxiv="2403.03206", bibkey="esser2024sd3")  # fmt: skip
SD3: dict = {"text_encoders": ["CLIP-L/14", "OpenCLIP bigG/14", "T5-XXL"], "largest_params": "8B"}
"""The three frozen text encoders whose tokens and pooled vectors condition the MM-DiT."""
