"""Train SAM 2's memory on generated videos, starting from the shipped mini-SAM; ship ``sam2_mini_world``.

Run (one thread, niced; at most ``--max-minutes`` of training)::

    OMP_NUM_THREADS=1 nice -n 15 python -m vitcourse.scripts.train_sam2

The model is ``sam2_mini``: the weights of ``sam_mini_world`` for SAM's three parts,
new memory parts. SAM's image and prompt encoders stay frozen, so every training
frame is encoded once before training; the memory parts train at ``--lr``, the mask
decoder at ``--lr × --decoder-lr-factor``. Every step unrolls the tracker over a batch
of clips, windows of the training videos (see :mod:`vitcourse.models.sam2.training`);
every ``--probe-every`` steps the log shows the tracking mIoU of 20 videos of a third
split. At the end the held-out videos are tracked with and without memory and the
checkpoint is registered with its card.

History: the first ``sam2_mini_world`` (2 081 steps over two runs) tracked *worse* with
memory than without (test mIoU 0.131 against 0.187). The cause was the data, not the
memory: the videos started the shapes at random places, so on frame 0, where the
target is clicked, it was often half hidden under the others, and the still-image SAM
(which never saw a shape cover another) found it with a mean IoU of 0.39 (a box: 0.46;
on its own images 0.83). The tracker then remembered a bad mask and lost it within a
few frames. The videos now show the target whole on frame 0
(``VideoData.first_unoccluded``), training clips are windows of full-length videos (so
the occluder passes when it does in the held-out ones) and the model is trained again
from ``sam_mini_world``.

A corrective click where the target reappears after an occlusion then helped the
tracker little: on that frame the decoder, reading the memory, followed what it
remembered (frames where the object was lost) more than the click; the same decoder and
click without the memory did far better (the card's ``recovery_unread_click_frame``).
``--recovery`` trains on that case (clips where the target hides and comes back,
clicked on the reappearance frame from the tracker's own error). A 19-minute
continuation of the first checkpoint with ``--recovery 0.5`` (``--root DIR``) was then
compared with it video by video (``--record-continuation DIR``): with a click after the
reappearance it tracks better beyond two standard errors, and its tracking with memory
did not drop, so it replaced the first checkpoint; the comparison is recorded in
``vitcourse/results/sam2_recovery_continuation.json``.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from .. import checkpoints
from ..checkpoints import register
from ..models import create_model
from ..models.sam2.predictor import track_video
from ..models.sam2.training import (
    VideoData,
    click_prompt,
    compare_runs,
    encode_videos,
    evaluate,
    frame_ious,
    make_videos,
    reappearance_frame,
    recovery_windows,
    summarize,
    track_loss,
    training_window,
    unroll,
)
from ..train.schedule import TimeBudget
from .provenance import write_results
from .train_sam import card_provenance, head_commit

NAME = "sam2_mini_world"
MODEL = "sam2_mini"
BASE = "sam_mini_world"
#: Chance of each first-frame prompt kind per training step.
KIND_WEIGHTS = {"point": 0.4, "three_points": 0.3, "box": 0.3}


def encoded_training_set(model, data: VideoData, size: int, chunk: int = 100):
    """Image embeddings ``(V, T, C, g, g)`` and targets ``(V, T, S, S)`` of the training clips.

    Drawn and encoded ``chunk`` videos at a time, so the frames themselves are never all
    in memory.
    """
    features, targets = [], []
    for start in range(0, size, chunk):
        part = make_videos(data, split=0, size=min(chunk, size - start), first=start)
        features.append(encode_videos(model, part.frames))
        targets.append(part.targets)
    return torch.cat(features), torch.cat(targets)


def training_prompts(targets: torch.Tensor, generator: torch.Generator, correction: float) -> dict:
    """A first-frame prompt of a random kind and, sometimes, one corrective click.

    Args:
        targets: ``(B, T, S, S)`` the batch's target masks.
        generator: random source.
        correction: chance of a click on a random later frame (where every video of the
            batch shows the object).
    """
    kinds, weights = list(KIND_WEIGHTS), torch.tensor(list(KIND_WEIGHTS.values()))
    kind = kinds[int(torch.multinomial(weights, 1, generator=generator))]
    prompts = {0: click_prompt(targets[:, 0], kind, generator)}
    if float(torch.rand(1, generator=generator)) < correction:
        t = int(torch.randint(1, targets.shape[1], (1,), generator=generator))
        if bool(targets[:, t].flatten(1).any(1).all()):
            prompts[t] = click_prompt(targets[:, t], "point", generator)
    return prompts


@torch.no_grad()
def probe(model, frames: torch.Tensor, features: torch.Tensor, targets: torch.Tensor) -> str:
    """For the log: tracking mIoU (with memory) of a few videos, overall and on frames 0-3,
    and the IoU on the reappearance frame clicked as in the evaluation.
    """
    model.eval()
    first = {0: click_prompt(targets[:, 0])}
    logits = track_video(model, frames, first, features=features)[0]
    ious = frame_ious(model.upscale(logits), targets)
    clicked = []
    for v in range(len(frames)):
        r = reappearance_frame(targets[v])
        if r is None:
            continue
        prompts = {0: click_prompt(targets[v : v + 1, 0]), r: click_prompt(targets[v : v + 1, r])}
        out = track_video(model, frames[v : v + 1], prompts, features=features[v : v + 1])[0]
        clicked.append(float(frame_ious(model.upscale(out[:, r]), targets[v : v + 1, r])))
    return (
        f"mIoU {ious.mean():.3f}, frames 0-3 "
        + " ".join(f"{x:.2f}" for x in ious.mean(0)[:4].tolist())
        + f", clicked reappearance {sum(clicked) / max(len(clicked), 1):.3f}"
    )


EVALUATION = (
    "centre click on frame 0; recovery: one centre click at the first frame the target is >= 50% visible after < 25%"
)


def reevaluate(args) -> int:
    """Evaluate the registered checkpoint again and store the metrics in its card.

    The weights and their hash stay; the card gains the evaluation's commit and time.
    """
    import json

    torch.set_num_threads(args.threads)
    start = time.time()
    entry = checkpoints.info(NAME, args.root)
    d = entry["data"]
    data = VideoData.from_card(d)
    test = make_videos(data, split=d["test_split"], size=d["test_size"])
    summary = summarize(evaluate(checkpoints.load(NAME, args.root), checkpoints.load(BASE), test))
    print({k: v for k, v in summary.items() if not k.startswith("per_frame")}, flush=True)
    card = checkpoints.registry_dir(args.root) / f"{NAME}.json"
    stored = json.loads(card.read_text(encoding="utf-8"))
    stored["metrics"] = {"test": summary, "evaluation": EVALUATION}
    stored["provenance"]["evaluation"] = {"commit": head_commit(), "seconds": round(time.time() - start, 1)}
    card.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"re-evaluated {NAME}", flush=True)
    return 0


#: The record of a continuation against the shipped checkpoint it started from.
CONTINUATION = "sam2_recovery_continuation"
#: When a continuation replaces the shipped checkpoint (paired per held-out video).
SHIP_CRITERION = (
    "memory + click after the reappearance gains beyond two standard errors "
    "(recovery_memory_click_gain_mean > 2 * recovery_memory_click_gain_sem) and tracking with memory "
    "loses nothing beyond two (miou_with_memory_gain_mean > -2 * miou_with_memory_gain_sem)"
)


def continuation_meets(paired: dict) -> bool:
    """Whether :func:`compare_runs`' differences meet :data:`SHIP_CRITERION`."""
    click = paired["recovery_memory_click_gain_mean"] > 2 * paired["recovery_memory_click_gain_sem"]
    kept = paired["miou_with_memory_gain_mean"] > -2 * paired["miou_with_memory_gain_sem"]
    return bool(click and kept)


