"""Measure Tesseract and EasyOCR on real images; write ``vitcourse/ocr/results/ocr_classic.json``.

    OMP_NUM_THREADS=1 nice -n 10 python -m vitcourse.scripts.ocr_classic

What it measures (chapter 7 loads the file and re-runs one point of each live):

1. ``page``: both engines on ``skimage.data.page()`` as photographed and after
   :func:`~vitcourse.ocr.flatten_illumination`; CER and WER against the typed
   transcription (:func:`~vitcourse.ocr.page_transcription`).
2. ``sweep``: the flattening's ``sigma`` from 1 to 100 pixels, both engines.
3. ``text``: what each engine reads on ``skimage.data.text()`` (handwritten formulas
   photographed at an angle; no transcription, so no CER).
4. ``lines``: the 70 scanned lines of ``uw3_50lines``, one line per call (Tesseract
   in single-line mode, EasyOCR's detector + recogniser), per line and in total.
5. ``spanish``: Spanish quotations (Debian's ``fortunes-es``) rendered as lines,
   read by Tesseract with English and with Spanish trained data.

About 3 minutes at one thread on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from ..data.text import draw_text, text_size
from ..ocr import (
    cer,
    easyocr_detect,
    easyocr_reader,
    easyocr_recognize,
    flatten_illumination,
    page_transcription,
    reading_order,
    scanned_lines,
    tesseract,
    wer,
)
from ..ocr.results import provenance, save

__all__ = ["SIGMAS", "easyocr_text", "main", "render_line", "spanish_sentences"]

#: Widths (pixels) of the Gaussian that estimates the page's lighting.
SIGMAS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 40, 60, 100)
#: The sigma the chapter uses by default (the sweep shows the range that works).
DEFAULT_SIGMA = 8


def easyocr_text(reader, image: np.ndarray) -> str:
    """EasyOCR's three stages on one image: detect, recognise, put in reading order; lines joined by ``\\n``."""
    boxes = easyocr_recognize(reader, image, easyocr_detect(reader, image))
    return "\n".join(
        " ".join(box.text for box in line) for line in reading_order(boxes)
    )


def _timed(read: Callable[[np.ndarray], str], image: np.ndarray) -> tuple[str, float]:
    start = time.perf_counter()
    text = read(image)
    return text, time.perf_counter() - start


def spanish_sentences(count: int = 20, max_chars: int = 48) -> list[str]:
    """The first ``count`` one-line quotations (``≤ max_chars``) of Debian's ``fortunes-es``, in file order."""
    from ..data import sources

    found = []
    for path in sorted(sources.path("fortunes_es").glob("*.fortunes")):
        for entry in path.read_text(encoding="utf-8").split("\n%\n"):
            quote = entry.split("\t\t--")[0].strip()
            if quote and "\n" not in quote and len(quote) <= max_chars:
                found.append(quote)
                if len(found) == count:
                    return found
    return found


def render_line(text: str, font_size: int = 20, pad: int = 8) -> np.ndarray:
    """Black text on white, as an ``(H, W)`` uint8 image (DejaVu Sans, every Spanish letter)."""
    width, height = text_size(text, font_size)
    canvas = np.ones((height + 2 * pad, width + 2 * pad, 3), dtype=np.float32)
    image, _, _ = draw_text(canvas, text, (pad, pad), font_size)
    return (image.mean(axis=-1) * 255).round().astype(np.uint8)


def _scores(reference: str, hypothesis: str) -> dict[str, float]:
    return {
        "cer": round(cer(reference, hypothesis), 4),
        "wer": round(wer(reference, hypothesis), 4),
    }


