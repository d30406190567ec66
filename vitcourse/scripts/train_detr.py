"""Train the detection chapter's DETRs on a CPU and ship them.

    python -m vitcourse.scripts.train_detr shapes   # detr_shapes: the generated world
    python -m vitcourse.scripts.train_detr trees    # detr_trees: aerial tree crowns

DETR is known to converge slowly (500 epochs on COCO). What makes a small one train
in CPU-minutes here:

* **small images, few tokens, few queries**: 64 px shapes, a stride-8 map (64 tokens),
  10 queries for at most 4 objects;
* **a pretrained, frozen backbone**: the shipped ``resnet_shapes`` (trained to classify
  these shapes at the same pixel size), whose batch norms DETR freezes anyway. Frozen,
  its features can be **computed once** and cached: an epoch then costs only the
  transformer's forward and backward;
* **auxiliary losses** on every decoder layer, and a learning rate higher than DETR's
  1e-4 (the model is 60 times smaller) with a one-cycle schedule and DETR's gradient
  clipping at 0.1.

The model kept is the one with the best AP50 on the validation split; the numbers
reported (COCO AP, AP50, AP75, APs/m/l by ``pycocotools``, and our own readable
evaluation next to it) are on the held-out test split. Results go to
``vitcourse/detection/results/<name>.json``, the weights to the checkpoint registry.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import checkpoints
from ..data.datasets import ShapesDetection
from ..detection.ap import coco_evaluate, evaluate_detections
from ..detection.data import SHAPES_WORLD, detr_targets, read_tree_crowns, tree_tiles
from ..detection.results import write_results
from ..models import create_model
from ..models.detr import SetCriterion, postprocess
from ..runtime import seed_everything

__all__ = [
    "RECIPES",
    "DetrRecipe",
    "cache_features",
    "evaluate_cached",
    "feature_probe",
    "main",
    "recipe_caches",
    "train_cached",
]

logger = logging.getLogger("vitcourse.train_detr")
CACHE_DIR = Path.home() / ".cache" / "vitcourse" / "detr_features"


@dataclass(frozen=True)
class DetrRecipe:
    """Everything that decides a shipped DETR's weights.

    DETR's backbone stays frozen while the rest trains, on cached features (an epoch
    costs the transformer only). ``backbone_pretrain`` (``{"epochs", "lr", "batch_size", "pos_weight"}``): before DETR
    trains on cached features, the backbone learns where objects are with a dense task
    (:func:`pretrain_backbone`), standing in for the ImageNet pretraining DETR's backbone has.
    """

    name: str
    description: str
    model: str
    config: dict[str, Any]
    data: dict[str, Any]
    backbone_checkpoint: str | None = "resnet_shapes"
    start_from: str | None = None
    epochs: int = 60
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 1e-4
    clip: float = 0.1
    eos_coef: float = 0.1
    backbone_pretrain: dict[str, Any] | None = None
    eval_every: int = 5
    max_minutes: float | None = None
    seed: int = 0
    target_ap50: float = 0.7
    extra: dict[str, Any] = field(default_factory=dict)


TREES_MEAN = (0.52, 0.57, 0.48)
"""Per-channel mean of the training photos' pixels (``detr_shapes`` standardises with the shapes' own)."""
TREES_STD = (0.23, 0.21, 0.15)
"""Per-channel standard deviation of the training photos' pixels."""


