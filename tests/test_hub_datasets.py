"""Hub data sets at pinned revisions, and every Hub id the package loads going through a pin.

Nothing here reaches the network: ``datasets.load_dataset`` is replaced by a recorder.
"""

import re
from types import SimpleNamespace

import pytest

from vitcourse.data import remote
from vitcourse.data.remote import DATASET_PLACEHOLDERS, DATASET_REVISIONS, load_hub_dataset


def test_every_dataset_revision_is_a_commit_unless_listed_as_a_placeholder():
    for name, revision in DATASET_REVISIONS.items():
        if name in DATASET_PLACEHOLDERS:
            assert revision == "main", name
        else:
            assert re.fullmatch(r"[0-9a-f]{40}", revision), (name, revision)
    assert DATASET_PLACEHOLDERS <= DATASET_REVISIONS.keys()  # a listed placeholder names a data set of the table


def test_each_dataset_commit_pins_one_repository():
    pinned = [revision for name, revision in DATASET_REVISIONS.items() if name not in DATASET_PLACEHOLDERS]
    assert len(set(pinned)) == len(pinned)


def test_every_hub_dataset_the_course_loads_is_pinned():
    from vitcourse.finetune import HUB_DATASETS
    from vitcourse.labelling.sets import CPPE5_ID, CPPE5_REVISION

    assert {*HUB_DATASETS, CPPE5_ID} <= DATASET_REVISIONS.keys()
    assert CPPE5_REVISION == DATASET_REVISIONS[CPPE5_ID]


@pytest.fixture
def recorded(monkeypatch):
    """``datasets.load_dataset`` replaced by a recorder, and a Hub that answers."""
    datasets = pytest.importorskip("datasets")
    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(remote, "reachable", lambda host, port=443, timeout=3.0: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda name, **kwargs: calls.append((name, kwargs)) or "data")
    return calls


def test_load_hub_dataset_asks_for_the_pinned_revision(recorded):
    assert load_hub_dataset("beans", split="train") == "data"
    assert load_hub_dataset("beans", revision="main", cache_dir="/tmp/x") == "data"  # an explicit one wins
    assert load_hub_dataset("someone/new-set") == "data"  # not in the table: the Hub's default, main
    assert recorded == [
        ("beans", {"split": "train", "revision": DATASET_REVISIONS["beans"]}),
        ("beans", {"split": None, "revision": "main", "cache_dir": "/tmp/x"}),
        ("someone/new-set", {"split": None, "revision": None}),
    ]


def test_every_hub_model_the_package_names_is_pinned():
    """Models loaded outside ``load_pretrained`` take their revision from the same table."""
    pytest.importorskip("transformers")
    from vitcourse.finetune import DEFAULT_MODEL
    from vitcourse.hub import HUB_MODELS
    from vitcourse.hub.grounding_dino import GROUNDING_DINO_ID
    from vitcourse.labelling.sets import SAM2_ID
    from vitcourse.models.sam2.hf import HF_CHECKPOINT

    named = {DEFAULT_MODEL, GROUNDING_DINO_ID, SAM2_ID, HF_CHECKPOINT}
    assert named <= HUB_MODELS.keys()
    assert all(HUB_MODELS[name].pinned for name in named)


def test_the_hub_command_lists_and_resolves_the_data_sets_too(monkeypatch, capsys):
    """``python -m vitcourse.hub list`` / ``revisions`` cover DATASET_REVISIONS (a fake Hub answers)."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    from vitcourse.hub import __main__ as command

    asked = []

    class FakeApi:
        def model_info(self, name, revision=None):
            return SimpleNamespace(sha=(revision or "0" * 40).ljust(40, "0"))

        def dataset_info(self, name, revision=None):
            asked.append((name, revision))
            return SimpleNamespace(sha=revision or "f" * 40)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    found = command.resolve_revisions()
    assert asked == [call for name, rev in DATASET_REVISIONS.items() for call in ((name, rev), (name, None))]
    for name, revision in DATASET_REVISIONS.items():
        assert found[f"datasets/{name}"] == {"pinned": revision, "pinned_sha": revision, "main_sha": "f" * 40}
    capsys.readouterr()
    command.list_models()
    rows = capsys.readouterr().out.split("data set", 1)[1].splitlines()[1:]
    assert [row.split() for row in rows] == [[name, revision] for name, revision in DATASET_REVISIONS.items()]
