"""The Accelerate fine-tuning script: options, one process in-process, two CPU processes with torchrun."""

import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

from vitcourse.scripts import finetune_accelerate as script  # noqa: E402

TINY = ["--profile", "smoke", "--train-size", "64", "--val-size", "20", "--test-size", "41", "--batch-size", "16"]


def test_options_and_their_errors():
    config = script.parse_args(["--epochs", "2", "--mode", "probe", "--lr", "0.01"])
    assert (config.epochs, config.mode, config.lr, config.dataset) == (2, "probe", 0.01, "shape-colors")
    with pytest.raises(SystemExit):
        script.parse_args(["--epochs", "0"])
    with pytest.raises(SystemExit):
        script.parse_args(["--mode", "linear"])


@pytest.mark.slow
def test_full_fine_tuning_in_process(tmp_path):
    results = script.main([*TINY, "--epochs", "2", "--output-dir", str(tmp_path)])
    assert results["labels"][:3] == ["red", "green", "blue"] and len(results["labels"]) == 10
    assert results["processes"] == 1 and results["trainable"] == results["total"]
    assert results["before"]["num_samples"] == results["after"]["num_samples"] == 41
    assert [h["epoch"] for h in results["history"]] == [1, 2]
    assert results["history"][1]["train_loss"] < results["history"][0]["train_loss"]
    confusion = torch.tensor(results["after"]["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 41
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["after"]["accuracy"] == pytest.approx(results["after"]["accuracy"])


def test_a_linear_probe_trains_the_head_only():
    results = script.main([*TINY, "--epochs", "1", "--mode", "probe", "--lr", "0.01"])
    embed_dim = 64  # the vit_shapes stand-in
    assert results["trainable"] == 10 * embed_dim + 10 < results["total"]


@pytest.mark.slow
def test_two_cpu_processes_count_every_test_image_once(tmp_path):
    """torchrun starts two processes; Accelerate shards the data and gathers the metrics (gloo on CPU)."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "-m", "vitcourse.scripts.finetune_accelerate", *TINY, "--epochs", "1", "--output-dir", str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["processes"] == 2
    # 41 test images split over 2 processes: one is repeated to even out the batches, and dropped again
    assert results["after"]["num_samples"] == 41 and torch.tensor(results["after"]["confusion"]).sum() == 41
    assert done.stdout.count("test accuracy") == 1  # accelerator.print: the main process only
