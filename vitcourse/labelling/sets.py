"""What TP5 labels, and with which models, in each profile.

* ``smoke``: images of the generated world that neither shipped model saw (the split
  chapter 6 labels), with their reference masks as the "human" labels; the mini
  text-prompted DETR ``grounding_shapes`` and the mini SAM ``sam_mini_world``;
* ``full``: the test split of ``rishitdagli/cppe-5`` (medical personal protective
  equipment, 5 classes, boxes drawn by people), ``IDEA-Research/grounding-dino-tiny``
  and ``facebook/sam2.1-hiera-tiny``, on a GPU. CPPE-5 has boxes only, so its
  reference has no masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.remote import DATASET_REVISIONS

__all__ = ["CPPE5_ID", "CPPE5_REVISION", "LabellingSet", "labelling_models", "labelling_set"]

CPPE5_ID = "rishitdagli/cppe-5"
CPPE5_REVISION = DATASET_REVISIONS[CPPE5_ID]  # pinned with the other Hub data sets (vitcourse.data.remote)
CPPE5_CLASSES = ["Coverall", "Face_Shield", "Gloves", "Goggles", "Mask"]
CPPE5_PHRASES = ["coverall", "face shield", "gloves", "goggles", "mask"]  # Grounding DINO reads English
SAM2_ID = "facebook/sam2.1-hiera-tiny"


@dataclass
class LabellingSet:
    """Images to label and their reference ("human") labels.

    Attributes:
        images: ``(3, H, W)`` tensors in ``[0, 1]``.
        classes: class names (COCO categories ``1 … C``).
        phrases: the text prompt, one phrase per class.
        reference: per image, rows ``{"label", "box", "mask"}`` (``mask`` None when
            the set has boxes only).
        source: where the images come from, in Spanish.
    """

    images: list[torch.Tensor]
    classes: list[str]
    phrases: list[str]
    reference: list[list[dict]]
    source: str

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` of every image."""
        return [tuple(int(v) for v in image.shape[-2:]) for image in self.images]


def _world_set(size: int) -> LabellingSet:
    from ..data.shapes import SHAPE_NAMES, SHAPES
    from ..models.sam.training import SegmentationData, make_instances
    from .pipeline import reference_labels

    names = [SHAPES[s].name_es for s in SHAPE_NAMES]
    world = make_instances(SegmentationData(seed=1, radius=(0.12, 0.25), rotation=0.0), split=2, size=size)
    return LabellingSet(
        images=list(world.images),
        classes=names,
        phrases=names,
        reference=reference_labels(world.masks, world.labels),
        source=f"{size} imágenes de 64 × 64 del mundo generado que ningún modelo vio (máscaras de referencia)",
    )


def _cppe5_set(size: int | None, split: str = "test") -> LabellingSet:
    import numpy as np

    from ..data.remote import load_hub_dataset

    data = load_hub_dataset(CPPE5_ID, split=split, revision=CPPE5_REVISION)
    if size is not None:
        data = data.select(range(min(size, len(data))))
    images, reference = [], []
    for example in data:
        array = np.asarray(example["image"].convert("RGB"), dtype=np.float32) / 255
        images.append(torch.from_numpy(array).permute(2, 0, 1))
        objects = example["objects"]
        reference.append([
            {"label": int(c), "score": 1.0, "box": [x, y, x + w, y + h], "mask": None}
            for (x, y, w, h), c in zip(objects["bbox"], objects["category"])
        ])  # fmt: skip
    return LabellingSet(
        images=images,
        classes=list(CPPE5_CLASSES),
        phrases=list(CPPE5_PHRASES),
        reference=reference,
        source=f"{len(images)} fotos de {CPPE5_ID} ({split}), cajas dibujadas por personas",
    )


def labelling_set(profile: str = "auto", size: int | None = None) -> LabellingSet:
    """The images TP5 labels: the generated world (``smoke``) or CPPE-5's test split (``full``).

    Args:
        profile: ``"smoke"``, ``"full"`` or ``"auto"``.
        size: how many images (default: 24 in ``smoke``, the whole split in ``full``).
    """
    from ..runtime import resolve_profile

    if resolve_profile(profile) == "full":
        return _cppe5_set(size)
    return _world_set(size or 24)


def labelling_models(profile: str = "auto"):
    """``(detector, predictor)`` for :func:`~vitcourse.labelling.detector_outputs` and
    :func:`~vitcourse.labelling.masks_from_boxes`: the shipped mini models (``smoke``),
    or Grounding DINO and SAM 2 from the Hub (``full``)."""
    from ..detection import load_detector
    from ..runtime import resolve_profile
    from .steps import Sam2BoxPredictor, SamBoxPredictor

    profile = resolve_profile(profile)
    if profile == "full":
        from ..hub import load_pretrained, load_processor

        sam2 = load_pretrained(SAM2_ID, profile=profile)
        if torch.cuda.is_available():
            sam2 = sam2.cuda()
        detector = load_detector(profile)
        if torch.cuda.is_available():
            detector.model.cuda()
        return detector, Sam2BoxPredictor(sam2, load_processor(SAM2_ID, model=sam2, profile=profile))
    from .. import checkpoints
    from ..models.sam.training import normalize

    return load_detector(profile), SamBoxPredictor(checkpoints.load("sam_mini_world"), normalize)
