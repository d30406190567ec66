"""load_pretrained / load_processor: pinned Hub models, labelled stand-ins, one line within seconds offline.

Nothing here reaches the network: "offline" is HF_HUB_OFFLINE=1, "unreachable" is an
HF_ENDPOINT on a closed local port, and the local cache is a temporary folder laid out
as huggingface_hub lays it out (``cache_dir``: huggingface_hub reads ``HF_HUB_CACHE``
only when imported).
"""

import dataclasses
import pickle
import re
import time

import pytest
import torch

transformers = pytest.importorskip("transformers")

from vitcourse import checkpoints  # noqa: E402
from vitcourse.hub import (  # noqa: E402
    HUB_MODELS,
    HubUnavailableError,
    load_pretrained,
    load_processor,
    pretrained,  # noqa: E402
    vit_from_hf,
)
from vitcourse.models import ViT, create_model  # noqa: E402

SECONDS = 5.0  # the longest an offline answer may take, once transformers' model code is imported (warm)
VIT = "google/vit-base-patch16-224"
SWIN = "microsoft/swin-tiny-patch4-window7-224"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No shipped checkpoints and a fresh reachability answer in every test."""
    monkeypatch.setenv(checkpoints.registry.ENV_VAR, str(tmp_path / "no-checkpoints"))
    monkeypatch.setattr(pretrained, "_reachability", {})
    yield


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# -- smoke profile: every pinned model has a stand-in ------------------------------------


@pytest.mark.parametrize("name", list(HUB_MODELS))
def test_every_hub_model_has_a_labelled_stand_in(name, capsys):
    model = load_pretrained(name, profile="smoke")
    entry = HUB_MODELS[name]
    assert type(model).__name__ == entry.classes[entry.default_task] and not model.training
    assert model.provenance.stand_in and model.provenance.hub_id == name
    assert "random weights" in model.provenance.weights
    assert str(model).splitlines()[1].strip().startswith(f"STAND-IN for {name}")
    assert model.config.name_or_path.startswith(f"stand-in for {name}")
    assert sum(p.numel() for p in model.parameters()) < 3_000_000
    line = one_line(capsys)
    assert line.startswith(f"[vitcourse.hub] {name}: PROFILE='smoke' downloads nothing -> STAND-IN")


def test_every_revision_is_a_commit_unless_listed_as_a_placeholder():
    for entry in HUB_MODELS.values():
        if entry.hub_id in pretrained.PLACEHOLDERS:
            assert entry.revision == pretrained.PLACEHOLDER and not entry.pinned, entry
        else:
            assert re.fullmatch(r"[0-9a-f]{7}|[0-9a-f]{40}", entry.revision) and entry.pinned, entry
    assert pretrained.PLACEHOLDERS <= HUB_MODELS.keys()  # a listed placeholder names a model of the table
    assert HUB_MODELS[VIT].revision == "3f49326"  # transformers' own pin for its pipelines


def test_each_commit_pins_one_repository():
    """The same hash under two ids would be a copy-paste slip: a commit belongs to one repository."""
    revisions = [entry.revision for entry in HUB_MODELS.values() if entry.pinned]
    assert len(set(revisions)) == len(revisions)


def test_pinned_tells_a_commit_from_a_branch():
    entry = HUB_MODELS[VIT]
    for commit in ("3f49326", "3f49326eb077187dfe1c2a2bb15fbd74e6ab91e3"):
        assert dataclasses.replace(entry, revision=commit).pinned
    for moving in ("main", "v1.0", "refs/pr/3", "3F49326", "3f4932", "3f49326eb077187dfe1c2a2bb15fbd74e6ab91e3a"):
        assert not dataclasses.replace(entry, revision=moving).pinned, moving


def test_the_hub_list_says_which_revisions_are_placeholders(monkeypatch, capsys):
    from vitcourse.hub.__main__ import list_models

    unpinned = dataclasses.replace(HUB_MODELS[VIT], hub_id="some/new-model", revision=pretrained.PLACEHOLDER)
    monkeypatch.setitem(pretrained.HUB_MODELS, unpinned.hub_id, unpinned)
    list_models()
    marked = [line.split()[0] for line in capsys.readouterr().out.splitlines() if "(placeholder)" in line]
    assert sorted(marked) == sorted({*pretrained.PLACEHOLDERS, unpinned.hub_id})


def test_stand_in_classifiers_run_and_keep_imagenet_names():
    for name in (VIT, SWIN, "facebook/deit-tiny-patch16-224", "apple/mobilevit-small"):
        model = load_pretrained(name, profile="smoke", verbose=False)
        with torch.no_grad():
            logits = model(torch.randn(2, 3, 32, 32)).logits
        assert logits.shape == (2, 1000)
        assert model.config.id2label[285] == "Egyptian cat"


def test_stand_ins_are_deterministic_and_leave_the_global_generator_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = load_pretrained(SWIN, profile="smoke", verbose=False)
    assert torch.equal(torch.get_rng_state(), state)
    b = load_pretrained(SWIN, profile="smoke", verbose=False)
    c = load_pretrained(SWIN, profile="smoke", verbose=False, seed=1)
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_a_stand_in_pickles():
    model = load_pretrained(VIT, profile="smoke", verbose=False)
    copy = pickle.loads(pickle.dumps(model))
    assert str(copy).splitlines()[1] == str(model).splitlines()[1]


def test_new_labels_replace_the_1000_class_head():
    labels = ["angular_leaf_spot", "bean_rust", "healthy"]
    model = load_pretrained(VIT, profile="smoke", labels=labels, verbose=False)
    assert model.classifier.out_features == 3 and model.config.id2label == dict(enumerate(labels))
    features = load_pretrained(VIT, profile="smoke", task="feature-extraction", verbose=False)
    assert type(features).__name__ == "ViTModel"


def test_framework_vitcourse_converts_and_keeps_the_label():
    hf = load_pretrained(SWIN, profile="smoke", verbose=False)
    ours = load_pretrained(SWIN, profile="smoke", framework="vitcourse", verbose=False)
    assert type(ours).__name__ == "Swin" and ours.provenance.stand_in
    assert "STAND-IN" in str(ours).splitlines()[1]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert (ours(x) - hf(x).logits).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="converts only the ViT and Swin models"):
        load_pretrained("apple/mobilevit-small", profile="smoke", framework="vitcourse", verbose=False)


def test_bad_arguments_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"fallback must be one of \('stand-in', 'raise'\), got 'maybe'"):
        load_pretrained(VIT, profile="smoke", fallback="maybe")
    with pytest.raises(ValueError, match=r"task must be one of \['image-classification', 'feature-extraction'\]"):
        load_pretrained(VIT, profile="smoke", task="object-detection")
    with pytest.raises(HubUnavailableError, match="no stand-in is known for someone/unknown-model"):
        load_pretrained("someone/unknown-model", profile="smoke")
    with pytest.raises(HubUnavailableError, match=r"PROFILE='smoke' downloads nothing, and fallback='raise'"):
        load_pretrained(VIT, profile="smoke", fallback="raise")


# -- full profile without the Hub: one line, within seconds --------------------------------


def warm(name):
    """Import the model's transformers code (seconds on a busy machine), so that the timing measures the answer."""
    load_pretrained(name, profile="smoke", verbose=False)