RECIPES = {
    "shapes": DetrRecipe(
        name="detr_shapes",
        description="mini-DETR (frozen resnet_shapes body, D=64, 2+3 layers, 10 queries) on the 64 px generated shapes",
        model="detr_mini",
        config={},
        epochs=40,
        data={"train_size": 6000, "val_size": 500, "test_size": 1000, "seed": 0,
              "img_size": 64, "min_shapes": 1, "max_shapes": 4, "radius": [0.12, 0.25], "rotation": 0.0},
    ),
    "trees": DetrRecipe(
        name="detr_trees",
        description="mini-DETR from detr_shapes on 128 px tiles of deepforest's aerial tree crowns; backbone first taught where crowns are",
        model="detr_mini",
        config={"num_classes": 1, "img_size": 128, "num_queries": 50,
                "pixel_mean": TREES_MEAN, "pixel_std": TREES_STD},
        data={"tile": 200, "size": 128, "train": ["2019_YELL_2_528000_4978000_image_crop2",
                                                  "2019_YELL_2_541000_4977000_image_crop", "SOAP_061"],
              "test": ["OSBS_029"], "val_fraction": 0.1, "flips": 8, "jitter": 0.2},
        backbone_checkpoint="resnet_shapes",
        start_from="detr_shapes",
        backbone_pretrain={"epochs": 12, "lr": 5e-4, "batch_size": 8, "pos_weight": 10.0},
        epochs=60,
        batch_size=16,
        lr=1e-3,
        eval_every=3,
        max_minutes=30,
        target_ap50=0.0,
    ),
}  # fmt: skip


# -- data -----------------------------------------------------------------------------


def shapes_split(recipe: DetrRecipe, split: str) -> list[tuple[torch.Tensor, dict]]:
    """The generated images and pixel targets of one split (``train``, ``val``, ``test``)."""
    d = recipe.data
    dataset = ShapesDetection(
        split, size=d[f"{split}_size"], seed=d["seed"], img_size=d["img_size"],
        min_shapes=d["min_shapes"], max_shapes=d["max_shapes"], config=SHAPES_WORLD,
    )  # fmt: skip
    return [dataset[i] for i in range(len(dataset))]