def measure(lines_limit: int | None = None) -> dict:
    """Run every measurement; ``lines_limit`` reads only that many scanned lines (a quick check)."""
    from skimage import data as skdata

    engines = {
        "tesseract": lambda image: tesseract(image, "eng", psm=3),
        "easyocr": None,  # set below, after the reader is loaded (timed apart)
    }
    start = time.perf_counter()
    reader = easyocr_reader(("en",))
    load_seconds = time.perf_counter() - start
    engines["easyocr"] = lambda image: easyocr_text(reader, image)
    line_engines = {
        "tesseract": lambda image: tesseract(image, "eng", psm=7),
        "easyocr": engines["easyocr"],
    }

    page, reference = skdata.page(), "\n".join(page_transcription())
    out: dict = {
        "easyocr_load_seconds": round(load_seconds, 2),
        "default_sigma": DEFAULT_SIGMA,
    }
    out["page"] = {}
    for name, read in engines.items():
        for variant, image in (
            ("raw", page),
            ("flattened", flatten_illumination(page, DEFAULT_SIGMA)),
        ):
            text, seconds = _timed(read, image)
            out["page"][f"{name}/{variant}"] = {
                "text": text,
                "seconds": round(seconds, 2),
                **_scores(reference, text),
            }
    out["sweep"] = {name: [] for name in engines}
    for sigma in SIGMAS:
        image = flatten_illumination(page, sigma)
        for name, read in engines.items():
            text = read(image)
            out["sweep"][name].append({"sigma": sigma, **_scores(reference, text)})
    out["text"] = {
        name: _timed(read, skdata.text())[0] for name, read in engines.items()
    }

    lines = scanned_lines("all")[:lines_limit]
    rows = []
    for line in lines:
        row = {"name": line.name, "text": line.text}
        for name, read in line_engines.items():
            text, seconds = _timed(read, line.image)
            row[name] = {
                "text": " ".join(text.split()),
                "seconds": round(seconds, 3),
                **_scores(line.text, text),
            }
        rows.append(row)
    out["lines"] = rows
    out["lines_total"] = {
        name: {
            "cer": round(
                cer([r["text"] for r in rows], [r[name]["text"] for r in rows]), 4
            ),
            "wer": round(
                wer([r["text"] for r in rows], [r[name]["text"] for r in rows]), 4
            ),
            "seconds_per_line": round(
                float(np.mean([r[name]["seconds"] for r in rows])), 3
            ),
            "perfect_lines": sum(r[name]["cer"] == 0 for r in rows),
        }
        for name in line_engines
    }

    sentences = spanish_sentences()
    spanish = []
    for sentence in sentences:
        image = render_line(sentence)
        spanish.append(
            {
                "text": sentence,
                **{
                    lang: tesseract(image, lang, psm=7).strip()
                    for lang in ("eng", "spa")
                },
            }
        )
    out["spanish"] = {
        "rows": spanish,
        "source": "Debian fortunes-es (the first one-line quotations of up to 48 characters, file order)",
        **{
            f"cer_{lang}": round(
                cer([r["text"] for r in spanish], [r[lang] for r in spanish]), 4
            )
            for lang in ("eng", "spa")
        },
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lines", type=int, default=None, help="read only the first N scanned lines"
    )
    parser.add_argument(
        "--out",
        default=None,
        help="folder for the JSON (default: vitcourse/ocr/results)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = measure(args.lines)
    import easyocr
    import pytesseract

    results["provenance"] = provenance(
        "OMP_NUM_THREADS=1 nice -n 10 python -m vitcourse.scripts.ocr_classic",
        time.perf_counter() - start,
        tesseract=str(pytesseract.get_tesseract_version()),
        easyocr=easyocr.__version__,
    )
    path = save("ocr_classic", results, args.out)
    for name, total in results["lines_total"].items():
        print(
            f"{name:10} lines: CER {total['cer']:.4f}  WER {total['wer']:.4f}  {total['seconds_per_line']:.2f} s/line"
        )
    for key, row in results["page"].items():
        print(f"page {key:20} CER {row['cer']:.4f}  WER {row['wer']:.4f}")
    print(
        f"spanish: CER eng {results['spanish']['cer_eng']:.4f}, spa {results['spanish']['cer_spa']:.4f}"
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