def test_offline_full_profile_falls_back_in_one_line(tmp_path, monkeypatch, capsys):
    warm(VIT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    model = load_pretrained(VIT, profile="full", cache_dir=tmp_path)
    assert time.perf_counter() - start < SECONDS
    assert model.provenance.stand_in
    line = one_line(capsys)
    assert "offline mode (HF_HUB_OFFLINE=1); not in the local cache -> STAND-IN" in line
    with pytest.raises(HubUnavailableError, match=r"offline mode \(HF_HUB_OFFLINE=1\); not in the local cache, and "):
        load_pretrained(VIT, profile="full", fallback="raise", cache_dir=tmp_path)


def test_unreachable_hub_falls_back_in_one_line(tmp_path, monkeypatch, capsys):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    calls = []
    connect = pretrained.reachable
    monkeypatch.setattr(pretrained, "reachable", lambda *args, **kwargs: calls.append(args) or connect(*args, **kwargs))
    warm(SWIN)
    start = time.perf_counter()
    model = load_pretrained(SWIN, profile="full", cache_dir=tmp_path)
    with pytest.raises(HubUnavailableError, match="127.0.0.1:9 can't be reached"):
        load_pretrained(SWIN, profile="full", fallback="raise", cache_dir=tmp_path)
    assert time.perf_counter() - start < SECONDS
    assert model.provenance.stand_in and len(calls) == 1  # asked once per process
    assert "127.0.0.1:9 can't be reached (no connection within 1.5 s)" in one_line(capsys)


@pytest.fixture
def reachable_hub(monkeypatch):
    """A Hub that answers the connection test; what ``from_pretrained`` then does is up to each test."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(pretrained, "reachable", lambda *args, **kwargs: True)
    calls, real = [], pretrained._transformers_class

    class Hub:
        """A transformers class whose ``from_pretrained`` records its arguments instead of downloading."""

        def __init__(self, name):
            self.cls = real(name)

        def __call__(self, config):
            return self.cls(config)

        def from_pretrained(self, name, **kwargs):
            calls.append((name, kwargs))
            if name == "broken/model":
                raise OSError("503 Service Unavailable\nretry later")
            return self.cls(transformers.ViTConfig(
                image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32, num_labels=kwargs.get("num_labels", 2)))  # fmt: skip

    monkeypatch.setattr(pretrained, "_transformers_class", Hub)
    return calls


def test_the_hub_is_asked_for_the_pinned_revision(reachable_hub, capsys):
    model = load_pretrained(VIT, profile="full", labels=["a", "b", "c"])
    name, kwargs = reachable_hub[0]
    assert name == VIT and kwargs["revision"] == "3f49326" and not kwargs["local_files_only"]
    assert kwargs["num_labels"] == 3 and kwargs["ignore_mismatched_sizes"] and kwargs["id2label"][2] == "c"
    assert not model.provenance.stand_in
    assert one_line(capsys) == f"[vitcourse.hub] {VIT} @ 3f49326: pretrained weights from the Hub"


def test_a_failing_hub_falls_back_in_one_line(reachable_hub, monkeypatch, capsys):
    monkeypatch.setitem(pretrained.HUB_MODELS, "broken/model", HUB_MODELS[VIT])
    model = load_pretrained("broken/model", profile="full")
    assert model.provenance.stand_in
    assert "the Hub failed (OSError: 503 Service Unavailable) -> STAND-IN" in one_line(capsys)


def test_the_local_cache_serves_offline(tmp_path, monkeypatch, capsys):
    """A model downloaded before (here: saved where huggingface_hub would have put it) loads offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = tmp_path / "models--google--vit-base-patch16-224"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / HUB_MODELS[VIT].revision).write_text(commit)
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=32, num_labels=3)  # fmt: skip
    saved = transformers.ViTForImageClassification(config)
    saved.save_pretrained(folder / "snapshots" / commit)
    capsys.readouterr()
    model = load_pretrained(VIT, profile="full", cache_dir=tmp_path)
    assert not model.provenance.stand_in and "local cache" in model.provenance.weights
    assert torch.equal(model.classifier.weight, saved.classifier.weight)
    assert capsys.readouterr().err.strip().endswith(f"{VIT} @ 3f49326: pretrained weights from the local cache")


