"""Real photographs that ship with installed packages, as tensors.

No download needed: scikit-image bundles ``astronaut``, ``coffee``, ``chelsea``, …;
scikit-learn bundles ``china`` and ``flower``; matplotlib bundles ``grace_hopper``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["PHOTOS", "load_photo"]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        import matplotlib.image

        return matplotlib.image.imread(file)


PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "rocket": _skimage("rocket"),
    "camera": _skimage("camera"),
    "page": _skimage("page"),
    "text": _skimage("text"),
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
    "grace_hopper": _grace_hopper,
}


def load_photo(name: str = "astronaut", size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Load a bundled photo as a float tensor in ``[0, 1]``.

    Args:
        name: one of :data:`PHOTOS`.
        size: resize to ``size`` (square) or ``(H, W)`` with bilinear antialiasing;
            ``None`` keeps the original size.

    Returns:
        ``(C, H, W)`` float32 tensor (``C = 3`` for colour photos, 1 for grey ones).
    """
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {sorted(PHOTOS)}")
    array = np.asarray(PHOTOS[name]())
    if array.ndim == 2:
        array = array[..., None]
    image = torch.from_numpy(np.array(array)).permute(2, 0, 1).float()  # (C, H, W), a writable copy
    if array.dtype == np.uint8:
        image = image / 255.0
    image = image[:3]  # drop an alpha channel if any
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        image = image.clamp(0.0, 1.0)
    return image
