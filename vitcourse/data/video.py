"""Generated videos: the world's shapes moving over a still background, one hiding another.

SAM 2 tracks an object through a video; to measure it we need videos whose every frame
has exact instance masks. This module moves the shapes of :mod:`vitcourse.data.world`
in straight lines (bouncing off the borders) and paints every frame with the world's
own painter, so the masks are the visible part of each shape in that frame.

Every video is built around one **target** (shape 0, painted first, so anything can
pass in front of it) and one **occluder** (painted last) whose path is aimed at the
target's: around frame ``occlusion_frame`` the occluder covers the target, partly or
wholly, and then moves on. Other shapes (distractors) move freely. That gives the two
things a tracker is tested on: following a moving object, and finding it again after
it was hidden.

Example::

    video = generate_video(seed=(0, 2, 5), config=VideoConfig(num_frames=16))
    video.frames.shape, video.masks.shape   # (16, 3, 64, 64), (16, K, 64, 64)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from .backgrounds import render_background, sample_background_colors
from .shapes import shape_sdf
from .world import WorldConfig, paint_shapes, place_shapes

__all__ = ["Video", "VideoConfig", "generate_video", "visible_fraction"]


@dataclass(frozen=True)
class VideoConfig:
    """What a generated video may show.

    Args:
        img_size: frame side in pixels (square).
        num_frames: ``T``.
        num_distractors: shapes besides the target and the occluder (0 to this many).
        radius: shape radius range as a fraction of the side.
        speed: range of speeds, pixels per frame.
        spin: largest rotation per frame, in degrees.
        occlusion_frame: range of frames (as fractions of ``T``) where the occluder
            is aimed at the target.
        first_unoccluded: least share of the target's shape that must be visible on
            frame 0, where the user prompts it (0: only the default rule, at least half
            of its largest visible area in the video).
    """

    img_size: int = 64
    num_frames: int = 16
    num_distractors: int = 1
    radius: tuple[float, float] = (0.14, 0.26)
    speed: tuple[float, float] = (1.0, 2.5)
    spin: float = 6.0
    occlusion_frame: tuple[float, float] = (0.35, 0.6)
    first_unoccluded: float = 0.0

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"a video needs at least 2 frames, got num_frames={self.num_frames}")
        if not 0 <= self.num_distractors <= 4:
            raise ValueError(f"num_distractors must be in [0, 4], got {self.num_distractors}")
        if not 0 <= self.speed[0] <= self.speed[1]:
            raise ValueError(f"speed must be a range (low, high) with 0 <= low <= high, got {self.speed}")

    def world(self) -> WorldConfig:
        """The world the shapes, colours and background come from."""
        count = 2 + self.num_distractors
        return WorldConfig(img_size=self.img_size, min_shapes=count, max_shapes=count, radius=self.radius)


@dataclass
class Video:
    """Frames and per-frame instance masks.

    Attributes:
        frames: ``(T, 3, S, S)`` float32 in ``[0, 1]``.
        masks: ``(T, K, S, S)`` bool visible masks (empty where a shape is hidden).
        shapes: ``K`` shape names; shape 0 is the target, shape ``K - 1`` the occluder.
        occlusion_frame: the frame the occluder is aimed at.
        first_unoccluded: the share of the target's shape visible on frame 0.
    """

    frames: torch.Tensor
    masks: torch.Tensor
    shapes: list[str]
    occlusion_frame: int
    first_unoccluded: float = 1.0

    @property
    def target(self) -> torch.Tensor:
        """The target's masks ``(T, S, S)``."""
        return self.masks[:, 0]


def visible_fraction(masks: torch.Tensor) -> torch.Tensor:
    """Visible area of each frame's mask over its largest area in the video: ``(T, S, S)`` → ``(T,)``."""
    area = masks.flatten(1).sum(-1).float()
    return area / area.max().clamp(min=1)


def _bounce(position: float, low: float, high: float) -> float:
    """Fold a coordinate back into ``[low, high]`` as a ball bouncing off walls."""
    span = high - low
    t = (position - low) % (2 * span)
    return low + (t if t <= span else 2 * span - t)


