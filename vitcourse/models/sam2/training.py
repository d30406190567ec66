"""Training SAM 2's memory on generated videos, and measuring what the memory buys.

Training follows SAM 2's recipe at our size: a clip of ``T`` frames, a prompt on the
first frame (a click anywhere on the object, three clicks or its box), sometimes a
corrective click on a later frame, and the tracker unrolled over the clip with
gradients through the memories. Recovery clips (:func:`recovery_windows`) are chosen so
the target hides behind the occluder and comes back inside the clip; on the frame where
it comes back the tracker is corrected with one click drawn from its own error
(:func:`error_click`), as in SAM 2's interactive training, so that it learns to follow a
click that contradicts what it remembers. The loss is SAM's on every frame (``20 focal + dice``
and the IoU regression). SAM's image encoder and prompt encoder stay frozen (so the
frames are encoded once, before training); the memory parts train, and the mask
decoder is fine-tuned with a smaller learning rate, because it must now segment frames
that come without a prompt.

The evaluation clicks the centre of the object on frame 0 and compares, per frame,

* **with memory**: SAM 2 tracking from that click;
* **without memory**: SAM on every frame on its own, with the first frame's click
  (what a user gets from an image model on a video).

Recovery: on videos where the object is hidden by the occluder and reappears, a single
corrective click at the reappearance frame, and the mIoU of the frames after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from ...data.video import VideoConfig, generate_video, visible_fraction
from ..sam import Sam
from ..sam.training import centre_point, dice_loss, focal_loss, mask_iou, normalize
from .predictor import track_video
from .sam2 import Sam2

__all__ = [
    "VideoData",
    "VideoSet",
    "click_prompt",
    "compare_runs",
    "encode_videos",
    "error_click",
    "evaluate",
    "frame_by_frame",
    "frame_ious",
    "make_videos",
    "reappearance_frame",
    "recovery_windows",
    "summarize",
    "total_training",
    "track_loss",
    "training_window",
    "unroll",
]


@dataclass(frozen=True)
class VideoData:
    """Which generated videos SAM 2 trains and is evaluated on.

    Args:
        img_size: frame side.
        train_frames: ``T`` of a training clip, a window of a training video.
        test_frames: ``T`` of every video, training and held-out (longer than the bank).
        num_distractors: free shapes besides the target and the occluder.
        seed: data seed; split 0 trains, split 2 is held out.
        first_unoccluded: least share of the target visible on frame 0, where it is
            clicked (the still-image SAM has never seen a shape covered by another).
    """

    img_size: int = 64
    train_frames: int = 8
    test_frames: int = 16
    num_distractors: int = 1
    seed: int = 0
    first_unoccluded: float = 0.95

    def config(self, split: int) -> VideoConfig:
        """The :class:`VideoConfig` of a split (every split draws ``test_frames`` frames).

        Training unrolls windows of ``train_frames`` of them (:func:`training_window`),
        so that the occluder passes at the same time as in the held-out videos.
        """
        return VideoConfig(
            self.img_size, self.test_frames, self.num_distractors, first_unoccluded=self.first_unoccluded
        )

    def as_dict(self) -> dict:
        """For a checkpoint's card."""
        return {"name": "world_videos", **asdict(self)}

    @classmethod
    def from_card(cls, data: dict) -> VideoData:
        """The data a card's ``data`` block describes (its other keys are ignored)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class VideoSet:
    """Videos and their target's masks.

    Attributes:
        frames: ``(V, T, 3, S, S)`` in ``[0, 1]``.
        targets: ``(V, T, S, S)`` bool, the tracked object (shape 0) per frame.
        occlusion_frames: ``(V,)`` the frame each occluder is aimed at.
    """

    frames: torch.Tensor
    targets: torch.Tensor
    occlusion_frames: torch.Tensor

    def __len__(self) -> int:
        return len(self.frames)


def make_videos(data: VideoData, split: int, size: int, first: int = 0) -> VideoSet:
    """Draw videos ``first .. first + size - 1`` of one split (same arguments, same pixels)."""
    config = data.config(split)
    videos = [generate_video((data.seed, split, i), config) for i in range(first, first + size)]
    return VideoSet(
        torch.stack([v.frames for v in videos]),
        torch.stack([v.target for v in videos]),
        torch.tensor([v.occlusion_frame for v in videos]),
    )


@torch.no_grad()
def encode_videos(model: Sam2 | Sam, frames: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Image embeddings of every frame: ``(V, T, 3, S, S)`` → ``(V, T, C, g, g)``."""
    encode = model.encode_frames if isinstance(model, Sam2) else lambda x: model.encode_image(normalize(x))
    flat = frames.flatten(0, 1)
    out = torch.cat([encode(flat[i : i + chunk]) for i in range(0, len(flat), chunk)])
    return out.view(*frames.shape[:2], *out.shape[1:])


