"""The training loop, its schedule, metrics, checkpoints, logging and MLflow tracking, on tiny problems."""

import logging
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vitcourse.train import (
    History,
    classification_metrics,
    confusion_matrix,
    evaluate,
    file_sha256,
    fit,
    load_checkpoint,
    param_groups,
    predict,
    read_sidecar,
    save_checkpoint,
    warmup_cosine,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors gain nothing from threads, and on a busy 2-core machine OpenMP's
    # threads wait on each other: one thread makes these tests several times faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blobs(n=96, num_classes=3, dim=6, seed=0, noise=0.6):
    """Gaussian blobs around fixed centres (``seed`` draws the points): an easy, deterministic problem."""
    centres = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(100)) * 2
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    points = centres[labels] + noise * torch.randn(n, dim, generator=generator)
    return TensorDataset(points, labels)


def mlp(dim=6, num_classes=3, hidden=32):
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, num_classes))


def loaders(train_seed=0, val_seed=1, batch_size=16, **kwargs):
    train = DataLoader(blobs(seed=train_seed, **kwargs), batch_size=batch_size, shuffle=True)
    val = DataLoader(blobs(n=48, seed=val_seed, **kwargs), batch_size=batch_size)
    return train, val


# --- schedule --------------------------------------------------------------------------------


def test_warmup_cosine_values():
    total, warm = 110, 10
    assert warmup_cosine(0, total, warm) == pytest.approx(1 / 11)
    assert warmup_cosine(9, total, warm) == pytest.approx(10 / 11)
    assert warmup_cosine(10, total, warm) == pytest.approx(1.0)  # the peak
    assert warmup_cosine(60, total, warm) == pytest.approx(0.5)  # half-way down the cosine
    assert warmup_cosine(110, total, warm) == pytest.approx(0.0)
    assert warmup_cosine(110, total, warm, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert warmup_cosine(35, total, warm) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    values = [warmup_cosine(step, total, warm) for step in range(total)]
    assert all(a < b for a, b in zip(values[:10], values[1:11]))  # rising
    assert all(a >= b for a, b in zip(values[10:], values[11:]))  # then falling
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine(0, 10, 11)


def test_fit_follows_the_schedule():
    train, val = loaders()  # 6 batches per epoch
    history = fit(mlp(), train, val, epochs=4, lr=0.01, warmup=1, quiet=True)
    total = 4 * len(train)
    expected = [0.01 * warmup_cosine(epoch * len(train) - 1, total, len(train)) for epoch in (1, 2, 3, 4)]
    assert history["lr"] == pytest.approx(expected)


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_match_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 5, (200,), generator=generator)
    preds = torch.where(torch.rand(200, generator=generator) < 0.6, targets, torch.randint(0, 5, (200,)))
    preds[preds == 4] = 3  # class 4 is never predicted: precision 0 by convention
    ours = classification_metrics(preds, targets, num_classes=6)  # class 5 never appears at all
    labels = list(range(6))
    assert torch.equal(
        ours["confusion"], torch.from_numpy(sklearn_metrics.confusion_matrix(targets, preds, labels=labels))
    )
    assert ours["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(targets, preds))
    for name, function in (
        ("precision", sklearn_metrics.precision_score),
        ("recall", sklearn_metrics.recall_score),
        ("f1", sklearn_metrics.f1_score),
    ):
        expected = function(targets, preds, labels=labels, average="macro", zero_division=0)
        assert ours[name] == pytest.approx(expected), name


def test_confusion_matrix_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)


def test_predict_and_evaluate_agree():
    torch.manual_seed(0)
    model = mlp()
    data = blobs(n=40)
    loader = DataLoader(data, batch_size=7)
    from_loader = predict(model, loader)
    from_tensor = predict(model, data.tensors[0], batch_size=9)
    assert torch.equal(from_loader.labels, from_tensor.labels) and from_tensor.targets is None
    assert torch.equal(from_loader.targets, data.tensors[1])
    torch.testing.assert_close(from_loader.probs.sum(dim=1), torch.ones(40))
    result = evaluate(model, loader)
    assert result["accuracy"] == pytest.approx((from_loader.labels == data.tensors[1]).float().mean().item())
    expected_loss = nn.functional.cross_entropy(model(data.tensors[0]), data.tensors[1]).item()
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert model.training  # evaluate restores the mode


