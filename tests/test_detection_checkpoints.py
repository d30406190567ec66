"""The shipped detection checkpoints re-evaluated against the metrics their cards record.

``detr_shapes`` and ``grounding_shapes`` share the frozen ``resnet_shapes`` body, so the
backbone runs once over the 1 000 test images for both (the slowest part).
"""

import pytest
import torch

from vitcourse import checkpoints
from vitcourse.detection.results import read_results

SHIPPED = {"detr_shapes", "grounding_shapes", "detr_trees"}
TREES_TEST_AP50_FLOOR = 0.06  # the recorded run: 0.0691 on OSBS_029, chosen by validation (0.0917)
TREES_FIT_AP50_FLOOR = 0.08  # the recorded run: 0.109 on its own tiles (the frozen-backbone recipe: 0.0162)
pytestmark = pytest.mark.skipif(not SHIPPED <= set(checkpoints.available()), reason="detection checkpoints not built")


@pytest.fixture(scope="module")
def shapes_features():
    from vitcourse.scripts.train_detr import RECIPES, cache_features, shapes_split

    torch.set_num_threads(1)
    detr = checkpoints.load("detr_shapes")
    return detr, cache_features(detr, shapes_split(RECIPES["shapes"], "test"))


def test_cards_rebuild_and_name_their_script():
    for name in SHIPPED:
        entry = checkpoints.info(name)
        assert entry["build"].startswith("python -m vitcourse.scripts.train_")
        assert checkpoints.load(name).config.img_size == entry["config"]["img_size"]


@pytest.mark.slow
def test_detr_shapes_reaches_its_recorded_ap(shapes_features):
    from vitcourse.scripts.train_detr import evaluate_cached

    detr, cache = shapes_features
    metrics = checkpoints.info("detr_shapes")["metrics"]
    result = evaluate_cached(detr, cache, 8, 64)
    assert result["pycocotools"]["AP50"] == pytest.approx(metrics["test_AP50"], abs=2e-4)
    assert result["pycocotools"]["AP"] == pytest.approx(metrics["test_AP"], abs=2e-4)
    assert result["max_difference"] < 1e-6  # ours = pycocotools
    assert metrics["test_AP50"] >= 0.7  # the target


@pytest.mark.slow
def test_grounding_shapes_reaches_its_recorded_ap_on_held_out_phrases(shapes_features):
    from vitcourse.scripts.train_grounding import EVAL_SETS, evaluate_phrases, world_objects

    _, cache = shapes_features
    model = checkpoints.load("grounding_shapes")
    metrics = checkpoints.info("grounding_shapes")["metrics"]
    objects = world_objects("test", len(cache["targets"]), 0)
    result = evaluate_phrases(model, cache, objects, EVAL_SETS["held_out_pairs"], 64)
    assert result["AP50"] == pytest.approx(metrics["test_held_out_pairs_AP50"], abs=2e-4)


def test_detr_trees_reaches_its_recorded_ap():
    """Re-evaluated on the held-out photo's tiles: the AP its results record, and floors that catch a regression."""
    from vitcourse.detection.data import read_tree_crowns, tree_tiles
    from vitcourse.scripts.train_detr import RECIPES, cache_features, evaluate_cached

    model = checkpoints.load("detr_trees")
    data = RECIPES["trees"].data
    recorded = read_results("detr_trees")["test"]["pycocotools"]
    photos = read_tree_crowns(names=tuple(data["test"]))
    tiles = [t for p in photos for t in tree_tiles(p, data["tile"], data["size"])]
    result = evaluate_cached(model, cache_features(model, tiles), 1, data["size"])
    assert result["pycocotools"]["AP50"] == pytest.approx(recorded["AP50"], abs=2e-4)
    assert result["pycocotools"]["AP"] == pytest.approx(recorded["AP"], abs=2e-4)
    assert checkpoints.info("detr_trees")["metrics"]["test_AP50"] >= TREES_TEST_AP50_FLOOR


def test_detr_trees_diagnosis_the_chapter_states():
    """Issue 14, as the chapter tells it from these records. With the frozen shapes backbone (the record
    ``detr_trees_frozen``) the kept model did not fit its own tiles; the backbone taught where crowns are
    fits them, the kept model is the best on validation, and the probe finds crowns better in its features."""
    frozen = read_results("detr_trees_frozen")
    assert frozen["metrics"]["train_AP50"] < 0.05 and frozen["recipe"]["start_from"] == "detr_shapes"
    results = read_results("detr_trees")
    log = [e for e in results["log"] if "val" in e]
    assert max(e["val"]["AP50"] for e in log) == results["metrics"]["val_AP50"]  # kept by validation
    assert results["metrics"]["train_AP50"] >= TREES_FIT_AP50_FLOOR
    assert results["recipe"]["backbone_pretrain"]["epochs"] > 0
    probe = read_results("detr_trees_probe")
    assert probe["trained"]["test_AUC"] > probe["probe"]["test_AUC"]


def test_tree_augmentation_moves_boxes_with_their_crowns():
    """Every flip/rotation moves the box with the pixels it frames; the colour jitter moves nothing."""
    from vitcourse.scripts.train_detr import augment

    image = torch.zeros(3, 32, 32)
    image[:, 4:10, 3:20] = 1.0  # a bright box, x 3..20, y 4..10
    boxes = torch.tensor([[3.0, 4.0, 20.0, 10.0]])
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(64):
        out, moved = augment(image, boxes, 8, 0.2, generator)
        ys, xs = torch.nonzero(out[0] > 0.5, as_tuple=True)
        assert moved.tolist() == [[xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]]
        assert 0 <= out.min() and out.max() <= 1
        seen.add(tuple(moved[0].tolist()))
    assert len(seen) == 8  # all eight flips/rotations of a non-square box
