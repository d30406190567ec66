"""Chapter 1's timeline: every row dated, sourced and cited."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from vitcourse.papers import timeline  # noqa: E402
from vitcourse.viz import plot_timeline  # noqa: E402

BIB = Path(__file__).resolve().parents[1] / "book" / "references.bib"


@pytest.mark.parametrize("row", timeline.TIMELINE, ids=lambda row: row["model"])
def test_row_is_dated_and_cited(row):
    assert row["area"] in timeline.AREAS
    year, month = map(int, row["date"].split("-"))
    assert 2017 <= year <= 2025 and 1 <= month <= 12
    assert re.search(rf"@\w+\{{{row['bibkey']},", BIB.read_text(encoding="utf-8")), row["bibkey"]
    if row["arxiv"]:
        # An arXiv id names the month the paper was announced: its submission month or the next.
        id_year, id_month = 2000 + int(row["arxiv"][:2]), int(row["arxiv"][2:4])
        months_after = (id_year - year) * 12 + id_month - month
        assert months_after in (0, 1), (row["model"], row["date"], row["arxiv"])


def test_rows_are_in_order_and_named_once():
    dates = [row["date"] for row in timeline.TIMELINE]
    assert dates == sorted(dates)
    names = [row["model"] for row in timeline.TIMELINE]
    assert len(names) == len(set(names))


def test_the_figure_has_one_dot_per_paper_and_refuses_unknown_areas():
    ax = plot_timeline(timeline.TIMELINE, timeline.AREAS)
    labels = {text.get_text() for text in ax.texts}
    assert labels == {row["model"] for row in timeline.TIMELINE}
    with pytest.raises(ValueError, match="not lanes"):
        plot_timeline([{"model": "X", "date": "2020-01", "area": "audio"}], timeline.AREAS)
