"""Training and evaluating a small SAM on the generated world's instance masks.

The world (:mod:`vitcourse.data.world`) draws every shape's visible mask, so each image
gives as many segmentation targets as it has shapes. A prompt is sampled from the mask,
as SAM's training simulates a user:

* **one point**: a pixel of the mask (uniform in training; at evaluation the pixel
  farthest from the mask's border, as SAM's evaluation clicks the object's centre).
  Ambiguous, so the decoder answers with its three masks and only the best one is
  trained (the minimum of the three losses); at evaluation the mask with the highest
  predicted IoU is taken;
* **three points**: three pixels of the mask (the centre and two more at evaluation),
  one mask;
* **a box**: the mask's tight box (jittered by a few pixels in training), one mask.

Loss: ``20 · focal + dice`` on the mask logits (SAM's 20:1), plus the mean squared error
between the predicted IoU and the IoU the mask really has.

The world's shapes never overlap, so a point is never ambiguous there; with ``nested``
(:func:`make_instances`) some images get a large shape with a small one inside it, whose
two targets are the part (the small shape) and the whole (both), as SA-1B's nested masks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ...data.world import WorldConfig, generate, make_rng
from .sam import Sam

__all__ = [
    "PROMPT_KINDS",
    "InstanceSet",
    "SegmentationData",
    "centre_point",
    "dice_loss",
    "evaluate",
    "focal_loss",
    "make_instances",
    "mask_iou",
    "nest_shapes",
    "normalize",
    "point_alternatives",
    "sam_loss",
    "sample_prompts",
]

#: Prompt kinds the evaluation reports, in order.
PROMPT_KINDS = ("one_point", "three_points", "box")

#: Pixel statistics images are normalised with (the world's colours are in [0, 1]).
MEAN, STD = 0.5, 0.25


@dataclass(frozen=True)
class SegmentationData:
    """Which generated images a mini-SAM trains and is evaluated on.

    Args:
        img_size: image side.
        min_shapes: fewest shapes per image.
        max_shapes: most shapes per image.
        radius: shape radius range over the image side.
        seed: data seed; split ``0`` trains, split ``2`` is held out.
        rotation: largest rotation of a shape, in degrees.
    """

    img_size: int = 64
    min_shapes: int = 1
    max_shapes: int = 4
    radius: tuple[float, float] = (0.12, 0.3)
    seed: int = 0
    rotation: float = 180.0

    def world(self) -> WorldConfig:
        """The world's configuration."""
        return WorldConfig(
            img_size=self.img_size,
            min_shapes=self.min_shapes,
            max_shapes=self.max_shapes,
            radius=self.radius,
            rotation=self.rotation,
        )

    def as_dict(self) -> dict:
        """For a checkpoint's card."""
        return {"name": "world_instances", **asdict(self), "radius": list(self.radius)}

    @classmethod
    def from_card(cls, data: dict) -> SegmentationData:
        """The data a card's ``data`` block describes (its other keys are ignored)."""
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if "radius" in kwargs:
            kwargs["radius"] = tuple(kwargs["radius"])
        return cls(**kwargs)