def record_continuation(args) -> int:
    """Compare a continuation with the shipped checkpoint it started from; ship it if it meets the criterion.

    The candidate sits in a scratch registry (``train_sam2 --init-from sam2_mini_world --root DIR``).
    Both are evaluated on the card's held-out videos, the paired differences are written to
    ``vitcourse/results/sam2_recovery_continuation.json`` with both summaries, and when
    :data:`SHIP_CRITERION` holds the candidate's weights and card replace the shipped ones.
    """
    import shutil

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    folder = args.record_continuation
    shipped, candidate = checkpoints.info(NAME), checkpoints.info(NAME, folder)
    started_from = candidate["recipe"]["init"].get("continued_from", {}).get("sha256")
    if started_from != shipped["sha256"]:
        raise SystemExit(
            f"{folder}/{NAME}.json continues {started_from}, not the shipped {shipped['sha256']}: "
            f"train the candidate with --init-from {NAME} --root {folder} from the shipped weights"
        )
    if candidate["data"] != shipped["data"]:
        raise SystemExit(f"{folder}/{NAME}.json was evaluated on other videos than the shipped card; retrain it")
    d = shipped["data"]
    test = make_videos(VideoData.from_card(d), split=d["test_split"], size=d["test_size"])
    sam = checkpoints.load(BASE)
    before = evaluate(checkpoints.load(NAME), sam, test)
    after = evaluate(checkpoints.load(NAME, folder), sam, test)
    paired = compare_runs(before, after)
    met = continuation_meets(paired)
    print({k: round(v, 4) for k, v in paired.items()}, "ships" if met else "does not ship", flush=True)
    record = {
        "study": CONTINUATION,
        "description": "A continuation of sam2_mini_world with recovery clips (--recovery) against the "
        "checkpoint it started from, both evaluated on the card's held-out videos; differences paired per video.",
        "criterion": SHIP_CRITERION,
        "shipped": met,
        "before": {"sha256": shipped["sha256"], "build": shipped.get("build"), "test": summarize(before)},
        "card": candidate,
        "paired": paired,
    }
    write_results(
        CONTINUATION, record, start, command="python -m vitcourse.scripts.train_sam2 --record-continuation DIR"
    )
    if met:
        target = checkpoints.registry_dir()
        shutil.copyfile(checkpoints.registry_dir(folder) / candidate["file"], target / shipped["file"])
        shutil.copyfile(checkpoints.registry_dir(folder) / f"{NAME}.json", target / f"{NAME}.json")
        print(f"shipped the continuation as {NAME} ({candidate['sha256'][:12]})", flush=True)
    return 0