# --- the loop --------------------------------------------------------------------------------


def test_loss_decreases_and_the_problem_is_learned():
    train, val = loaders()
    torch.manual_seed(0)
    history = fit(mlp(), train, val, epochs=6, lr=0.01, quiet=True)
    assert isinstance(history, History) and len(history) == 6
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert set(history.rows[0]) >= {"train_loss", "val_loss", "val_f1", "lr", "seconds"}
    assert history.to_frame().index.name == "epoch"


def test_same_seed_same_history():
    def run():
        torch.manual_seed(123)
        train, val = loaders()
        history = fit(mlp(), train, val, epochs=3, lr=0.01, seed=5, quiet=True, label_smoothing=0.1)
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history.rows]

    assert run() == run()


def test_early_stopping_restores_the_best_epoch():
    # Inputs that carry no information about the labels: fitting the training labels can
    # only make the validation loss worse, so it peaks early and patience runs out.
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 6, generator=generator)
    train = DataLoader(TensorDataset(inputs, torch.randint(0, 3, (64,), generator=generator)), batch_size=16)
    val = DataLoader(TensorDataset(inputs, torch.randint(0, 3, (64,), generator=generator)), batch_size=16)
    torch.manual_seed(0)
    model = mlp(hidden=64)
    history = fit(model, train, val, epochs=40, lr=0.02, warmup=0, patience=3, quiet=True)
    assert history.stopped_early and len(history) == history.best_epoch + 3 < 40
    best, last = history.best["val_loss"], history.rows[-1]["val_loss"]
    assert best == min(history["val_loss"]) < last
    assert evaluate(model, val)["loss"] == pytest.approx(best, rel=1e-6)  # the model holds the best weights


def test_monitor_accuracy_picks_the_highest():
    train, val = loaders()
    torch.manual_seed(0)
    history = fit(mlp(), train, val, epochs=3, lr=0.01, monitor="val_accuracy", quiet=True)
    assert history.best["val_accuracy"] == max(history["val_accuracy"])
    with pytest.raises(KeyError, match="not a history column"):
        fit(mlp(), train, val, epochs=1, monitor="val_auc", quiet=True)


def test_bad_inputs_raise_clear_errors():
    train, val = loaders()
    empty = DataLoader(TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="train_loader yields no batches"):
        fit(mlp(), empty, val, epochs=1, quiet=True)
    dropped = DataLoader(blobs(n=5), batch_size=8, drop_last=True)
    with pytest.raises(ValueError, match="drop_last"):
        fit(mlp(), dropped, epochs=1, quiet=True)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\) .* got labels from 0 to 2"):
        fit(mlp(num_classes=2), train, epochs=1, quiet=True)
    with pytest.raises(ValueError, match="patience needs a val_loader"):
        fit(mlp(), train, epochs=1, patience=2, quiet=True)
    with pytest.raises(FloatingPointError, match="lower lr"):
        fit(mlp(), train, epochs=1, lr=1e30, grad_clip=None, warmup=0, quiet=True)


def test_log_file_has_levels_and_epochs(tmp_path):
    train, val = loaders()
    log = tmp_path / "logs" / "train.log"
    fit(mlp(), train, val, epochs=2, lr=0.01, log_file=log, quiet=True)
    text = log.read_text()
    assert "INFO" in text and "epoch 1:" in text and "epoch 2:" in text and "val_loss=" in text
    assert "DEBUG" not in text
    fit(mlp(), train, val, epochs=1, log_file=log, log_level="DEBUG", quiet=True)
    assert "DEBUG" in log.read_text() and "batch 0" in log.read_text()
    assert logging.getLogger("vitcourse").handlers == []  # the handler is gone afterwards