def _trajectory(start, velocity, radius, size, num_frames) -> np.ndarray:
    """Centres ``(T, 2)`` of a shape moving at ``velocity``, bouncing inside the frame."""
    steps = np.arange(num_frames)[:, None] * np.asarray(velocity)[None]
    raw = np.asarray(start)[None] + steps
    return np.array([[_bounce(c, radius, size - radius) for c in row] for row in raw])


def _velocity(rng: np.random.Generator, config: VideoConfig) -> np.ndarray:
    angle = rng.uniform(0, 2 * math.pi)
    return rng.uniform(*config.speed) * np.array([math.cos(angle), math.sin(angle)])


def generate_video(seed: int | Sequence[int] = 0, config: VideoConfig | None = None) -> Video:
    """Draw one video (equal seeds give equal pixels).

    Args:
        seed: an int or a sequence of ints, e.g. ``(seed, split, index)``.
        config: a :class:`VideoConfig` (default: 16 frames of 64×64).

    Returns:
        A :class:`Video`.
    """
    config = config or VideoConfig()
    rng = np.random.default_rng(seed)
    for _ in range(100):  # the target must be clearly visible on frame 0, where it is prompted
        video = _draw(rng, config)
        if video is not None and visible_fraction(video.target)[0] >= 0.5:
            return video
    raise RuntimeError(f"no video with a visible target for seed {seed}; check VideoConfig.radius")


def _draw(rng: np.random.Generator, config: VideoConfig) -> Video | None:
    """One video from the generator's next numbers (see :func:`generate_video`).

    None, as soon as frame 0 shows less than ``config.first_unoccluded`` of the target.
    """
    world = config.world()
    size, T = config.img_size, config.num_frames
    placed = place_shapes(rng, world, None)  # colours, sizes, classes; positions replaced below
    while len(placed) < 2:  # the world drops shapes it cannot place apart; videos need two
        placed = place_shapes(rng, world, None)
    target = placed[0]
    # an occluder at least as large as the target, so that it can hide it wholly
    occluder = replace(placed[-1], radius=min(max(placed[-1].radius, 1.2 * target.radius), 0.3 * size))
    placed[-1] = occluder
    t_occ = int(rng.integers(int(config.occlusion_frame[0] * T), int(config.occlusion_frame[1] * T) + 1))
    paths = []
    for shape in placed:
        r = shape.radius
        velocity = _velocity(rng, config)
        if shape is occluder:
            # aim at the target's centre at t_occ, coming from elsewhere (straight, no bounce)
            meet = paths[0][t_occ]
            for _ in range(50):
                velocity = _velocity(rng, config)
                path = meet[None] + (np.arange(T)[:, None] - t_occ) * velocity[None]
                if ((path[0] >= r) & (path[0] <= size - r)).all():
                    break
            paths.append(path)
            continue
        start = rng.uniform(r, size - r, size=2)
        paths.append(_trajectory(start, velocity, r, size, T))
    spins = [math.radians(float(rng.uniform(-config.spin, config.spin))) for _ in placed]
    colors = sample_background_colors(rng, 2, [s.rgb for s in placed], world.min_contrast, world.background_spread)
    kind = world.backgrounds[int(rng.integers(len(world.backgrounds)))]
    background = render_background(kind, rng, world.img_size, colors)

    frames, masks, whole = [], [], 0
    for t in range(T):
        moved = [
            replace(s, center=(float(p[t][0]), float(p[t][1])), angle=s.angle + t * w)
            for s, p, w in zip(placed, paths, spins)
        ]
        image, visible = paint_shapes(background, moved)
        if t == 0:  # the target's whole shape, before anything covers it
            y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
            t0 = moved[0]
            whole = int((shape_sdf(t0.shape, x, y, t0.center, t0.radius, t0.angle) <= 0).sum())
            if visible[0].sum() < config.first_unoccluded * whole:
                return None
        frames.append(image.transpose(2, 0, 1))  # (3, S, S)
        masks.append(visible)
    return Video(
        frames=torch.from_numpy(np.ascontiguousarray(np.stack(frames))),
        masks=torch.from_numpy(np.stack(masks)),
        shapes=[s.shape for s in placed],
        occlusion_frame=t_occ,
        first_unoccluded=float(masks[0][0].sum()) / max(whole, 1),
    )
