"""Preprocessing a photographed page before OCR: flattening uneven lighting.

A page photographed under a lamp is bright in one corner and grey in another. A
single threshold (what an OCR engine does first, in effect) then turns one side
into blank paper and the other into a black smear. The fix is old and simple: the
paper's brightness changes slowly across the page, the ink's changes fast, so a
heavy blur of the image estimates the **background** alone, and dividing by it
leaves the ink on a flat, uniformly white page::

    flat = image / gaussian_blur(image, sigma)

``sigma`` (pixels) must be wider than a stroke, so that the blur forgets the ink,
and narrower than the lighting's changes, so that it follows them.
"""

from __future__ import annotations

import numpy as np
from skimage import filters

__all__ = ["as_gray_uint8", "flatten_illumination", "otsu_binarize"]


def as_gray_uint8(image: np.ndarray) -> np.ndarray:
    """An ``(H, W)`` uint8 grey image from an ``(H, W)`` or ``(H, W, 3|4)`` array (uint8, or float in [0, 1])."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = (
            image[..., :3].mean(axis=-1) if image.shape[-1] in (3, 4) else image[..., 0]
        )
    if image.ndim != 2:
        raise ValueError(
            f"expected a grey (H, W) or colour (H, W, 3) image, got shape {image.shape}"
        )
    if image.dtype != np.uint8:
        scale = 255.0 if image.max() <= 1.0 else 1.0
        image = np.clip(np.round(image * scale), 0, 255).astype(np.uint8)
    return image


def flatten_illumination(image: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """Divide a page by its blurred self, so that the paper is equally white everywhere.

    Args:
        image: ``(H, W)`` grey page (uint8 or float in [0, 1]; colour is averaged).
        sigma: standard deviation in pixels of the Gaussian that estimates the
            background; wider than a stroke, narrower than the lighting's changes.

    Returns:
        ``(H, W)`` uint8: ``image / blur(image)`` stretched to 0–255 (the paper near
        255, the ink dark).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma}")
    gray = as_gray_uint8(image).astype(np.float64)
    background = filters.gaussian(
        gray, sigma=sigma, preserve_range=True
    )  # (H, W), the lighting
    ratio = gray / np.maximum(background, 1.0)  # ~1 on paper, < 1 on ink
    low, high = np.percentile(
        ratio, [0.5, 99.5]
    )  # stretch, ignoring a few extreme pixels
    return (
        (np.clip((ratio - low) / max(high - low, 1e-6), 0, 1) * 255)
        .round()
        .astype(np.uint8)
    )


def otsu_binarize(image: np.ndarray) -> np.ndarray:
    """Black ink on white paper with one global threshold (Otsu's): ``(H, W)`` uint8 of 0 and 255."""
    gray = as_gray_uint8(image)
    return np.where(gray > filters.threshold_otsu(gray), 255, 0).astype(np.uint8)
