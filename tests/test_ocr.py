"""Classic OCR (vitcourse.ocr): error rates, preprocessing, parsing, real data, the engines, the measured file."""

import random
import shutil

import jiwer
import numpy as np
import pytest

from vitcourse.data import sources
from vitcourse.ocr import (
    OCRUnavailableError,
    TextBox,
    cer,
    easyocr_reader,
    flatten_illumination,
    levenshtein,
    normalize_text,
    page_transcription,
    reading_order,
    scanned_lines,
    wer,
)
from vitcourse.ocr import results as ocr_results


def test_levenshtein_counts_substitutions_deletions_insertions():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3
    assert levenshtein(["a", "b"], ["a", "b"]) == 0


def test_our_rates_equal_jiwer_on_random_strings():
    rng = random.Random(0)
    alphabet = "ab c\n"
    for _ in range(200):
        refs = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
            for _ in range(3)
        ]
        hyps = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            for _ in range(3)
        ]
        refs = [r if r.strip() else "x" for r in refs]
        nrefs, nhyps = (
            [normalize_text(r) for r in refs],
            [normalize_text(h) for h in hyps],
        )
        assert cer(refs, hyps) == pytest.approx(jiwer.cer(nrefs, nhyps))
        assert wer(refs, hyps) == pytest.approx(jiwer.wer(nrefs, nhyps))


def test_rates_ignore_whitespace_runs_and_can_exceed_one():
    assert cer("the page", "the   page\n") == 0
    assert cer("ab", "xxxxab") == 2.0
    with pytest.raises(ValueError, match="pair them"):
        cer(["a"], ["a", "b"])
    with pytest.raises(TypeError):
        cer("a", ["a"])


def test_flattening_evens_out_a_lighting_gradient():
    rng = np.random.default_rng(0)
    height, width = 40, 90
    light = np.linspace(0.35, 1.0, width)[None, :].repeat(
        height, axis=0
    )  # dark left, bright right
    ink = np.ones((height, width))
    ink[18:22, 5:85] = 0.2  # a horizontal stroke, 4 px thick
    image = (
        (light * ink * 255 + rng.normal(0, 2, (height, width)))
        .clip(0, 255)
        .astype(np.uint8)
    )
    flat = flatten_illumination(image, sigma=6)
    assert flat.dtype == np.uint8 and flat.shape == image.shape
    paper = np.r_[0:12, 28:40]
    left, right = flat[paper, 5:20].mean(), flat[paper, 70:85].mean()
    assert (
        abs(left - right)
        < 12
        < abs(float(image[paper, 5:20].mean()) - float(image[paper, 70:85].mean()))
    )
    assert (
        flat[19:21, 5:85].mean() < flat[paper, 5:85].mean() - 100
    )  # the ink stays dark
    with pytest.raises(ValueError, match="positive"):
        flatten_illumination(image, sigma=0)


def test_reading_order_groups_lines_then_sorts_left_to_right():
    boxes = [
        TextBox((60, 40, 90, 55), "d"),
        TextBox((0, 0, 40, 20), "a"),
        TextBox((0, 38, 50, 56), "c"),
        TextBox((45, 2, 80, 18), "b"),
    ]
    assert [[b.text for b in line] for line in reading_order(boxes)] == [
        ["a", "b"],
        ["c", "d"],
    ]


def test_page_transcription_is_seven_printed_lines():
    lines = page_transcription()
    assert (
        len(lines) == 7
        and lines[0] == "Region-based segmentation"
        and lines[-1].startswith(">>>")
    )


@pytest.mark.skipif(
    not sources.is_available("calamari_lines"),
    reason="uw3_50lines is fetched at set-up",
)
def test_scanned_lines_are_seventy_with_text():
    lines = scanned_lines()
    assert len(lines) == 70 and len(scanned_lines("test")) == 20
    assert len({line.name for line in lines}) == 70  # train/ and test/ reuse file names
    assert all(
        line.image.ndim == 2 and line.image.dtype == np.uint8 and line.text
        for line in lines
    )


def test_easyocr_in_smoke_refuses_weights_it_would_download():
    with pytest.raises(OCRUnavailableError, match="latin_g2.*PROFILE='full'"):
        easyocr_reader(("es",), profile="smoke")


def test_the_measured_file_has_every_part_and_its_provenance():
    data = ocr_results.load("ocr_classic")
    assert {
        "page",
        "sweep",
        "text",
        "lines",
        "lines_total",
        "spanish",
        "provenance",
    } <= set(data)
    assert len(data["lines"]) == 70 and data["provenance"]["commit"]
    for name in ("tesseract", "easyocr"):
        total = data["lines_total"][name]
        refs = [row["text"] for row in data["lines"]]
        assert total["cer"] == pytest.approx(
            cer(refs, [row[name]["text"] for row in data["lines"]]), abs=1e-4
        )


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="Debian's tesseract-ocr is not installed"
)
def test_tesseract_reproduces_the_recorded_page_numbers():
    pytest.importorskip("pytesseract")
    from skimage import data as skdata

    from vitcourse.ocr import tesseract

    recorded = ocr_results.load("ocr_classic")
    reference = "\n".join(page_transcription())
    sigma = recorded["default_sigma"]
    for variant, image in (
        ("raw", skdata.page()),
        ("flattened", flatten_illumination(skdata.page(), sigma)),
    ):
        assert cer(reference, tesseract(image)) == pytest.approx(
            recorded["page"][f"tesseract/{variant}"]["cer"], abs=1e-3
        )


def test_nougat_table_is_recorded_as_printed_total_row_included():
    from vitcourse.papers import ocr

    rows = sum(row["pages"] for row in ocr.NOUGAT_DATA)
    assert (rows, ocr.NOUGAT_DATA_TOTAL) == (
        8_494_841,
        8_204_754,
    )  # the printed total isn't the sum
    assert "Table A.1" in ocr.NOUGAT_DATA_SOURCE.citation()
