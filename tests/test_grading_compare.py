"""The comparison behind every verdict, and the plain-data form observations travel in."""

import math

import numpy as np
import pytest
import torch

from vitcourse.grading.compare import compare, describe
from vitcourse.grading.probes import parameter_shapes, seeded, set_parameters, to_wire


def test_equal_observations_have_no_difference():
    obs = {"salida": torch.randn(2, 3), "forma": [2, 3], "n": 4, "x": 0.5, "ok": True, "s": "hola", "none": None}
    assert compare(to_wire(obs), to_wire(obs)) is None


def test_shape_is_reported_before_values():
    expected, got = compare({"salida": torch.zeros(2, 3)}, {"salida": torch.zeros(2, 4)})
    assert (expected, got) == ("salida: forma (2, 4)", "salida: forma (2, 3)")


def test_dtype_is_reported():
    expected, got = compare(torch.zeros(3, dtype=torch.float64), torch.zeros(3))
    assert "torch.float32" in expected and "torch.float64" in got


def test_values_within_tolerance_pass_and_outside_say_where():
    reference = torch.arange(12.0).reshape(3, 4)
    assert compare(reference + 1e-7, reference) is None
    wrong = reference.clone()
    wrong[2, 1] += 0.5
    expected, got = compare(wrong, reference, rtol=1e-5, atol=1e-6)
    assert "tolerancia" in expected
    assert got == "1 de 12 valores distintos; en [2, 1] se esperaba 9 y llegó 9.5"


def test_nan_matches_nan_but_not_a_number():
    assert compare(torch.tensor([math.nan, 1.0]), torch.tensor([math.nan, 1.0])) is None
    assert "[0]" in compare(torch.tensor([math.nan, 1.0]), torch.tensor([0.0, 1.0]))[1]


def test_kind_mismatch_is_described_in_spanish():
    assert compare(None, torch.zeros(2)) == ("un tensor de forma (2,) (torch.float32)", "None")
    assert compare([1, 2], torch.zeros(2))[1] == "una lista de 2 elementos"
    assert compare({"__type__": "MiClase"}, 3) == ("3", "un objeto de tipo MiClase")


def test_lists_dicts_booleans_and_numbers():
    assert compare([[5]], [[5]]) is None
    assert compare([], [[5]]) == ("[[5]]", "[]")
    assert compare({"a": 1}, {"a": 1, "b": 2}) == ("claves {'a', 'b'}", "claves {'a'}")
    assert compare(True, False) == ("no", "sí")
    assert compare(1, True) is not None  # a number is not a boolean
    assert compare(2.0000001, 2) is None
    assert compare(3, 2) == ("2", "3")
    assert compare({"x": [1, torch.ones(2)]}, {"x": [1, torch.zeros(2)]})[0].startswith("x[1]:")


def test_describe():
    assert describe(torch.zeros(2, 3)) == "un tensor de forma (2, 3) (torch.float32)"
    assert describe([1]) == "una lista de 1 elemento"


def test_to_wire_is_plain_data():
    class Subclass(torch.Tensor):
        pass

    value = {
        "t": torch.ones(2, requires_grad=True).as_subclass(Subclass) * 2,
        "np": np.arange(3),
        "scalar": np.float32(1.5),
        "tuple": (1, (2, 3)),
        "size": torch.Size([2, 3]),
        "dtype": torch.float16,
        "object": object(),
    }
    wire = to_wire(value)
    assert type(wire["t"]) is torch.Tensor and not wire["t"].requires_grad
    assert torch.equal(wire["np"], torch.arange(3))
    assert wire["scalar"] == 1.5 and type(wire["scalar"]) is float
    assert wire["tuple"] == [1, [2, 3]] and wire["size"] == [2, 3] and wire["dtype"] == "torch.float16"
    assert wire["object"] == {"__type__": "object"}


def test_to_wire_reads_a_dataframe():
    pandas = pytest.importorskip("pandas")
    wire = to_wire(pandas.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert wire == {"a": [1, 2], "b": ["x", "y"]}


def test_seeded_restores_the_random_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        inside = torch.rand(2)
    assert torch.equal(torch.rand(3), expected)
    with seeded(7):
        assert torch.equal(torch.rand(2), inside)


def test_set_parameters_makes_two_modules_identical():
    a, b = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
    set_parameters(a, seed=1)
    set_parameters(b, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert parameter_shapes(a) == [[4], [4, 3]]
