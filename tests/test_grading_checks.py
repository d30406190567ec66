"""Instant feedback: check(...) in a student's notebook, on the demo TP's parts."""

import torch
from torch import nn

from vitcourse.grading import check, evaluate, get_part, load_private_tests
from vitcourse.grading.results import MIME_TYPE

from grading_demo import ASSIGNMENT, reference


def _statuses(result):
    return [t.status for t in result.tests]


def test_reference_passes_everything():
    for part, implementation in [("normalize", reference.normalize), ("scale", reference.Scale)]:
        result = evaluate(f"tpdemo.{part}", implementation)
        assert set(_statuses(result)) == {"pass"} and result.score == result.points


def test_a_value_part_takes_the_value():
    assert evaluate("tpdemo.counts", torch.bincount((torch.arange(40) * 7) % 5)).score == 2
    assert evaluate("tpdemo.counts", [8, 8, 8, 8, 8]).score == 2  # a list is fine: the probe converts it
    result = evaluate("tpdemo.counts", torch.tensor([8, 8, 8, 8, 7]))
    assert result.tests[0].status == "fail" and "en [4] se esperaba 8 y llegó 7" in result.tests[0].got


def test_wrong_values_get_partial_credit_with_expected_and_got():
    def normalize(x, eps=1e-5):
        return (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True)  # unbiased: slightly off

    result = evaluate("tpdemo.normalize", normalize)
    assert _statuses(result) == ["pass", "fail", "fail"]
    assert result.score == 0.75  # 3 points, weights 1 + 2 + 1, only the first passed
    values = result.tests[1]
    assert "valores como la referencia" in values.expected and "valores distintos" in values.got
    assert values.hint and "unbiased=False" in result.to_text()


def test_module_parts_check_parameters_values_and_gradients():
    class Scale(nn.Module):  # gamma is a plain tensor: not registered, no gradient
        def __init__(self, dim):
            super().__init__()
            self.gamma = torch.ones(dim)

        def forward(self, x):
            return x * self.gamma

    result = evaluate("tpdemo.scale", Scale)
    by_name = {t.test_id.split("/")[1]: t for t in result.tests}
    assert by_name["parameters"].status == "fail"
    assert (by_name["parameters"].expected, by_name["parameters"].got) == (
        "formas de los parámetros: [[5]]",
        "formas de los parámetros: []",
    )
    assert by_name["starts_as_identity"].status == "pass"
    assert by_name["forward_values"].status == "fail"
    assert by_name["gradient_reaches_gamma"].status == "error"


def test_not_implemented_is_pending_without_traceback():
    def normalize(x, eps=1e-5):
        raise NotImplementedError("normalize: todavía no implementado (ver el TODO)")

    class Scale(nn.Module):
        def __init__(self, dim):
            raise NotImplementedError

    for key, implementation in [("tpdemo.normalize", normalize), ("tpdemo.scale", Scale), ("tpdemo.counts", ...)]:
        result = evaluate(key, implementation)
        assert set(_statuses(result)) == {"pending"} and result.score == 0
        assert "Traceback" not in result.to_text() and "todavía no implementado" in result.to_text()


def test_an_exception_names_the_students_line():
    def normalize(x, eps=1e-5):
        return x.mean(-1) + x  # (B,) + (B, D): broadcasting error

    test = evaluate("tpdemo.normalize", normalize).tests[0]
    assert test.status == "error"
    assert test.got.startswith("RuntimeError: The size of tensor a") and "línea" in test.got


def test_private_tests_are_left_out_of_check(tmp_path):
    (tmp_path / "privado.py").write_text(
        "from vitcourse.grading import get_part\n"
        "@get_part('tpdemo.normalize').test('Privado: lotes de uno')\n"
        "def batch_of_one(fn):\n"
        "    import torch\n"
        "    return fn(torch.randn(1, 3))\n",
        encoding="utf-8",
    )
    added = load_private_tests(tmp_path)
    part = get_part("tpdemo.normalize")
    assert added == ["tpdemo.normalize/batch_of_one"] and any(t.private for t in part.tests)
    result = evaluate("tpdemo.normalize", reference.normalize)
    assert [t.test_id for t in result.tests] == [t.id for t in part.public_tests]
    assert [t.test_id for t in evaluate("tpdemo.normalize", reference.normalize, include_private=True).tests][-1] == (
        "tpdemo.normalize/batch_of_one"
    )


def test_check_shows_html_text_and_json(capsys):
    check("tpdemo.scale", reference.Scale)
    printed = capsys.readouterr().out  # outside IPython, check prints the text form
    assert "tpdemo.scale" in printed and "3 / 3 puntos" in printed
    bundle = evaluate("tpdemo.scale", reference.Scale)._repr_mimebundle_()
    assert "<table" in bundle["text/html"] and bundle[MIME_TYPE]["score"] == 3
    assert [t["status"] for t in bundle[MIME_TYPE]["tests"]] == ["pass"] * 4


def test_student_text_is_escaped_in_html():
    def normalize(x, eps=1e-5):
        raise ValueError("<script>alert(1)</script>")

    html = evaluate("tpdemo.normalize", normalize).to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_checks_do_not_disturb_the_notebooks_random_numbers():
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    evaluate("tpdemo.normalize", reference.normalize)
    assert torch.equal(torch.rand(4), expected)


def test_same_verdict_on_every_run():
    def normalize(x, eps=1e-5):
        return x * 2

    first, second = evaluate("tpdemo.normalize", normalize), evaluate("tpdemo.normalize", normalize)
    assert first.to_json() == second.to_json()


def test_unknown_keys_say_what_exists():
    import pytest

    with pytest.raises(KeyError, match="las partes son: 'tpdemo.normalize'"):
        get_part("tpdemo.nada")
    with pytest.raises(KeyError, match="no hay checks para el TP 'tp99'"):
        get_part("tp99.algo")


def test_registry_points():
    assert [p.key for p in ASSIGNMENT.parts] == ["tpdemo.normalize", "tpdemo.scale", "tpdemo.counts", "tpdemo.answer"]
    assert ASSIGNMENT.total_points == 9 and sum(p.points for p in ASSIGNMENT.auto_parts) == 8
    assert evaluate("tpdemo.answer", None).note == "Esta parte la corrige el docente."


def test_an_object_instead_of_the_class_is_explained():
    result = evaluate("tpdemo.scale", reference.Scale(5))
    assert {t.status for t in result.tests} == {"error"}
    assert result.tests[0].got.startswith("se esperaba la clase Scale (sin crear un objeto")
    assert evaluate("tpdemo.normalize", 3).tests[0].got == "se esperaba la función normalize; llegó int"
