"""Chapter 2's study on Fashion-MNIST: its results files, and one point trained again to the stored digit."""

import json

import pytest
import torch

from vitcourse import results
from vitcourse.data import sources
from vitcourse.experiments import seed_summary, seed_verdict
from vitcourse.scripts import ch2_fashion as study

needs_fashion = pytest.mark.skipif(not sources.is_available("fashion_mnist"), reason="dataset-fashion-mnist")


def test_seed_verdict_claims_only_beyond_the_spread():
    assert seed_verdict([0.9, 0.91, 0.92], [0.8, 0.85, 0.89]) == 1
    assert seed_verdict([0.8, 0.85, 0.89], [0.9, 0.91, 0.92]) == -1
    assert seed_verdict([0.9, 0.8, 0.92], [0.85, 0.86, 0.87]) == 0  # the ranges overlap
    assert seed_verdict([0.9, 0.91], [0.5, 0.6]) == 0  # fewer than three seeds: nothing is claimed
    summary = seed_summary([0.5, 0.7, 0.6])
    assert summary["mean"] == pytest.approx(0.6) and summary["std"] == pytest.approx(0.1)
    assert (summary["min"], summary["max"], summary["n"]) == (0.5, 0.7, 3)


def test_the_parts_list_their_runs_with_a_teacher_first():
    scale = study.specs("scale", seed=4)
    assert {spec.seed for spec in scale} == {4}
    for index, spec in enumerate(scale):
        if spec.distill:  # its teacher, the CNN of the same size, was trained before it
            assert any(s.label == "CNN" and s.train_size == spec.train_size for s in scale[:index])
    assert {spec.train_size for spec in scale} == set(study.SCALE_EPOCHS)
    augreg = study.specs("augreg", seed=0)
    assert len(augreg) == len(study.AUGREG) * len(study.AUGREG_LEVELS)
    assert {spec.augment for spec in augreg} == set(study.AUGREG_LEVELS)
    assert study.LIVE in study.specs("scale", seed=study.LIVE.seed)
    with pytest.raises(ValueError, match="part must be one of"):
        study.specs("everything", 0)


def test_results_files_round_trip_with_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv(results.ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="produce them with its script"):
        results.load_runs("nothing")
    data = {"provenance": results.provenance([3], part="x", wall_seconds=1.5, cpu_seconds=1.0),
            "runs": [{"label": "ViT", "test_accuracy": 0.5}]}  # fmt: skip
    path = results.write("demo", "x_seed3", data)
    assert path == tmp_path / "demo" / "x_seed3.json" and json.loads(path.read_text())["runs"][0]["label"] == "ViT"
    runs = results.load_runs("demo")
    assert list(runs["part"]) == ["x_seed3"] and runs["test_accuracy"].item() == 0.5
    table = results.provenance_of("demo")
    assert table.loc["x_seed3", "seeds"] == [3] and table.loc["x_seed3", "threads"] >= 1
    assert data["provenance"]["machine"]["torch"] == torch.__version__


@needs_fashion
def test_the_shipped_results_are_runs_of_the_design_with_provenance():
    """Every stored run is one the script's design names (same order), with its provenance;
    the sizes the chapter's ViT-against-CNN verdicts use have all three seeds. What is not
    trained yet is what ``study.missing`` lists (and the chapter says so)."""
    folder = results.folder(study.STUDY)
    if not folder.exists():
        pytest.fail(f"no results in {folder}; run python -m vitcourse.scripts.ch2_fashion")
    runs = results.load_runs(study.STUDY)
    for name, data in results.load_files(study.STUDY).items():
        provenance = data["provenance"]
        assert provenance["commit"] and provenance["seeds"] and provenance["machine"]["cpu"], name
        assert provenance["wall_seconds"] > 0 and provenance["cpu_seconds"] > 0, name
        part, seed = name.split("_seed")
        design = [(s.label, s.train_size, s.augment) for s in study.specs(part, int(seed))]
        rows = runs[runs["part"] == name]
        stored = list(zip(rows["label"], rows["train_size"], rows["augment"]))
        assert stored == [key for key in design if key in stored], name  # a subset, in order
    scale = runs[runs["part"].str.startswith("scale")]
    for size in (1000, 5000):
        for label in ("CNN", "ViT", "DeiT"):
            seeds = scale[(scale["label"] == label) & (scale["train_size"] == size)]["seed"]
            assert sorted(seeds) == [0, 1, 2], (label, size)
    total = sum(len(study.specs(part, seed)) for part in study.PARTS for seed in (0, 1, 2))
    assert len(study.missing(runs)) == total - len(runs)


@needs_fashion
@pytest.mark.slow
def test_the_live_point_reproduces_the_stored_accuracy():
    """The chapter trains study.LIVE again; so does this test, and both must find the stored number."""
    from vitcourse.data import FashionMNIST
    from vitcourse.experiments import load_data, run_experiment

    runs = results.load_runs(study.STUDY)
    row = runs[(runs["label"] == study.LIVE.label) & (runs["train_size"] == study.LIVE.train_size)
               & (runs["seed"] == study.LIVE.seed) & runs["part"].str.startswith("scale")]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pool, _ = load_data("fashion_mnist", train_size=None, test_size=None)
        live = run_experiment(study.LIVE, pool, FashionMNIST("test"))
    finally:
        torch.set_num_threads(threads)
    assert live.test_accuracy == pytest.approx(row["test_accuracy"].item(), abs=0.01)


def test_resume_trains_only_the_missing_runs_and_their_teacher_again(tmp_path, monkeypatch):
    from types import SimpleNamespace

    trained = []

    def fake_run(spec, train, test, teacher=None):
        trained.append((spec.label, spec.train_size, teacher is not None))
        history = {"train_loss": [1.0], "train_accuracy": [0.5]}
        return SimpleNamespace(spec=spec, model=torch.nn.Linear(2, 2), history=history, test_accuracy=0.5, train_accuracy=0.5, cpu_seconds=1.0,
                               row=lambda: {"label": spec.label, "train_size": spec.train_size,
                                            "augment": spec.augment, "seed": spec.seed, "test_accuracy": 0.5})

    monkeypatch.setattr(study, "run_experiment", fake_run)
    monkeypatch.setattr(study, "load_data", lambda *a, **k: (None, None))
    study.run_part("scale", 0, root=str(tmp_path), limit=3)  # CNN, ViT, DeiT at 1,000
    assert trained == [("CNN", 1000, False), ("ViT", 1000, False), ("DeiT", 1000, True)]
    data = json.loads((tmp_path / study.STUDY / "scale_seed0.json").read_text())
    data["runs"] = data["runs"][:2]  # the DeiT run is missing
    (tmp_path / study.STUDY / "scale_seed0.json").write_text(json.dumps(data))
    trained.clear()
    out = study.run_part("scale", 0, root=str(tmp_path), limit=3, resume=True)
    assert trained == [("CNN", 1000, False), ("DeiT", 1000, True)]  # the teacher again, not stored twice
    assert [run["label"] for run in out["runs"]] == ["CNN", "ViT", "DeiT"]
    assert len(out["provenance"]["continued"]) == 1


def test_provenance_is_not_dirty_because_of_results_files():
    """A study writing its results must not mark the next run's provenance as dirty."""
    folder = results.folder(study.STUDY)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / "zz_untracked_probe.json"
    before = results.provenance([0])["dirty"]
    probe.write_text("{}")
    try:
        assert results.provenance([0])["dirty"] == before
    finally:
        probe.unlink()
