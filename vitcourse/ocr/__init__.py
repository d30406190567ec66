"""Optical character recognition for chapter 7: classic engines, metrics, real data, Donut's sequences.

* :mod:`.engines`: Tesseract and EasyOCR behind small functions, EasyOCR's detection
  and recognition stages apart, and the simplest parsing (reading order);
* :mod:`.metrics`: character and word error rates (CER, WER);
* :mod:`.preprocess`: flattening a photographed page's uneven lighting;
* :mod:`.data`: real images with their true text (``skimage.data.page()``, 70 scanned
  lines);
* :mod:`.results`: what committed scripts measured (``results/*.json``), with provenance.
"""

from .data import ScannedLine, page_transcription, scanned_lines
from .engines import (
    OCRUnavailableError,
    TextBox,
    craft_scores,
    easyocr_detect,
    easyocr_reader,
    easyocr_recognize,
    reading_order,
    tesseract,
    tesseract_boxes,
)
from .metrics import cer, levenshtein, normalize_text, wer
from .preprocess import as_gray_uint8, flatten_illumination, otsu_binarize

__all__ = [
    "OCRUnavailableError",
    "ScannedLine",
    "TextBox",
    "as_gray_uint8",
    "cer",
    "craft_scores",
    "easyocr_detect",
    "easyocr_reader",
    "easyocr_recognize",
    "flatten_illumination",
    "levenshtein",
    "normalize_text",
    "otsu_binarize",
    "page_transcription",
    "reading_order",
    "scanned_lines",
    "tesseract",
    "tesseract_boxes",
    "wer",
]
