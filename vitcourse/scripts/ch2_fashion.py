"""Chapter 2's study on real images (Fashion-MNIST): ViT against CNN as data grows, AugReg, DeiT.

    python -m vitcourse.scripts.ch2_fashion scale --seed 0     # one part, one seed
    python -m vitcourse.scripts.ch2_fashion augreg --seed 2
    python -m vitcourse.scripts.ch2_fashion --list             # what each part trains

Too long for a chapter's minute (about half an hour of one CPU core per part and seed),
so it writes its numbers to ``vitcourse/results/ch2_fashion/<part>_seed<k>.json`` with
their provenance (:func:`vitcourse.results.provenance`) and the chapter loads them. The
chapter re-runs :data:`LIVE` (one cheap point of the grid) and ``tests/test_ch2_fashion.py``
checks that it reproduces the stored number.

Parts:

* ``scale``: a small ViT, a small ResNet and the ViT distilled from that ResNet (DeiT, hard
  distillation, the teacher trained on the same images with the same seed) on the first
  1,000 / 5,000 / 20,000 / 55,000 training images (stratified), fewer epochs for more
  data (:data:`SCALE_EPOCHS`), and soft distillation at 5,000 images;
* ``augreg``: the ViT on 2,000 images with the four augmentation levels of
  :mod:`vitcourse.data.augment`, without and with AugReg's regularisation 0.1 (dropout
  and stochastic depth).

Every run is tested on the official 10,000 test images.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

import torch

from .. import results
from ..experiments import ExperimentResult, ExperimentSpec, load_data, run_experiment

__all__ = ["AUGREG", "CNN", "DEIT", "LIVE", "PARTS", "SCALE_EPOCHS", "SOFT_SIZE", "STUDY", "VIT", "missing", "run_part", "specs"]

STUDY = "ch2_fashion"

VIT = ExperimentSpec(
    "vit_micro_patch4_32",
    config={"img_size": 28, "patch_size": 7, "in_chans": 1, "num_classes": 10, "embed_dim": 64, "depth": 4,
            "num_heads": 4, "mlp_ratio": 2.0},
    augment="shift_flip", epochs=1, batch_size=64, lr=1e-3, label="ViT",
)  # fmt: skip
"""The ViT: 7×7 patches (16 tokens), D = 64, 4 blocks of 4 heads (139 thousand parameters)."""

CNN = ExperimentSpec(
    "resnet_tiny",
    config={"img_size": 28, "in_chans": 1, "num_classes": 10, "widths": (16, 32, 64), "depths": (1, 1, 1),
            "stem_stride": 2},
    augment="shift_flip", epochs=1, batch_size=64, lr=2e-3, label="CNN",
)  # fmt: skip
"""The CNN: a ResNet of three stages (16, 32, 64 channels, one block each), stride-2 stem."""

DEIT = VIT.with_(model="deit_micro_distilled_patch4_32", distill="hard", label="DeiT")
"""The ViT plus DeiT's distillation token and head, trained with hard distillation."""

SCALE_EPOCHS: dict[int, int] = {1000: 20, 5000: 15, 20_000: 8, 55_000: 5}
"""Training images → epochs: every model sees each subset the same number of times."""

SOFT_SIZE = 5000
"""The training size at which soft distillation is trained too."""

AUGREG_SIZE, AUGREG_EPOCHS = 2000, 15
AUGREG: dict[str, dict[str, float]] = {"sin reg.": {}, "reg. 0.1": {"dropout": 0.1, "drop_path": 0.1}}
"""AugReg's two regularisation settings: none, or dropout and stochastic depth 0.1."""
AUGREG_LEVELS: tuple[str, ...] = ("none", "light", "medium", "heavy")

PARTS: tuple[str, ...] = ("scale", "augreg")

LIVE = VIT.with_(train_size=1000, epochs=SCALE_EPOCHS[1000], seed=0)
"""The point the chapter trains again live: the ViT on 1,000 images, seed 0."""


def specs(part: str, seed: int) -> list[ExperimentSpec]:
    """The runs of one part for one seed, in the order they are trained (a DeiT's teacher first).

    Args:
        part: one of :data:`PARTS`.
        seed: the seed of every run.

    Returns:
        The specs; the ``regularisation`` of AugReg's runs is in their ``label``.
    """
    if part == "scale":
        runs = []
        for size, epochs in SCALE_EPOCHS.items():
            runs += [spec.with_(train_size=size, epochs=epochs, seed=seed) for spec in (CNN, VIT, DEIT)]
            if size == SOFT_SIZE:
                runs.append(DEIT.with_(train_size=size, epochs=epochs, seed=seed, distill="soft", label="DeiT suave"))
        return runs
    if part == "augreg":
        return [
            VIT.with_(train_size=AUGREG_SIZE, epochs=AUGREG_EPOCHS, seed=seed, augment=level, config=config,
                      label=f"ViT {regularisation}")
            for regularisation, config in AUGREG.items()
            for level in AUGREG_LEVELS
        ]  # fmt: skip
    raise ValueError(f"part must be one of {PARTS}, got {part!r}")


def missing(runs) -> list[ExperimentSpec]:
    """The runs of the design (every part, seeds 0-2) that ``runs`` does not hold yet.

    Args:
        runs: :func:`vitcourse.results.load_runs` of this study (a DataFrame).

    Returns:
        The specs still to train, in the order the script trains them.
    """
    have = set()
    if len(runs):
        have = {(p.split("_seed")[0], *key) for p, *key in
                zip(runs["part"], runs["label"], runs["train_size"], runs["augment"], runs["seed"])}  # fmt: skip
    return [spec for part in PARTS for seed in (0, 1, 2) for spec in specs(part, seed)
            if (part, *_key(spec)) not in have]  # fmt: skip


