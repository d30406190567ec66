"""Chapter 4's measured results (``vitcourse/results/*.json``) re-checked at one point each.

The scripts that write them run for many CPU minutes; each test here re-computes one
cheap entry of the recorded numbers with the same code and seed and compares it.
"""

import pytest
import torch

from vitcourse import checkpoints
from vitcourse.scripts.provenance import read_results, results_path

RESULTS = ("mae_fashion", "imagegpt_fashion", "dalle_world")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def written(name):
    return pytest.mark.skipif(not results_path(name).exists(), reason=f"{name}.json not written yet")


@pytest.mark.parametrize("name", [pytest.param(n, marks=written(n)) for n in RESULTS])
def test_results_carry_provenance_and_enough_seeds(name):
    results = read_results(name)
    provenance = results["provenance"]
    for key in ("commit", "date", "machine", "wall_seconds", "seeds", "command"):
        assert key in provenance, key
    assert provenance["command"].startswith("python -m vitcourse.scripts.")
    for summary in results.get("accuracy", {}).values():  # comparisons need >= 3 seeds
        assert len(summary["values"]) >= 3
        assert summary["mean"] == pytest.approx(sum(summary["values"]) / len(summary["values"]))


@written("imagegpt_fashion")
def test_imagegpt_pixel_probe_seed_0():
    from vitcourse.scripts.eval_mae import linear_probe
    from vitcourse.scripts.train_imagegpt import _pixels

    results = read_results("imagegpt_fashion")
    test_images, test_y = _pixels("test", results.get("test_size"))
    images, y = _pixels("train", results["labels"], 0)
    accuracy = linear_probe(images.flatten(1).numpy(), y.numpy(), test_images.flatten(1).numpy(), test_y.numpy())
    assert accuracy == pytest.approx(results["accuracy"]["probe_pixels"]["values"][0], abs=2e-3)


@pytest.mark.slow
@written("mae_fashion")
def test_mae_probe_seed_0():
    from vitcourse.data import FashionMNIST
    from vitcourse.scripts.eval_mae import features_of, linear_probe

    results = read_results("mae_fashion")
    model = checkpoints.load("mae_fashion")
    test = FashionMNIST("test")
    labelled = FashionMNIST("train", size=results["labels"], seed=0)
    accuracy = linear_probe(features_of(model, labelled.images), labelled.labels.numpy(),
                            features_of(model, test.images), test.labels.numpy())  # fmt: skip
    assert accuracy == pytest.approx(results["accuracy"]["probe_mae"]["values"][0], abs=2e-3)


@pytest.mark.slow
@written("dalle_world")
def test_dalle_judges_on_real_images():
    from vitcourse.models.dalle import CaptionedShapes
    from vitcourse.scripts.train_dalle import TEST_SIZE, judge

    real = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False)
    measured = judge(real.float_images(), real.shapes, real.colors)
    recorded = read_results("dalle_world")["judges_on_real_images"]
    for key in ("shape", "color", "both"):
        assert measured[key] == pytest.approx(recorded[key], abs=1e-3)


@pytest.mark.slow
@written("dalle_world")
def test_dalle_guided_first_draw_of_seen_pairs():
    """The chosen guidance scale's first round of seen-pair drawings, drawn again."""
    from vitcourse.data.backgrounds import COLOR_NAMES
    from vitcourse.data.shapes import SHAPE_NAMES
    from vitcourse.models.dalle import HELD_OUT, CaptionTokenizer, generate_images, world_layout
    from vitcourse.scripts.train_dalle import best_scale, caption_grid, judge

    results = read_results("dalle_world")
    sampling, row = results["sampling"], best_scale(results)
    dvae, transformer = checkpoints.load("dvae_world"), checkpoints.load("dalle_world")
    seen = [(s, c) for s in SHAPE_NAMES for c in COLOR_NAMES if (s, c) not in HELD_OUT]
    captions, shapes, colors = caption_grid(seen, sampling["per_pair_seen"], sampling["seed"])
    ids, layout = CaptionTokenizer().encode(captions), world_layout()
    generator = torch.Generator().manual_seed(sampling["seed"])
    images = torch.cat([
        generate_images(transformer, dvae, layout, ids[i : i + 100], temperature=sampling["temperature"],
                        top_k=sampling["top_k"], generator=generator, guidance_scale=row["scale"])[0]
        for i in range(0, len(ids), 100)
    ])  # fmt: skip
    measured = judge(images, shapes, colors)
    for key in ("shape", "color", "both"):
        assert measured[key] == pytest.approx(row["generated_seen"][f"{key}_per_draw"][0], abs=0.01)


@written("dalle_world")
def test_dalle_record_names_the_shipped_reranker():
    """The record's reranker is the shipped ``clip_dalle_world``: same weights, and the
    reading of real images the record holds is the one its card holds."""
    from vitcourse.scripts.train_dalle import RERANKER

    results = read_results("dalle_world")
    card = checkpoints.info(RERANKER)
    assert results["reranker"]["name"] == RERANKER and results["reranker"]["sha256"] == card["sha256"]
    assert results["reranker_on_real_images"] == card["metrics"]["on_real_test_images"]
    assert "vit_shapes" in results["reranker"]["judges"] and RERANKER not in results["reranker"]["judges"]
    curve = results["best_of_n"]
    assert curve["scale"] == best_scale_of(results) and curve["rows"][0]["n"] == 1
    for row in curve["rows"]:
        for group in ("seen", "held_out"):
            assert row[group]["groups"] == curve["rounds"] // row["n"] == len(row[group]["both_per_group"])


def best_scale_of(results: dict) -> float:
    from vitcourse.scripts.train_dalle import best_scale

    return best_scale(results)["scale"]


@pytest.mark.slow
@written("dalle_world")
def test_dalle_best_of_n_first_round_of_seen_pairs():
    """The best-of-N curve's first round of seen-pair drawings (N = 1), drawn again."""
    from vitcourse.data.backgrounds import COLOR_NAMES
    from vitcourse.data.shapes import SHAPE_NAMES
    from vitcourse.models.dalle import HELD_OUT, CaptionTokenizer, world_layout
    from vitcourse.scripts.train_dalle import caption_grid, draw, judge

    results = read_results("dalle_world")
    sampling, curve = results["sampling"], results["best_of_n"]
    dvae, transformer = checkpoints.load("dvae_world"), checkpoints.load("dalle_world")
    seen = [(s, c) for s in SHAPE_NAMES for c in COLOR_NAMES if (s, c) not in HELD_OUT]
    captions, shapes, colors = caption_grid(seen, sampling["per_pair_seen"], sampling["seed"])
    generator = torch.Generator().manual_seed(curve["seed"])
    images = draw(transformer, dvae, world_layout(), CaptionTokenizer().encode(captions), 1, generator,
                  temperature=sampling["temperature"], top_k=sampling["top_k"], guidance_scale=curve["scale"])[0]  # fmt: skip
    measured = judge(images, shapes, colors)
    assert measured["both"] == pytest.approx(curve["rows"][0]["seen"]["both_per_group"][0], abs=0.01)
