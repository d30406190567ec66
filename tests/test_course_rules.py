"""The course's rules from rules.yaml: both editions, the current one, inheritance, grades, rendering."""

from __future__ import annotations

import textwrap

import pytest

from vitcourse.course import rules
from vitcourse.course.render import compare_markdown, evaluation_markdown, rubric_markdown, schedule_markdown


@pytest.fixture(scope="module")
def editions():
    return rules.editions()


def test_both_decks_are_recorded_and_one_is_current(editions):
    assert set(editions) == {"class1_deck", "later_deck"}
    assert rules.current_key() in editions
    assert rules.load().key == rules.current_key()


def test_what_the_decks_say(editions):
    first, later = editions["class1_deck"], editions["later_deck"]
    assert [e.number for e in first.exercises if e.optional] == [3, 4]
    assert [(e.number, e.due_before_class) for e in later.exercises] == [(1, 3), (2, 4), (3, 5)]
    assert first.project.due.text() == "el viernes siguiente a la clase 7"
    assert later.project.due.text() == "el lunes anterior a la clase 8"
    assert first.rubric[0].name == "Claridad técnica del informe"
    assert later.rubric[-1].name == "Explicabilidad y visualización"
    for edition in editions.values():
        assert (edition.weight_practicals, edition.weight_project) == (0.4, 0.6)
        assert edition.late_penalty_points == 2
        assert [c.weight for c in edition.rubric] == [0.25] * 4
        assert edition.project.presentation_minutes == 15


def test_the_later_deck_inherits_what_it_does_not_restate(editions):
    later = editions["later_deck"]
    assert set(later.inherited) == {"late_penalty_points", "schedule"}
    assert later.based_on_label == editions["class1_deck"].label
    assert [o.total_minutes for o in later.schedule] == [200, 180]  # 1:30 + 20 + 1:30; 1:00 + 10 + 50 + 10 + 50


def test_grades():
    edition = rules.load("class1_deck")
    scores = dict(zip([c.name for c in edition.rubric], [9, 8, 9, 10]))
    assert edition.project_grade(scores) == pytest.approx(9.0)
    assert edition.final_grade(8, scores) == pytest.approx(0.4 * 8 + 0.6 * 9)
    assert edition.final_grade(8, 9, late_deliveries=1) == pytest.approx(0.4 * 8 + 0.6 * 9 - 2)
    assert edition.final_grade(0, 1, late_deliveries=3) == 0.0
    with pytest.raises(KeyError, match="missing"):
        edition.project_grade({"Calidad del código": 9})


def test_rendering_states_the_current_rules():
    edition = rules.load()
    text = evaluation_markdown(edition)
    assert edition.project.due.text() in text
    assert r"0.4 \cdot \text{Prácticas} + 0.6 \cdot \text{Proyecto}" in text
    assert "resta 2 puntos" in text
    for criterion in edition.rubric:
        assert criterion.name in rubric_markdown(edition)
    schedule = schedule_markdown(edition)
    assert "Opción 1" in schedule and "Opción 2" in schedule and "3 h 20 min" in schedule


def test_comparison_marks_differences_and_inheritance(editions):
    table = compare_markdown(editions, "later_deck")
    assert "(vigente)" in table
    assert "| ≠ Entrega del proyecto |" in table
    assert "| Nota final |" in table  # the same in both: no mark
    assert "heredada" in table


def _write(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_malformed_rules_name_the_problem(tmp_path):
    good = rules._read(None)
    bad_weights = rules._read(None)
    bad_weights["editions"]["class1_deck"]["rubric"][0]["weight"] = 0.5
    import yaml

    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(bad_weights, allow_unicode=True))
    with pytest.raises(rules.RulesError, match="add up to 1.25"):
        rules.load("class1_deck", path)
    with pytest.raises(rules.RulesError, match="unknown edition 'nope'"):
        rules.load("nope")
    looped = dict(good)
    looped["editions"] = {
        **good["editions"],
        "class1_deck": {**good["editions"]["class1_deck"], "based_on": "later_deck"},
    }
    path.write_text(yaml.safe_dump(looped, allow_unicode=True))
    with pytest.raises(rules.RulesError, match="loop"):
        rules.load("later_deck", path)
    with pytest.raises(rules.RulesError, match="expected a mapping"):
        rules.load(path=_write(tmp_path, "- just a list\n"))