def click_prompt(masks: torch.Tensor, kind: str = "centre", generator: torch.Generator | None = None) -> dict:
    """A prompt per video from its target masks on one frame.

    Args:
        masks: ``(B, S, S)`` bool, none empty.
        kind: ``"centre"`` (the pixel farthest from the border), ``"point"`` (a random
            pixel), ``"three_points"`` or ``"box"``.
        generator: random source for the random kinds.

    Returns:
        ``{"points": (B, N, 2), "labels": (B, N)}`` or ``{"boxes": (B, 4)}``.
    """
    if kind == "box":
        boxes = []
        for m in masks:
            ys, xs = torch.nonzero(m, as_tuple=True)
            boxes.append(torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float())
        return {"boxes": torch.stack(boxes)}
    count = 3 if kind == "three_points" else 1
    points = []
    for m in masks:
        if kind == "centre":
            points.append(torch.tensor([centre_point(m)]))
        else:
            ys, xs = torch.nonzero(m, as_tuple=True)
            pick = torch.randint(len(xs), (count,), generator=generator)
            points.append(torch.stack([xs[pick], ys[pick]], dim=-1).float())
    points = torch.stack(points)
    return {"points": points, "labels": torch.ones(points.shape[:2], dtype=torch.long)}


def training_window(
    targets: torch.Tensor, length: int, generator: torch.Generator, from_start: float = 0.5, min_pixels: int = 20
) -> int:
    """The first frame of a training clip of ``length`` frames in a batch of videos.

    Frame 0 (the clean, prompted frame of the held-out videos) with chance
    ``from_start``; otherwise a random later start where every video of the batch shows
    at least ``min_pixels`` of the target, to be prompted there (frame 0 if none does).

    Args:
        targets: ``(B, T, S, S)`` the batch's target masks.
    """
    T = targets.shape[1]
    if T <= length or float(torch.rand(1, generator=generator)) < from_start:
        return 0
    starts = torch.randperm(T - length, generator=generator) + 1
    visible = targets.flatten(2).sum(-1) >= min_pixels  # (B, T)
    for s in starts.tolist():
        if bool(visible[:, s].all()):
            return s
    return 0


def recovery_windows(
    targets: torch.Tensor,
    reappears: torch.Tensor,
    length: int,
    batch: int,
    generator: torch.Generator,
    min_pixels: int = 20,
) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """Training clips in which the target is hidden and comes back at the same frame.

    A clip of ``length`` frames of each chosen video starts ``k`` frames before the
    video's reappearance frame (:func:`reappearance_frame`), ``k`` drawn from
    ``3 .. length - 1`` once for the batch, so the clips see the target, lose it
    behind the occluder and get it back at their frame ``k``, where training clicks.

    Args:
        targets: ``(V, T, S, S)`` the training videos' target masks.
        reappears: ``(V,)`` their reappearance frames, ``-1`` for none.
        length: frames of a clip.
        batch: clips to draw (videos may repeat when few fit).
        generator: random source.
        min_pixels: least target pixels on a clip's first frame, where it is prompted.

    Returns:
        ``(videos (batch,), starts (batch,), k)``, or None if no video fits this ``k``.
    """
    T = targets.shape[1]
    k = int(torch.randint(3, length, (1,), generator=generator))
    starts = reappears - k
    fits = (reappears >= 0) & (starts >= 0) & (starts <= T - length)
    if fits.any():
        visible = targets.flatten(2).sum(-1) >= min_pixels  # (V, T)
        rows = torch.nonzero(fits).flatten()
        fits[rows] = visible[rows, starts[rows]]
    candidates = torch.nonzero(fits).flatten()
    if len(candidates) == 0:
        return None
    videos = candidates[torch.randint(len(candidates), (batch,), generator=generator)]
    return videos, starts[videos], k


