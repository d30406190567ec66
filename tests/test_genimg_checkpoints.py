"""Chapter 4's shipped checkpoints do what their cards say: MAE, ImageGPT, dVAE, DALL-E, the colour judge.

Each test rebuilds the model from its card (``create_model(model, **config)``), loads the
verified weights and re-measures the card's number on the same data.
"""

import pytest
import torch

from vitcourse import checkpoints

NAMES = ("mae_fashion", "imagegpt_fashion", "dvae_world", "dalle_world", "resnet_colors")


def shipped(name):
    """Skip (saying how to build it) while a checkpoint's training run has not landed yet."""
    return pytest.mark.skipif(
        name not in checkpoints.available(), reason=f"{name} not built yet: see vitcourse/scripts/"
    )


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.delenv("VITCOURSE_CHECKPOINTS", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", [pytest.param(n, marks=shipped(n)) for n in NAMES])
def test_card_is_complete_and_model_rebuilds(name):
    entry = checkpoints.info(name)
    assert entry["build"].startswith("python -m vitcourse.scripts.")
    assert entry["metrics"] and entry["data"] and entry["recipe"]
    model = checkpoints.load(name)
    assert not model.training


@pytest.mark.slow
def test_mae_fashion_masked_loss():
    from vitcourse.data import FashionMNIST
    from vitcourse.scripts.train_mae import evaluate_loss

    model = checkpoints.load("mae_fashion")
    with torch.no_grad():  # the same numbers, without keeping every activation for a backward pass
        loss = evaluate_loss(model, FashionMNIST("test").images)
    assert loss == pytest.approx(checkpoints.info("mae_fashion")["metrics"]["test_masked_mse"], abs=1e-4)


@pytest.mark.slow
@shipped("imagegpt_fashion")
def test_imagegpt_fashion_test_likelihood():
    """The card's subset of 1000 test images (the build measured it, with all 10,000): the
    same number again. ``python -m vitcourse.scripts.train_imagegpt evaluate`` checks the
    whole set against the card and records the subset."""
    from vitcourse.scripts.train_imagegpt import SUBSET, load_palette, mean_nll, subset_tokens

    model = checkpoints.load("imagegpt_fashion")
    metrics = checkpoints.info("imagegpt_fashion")["metrics"]
    assert metrics["test_subset"] == SUBSET  # the card measured the images measured here
    nll = mean_nll(model, subset_tokens(load_palette()))
    assert nll == pytest.approx(metrics["test_subset_nll_nats_per_pixel"], abs=1e-4)
    assert nll == pytest.approx(metrics["test_nll_nats_per_pixel"], abs=0.05)  # the subset is like the whole set
    assert nll < 0.8 * metrics["unigram_nll_nats_per_pixel"]  # context helps: well below the unigram


@pytest.mark.slow
def test_dvae_world_reconstruction_from_tokens():
    from vitcourse.models.dalle import CaptionedShapes
    from vitcourse.scripts.train_dalle import TEST_SIZE, dvae_metrics

    model = checkpoints.load("dvae_world")
    test = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False).float_images()
    metrics = dvae_metrics(model, test)
    card = checkpoints.info("dvae_world")["metrics"]["test"]
    assert metrics["mse_hard_tokens"] == pytest.approx(card["mse_hard_tokens"], abs=1e-5)
    assert metrics["codes_used"] == card["codes_used"]


@pytest.mark.slow
@shipped("dalle_world")
def test_dalle_world_validation_losses():
    from vitcourse.models.dalle import CaptionedShapes, CaptionTokenizer, world_layout
    from vitcourse.scripts.train_dalle import VAL_SIZE, encode_dataset, sequence_loss

    dvae, model = checkpoints.load("dvae_world"), checkpoints.load("dalle_world")
    layout = world_layout()
    val = encode_dataset(CaptionedShapes("val", VAL_SIZE), dvae, CaptionTokenizer(), layout)
    with torch.no_grad():
        _, text, image = sequence_loss(model, val, layout.text_len)
    card = checkpoints.info("dalle_world")["metrics"]
    assert float(text) == pytest.approx(card["val_text_nll"], abs=1e-4)
    assert float(image) == pytest.approx(card["val_image_nll"], abs=1e-4)


@pytest.mark.slow
def test_resnet_colors_accuracy():
    from vitcourse.models.dalle import CaptionedShapes
    from vitcourse.scripts.train_dalle import TEST_SIZE, _standardise

    model = checkpoints.load("resnet_colors")
    test = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False)
    with torch.no_grad():
        accuracy = float((model(_standardise(test.float_images())).argmax(1) == test.colors).float().mean())
    assert accuracy == pytest.approx(checkpoints.info("resnet_colors")["metrics"]["test_accuracy"], abs=1e-3)
    assert accuracy >= 0.95