@dataclass
class InstanceSet:
    """Images and their instance masks.

    Attributes:
        images: ``(N, 3, S, S)`` float in ``[0, 1]``.
        masks: list of ``(K_i, S, S)`` bool, one entry per image.
        labels: list of ``(K_i,)`` shape classes (indices of the world's shapes).
    """

    images: torch.Tensor
    masks: list[torch.Tensor]
    labels: list[torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def num_instances(self) -> int:
        """Masks in all images."""
        return sum(len(m) for m in self.masks)


def make_instances(data: SegmentationData, split: int, size: int, nested: float = 0.0) -> InstanceSet:
    """Draw ``size`` images of one split (same arguments, same pixels).

    Args:
        nested: the share of images that get a nested pair (:func:`nest_shapes`),
            drawn per image from its own seed; 0 gives the world's images unchanged.
    """
    world = data.world()
    images, masks, labels = [], [], []
    for i in range(size):
        sample = generate((data.seed, split, i), world)
        image, m, lab = sample.image, sample.masks, sample.labels
        if nested > 0:
            rng = make_rng(data.seed, split, i, 7)
            if rng.random() < nested:
                image, m, lab = nest_shapes(image, m, lab, rng, world)
        images.append(image)
        masks.append(m)
        labels.append(lab)
    return InstanceSet(torch.stack(images), masks, labels)


#: Shapes that hold a smaller shape at their centre (a ring and a crescent do not).
NEST_OUTER = ("circle", "square", "triangle", "star", "cross", "heart")


def nest_shapes(
    image: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator, world: WorldConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paint a large shape with a small one at its centre over a world image.

    The pair hides what it covers; its targets are appended last: the part (the small
    shape) and the whole (the large one with the small one), both labelled with their
    own shape's class (the whole with the large shape's).

    Returns:
        ``(image, masks, labels)`` with the hidden shapes' masks trimmed (and dropped
        when nothing of them is left).
    """
    from ...data.backgrounds import COLORS
    from ...data.shapes import shape_coverage

    S = image.shape[-1]
    outer_r = float(rng.uniform(0.26, 0.36)) * S
    inner_r = float(rng.uniform(0.4, 0.5)) * outer_r  # about the world's smallest shapes
    centre = tuple(float(rng.uniform(outer_r, S - outer_r)) for _ in range(2))
    outer = NEST_OUTER[int(rng.integers(len(NEST_OUTER)))]
    inner = world.shapes[int(rng.integers(len(world.shapes)))]
    colors = rng.choice(len(world.colors), size=2, replace=False)
    angle = float(np.radians(rng.uniform(-world.rotation, world.rotation)))
    pixels = image.permute(1, 2, 0).numpy().copy()
    pair = []
    for name, radius, color in ((outer, outer_r, colors[0]), (inner, inner_r, colors[1])):
        coverage, mask = shape_coverage(name, S, centre, radius, angle)
        rgb = np.asarray(COLORS[world.colors[int(color)]].rgb, dtype=np.float32)
        pixels = pixels * (1 - coverage[..., None]) + rgb * coverage[..., None]
        pair.append(torch.from_numpy(mask))
    part, whole = pair[1], pair[0] | pair[1]
    kept = masks & ~whole
    keep = kept.flatten(1).sum(1) >= 4
    out_masks = torch.cat([kept[keep], part[None], whole[None]])
    classes = [world.shapes.index(inner), world.shapes.index(outer)]
    out_labels = torch.cat([labels[keep], torch.tensor(classes, dtype=labels.dtype)])
    out_image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32))
    return out_image, out_masks, out_labels


def normalize(images: torch.Tensor) -> torch.Tensor:
    """``(images - 0.5) / 0.25``, the input a mini-SAM expects."""
    return (images - MEAN) / STD


def centre_point(mask: torch.Tensor) -> tuple[float, float]:
    """The mask pixel farthest from its border, ``(x, y)``: where a user clicks."""
    distance = ndimage.distance_transform_edt(np.pad(mask.numpy(), 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(distance.argmax()), distance.shape)
    return float(x), float(y)


def _pixels(mask: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random pixels ``(x, y)`` of a mask: ``(count, 2)``."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    pick = torch.randint(len(xs), (count,), generator=generator)
    return torch.stack([xs[pick], ys[pick]], dim=-1).float()


def _box(mask: torch.Tensor) -> torch.Tensor:
    """Tight box ``(x0, y0, x1, y1)`` of a mask, the last row and column included."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float()