def build_command(argv: list[str] | None) -> str:
    """The command line of this run, for the card (without ``--root``, a local folder)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--root" in args:
        i = args.index("--root")
        del args[i : i + 2]
    return " ".join(["OMP_NUM_THREADS=1 python -m vitcourse.scripts.train_sam2", *args])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--max-minutes", type=float, default=25.0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--decoder-lr-factor", type=float, default=0.2)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--correction", type=float, default=0.5)
    parser.add_argument(
        "--recovery",
        type=float,
        default=0.0,
        help="chance of a step on clips where the target is hidden and reappears, with a click drawn from "
        "the tracker's error on the reappearance frame",
    )
    parser.add_argument("--train-size", type=int, default=500)
    parser.add_argument("--probe-every", type=int, default=250, help="log tracking mIoU of 20 videos (0: never)")
    parser.add_argument("--test-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", default=None, help="checkpoint registry folder (default: the package's)")
    parser.add_argument("--no-register", action="store_true", help="train and evaluate only")
    parser.add_argument(
        "--init-from",
        default=None,
        help="start from this registered sam2_mini checkpoint (a continuation) instead of the mini-SAM "
        "and new memory parts",
    )
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="re-evaluate the registered checkpoint and rewrite its card's metrics (weights unchanged)",
    )
    parser.add_argument(
        "--record-continuation",
        metavar="DIR",
        default=None,
        help="compare the continuation registered in DIR with the shipped checkpoint, record it in "
        f"vitcourse/results/{CONTINUATION}.json and ship it when it meets the criterion",
    )
    args = parser.parse_args(argv)
    if args.evaluate_only:
        return reevaluate(args)
    if args.record_continuation:
        return record_continuation(args)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.time()
    commit = head_commit()
    data = VideoData(seed=args.seed)
    sam = checkpoints.load(BASE)
    model = create_model(MODEL)
    model.sam.load_state_dict(sam.state_dict())
    init = {"sam": {"checkpoint": BASE, "sha256": checkpoints.info(BASE)["sha256"]}}
    if args.init_from:  # a continuation: every weight from an earlier run's checkpoint
        previous = checkpoints.info(args.init_from, args.root)
        model.load_state_dict(checkpoints.load(args.init_from, args.root).state_dict())
        init["continued_from"] = {
            "checkpoint": args.init_from,
            "sha256": previous["sha256"],
            "steps": previous["recipe"]["steps"],
            "train_seconds": previous["provenance"]["train_seconds"],
            "recipe": previous["recipe"],
        }
    for part in (model.sam.image_encoder, model.sam.prompt_encoder):
        part.requires_grad_(False)
    features, targets = encoded_training_set(model, data, args.train_size)
    reappears = torch.tensor([-1 if (r := reappearance_frame(t)) is None else r for t in targets])
    test = make_videos(data, split=2, size=args.test_size)
    print(
        f"data: {len(features)} training clips of {features.shape[1]} frames, {len(test)} held-out "
        f"videos of {test.frames.shape[1]}, {time.time() - start:.0f} s",
        flush=True,
    )

    probe_set = make_videos(data, split=1, size=20)  # a few videos of a third split, to watch training
    probe_features, probe_targets = encode_videos(model, probe_set.frames), probe_set.targets
    decoder = list(model.sam.mask_decoder.parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": model.memory_parameters(), "lr_factor": 1.0},
            {"params": decoder, "lr_factor": args.decoder_lr_factor},
        ],
        lr=args.lr,
        weight_decay=args.weight_decay,
    )
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    budget = TimeBudget(args.steps, args.max_minutes, args.warmup)
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    budget.start()
    running = {"mask": 0.0, "iou": 0.0}
    step = 0
    while budget.progress(step) < 1:
        for group in optimizer.param_groups:
            group["lr"] = args.lr * group["lr_factor"] * budget.lr_factor(step)
        recovery = None
        if args.recovery and float(torch.rand(1, generator=generator)) < args.recovery:
            recovery = recovery_windows(targets, reappears, data.train_frames, args.batch_size, generator)
        if recovery is not None:  # the target hides and comes back at clip frame k, clicked there
            idx, starts, k = recovery
            frames = starts[:, None] + torch.arange(data.train_frames)  # (B, L)
            clip_features, clip_targets = features[idx[:, None], frames], targets[idx[:, None], frames]
            prompts = training_prompts(clip_targets, generator, 0.0)
            logits, iou = unroll(model, clip_features, prompts, k, clip_targets, generator)
        else:
            idx = torch.randint(len(features), (args.batch_size,), generator=generator)
            s = training_window(targets[idx], data.train_frames, generator)
            clip_features, clip_targets = (
                features[idx, s : s + data.train_frames],
                targets[idx, s : s + data.train_frames],
            )
            prompts = training_prompts(clip_targets, generator, args.correction)
            logits, iou = unroll(model, clip_features, prompts)
        loss, parts = track_loss(logits, iou, clip_targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        step += 1
        for key in running:
            running[key] += parts[key]
        if args.probe_every and step % args.probe_every == 0:
            print(f"step {step}  probe {probe(model, probe_set.frames, probe_features, probe_targets)}", flush=True)
            model.train()
        if step % 50 == 0:
            print(
                f"step {step}/{args.steps}  mask {running['mask'] / 50:.4f}  iou {running['iou'] / 50:.4f}  "
                f"{budget.elapsed():.0f} s",
                flush=True,
            )
            running = {"mask": 0.0, "iou": 0.0}
    train_seconds = budget.elapsed()

    result = evaluate(model, sam, test)
    summary = summarize(result)
    print({k: v for k, v in summary.items() if not k.startswith("per_frame")}, flush=True)
    if args.no_register:
        return 0
    recipe = {
        "base": BASE,
        "init": init,
        "frozen": ["sam.image_encoder", "sam.prompt_encoder"],
        "steps": step,
        "max_steps": args.steps,
        "max_minutes": args.max_minutes,
        "batch_size": args.batch_size,
        "clips": f"{data.train_frames}-frame windows of {data.test_frames}-frame videos, from frame 0 with "
        "chance 0.5, else from a random later frame where the target shows",
        "first_prompt_kinds": KIND_WEIGHTS,
        "correction_probability": args.correction,
        "recovery_probability": args.recovery,
        "recovery_clips": "with chance recovery_probability, instead: clips of videos whose target is hidden and "
        "reappears, each starting k frames (3..7, one k per batch) before its reappearance frame; the "
        "reappearance frame is segmented from the memory, then clicked once at a random pixel of that "
        "mask's error (foreground if missed, background if false) and segmented again with memory and click",
        "optimizer": "AdamW",
        "lr": args.lr,
        "decoder_lr_factor": args.decoder_lr_factor,
        "weight_decay": args.weight_decay,
        "warmup_steps": args.warmup,
        "schedule": "cosine",
        "loss": "per frame 20 focal + dice + MSE(predicted IoU, IoU), at 32x32, gradients through the memories",
        "grad_clip": 1.0,
        "seed": args.seed,
        "threads": args.threads,
    }
    register(
        NAME,
        model,
        MODEL,
        {},
        root=args.root,
        description="SAM 2 on the mini-SAM: memory encoder, memory attention, object pointers, on generated videos",
        data={
            **data.as_dict(),
            "train_size": args.train_size,
            "test_size": args.test_size,
            "train_split": 0,
            "test_split": 2,
        },
        recipe=recipe,
        metrics={"test": summary, "evaluation": EVALUATION},
        build=build_command(argv),
        provenance=card_provenance(commit, train_seconds, start),
    )
    print(f"registered {NAME}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