def _dihedral(image: torch.Tensor, boxes: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k-th of the 8 flips/rotations of a square image and its xyxy boxes."""
    size = image.shape[-1]
    if k >= 4:
        image = image.flip(-1)
        boxes = torch.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], 1)
    for _ in range(k % 4):  # rotate 90° counter-clockwise: (x, y) → (y, size − x)
        image = image.rot90(1, dims=(-2, -1))
        boxes = torch.stack([boxes[:, 1], size - boxes[:, 2], boxes[:, 3], size - boxes[:, 0]], 1)
    return image, boxes


def tree_splits(recipe: DetrRecipe, expand: bool = True) -> dict[str, list[tuple[torch.Tensor, dict]]]:
    """Tiles of the training photos (``flips`` flips/rotations each if ``expand``) and of the held-out photo."""
    d = recipe.data
    photos = {p.name: p for p in read_tree_crowns()}
    tiles = [t for name in d["train"] for t in tree_tiles(photos[name], d["tile"], d["size"])]
    generator = torch.Generator().manual_seed(recipe.seed)
    order = torch.randperm(len(tiles), generator=generator).tolist()
    num_val = max(1, round(d["val_fraction"] * len(tiles)))
    val = [tiles[i] for i in order[:num_val]]
    train = []
    for i in order[num_val:]:
        image, target = tiles[i]
        for k in range(d["flips"] if expand else 1):
            flipped, boxes = _dihedral(image, target["boxes"], k)
            train.append((flipped, {**target, "boxes": boxes}))
    test = [t for name in d["test"] for t in tree_tiles(photos[name], d["tile"], d["size"])]
    return {"train": train, "val": val, "test": test}


# -- cached backbone features ------------------------------------------------------------


@torch.no_grad()
def cache_features(model, items, batch_size: int = 64) -> dict[str, Any]:
    """Run the (frozen) backbone once over ``items``: features, valid cells, targets.

    Returns:
        ``{"features": (n, C, h, w) float16, "valid": (n, h, w), "targets": [...]}``
        with DETR targets (``cxcywh``) and the pixel targets for evaluation.
    """
    model.eval()
    features, valid, targets = [], [], []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        images = torch.stack([image for image, _ in chunk])
        f, v = model.forward_backbone(images)
        features.append(f.half())
        valid.append(v)
        for image, target in chunk:
            size = tuple(image.shape[-2:])
            targets.append({**detr_targets(target, size), "pixel_boxes": target["boxes"], "size": size})
    return {"features": torch.cat(features), "valid": torch.cat(valid), "targets": targets}


def _cached(path: Path, build) -> dict[str, Any]:
    if path.exists():
        return torch.load(path, weights_only=False)
    data = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return data


# -- training and evaluation ----------------------------------------------------------------


@torch.no_grad()
def predict_cached(model, cache: dict[str, Any], batch_size: int = 100) -> list[dict[str, torch.Tensor]]:
    """DETR's detections for cached features (every query, scored)."""
    model.eval()
    predictions = []
    for start in range(0, len(cache["targets"]), batch_size):
        sl = slice(start, start + batch_size)
        out = model.forward_head(cache["features"][sl].float(), cache["valid"][sl])
        predictions += postprocess(out, [t["size"] for t in cache["targets"][sl]])
    return predictions


def evaluate_cached(model, cache: dict[str, Any], num_classes: int, image_size: int) -> dict[str, Any]:
    """COCO's table by ``pycocotools`` and by our readable evaluation, and their largest difference."""
    predictions = predict_cached(model, cache)
    targets = [{"boxes": t["pixel_boxes"], "labels": t["labels"]} for t in cache["targets"]]
    reference = coco_evaluate(predictions, targets, num_classes, image_size)
    ours = evaluate_detections(predictions, targets, num_classes, image_size)
    difference = max(abs(reference[k] - ours[k]) for k in reference)
    return {"pycocotools": reference, "ours": ours, "max_difference": difference}


def train_cached(model, recipe: DetrRecipe, train: dict, val: dict, num_classes: int, image_size: int,
                 log: list, fit: dict | None = None) -> tuple[torch.nn.Module, dict]:  # fmt: skip
    """Train everything after the backbone on cached features; keep the best validation AP50.

    ``fit`` (optional): training images also scored at each evaluation (``train_AP50`` in
    the log), to tell a model that cannot fit its data from one that does not generalise.
    Past ``recipe.max_minutes`` the training stops early (the log says so).
    """
    criterion = SetCriterion(num_classes, eos_coef=recipe.eos_coef)
    params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    n = len(train["targets"])
    steps = max(n // recipe.batch_size, 1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * steps, pct_start=0.05
    )
    best, best_state = {"AP50": -1.0}, None
    start = time.perf_counter()
    for epoch in range(recipe.epochs):
        model.train()
        order, total = torch.randperm(n), 0.0
        for step in range(steps):
            idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            out = model.forward_head(train["features"][idx].float(), train["valid"][idx])
            losses = criterion(out, [train["targets"][i] for i in idx])
            optimizer.zero_grad()
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, recipe.clip)
            optimizer.step()
            schedule.step()
            total += losses["loss"].item()
        entry = {"epoch": epoch + 1, "loss": round(total / steps, 4), "seconds": round(time.perf_counter() - start)}
        if (epoch + 1) % recipe.eval_every == 0 or epoch + 1 == recipe.epochs:
            metrics = coco_evaluate(
                predict_cached(model, val),
                [{"boxes": t["pixel_boxes"], "labels": t["labels"]} for t in val["targets"]],
                num_classes,
                image_size,
            )
            entry["val"] = {k: round(v, 4) for k, v in metrics.items()}
            if fit is not None:
                entry["train_AP50"] = round(
                    evaluate_cached(model, fit, num_classes, image_size)["pycocotools"]["AP50"], 4
                )
            if metrics["AP50"] > best["AP50"]:
                best, best_state = {**metrics, "epoch": epoch + 1}, copy.deepcopy(model.state_dict())
        log.append(entry)
        logger.info(json.dumps(entry))
        if recipe.max_minutes is not None and time.perf_counter() - start > 60 * recipe.max_minutes and "val" in entry:
            log.append({"stopped": f"time budget of {recipe.max_minutes} minutes spent after epoch {epoch + 1}"})
            logger.warning(log[-1]["stopped"])
            break
    model.load_state_dict(best_state)
    return model, best