def row(part: str, result: ExperimentResult, teacher_accuracy: float | None = None) -> dict[str, Any]:
    """One run as plain data: its spec, its accuracies and times, its training curve."""
    spec = result.spec
    return {
        **result.row(),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.config.items()},
        "batch_size": spec.batch_size,
        "lr": spec.lr,
        "regularisation": "reg. 0.1" if spec.config.get("drop_path") else "sin reg.",
        "teacher_accuracy": teacher_accuracy,
        "num_parameters": sum(p.numel() for p in result.model.parameters()),
        "train_loss_curve": [round(v, 5) for v in result.history["train_loss"]],
        "train_accuracy_curve": [round(v, 5) for v in result.history["train_accuracy"]],
    }


def _key(item: ExperimentSpec | dict[str, Any]) -> tuple:
    get = item.get if isinstance(item, dict) else lambda name: getattr(item, name)
    return get("label"), get("train_size"), get("augment"), get("seed")


def run_part(
    part: str, seed: int, root: str | None = None, limit: int | None = None, resume: bool = False
) -> dict[str, Any]:
    """Train every run of ``part`` for ``seed``, writing the results file after each run.

    Args:
        part: one of :data:`PARTS`.
        seed: the seed.
        root: results folder (default: the package's ``vitcourse/results``).
        limit: train only the first ``limit`` runs (for tests).
        resume: keep the runs already in the file and train only the missing ones (a
            DeiT whose CNN teacher is stored trains that teacher again, seeded, without
            adding it twice); each continuation is recorded under ``provenance["continued"]``.

    Returns:
        The file's content: ``{"provenance": ..., "runs": [...]}``.
    """
    torch.set_num_threads(1)
    train, test = load_data("fashion_mnist", train_size=None, test_size=None)
    command = f"python -m vitcourse.scripts.ch2_fashion {part} --seed {seed}"
    stored = None
    if resume:
        with contextlib.suppress(FileNotFoundError):
            stored = results.load_files(STUDY, root).get(f"{part}_seed{seed}")
    now = results.provenance([seed], part=part, study=STUDY, command=command + (" --resume" if stored else ""))
    if stored:
        data = stored
        data["provenance"].setdefault("continued", []).append(now)
        done = {_key(run): run for run in data["runs"]}
        wall0, cpu0 = data["provenance"].get("wall_seconds", 0.0), data["provenance"].get("cpu_seconds", 0.0)
    else:
        data, done, wall0, cpu0 = {"provenance": now, "runs": []}, {}, 0.0, 0.0
    start, cpu_start = time.perf_counter(), time.process_time()
    todo = specs(part, seed)[:limit]
    teachers: dict[int, ExperimentResult] = {}
    for index, spec in enumerate(todo):
        needed_as_teacher = spec.label == "CNN" and any(
            s.distill and s.train_size == spec.train_size and _key(s) not in done for s in todo[index:]
        )
        if _key(spec) in done and not needed_as_teacher:
            continue
        teacher = teachers.get(spec.train_size) if spec.distill else None
        if spec.distill and teacher is None:
            raise RuntimeError(f"{spec.label} on {spec.train_size} images needs the CNN of that size first")
        result = run_experiment(spec, train, test, teacher=teacher.model if teacher else None)
        if spec.label == "CNN":
            teachers[spec.train_size] = result
        if _key(spec) in done:  # a stored teacher trained again: same seed, same number
            print(f"teacher {spec.train_size}: {result.test_accuracy:.4f} (stored "
                  f"{done[_key(spec)]['test_accuracy']:.4f})", flush=True)  # fmt: skip
            continue
        data["runs"].append(row(part, result, teacher.test_accuracy if teacher else None))
        order = [_key(s) for s in specs(part, seed)]
        data["runs"].sort(key=lambda run: order.index(_key(run)) if _key(run) in order else len(order))
        data["provenance"].update(wall_seconds=round(wall0 + time.perf_counter() - start, 1),
                                  cpu_seconds=round(cpu0 + time.process_time() - cpu_start, 1))  # fmt: skip
        results.write(STUDY, f"{part}_seed{seed}", data, root)
        print(f"{spec.label:12s} {spec.train_size:6d} {spec.augment:10s} seed {seed}: "
              f"test {result.test_accuracy:.4f}, train {result.train_accuracy:.4f}, {result.cpu_seconds:.0f} s CPU",
              flush=True)  # fmt: skip
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcourse.scripts.ch2_fashion", description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", choices=PARTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="results folder (default: the package's)")
    parser.add_argument("--list", action="store_true", help="print the runs of each part and exit")
    parser.add_argument("--resume", action="store_true", help="train only the runs missing from the file")
    parser.add_argument("--limit", type=int, default=None, help="only the first LIMIT runs of the part")
    args = parser.parse_args(argv)
    if args.list or not args.part:
        for part in PARTS:
            for spec in specs(part, args.seed):
                print(f"{part:7s} {spec.label:12s} {spec.model:32s} {spec.train_size:6d} images, "
                      f"{spec.num_epochs:3d} epochs, {spec.augment}")  # fmt: skip
        return 0
    run_part(args.part, args.seed, args.root, limit=args.limit, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