def error_click(mask_logits: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None) -> dict:
    """One corrective click per video, drawn from the error of the current prediction.

    As in SAM 2's interactive training: a random pixel where the predicted mask and the
    target disagree; foreground (label 1) if it is a missed object pixel, background
    (label 0) if it is a false one. A video without error gets a click on its target.

    Args:
        mask_logits: ``(B, S, S)`` the prediction at the frame's size.
        targets: ``(B, S, S)`` bool, none empty.
        generator: random source.

    Returns:
        ``{"points": (B, 1, 2), "labels": (B, 1)}``.
    """
    points, labels = [], []
    for pred, target in zip(mask_logits > 0, targets):
        error = pred ^ target
        region = error if bool(error.any()) else target
        ys, xs = torch.nonzero(region, as_tuple=True)
        i = int(torch.randint(len(xs), (1,), generator=generator))
        points.append(torch.stack([xs[i], ys[i]]).float())
        labels.append(int(target[ys[i], xs[i]]))
    return {"points": torch.stack(points)[:, None], "labels": torch.tensor(labels)[:, None]}


def unroll(
    model: Sam2,
    features: torch.Tensor,
    prompts: dict[int, dict],
    correct_at: int | None = None,
    targets: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The tracker over clips, with gradients (training).

    Args:
        model: a :class:`Sam2`.
        features: ``(B, T, C, g, g)`` image embeddings.
        prompts: ``{frame: prompt}``, frame 0 included.
        correct_at: a frame where, as a user would, a click corrects the tracker: the
            frame is first segmented from the memory alone (without gradients), a click
            drawn from that mask's error (:func:`error_click`), and the frame segmented
            again, memory and click together.
        targets: ``(B, T, S, S)`` the clips' target masks (needed with ``correct_at``).
        generator: random source of the corrective click.

    Returns:
        ``(mask_logits (B, T, 4g, 4g), iou (B, T))``.
    """
    bank = model.new_bank()
    logits, ious = [], []
    for t in range(features.shape[1]):
        prompt = prompts.get(t, {})
        if t == correct_at:
            with torch.no_grad():  # from the memory alone, then a click on its error
                alone = model.decode(model.condition(features[:, t], bank, t))[0]
            prompt = error_click(model.upscale(alone)[:, 0], targets[:, t], generator)
        out = model.track_step(features[:, t], bank, t, **prompt)
        logits.append(out.mask_logits[:, 0])
        ious.append(out.iou)
    return torch.stack(logits, dim=1), torch.stack(ious, dim=1)


def track_loss(
    logits: torch.Tensor, iou_pred: torch.Tensor, targets: torch.Tensor, focal_weight: float = 20.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """SAM's loss on every frame of a clip.

    Args:
        logits: ``(B, T, 4g, 4g)`` mask logits.
        iou_pred: ``(B, T)`` predicted IoUs.
        targets: ``(B, T, S, S)`` bool target masks (averaged down to ``4g``).
        focal_weight: focal's weight against dice.

    Returns:
        The scalar loss and its parts.
    """
    small = F.adaptive_avg_pool2d(targets.float(), logits.shape[-2:])  # (B, T, 4g, 4g)
    mask_loss = (focal_weight * focal_loss(logits, small) + dice_loss(logits, small)).mean()
    with torch.no_grad():
        actual = mask_iou(logits, small > 0.5)
    iou_loss = F.mse_loss(iou_pred, actual)
    return mask_loss + iou_loss, {"mask": float(mask_loss.detach()), "iou": float(iou_loss.detach())}


def frame_ious(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU per frame of upscaled logits ``(..., S, S)`` with bool targets.

    A frame where the object is hidden and nothing is predicted counts as 1 (the
    tracker was right that it is gone); predicting something there counts as 0.
    """
    pred = (logits > 0).flatten(-2)
    t = targets.flatten(-2)
    inter = (pred & t).sum(-1).float()
    union = (pred | t).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@torch.no_grad()
def frame_by_frame(sam: Sam, features: torch.Tensor, prompts: dict[int, dict]) -> torch.Tensor:
    """SAM on every frame alone, with the latest prompt given so far (no memory).

    Args:
        sam: a :class:`~vitcourse.models.sam.Sam`.
        features: ``(B, T, C, g, g)`` its image embeddings.
        prompts: ``{frame: prompt}``; frame ``t`` uses the prompt of the latest
            prompted frame ``≤ t``.

    Returns:
        ``(B, T, 4g, 4g)`` logits (one point: the best of three masks by predicted IoU).
    """
    out = []
    for t in range(features.shape[1]):
        prompt = prompts[max(f for f in prompts if f <= t)]
        points, labels, boxes = prompt.get("points"), prompt.get("labels"), prompt.get("boxes")
        logits, iou = sam.predict(
            features[:, t],
            None if points is None else points[:, None],
            None if labels is None else labels[:, None],
            None if boxes is None else boxes[:, None],
            multimask_output=points is not None and points.shape[1] == 1,
        )
        best = iou[:, 0].argmax(dim=-1)  # (B,)
        out.append(logits[torch.arange(len(best)), 0, best])
    return torch.stack(out, dim=1)


def reappearance_frame(target: torch.Tensor, hidden: float = 0.25, back: float = 0.5) -> int | None:
    """The first frame where the object is back (≥ ``back`` visible) after being hidden.

    Args:
        target: ``(T, S, S)`` the object's masks.
        hidden: visible fraction below which it counts as hidden.
        back: visible fraction at which it counts as back.

    Returns:
        The frame index, or None if the object is never hidden and back.
    """
    fraction = visible_fraction(target)
    hidden_at = torch.nonzero(fraction < hidden).flatten()
    if len(hidden_at) == 0:
        return None
    after = torch.nonzero(fraction[int(hidden_at[0]) :] >= back).flatten()
    return None if len(after) == 0 else int(hidden_at[0]) + int(after[0])


@torch.no_grad()
def evaluate(model: Sam2, sam: Sam, videos: VideoSet) -> dict:
    """Per-frame IoU with and without memory, and recovery after occlusion.

    Args:
        model: the trained :class:`Sam2`.
        sam: the SAM it was built on (the no-memory baseline).
        videos: held-out videos.

    Returns:
        A dict: ``"with_memory"``, ``"without_memory"``: per-frame IoUs ``(V, T)`` as
        lists; ``"recovery"``: for the videos with a reappearance, the frame and the
        mean IoU after it for memory / memory + click / SAM / SAM + click, and the IoU
        on the clicked frame itself with the click (memory, SAM, and the tracker's
        decoder with the click but without reading the memory: ``"unread_click_frame"``).
    """
    model.eval()
    sam.eval()
    feats2 = encode_videos(model, videos.frames)
    feats = encode_videos(sam, videos.frames)
    first = {0: click_prompt(videos.targets[:, 0])}
    with_memory = frame_ious(
        model.upscale(track_video(model, videos.frames, first, features=feats2)[0]), videos.targets
    )
    without = frame_ious(sam.upscale(frame_by_frame(sam, feats, first)), videos.targets)
    recovery = {
        "video": [], "frame": [], "memory": [], "memory_click": [], "sam": [], "sam_click": [],
        "memory_click_frame": [], "sam_click_frame": [], "unread_click_frame": [],
    }  # fmt: skip
    for v in range(len(videos)):
        r = reappearance_frame(videos.targets[v])
        if r is None:
            continue
        one = {0: {k: x[v : v + 1] for k, x in first[0].items()}}
        clicked = {**one, r: click_prompt(videos.targets[v : v + 1, r])}
        target = videos.targets[v : v + 1, r:]
        mem_click = track_video(model, videos.frames[v : v + 1], clicked, features=feats2[v : v + 1])[0]
        sam_click = frame_by_frame(sam, feats[v : v + 1], clicked)
        recovery["video"].append(v)
        recovery["frame"].append(r)
        recovery["memory"].append(float(with_memory[v, r:].mean()))
        recovery["memory_click"].append(float(frame_ious(model.upscale(mem_click[:, r:]), target).mean()))
        recovery["sam"].append(float(without[v, r:].mean()))
        recovery["sam_click"].append(float(frame_ious(sam.upscale(sam_click[:, r:]), target).mean()))
        recovery["memory_click_frame"].append(float(frame_ious(model.upscale(mem_click[:, r]), target[:, 0])))
        recovery["sam_click_frame"].append(float(frame_ious(sam.upscale(sam_click[:, r]), target[:, 0])))
        # the diagnosis: the same decoder and click on that frame without reading the memory
        unread = model.decode(feats2[v : v + 1, r] + model.no_memory, **clicked[r])[0]
        recovery["unread_click_frame"].append(float(frame_ious(model.upscale(unread), target[:, 0])))
    return {"with_memory": with_memory.tolist(), "without_memory": without.tolist(), "recovery": recovery}


def summarize(result: dict) -> dict:
    """Means and spreads across videos of :func:`evaluate`'s result (for the card)."""
    w, wo = np.array(result["with_memory"]), np.array(result["without_memory"])
    per_w, per_wo = w.mean(1), wo.mean(1)  # per-video mIoU
    diff = per_w - per_wo
    rec = {k: np.array(v) for k, v in result["recovery"].items()}
    gain = rec["memory_click"] - rec["memory"]
    against_sam = rec["memory_click"] - rec["sam_click"]  # the tracker's click against SAM's, per video
    reading = rec["memory_click_frame"] - rec["unread_click_frame"]  # what reading the memory does to the click
    return {
        "videos": len(w),
        "miou_with_memory": float(per_w.mean()),
        "miou_without_memory": float(per_wo.mean()),
        "std_with_memory": float(per_w.std(ddof=1)),
        "std_without_memory": float(per_wo.std(ddof=1)),
        "difference_mean": float(diff.mean()),
        "difference_std": float(diff.std(ddof=1)),
        "difference_sem": float(diff.std(ddof=1) / np.sqrt(len(diff))),
        "per_frame_with_memory": w.mean(0).tolist(),
        "per_frame_without_memory": wo.mean(0).tolist(),
        "per_frame_std_with_memory": w.std(0, ddof=1).tolist(),
        "per_frame_std_without_memory": wo.std(0, ddof=1).tolist(),
        "recovery_videos": len(rec["frame"]),
        "recovery_memory": float(rec["memory"].mean()),
        "recovery_memory_click": float(rec["memory_click"].mean()),
        "recovery_sam": float(rec["sam"].mean()),
        "recovery_sam_click": float(rec["sam_click"].mean()),
        "recovery_memory_click_frame": float(rec["memory_click_frame"].mean()),
        "recovery_sam_click_frame": float(rec["sam_click_frame"].mean()),
        "recovery_click_gain_mean": float(gain.mean()),
        "recovery_click_gain_std": float(gain.std(ddof=1)),
        "recovery_click_gain_sem": float(gain.std(ddof=1) / np.sqrt(len(gain))),
        "recovery_click_vs_sam_mean": float(against_sam.mean()),
        "recovery_click_vs_sam_std": float(against_sam.std(ddof=1)),
        "recovery_click_vs_sam_sem": float(against_sam.std(ddof=1) / np.sqrt(len(against_sam))),
        "recovery_unread_click_frame": float(rec["unread_click_frame"].mean()),
        "recovery_memory_read_mean": float(reading.mean()),
        "recovery_memory_read_sem": float(reading.std(ddof=1) / np.sqrt(len(reading))),
    }


def compare_runs(before: dict, after: dict) -> dict:
    """Per-video differences between two checkpoints' :func:`evaluate` results.

    Both results must come from the same held-out videos (the same recovery videos
    too), so each difference is paired: ``after`` minus ``before`` for the tracking
    mIoU with memory and for the mIoU after the reappearance without and with the
    corrective click, each with its mean, standard deviation and standard error.

    Raises:
        ValueError: when the two results are not from the same videos.
    """
    b, a = np.array(before["with_memory"]), np.array(after["with_memory"])
    if b.shape != a.shape or before["recovery"]["video"] != after["recovery"]["video"]:
        raise ValueError(
            "compare_runs needs two evaluations of the same videos: got with-memory IoUs of shape "
            f"{b.shape} and {a.shape}, recovery videos {len(before['recovery']['video'])} and "
            f"{len(after['recovery']['video'])}; evaluate both checkpoints on one make_videos(...) set"
        )
    pairs = {
        "miou_with_memory": (b.mean(1), a.mean(1)),
        "recovery_memory": (np.array(before["recovery"]["memory"]), np.array(after["recovery"]["memory"])),
        "recovery_memory_click": (
            np.array(before["recovery"]["memory_click"]),
            np.array(after["recovery"]["memory_click"]),
        ),
    }
    out: dict = {"videos": len(b), "recovery_videos": len(before["recovery"]["video"])}
    for key, (old, new) in pairs.items():
        diff = new - old
        out[f"{key}_before"] = float(old.mean())
        out[f"{key}_after"] = float(new.mean())
        out[f"{key}_gain_mean"] = float(diff.mean())
        out[f"{key}_gain_std"] = float(diff.std(ddof=1))
        out[f"{key}_gain_sem"] = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    return out


def total_training(entry: dict) -> dict:
    """Steps and seconds of a checkpoint's training, continuations included.

    Args:
        entry: a checkpoint card (:func:`vitcourse.checkpoints.info`); a continuation
            records the run it started from in ``recipe["init"]["continued_from"]``.

    Returns:
        ``{"steps": …, "train_seconds": …, "runs": …}`` summed over the chain of runs.
    """
    steps, seconds, runs = entry["recipe"]["steps"], entry["provenance"]["train_seconds"], 1
    previous = entry["recipe"].get("init", {}).get("continued_from")
    while previous is not None:
        steps, seconds, runs = steps + previous["steps"], seconds + previous["train_seconds"], runs + 1
        previous = previous["recipe"].get("init", {}).get("continued_from")
    return {"steps": steps, "train_seconds": seconds, "runs": runs}
