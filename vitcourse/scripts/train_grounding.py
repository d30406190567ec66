"""Train the text-prompted mini detector on the generated world and ship it.

    python -m vitcourse.scripts.train_grounding

The image side is ``detr_shapes``' recipe (same 64 px images, same frozen
``resnet_shapes`` body, whose features are computed once and shared with
:mod:`vitcourse.scripts.train_detr`); the class head is replaced by phrase scores
(:class:`~vitcourse.models.detr.GroundingDETR`). Training starts from the trained
``detr_shapes`` (every tensor but its class head): its queries already find the
shapes, and what is left to learn is to score them against phrases (colour most of
all: the frozen body was trained to tell shapes apart), 16 epochs. Each batch gets one
prompt: every shape name, the phrases of the batch's objects and random other phrases
(:func:`~vitcourse.detection.phrases.training_prompt`), never one of the eight
held-out shape–colour pairs.

Evaluation on the held-out test images, COCO AP with each phrase as a category
(``pycocotools``): the eight **held-out** pairs (``"círculo verde"``…, never in a
training prompt), eight **seen** pairs (same shapes, other colours), the eight shape
names and the ten colours. Results go to ``vitcourse/detection/results/grounding_shapes.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import checkpoints
from ..data.backgrounds import COLOR_NAMES
from ..data.datasets import SPLITS
from ..data.shapes import SHAPE_NAMES
from ..data.world import generate
from ..detection.ap import coco_evaluate
from ..detection.data import SHAPES_WORLD
from ..detection.phrases import HELD_OUT, Phrase, held_out_phrases, phrase, positives, training_prompt
from ..detection.results import write_results
from ..models import create_model
from ..models.detr.grounding import GroundingCriterion
from ..runtime import seed_everything
from .train_detr import CACHE_DIR, RECIPES, recipe_caches

__all__ = ["EVAL_SETS", "RECIPE", "evaluate_phrases", "main", "world_objects"]

logger = logging.getLogger("vitcourse.train_grounding")

RECIPE = {
    "name": "grounding_shapes",
    "description": "text-prompted mini-DETR (phrase scores instead of a class head) on the 64 px generated shapes",
    "model": "grounding_detr_mini",
    "start_from": "detr_shapes",
    "epochs": 16,
    "batch_size": 32,
    "lr": 5e-4,
    "weight_decay": 1e-4,
    "clip": 0.1,
    "num_negative": 16,
    "eval_every": 1,
    "seed": 0,
}


def _seen_pairs() -> list[Phrase]:
    """For each shape, the pair with the colour after its held-out one: same shapes, seen colours."""
    out = []
    for shape, color in HELD_OUT:
        other = COLOR_NAMES[(COLOR_NAMES.index(color) + 1) % len(COLOR_NAMES)]
        out.append(phrase(shape, other))
    return out


EVAL_SETS: dict[str, list[Phrase]] = {
    "held_out_pairs": held_out_phrases(),
    "seen_pairs": _seen_pairs(),
    "shapes": [phrase(s) for s in SHAPE_NAMES],
    "colors": [phrase(color=c) for c in COLOR_NAMES],
}


def world_objects(split: str, size: int, seed: int) -> list[list[tuple[str, str]]]:
    """``(shape, colour)`` of every object of every image of a split, in the targets' order."""
    objects = []
    for index in range(size):
        sample = generate((seed, SPLITS[split], index), SHAPES_WORLD)
        objects.append([(s.shape, s.color) for s in sample.shapes])
    return objects


@torch.no_grad()
def evaluate_phrases(model, cache: dict, objects: list, phrases: list[Phrase], image_size: int) -> dict[str, float]:
    """COCO AP with each phrase as a category: every query scores every phrase."""
    model.eval()
    text = model.encode_phrases([p.text for p in phrases])
    predictions, targets = [], []
    for start in range(0, len(cache["targets"]), 100):
        sl = slice(start, start + 100)
        out = model.forward_head(cache["features"][sl].float(), cache["valid"][sl], text)
        prob = out["pred_logits"].sigmoid()  # (b, N, P)
        for b, target in enumerate(cache["targets"][sl]):
            from ..detection.boxes import denormalize_boxes

            boxes = denormalize_boxes(out["pred_boxes"][b], target["size"])  # (N, 4)
            N, P = prob[b].shape
            predictions.append({
                "boxes": boxes.repeat_interleave(P, 0), "scores": prob[b].reshape(-1),
                "labels": torch.arange(P).repeat(N),
            })  # fmt: skip
            pos = positives(phrases, objects[start + b])  # (M, P)
            m, p = pos.nonzero(as_tuple=True)
            targets.append({"boxes": target["pixel_boxes"][m], "labels": p})
    return coco_evaluate(predictions, targets, len(phrases), image_size)


def _targets(cache_targets: list, objects: list, prompt: list[Phrase]) -> list[dict[str, torch.Tensor]]:
    return [{"labels": t["labels"], "boxes": t["boxes"], "positive": positives(prompt, o)}
            for t, o in zip(cache_targets, objects)]  # fmt: skip