def test_batch_transform_and_custom_losses():
    from vitcourse.data.augment import batch_mix

    images = blobs(dim=16)  # the 16 features as 1x4x4 "images", which MixUp/CutMix expect
    train = DataLoader(TensorDataset(images.tensors[0].view(-1, 1, 4, 4), images.tensors[1]), batch_size=16)
    model = nn.Sequential(nn.Flatten(), mlp(dim=16))
    history = fit(model, train, epochs=2, lr=0.01, batch_transform=batch_mix("heavy", num_classes=3), quiet=True)
    assert 0 <= history["train_accuracy"][-1] <= 1 and history["train_loss"][-1] < history["train_loss"][0]

    train, _ = loaders()

    seen = {}

    def distillation_like(outputs, targets, images):
        seen["images"] = images.shape
        return nn.functional.cross_entropy(outputs, targets)

    fit(mlp(), train, epochs=1, loss_fn=distillation_like, quiet=True)
    assert seen["images"][1:] == (6,)
    fit(mlp(), train, epochs=1, loss_fn=nn.CrossEntropyLoss(), quiet=True)  # two arguments work too


def test_tuple_outputs_use_the_first_as_logits():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = mlp()

        def forward(self, x):
            logits = self.body(x)
            return (logits, logits.detach() * 0) if self.training else logits

    train, val = loaders()
    history = fit(TwoHeads(), train, val, epochs=3, lr=0.01, quiet=True)
    assert history["val_accuracy"][-1] > 0.8


def test_param_groups_skip_biases_norms_and_named_tokens():
    class WithToken(nn.Module):
        def __init__(self):
            super().__init__()
            self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
            self.proj = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)

        def no_weight_decay(self):
            return {"cls_token"}

    decay, no_decay = param_groups(WithToken(), 0.05)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert len(no_decay["params"]) == 4 and no_decay["weight_decay"] == 0.0


# --- checkpoints and tracking ----------------------------------------------------------------


def test_checkpoint_round_trip_and_tampering(tmp_path):
    torch.manual_seed(0)
    model, path = mlp(), tmp_path / "model.safetensors"
    meta = save_checkpoint(path, model, config={"hidden": 32}, metrics={"acc": torch.tensor(0.5)})
    assert meta["sha256"] == file_sha256(path) and read_sidecar(path)["metrics"] == {"acc": 0.5}
    fresh = mlp()
    assert load_checkpoint(path, fresh)["config"] == {"hidden": 32}
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(path, mlp(hidden=8))
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="SHA-256"):
        load_checkpoint(path, mlp())


def test_fit_saves_checkpoint_and_tracks_with_mlflow(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    train, val = loaders()
    store = tmp_path / "mlruns"
    history = fit(
        mlp(), train, val, epochs=2, lr=0.01, quiet=True, mlflow=store, experiment="tests", run_name="blobs",
        params={"model": "mlp", "hidden": 32}, checkpoint=tmp_path / "best.safetensors", log_file=tmp_path / "a.log",
    )  # fmt: skip
    assert read_sidecar(tmp_path / "best.safetensors")["metrics"]["val_loss"] == history.best["val_loss"]
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("tests").experiment_id])[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "blobs"
    assert run.data.params["lr"] == "0.01" and run.data.params["hidden"] == "32"
    curve = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in curve] == [1, 2] and [m.value for m in curve] == pytest.approx(history["val_loss"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"history.json", "best.safetensors", "best.json", "a.log"} <= artifacts


def test_time_budget_ends_the_cosine_at_steps_or_minutes_whichever_first(monkeypatch):
    import vitcourse.train.schedule as schedule
    from vitcourse.train import TimeBudget

    clock = [1000.0]
    monkeypatch.setattr(schedule.time, "time", lambda: clock[0])
    budget = TimeBudget(steps=100, minutes=1.0, warmup=10)
    budget.start()
    assert budget.lr_factor(0) == pytest.approx(0.1) and budget.lr_factor(9) == pytest.approx(1.0)
    assert budget.progress(50) == pytest.approx(0.5)  # by steps: half way, 0 s elapsed
    assert budget.lr_factor(50) == pytest.approx(0.5)
    clock[0] += 45  # three quarters of the minute: time is further along than 50 steps
    assert budget.progress(50) == pytest.approx(0.75)
    assert budget.lr_factor(50) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.75)))
    clock[0] += 30  # past the budget: progress saturates, the learning rate is zero
    assert budget.progress(60) >= 1 and budget.lr_factor(60) == pytest.approx(0.0)