def augment(image: torch.Tensor, boxes: torch.Tensor, flips: int, jitter: float,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """One random flip/rotation (of the first ``flips``) and a random colour change of an image and its boxes.

    Brightness, contrast and saturation each scaled by a factor drawn in ``[1 − jitter, 1 + jitter]``
    (the boxes do not move); the result is clipped to ``[0, 1]``.
    """
    k = int(torch.randint(flips, (), generator=generator)) if flips > 1 else 0
    image, boxes = _dihedral(image, boxes, k)
    if jitter > 0:
        b, c, s = (1 + jitter * (2 * torch.rand(3, generator=generator) - 1)).tolist()
        image = image * b
        image = (image - image.mean()) * c + image.mean()
        gray = image.mean(0, keepdim=True)
        image = (image - gray) * s + gray
    return image.clamp(0, 1), boxes


def pretrain_backbone(model, recipe: DetrRecipe, train: list, log: list) -> None:
    """Teach the backbone where the objects are, in place: is an object's centre in this cell?

    A 1×1 convolution on the backbone's map gives each cell a logit; a logistic loss
    (positives weighted by ``pos_weight``: a few cells per image hold a centre) trains it
    and the whole backbone, on freshly augmented images, for ``backbone_pretrain["epochs"]``.
    It is the linear probe of :func:`feature_probe`, with the backbone learning too. The
    1×1 convolution is thrown away; the backbone is frozen again for DETR.
    """
    p, d = recipe.backbone_pretrain, recipe.data
    backbone = model.backbone
    for q in backbone.parameters():
        q.requires_grad_(True)
    head = torch.nn.Conv2d(backbone.num_channels, 1, 1)
    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=p["lr"], weight_decay=recipe.weight_decay)
    pos_weight = torch.tensor(p["pos_weight"])
    generator = torch.Generator().manual_seed(recipe.seed)
    n, batch_size, start = len(train), p["batch_size"], time.perf_counter()
    for epoch in range(p["epochs"]):
        model.train()
        order, total, steps = torch.randperm(n, generator=generator), 0.0, max(n // batch_size, 1)
        for step in range(steps):
            batch = [train[i] for i in order[step * batch_size : (step + 1) * batch_size]]
            pairs = [
                augment(image, t["boxes"], d.get("flips", 1), d.get("jitter", 0.0), generator) for image, t in batch
            ]
            images = torch.stack([image for image, _ in pairs])
            features, _ = model.forward_backbone(images)
            logits = head(features)[:, 0]  # (B, h, w)
            size, (h, w) = images.shape[-1], logits.shape[-2:]
            labels = torch.zeros_like(logits)
            for i, (_, boxes) in enumerate(pairs):
                cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 / size, (boxes[:, 1] + boxes[:, 3]) / 2 / size
                labels[i, (cy * h).long().clamp(0, h - 1), (cx * w).long().clamp(0, w - 1)] = 1
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        entry = {
            "pretrain_epoch": epoch + 1,
            "loss": round(total / steps, 4),
            "seconds": round(time.perf_counter() - start),
        }
        log.append(entry)
        logger.info(json.dumps(entry))
    for q in backbone.parameters():
        q.requires_grad_(False)


def recipe_caches(kind: str, recipe: DetrRecipe, model, cache_dir: Path = CACHE_DIR) -> dict[str, dict]:
    """The backbone features of a recipe's train/val/test data, computed once and kept on disk."""
    key = hashlib.sha256(json.dumps([recipe.data, recipe.config, recipe.backbone_checkpoint,
                                     recipe.start_from], sort_keys=True).encode()).hexdigest()[:12]  # fmt: skip
    if kind == "shapes":
        splits = {s: (lambda s=s: shapes_split(recipe, s)) for s in ("train", "val", "test")}
    else:
        tiles = {}
        splits = {s: (lambda s=s: (tiles or tiles.update(tree_splits(recipe)) or tiles)[s])
                  for s in ("train", "val", "test")}  # fmt: skip
    caches = {s: _cached(cache_dir / f"{kind}_{key}_{s}.pt", lambda b=b: cache_features(model, b()))
              for s, b in splits.items()}  # fmt: skip
    logger.info("features cached: %s", {s: len(c["targets"]) for s, c in caches.items()})
    return caches


def _unflipped(kind: str, recipe: DetrRecipe, cache: dict[str, Any]) -> dict[str, Any]:
    """The training cache without its flipped copies (trees: every ``flips``-th item is a tile as cut)."""
    step = recipe.data.get("flips", 1) if kind == "trees" else 1
    return {"features": cache["features"][::step], "valid": cache["valid"][::step], "targets": cache["targets"][::step]}


def _centre_cells(cache: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every cell of the backbone's map as a row of features, labelled 1 where an object's centre falls."""
    features = cache["features"].float()
    n, channels, h, w = features.shape
    labels = torch.zeros(n, h, w)
    for i, target in enumerate(cache["targets"]):
        cx, cy = target["boxes"][:, 0], target["boxes"][:, 1]  # cxcywh in [0, 1]
        labels[i, (cy * h).long().clamp(0, h - 1), (cx * w).long().clamp(0, w - 1)] = 1
    return features.permute(0, 2, 3, 1).reshape(-1, channels), labels.reshape(-1)


def feature_probe(caches: dict[str, dict], train: dict[str, Any], steps: int = 300, seed: int = 0) -> dict[str, float]:
    """Do the frozen backbone's features say where the objects are? A linear probe of the cells.

    A logistic regression on each cell's feature vector, fitted on the training images,
    predicts whether an object's centre falls in the cell; its AUC on the training tiles,
    on validation and on test says how much of "where is a crown" the frozen features
    carry, and whether it carries over to another forest (0.5 is chance).
    """
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(seed)
    x, y = _centre_cells(caches["train"])
    mean, std = x.mean(0), x.std(0) + 1e-6
    probe = torch.nn.Linear(x.shape[1], 1)
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe((x - mean) / std)[:, 0], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = {}
    with torch.no_grad():
        for split, cache in {"train": train, "val": caches["val"], "test": caches["test"]}.items():
            xs, ys = _centre_cells(cache)
            out[f"{split}_AUC"] = round(float(roc_auc_score(ys, probe((xs - mean) / std)[:, 0])), 4)
    return out


def probe(kind: str, cache_dir: Path = CACHE_DIR) -> dict[str, Any]:
    """Run :func:`feature_probe` on a recipe's backbone features; results as ``<name>_probe``.

    ``probe``: the backbone the recipe starts from (frozen, as the cached recipes train);
    ``trained`` (when the recipe trains its backbone and its checkpoint is built): the
    shipped model's own backbone, the same probe on the same tiles.
    """
    started = time.perf_counter()
    recipe = RECIPES[kind]
    frozen = DetrRecipe(**{**asdict(recipe), "backbone_pretrain": None})
    model = _build(frozen)
    caches = recipe_caches(kind, frozen, model, cache_dir)
    results = {"recipe": recipe.name, "probe": feature_probe(caches, _unflipped(kind, frozen, caches["train"]))}
    if recipe.backbone_pretrain and recipe.name in checkpoints.available():
        shipped = checkpoints.load(recipe.name)
        trained = {s: cache_features(shipped, items) for s, items in tree_splits(recipe).items()}
        results["trained"] = feature_probe(trained, _unflipped(kind, recipe, trained["train"]))
    command = f"python -m vitcourse.scripts.train_detr {kind} --probe"
    write_results(f"{recipe.name}_probe", results, started, seeds=[0], command=command)
    return results


def _build(recipe: DetrRecipe) -> torch.nn.Module:
    model = create_model(recipe.model, **recipe.config)
    if recipe.start_from:
        start = checkpoints.load(recipe.start_from)
        own = model.state_dict()
        kept = {k: v for k, v in start.state_dict().items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(kept, strict=False)
        logger.info("started from %s: %d of %d tensors", recipe.start_from, len(kept), len(own))
    elif recipe.backbone_checkpoint:
        body = checkpoints.load(recipe.backbone_checkpoint).state_dict()
        body = {k: v for k, v in body.items() if not k.startswith("head.")}
        model.backbone.body.load_state_dict(body, strict=True)
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    return model


def run(kind: str, root: Path | None = None, epochs: int | None = None, cache_dir: Path = CACHE_DIR,
        allow_below_target: bool = False) -> dict[str, Any]:  # fmt: skip
    """Train, evaluate and register one recipe; returns the results written."""
    started = time.perf_counter()
    recipe = RECIPES[kind]
    if epochs is not None:
        recipe = DetrRecipe(**{**asdict(recipe), "epochs": epochs})
    seed_everything(recipe.seed)
    model = _build(recipe)
    if kind == "shapes":
        image_size, num_classes = recipe.data["img_size"], model.config.num_classes
    else:
        image_size, num_classes = recipe.data["size"], 1
    log: list = []
    if recipe.backbone_pretrain:  # taught, then frozen: the features of this run's backbone
        pretrain_backbone(model, recipe, tree_splits(recipe, expand=False)["train"], log)
        caches = {s: cache_features(model, items) for s, items in tree_splits(recipe).items()}
    else:  # the starting backbone's features, cached across runs
        caches = recipe_caches(kind, recipe, model, cache_dir)
    unflipped = _unflipped(kind, recipe, caches["train"]) if kind == "trees" else None
    model, best = train_cached(
        model, recipe, caches["train"], caches["val"], num_classes, image_size, log, unflipped
    )
    test = evaluate_cached(model, caches["test"], num_classes, image_size)
    counts = {s: {"images": len(c["targets"]), "boxes": sum(len(t["labels"]) for t in c["targets"])}
              for s, c in caches.items()}  # fmt: skip
    metrics = {f"test_{k}": round(v, 4) for k, v in test["pycocotools"].items()}
    if unflipped is not None:  # how well the kept model fits the training tiles, as cut
        fit = evaluate_cached(model, unflipped, num_classes, image_size)["pycocotools"]
        metrics |= {"train_AP": round(fit["AP"], 4), "train_AP50": round(fit["AP50"], 4)}
    metrics |= {"val_AP": round(best["AP"], 4), "val_AP50": round(best["AP50"], 4), "best_epoch": best["epoch"],
                "ours_vs_pycocotools_max_difference": test["max_difference"]}  # fmt: skip
    reached = metrics["test_AP50"] >= recipe.target_ap50
    results = {"recipe": asdict(recipe), "metrics": metrics, "test": test, "log": log, "counts": counts,
               "reached_target": reached}  # fmt: skip
    from .provenance import provenance

    card_provenance = provenance()  # before this run writes its results: the commit is clean if the tree was
    write_results(
        recipe.name, results, started, seeds=[recipe.seed], command=f"python -m vitcourse.scripts.train_detr {kind}"
    )
    if reached or allow_below_target:
        config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(model.config).items()}
        checkpoints.register(
            recipe.name, model, recipe.model, config, root=root, description=recipe.description,
            data=recipe.data, recipe={k: v for k, v in asdict(recipe).items() if k not in ("data", "config")},
            metrics=metrics, build=f"python -m vitcourse.scripts.train_detr {kind}", provenance=card_provenance,
        )  # fmt: skip
    else:
        logger.warning("test AP50 %.3f below the target %.2f: not registered", metrics["test_AP50"], recipe.target_ap50)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--root", type=Path, default=None, help="checkpoint registry folder")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--allow-below-target", action="store_true")
    parser.add_argument("--probe", action="store_true", help="only the linear probe of the frozen features")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.probe:
        print(json.dumps({k: v for k, v in probe(args.kind, args.cache_dir).items() if k != "recipe"}, indent=2))
        return
    results = run(args.kind, args.root, args.epochs, args.cache_dir, args.allow_below_target)
    print(json.dumps(results["metrics"], indent=2))


if __name__ == "__main__":
    main()
