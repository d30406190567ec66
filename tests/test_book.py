"""vitcourse.book.glue: the numbers it pastes into the prose can be formatted."""

import numpy as np
import pytest
import torch
from myst_nb.core.variables import format_plain_text

import vitcourse.book as book


@pytest.mark.parametrize("value", [np.float64(0.25), np.float32(0.25), torch.tensor(0.25), np.array(0.25), 0.25])
def test_scalars_are_glued_as_plain_numbers(monkeypatch, value):
    stored = {}
    monkeypatch.setattr("myst_nb.glue", lambda name, v, display=False: stored.update({name: v}))
    assert book.glue("share", value) is value  # the caller gets its own object back
    glued = stored["share"]
    assert type(glued) is float
    assert format_plain_text(repr(glued), ".0%") == "25%"  # what {glue:text}`share:.0%` renders


def test_non_scalars_are_glued_unchanged(monkeypatch):
    stored = {}
    monkeypatch.setattr("myst_nb.glue", lambda name, v, display=False: stored.update({name: v}))
    table = np.arange(3)
    book.glue("table", table)
    assert stored["table"] is table
