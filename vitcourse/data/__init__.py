"""Data that works offline: photos bundled with scikit-image, scikit-learn and matplotlib."""

from .photos import PHOTOS, load_photo

__all__ = ["PHOTOS", "load_photo"]