def sample_prompts(
    masks: torch.Tensor, kind: str, generator: torch.Generator, train: bool = True
) -> dict[str, torch.Tensor]:
    """Prompts for a batch of target masks.

    Args:
        masks: ``(B, P, S, S)`` bool targets.
        kind: one of :data:`PROMPT_KINDS`.
        generator: random source.
        train: sample the first point anywhere in the mask and jitter boxes (True), or
            click the centre and use the exact box (False).

    Returns:
        Keyword arguments for :meth:`Sam.predict`: ``points`` ``(B, P, N, 2)`` and
        ``labels``, or ``boxes`` ``(B, P, 4)``.
    """
    B, P, S, _ = masks.shape
    flat = masks.reshape(B * P, S, S)
    if kind == "box":
        boxes = torch.stack([_box(m) for m in flat])
        if train:
            side = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
            noise = torch.randn(boxes.shape, generator=generator) * 0.1 * side
            boxes = (boxes + noise.clamp(-4, 4)).clamp(0, S - 1)
        return {"boxes": boxes.view(B, P, 4)}
    count = 1 if kind == "one_point" else 3
    points = []
    for m in flat:
        if train:
            points.append(_pixels(m, count, generator))
        else:
            first = torch.tensor([centre_point(m)])
            points.append(torch.cat([first, _pixels(m, count - 1, generator)]) if count > 1 else first)
    points = torch.stack(points).view(B, P, count, 2)
    return {"points": points, "labels": torch.ones(B, P, count, dtype=torch.long)}


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss averaged over pixels: ``(..., S, S)`` → ``(...)``."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * (1 - p_t) ** gamma * ce).flatten(-2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - Dice`` of the soft mask: ``(..., S, S)`` → ``(...)``."""
    p = logits.sigmoid().flatten(-2)
    t = target.flatten(-2)
    return 1 - (2 * (p * t).sum(-1) + 1) / (p.sum(-1) + t.sum(-1) + 1)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the thresholded mask (logit > 0) with the target: ``(..., S, S)`` → ``(...)``."""
    pred = (logits > 0).flatten(-2)
    t = target.flatten(-2).bool()
    inter = (pred & t).sum(-1).float()
    union = (pred | t).sum(-1).float()
    return inter / union.clamp(min=1)


def point_alternatives(
    masks: list[torch.Tensor], indices: torch.Tensor, targets: torch.Tensor, points: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """For one-point prompts, the other mask of the image the click also falls in.

    A click on a small shape inside a large one is in two masks, the part and the whole
    (:func:`nest_shapes`): both are right answers, and the loss (:func:`sam_loss`)
    wants them on two different outputs.

    Args:
        masks: every image's masks, ``(K_i, S, S)`` bool each (``InstanceSet.masks``).
        indices: ``(B,)`` which images the batch holds.
        targets: ``(B, P, S, S)`` bool, the prompted masks.
        points: ``(B, P, 1, 2)`` the clicks ``(x, y)``.

    Returns:
        ``(alternative (B, P, S, S), has_alternative (B, P))``: the other mask holding
        the click (the target itself where there is none).
    """
    alternative = targets.clone()
    has = torch.zeros(targets.shape[:2], dtype=torch.bool)
    for b, i in enumerate(indices.tolist()):
        for p in range(targets.shape[1]):
            x, y = (int(v) for v in points[b, p, 0])
            holding = masks[i][:, y, x].nonzero().flatten().tolist()
            others = [k for k in holding if not torch.equal(masks[i][k], targets[b, p])]
            if others:
                alternative[b, p] = masks[i][others[0]]
                has[b, p] = True
    return alternative, has


def sam_loss(
    mask_logits: torch.Tensor,
    iou_pred: torch.Tensor,
    target: torch.Tensor,
    focal_weight: float = 20.0,
    alternative: torch.Tensor | None = None,
    has_alternative: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SAM's loss: the best of ``K`` masks by ``20 focal + dice``, plus IoU regression.

    With an ``alternative`` (a click in two nested masks, :func:`point_alternatives`)
    the two targets take the best *pair* of different masks, so that the three outputs
    specialise (one the part, another the whole) instead of all following whichever
    target was drawn; the IoU head then regresses each mask's IoU with the nearer of
    the two.

    Args:
        mask_logits: ``(B, P, K, S, S)`` (upscaled to the targets' size).
        iou_pred: ``(B, P, K)``.
        target: ``(B, P, S, S)`` float in ``[0, 1]`` (a fraction where downsampled).
        focal_weight: focal's weight against dice (20 in SAM).
        alternative: ``(B, P, S, S)`` a second right answer, like ``target``, or None.
        has_alternative: ``(B, P)`` bool, where ``alternative`` counts.

    Returns:
        The scalar loss and its parts, for the log.
    """

    def per_mask(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t_k = t.unsqueeze(2).expand_as(mask_logits)
        # (B, P, K): one loss per output mask
        loss = focal_weight * focal_loss(mask_logits, t_k) + dice_loss(mask_logits, t_k)
        with torch.no_grad():
            actual = mask_iou(mask_logits, t_k > 0.5)
        return loss, actual

    loss_k, actual = per_mask(target)
    best = loss_k.min(dim=2).values  # (B, P): only the best of the K masks learns
    K = mask_logits.shape[2]
    if alternative is not None and K > 1 and bool(has_alternative.any()):
        alt_k, alt_actual = per_mask(alternative)
        # (B, P, K, K): mask i the target, j the other
        pairs = loss_k[..., :, None] + alt_k[..., None, :]
        same = torch.eye(K, dtype=torch.bool, device=pairs.device)  # i == j: not a pair
        pairs = pairs.masked_fill(same, float("inf"))
        best = torch.where(has_alternative, pairs.flatten(-2).min(-1).values / 2, best)
        either = torch.maximum(actual, alt_actual)
        actual = torch.where(has_alternative[..., None], either, actual)
    mask_loss = best.mean()
    iou_loss = F.mse_loss(iou_pred, actual)
    parts = {"mask": float(mask_loss.detach()), "iou": float(iou_loss.detach())}
    return mask_loss + iou_loss, parts


@torch.no_grad()
def evaluate(model: Sam, data: InstanceSet, seed: int = 0) -> dict[str, dict[str, float]]:
    """mIoU and Dice of every prompt kind over every instance of ``data``.

    One point: the mask with the highest predicted IoU of three; three points and box:
    the single mask. Each image is encoded once and all its prompts reuse the embedding.

    Returns:
        ``{kind: {"miou": …, "dice": …, "iou_prediction_error": …}}`` with the means over
        instances (the last: mean ``|predicted IoU - IoU|`` of the chosen masks).
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    scores = {kind: {"iou": [], "dice": [], "error": []} for kind in PROMPT_KINDS}
    for image, masks in zip(data.images, data.masks):
        embedding = model.encode_image(normalize(image[None]))
        target = masks[None]  # (1, K, S, S)
        for kind in PROMPT_KINDS:
            prompts = sample_prompts(target, kind, generator, train=False)
            logits, iou_pred = model.predict(embedding, **prompts, multimask_output=kind == "one_point")
            logits = model.upscale(logits)  # (1, K, M, S, S)
            best = iou_pred.argmax(dim=-1, keepdim=True)  # (1, K, 1)
            chosen = logits.gather(2, best[..., None, None].expand(-1, -1, -1, *logits.shape[-2:]))[:, :, 0]
            predicted = iou_pred.gather(2, best)[:, :, 0]
            iou = mask_iou(chosen, target)
            pred = (chosen > 0).flatten(-2)
            t = target.flatten(-2)
            dice = 2 * (pred & t).sum(-1) / (pred.sum(-1) + t.sum(-1)).clamp(min=1)
            scores[kind]["iou"].extend(iou.flatten().tolist())
            scores[kind]["dice"].extend(dice.float().flatten().tolist())
            scores[kind]["error"].extend((predicted - iou).abs().flatten().tolist())
    return {
        kind: {
            "miou": float(np.mean(s["iou"])),
            "dice": float(np.mean(s["dice"])),
            "iou_prediction_error": float(np.mean(s["error"])),
        }
        for kind, s in scores.items()
    }