# -- a shipped checkpoint stands in better than random weights ------------------------------


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A registry with a small trained-looking ViT under the name the table asks for."""
    root = tmp_path / "checkpoints"
    torch.manual_seed(0)
    model = create_model("vit_pico_patch2_8", in_chans=3, img_size=32, patch_size=8, num_classes=4)
    config = {"in_chans": 3, "img_size": 32, "patch_size": 8, "num_classes": 4}
    checkpoints.register("vit_fashion_tiny", model, "vit_pico_patch2_8", config, root=root, description="a test ViT",
                         labels=["circle", "square", "triangle", "star"])  # fmt: skip
    monkeypatch.setenv(checkpoints.registry.ENV_VAR, str(root))
    return model.eval()


def test_a_shipped_checkpoint_stands_in(shipped):
    model = load_pretrained(VIT, profile="smoke", verbose=False)
    assert "vitcourse checkpoint 'vit_fashion_tiny' (a test ViT), not the Hub weights" in model.provenance.weights
    assert model.config.id2label == {0: "circle", 1: "square", 2: "triangle", 3: "star"}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (model(x).logits - shipped(x)).abs().max() <= 1e-5
    ours = load_pretrained(VIT, profile="smoke", framework="vitcourse", verbose=False)
    assert type(ours) is ViT and torch.equal(ours.head.weight, shipped.head.weight)
    tuned = load_pretrained(VIT, profile="smoke", labels=["a", "b"], verbose=False)
    assert tuned.classifier.out_features == 2
    assert torch.equal(vit_from_hf(tuned).blocks[0].attn.qkv.weight, shipped.blocks[0].attn.qkv.weight)
    random = load_pretrained(VIT, profile="smoke", stand_in="random", verbose=False)
    assert "random weights" in random.provenance.weights


# -- processors -------------------------------------------------------------------------


def test_stand_in_processors_fit_their_model(capsys):
    model = load_pretrained(VIT, profile="smoke", verbose=False)
    processor = load_processor(VIT, model=model)
    assert "STAND-IN processor for 32x32 images" in one_line(capsys)
    from vitcourse.data import load_photo

    batch = processor(load_photo("astronaut", 64), return_tensors="pt")
    assert batch["pixel_values"].shape == (1, 3, 32, 32)
    with torch.no_grad():
        assert model(**batch).logits.shape == (1, 1000)
    pipe = transformers.pipeline("image-classification", model=model, image_processor=processor)
    top = pipe(load_photo("astronaut", 64), top_k=3)
    assert len(top) == 3 and all(result["label"] in model.config.id2label.values() for result in top)
    sam = load_processor("facebook/sam-vit-base", profile="smoke", verbose=False)
    assert type(sam).__name__ == "SamProcessor"


def test_a_shipped_stand_in_gets_the_normalisation_it_was_trained_with(monkeypatch):
    from vitcourse.data import FASHION_MEAN, FASHION_STD, FashionMNIST, sources
    from vitcourse.finetune import to_pil

    monkeypatch.delenv(checkpoints.registry.ENV_VAR)  # the checkpoints this package really ships
    if not sources.is_available("fashion_mnist"):
        pytest.skip("dataset-fashion-mnist is not installed")
    model = load_pretrained(VIT, profile="smoke", verbose=False)
    assert model.provenance.checkpoint == "vit_fashion_tiny"
    processor = load_processor(VIT, model=model, verbose=False)
    assert processor.image_mean == pytest.approx([FASHION_MEAN] * 3)
    assert processor.image_std == pytest.approx([FASHION_STD] * 3)
    raw = FashionMNIST("test", size=8, normalize=False).images  # (8, 1, 28, 28) in [0, 1]
    processed = processor(images=[to_pil(x).convert("RGB") for x in raw], return_tensors="pt")["pixel_values"]
    trained = FashionMNIST("test", size=8).images  # what the checkpoint was trained on
    assert torch.allclose(processed, trained.expand(-1, 3, -1, -1), atol=1e-4)  # grey as RGB, normalised alike
    random = load_pretrained(VIT, profile="smoke", stand_in="random", verbose=False)
    assert random.provenance.checkpoint is None
    assert load_processor(VIT, model=random, verbose=False).image_mean == pytest.approx([0.5] * 3)  # the real model's


def test_a_processor_that_needs_a_tokenizer_says_so():
    with pytest.raises(HubUnavailableError, match="a text tokenizer needs its vocabulary files"):
        load_processor("openai/clip-vit-base-patch32", profile="smoke")


def test_the_shipped_vit_fashion_stand_in_names_its_classes(monkeypatch):
    """The registry written by checkpoints.build records "classes"; the stand-in's id2label must use them."""
    monkeypatch.delenv(checkpoints.registry.ENV_VAR)  # the package's own registry, not the isolated one
    if "vit_fashion_tiny" not in checkpoints.available():
        pytest.skip("vit_fashion_tiny is not shipped in this checkout")
    model = load_pretrained(VIT, profile="smoke", verbose=False)
    assert model.config.id2label == dict(enumerate(checkpoints.info("vit_fashion_tiny")["classes"]))
    assert model.config.label2id["camiseta"] == 0