def train(model, caches: dict, objects: dict, recipe: dict, log: list) -> tuple[Any, dict]:
    """Train everything after the frozen backbone; keep the best validation AP50 on seen pairs."""
    criterion = GroundingCriterion()
    params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    optimizer = torch.optim.AdamW(params, lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    train_cache, n = caches["train"], len(caches["train"]["targets"])
    steps = n // recipe["batch_size"]
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe["lr"], total_steps=recipe["epochs"] * steps, pct_start=0.05
    )
    rng = np.random.default_rng(recipe["seed"])
    best, best_state, start = {"AP50": -1.0}, None, time.perf_counter()
    for epoch in range(recipe["epochs"]):
        model.train()
        order, total = torch.randperm(n), 0.0
        for step in range(steps):
            idx = order[step * recipe["batch_size"] : (step + 1) * recipe["batch_size"]].tolist()
            batch_objects = [objects["train"][i] for i in idx]
            prompt = training_prompt(batch_objects, rng, recipe["num_negative"])
            out = model.forward_head(train_cache["features"][idx].float(), train_cache["valid"][idx],
                                     [p.text for p in prompt])  # fmt: skip
            targets = _targets([train_cache["targets"][i] for i in idx], batch_objects, prompt)
            losses = criterion(out, targets)
            optimizer.zero_grad()
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, recipe["clip"])
            optimizer.step()
            schedule.step()
            total += losses["loss"].item()
        entry = {"epoch": epoch + 1, "loss": round(total / steps, 4), "seconds": round(time.perf_counter() - start)}
        if (epoch + 1) % recipe["eval_every"] == 0 or epoch + 1 == recipe["epochs"]:
            metrics = evaluate_phrases(model, caches["val"], objects["val"], EVAL_SETS["seen_pairs"], 64)
            entry["val_seen_pairs"] = {k: round(v, 4) for k, v in metrics.items()}
            if metrics["AP50"] > best["AP50"]:
                best, best_state = {**metrics, "epoch": epoch + 1}, copy.deepcopy(model.state_dict())
        log.append(entry)
        logger.info(json.dumps(entry))
    model.load_state_dict(best_state)
    return model, best


def run(root: Path | None = None, epochs: int | None = None, cache_dir: Path = CACHE_DIR) -> dict[str, Any]:
    """Train, evaluate on every phrase set, register ``grounding_shapes``."""
    started = time.perf_counter()
    recipe = {**RECIPE, **({"epochs": epochs} if epochs else {})}
    seed_everything(recipe["seed"])
    detr_recipe = RECIPES["shapes"]
    model = create_model(recipe["model"])
    if recipe.get("start_from"):  # every tensor of the trained DETR but its class head
        own = model.state_dict()
        start = checkpoints.load(recipe["start_from"]).state_dict()
        kept = {k: v for k, v in start.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(kept, strict=False)
        logger.info("started from %s: %d of %d tensors", recipe["start_from"], len(kept), len(own))
    else:
        body = checkpoints.load(detr_recipe.backbone_checkpoint).state_dict()
        model.backbone.body.load_state_dict({k: v for k, v in body.items() if not k.startswith("head.")})
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    caches = recipe_caches("shapes", detr_recipe, model, cache_dir)  # shared with detr_shapes
    d = detr_recipe.data
    objects = {s: world_objects(s, d[f"{s}_size"], d["seed"]) for s in ("train", "val", "test")}
    for s in objects:  # the regenerated objects must be the cached targets, one for one
        assert [len(o) for o in objects[s]] == [len(t["labels"]) for t in caches[s]["targets"]], s
    log: list = []
    model, best = train(model, caches, objects, recipe, log)
    test = {name: evaluate_phrases(model, caches["test"], objects["test"], phrases, d["img_size"])
            for name, phrases in EVAL_SETS.items()}  # fmt: skip
    metrics = {f"test_{name}_{k}": round(v, 4) for name, table in test.items() for k, v in table.items()
               if k in ("AP", "AP50")}  # fmt: skip
    metrics |= {"val_seen_pairs_AP50": round(best["AP50"], 4), "best_epoch": best["epoch"]}
    results = {"recipe": recipe, "data": d, "eval_sets": {k: [p.text for p in v] for k, v in EVAL_SETS.items()},
               "metrics": metrics, "test": test, "log": log}  # fmt: skip
    write_results(recipe["name"], results, started, seeds=[recipe["seed"]],
                  command="python -m vitcourse.scripts.train_grounding")  # fmt: skip
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(model.config).items()}
    checkpoints.register(
        recipe["name"], model, recipe["model"], config, root=root, description=recipe["description"], data=d,
        recipe=recipe, metrics=metrics, build="python -m vitcourse.scripts.train_grounding",
    )  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--root", type=Path, default=None, help="checkpoint registry folder")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    results = run(args.root, args.epochs, args.cache_dir)
    print(json.dumps(results["metrics"], indent=2))


if __name__ == "__main__":
    main()
