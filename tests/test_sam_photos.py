"""The mini-SAM on photos: letterboxing, masks back at the photo's size, labelme's polygons."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vitcourse import checkpoints
from vitcourse.data import sources
from vitcourse.models.sam.photos import PHOTO_PROMPTS, letterbox, read_voc_instances, segment_photos

NAME = "sam_mini_world"


def test_letterbox_pads_below_and_right_and_maps_pixels():
    image = torch.zeros(3, 30, 60)
    image[:, 10, 40] = 1.0
    small, scale = letterbox(image, 64)
    assert small.shape == (3, 64, 64) and scale == pytest.approx(64 / 60)
    # the padding repeats the last row, the photo's bright pixel lands where the scale says
    assert small[:, 60:, :].allclose(small[:, 59:60, :].expand(-1, 4, -1), atol=0.05)
    y, x = np.unravel_index(int(small[0].argmax()), (64, 64))
    assert abs(x - ((40 + 0.5) * scale - 0.5)) <= 1 and abs(y - ((10 + 0.5) * scale - 0.5)) <= 1


@pytest.mark.skipif(NAME not in checkpoints.available(), reason=f"{NAME} is not shipped")
def test_segment_photos_finds_world_shapes_in_a_larger_non_square_photo():
    # a world test image, 3x larger and with 48 more columns on the right, is a "photo":
    # a wrong scale, offset or crop would move the masks off their shapes
    from vitcourse.models.sam.training import SegmentationData, make_instances

    torch.set_num_threads(1)
    card = checkpoints.info(NAME)
    d = card["data"]
    data = SegmentationData.from_card(d)
    test = make_instances(data, split=d["test_split"], size=4)
    photos = []
    for image, masks in zip(test.images, test.masks):
        big = F.interpolate(image[None], scale_factor=3, mode="nearest")[0]
        big_masks = F.interpolate(masks[None].float(), scale_factor=3, mode="nearest")[0] > 0.5
        photo = torch.cat([big, big[:, :, -1:].expand(-1, -1, 48)], dim=2)
        photo_masks = torch.cat([big_masks, torch.zeros(len(masks), 192, 48, dtype=torch.bool)], dim=2)
        boxes = []
        for m in photo_masks:
            ys, xs = torch.nonzero(m, as_tuple=True)
            boxes.append(torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float())
        photos.append({"image": photo, "masks": photo_masks, "boxes": torch.stack(boxes),
                       "names": ["figura"] * len(masks)})  # fmt: skip
    rows = segment_photos(checkpoints.load(NAME), photos)
    assert len(rows) == len(PHOTO_PROMPTS) * test.num_instances
    assert all(r["mask"].shape == (192, 240) for r in rows)
    box_miou = np.mean([r["iou"] for r in rows if r["prompt"] == "box"])
    point_miou = np.mean([r["iou"] for r in rows if r["prompt"] == "one_point"])
    assert box_miou >= 0.6, box_miou
    assert point_miou >= 0.4, point_miou


@pytest.mark.skipif(not sources.is_available("labelme_examples"), reason="labelme's examples not fetched")
def test_read_voc_instances_fills_labelme_polygons():
    photos = read_voc_instances()
    assert [len(p["names"]) for p in photos] == [3, 3, 6]
    assert "person" in photos[0]["names"] and "bus" in photos[1]["names"]
    for photo in photos:
        _, H, W = photo["image"].shape
        assert photo["masks"].shape == (len(photo["names"]), H, W) and photo["masks"].dtype == torch.bool
        for mask, box in zip(photo["masks"], photo["boxes"]):
            x0, y0, x1, y1 = (int(v) for v in box)
            assert mask.any() and mask[y0 : y1 + 1, x0 : x1 + 1].sum() == mask.sum()
            assert mask[y0].any() and mask[y1].any() and mask[:, x0].any() and mask[:, x1].any()
    # the first person's polygon covers as many pixels as labelme's COCO export says (15 689)
    assert abs(int(photos[0]["masks"][0].sum()) - 15689) / 15689 < 0.05


def test_read_voc_instances_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="fetch"):
        read_voc_instances(tmp_path)


def test_nested_scene_puts_the_part_inside_the_whole():
    from vitcourse.models.sam.ambiguity import nested_scene

    scene = nested_scene()
    part, whole = scene["part"], scene["whole"]
    x, y = (int(v) for v in scene["point"])
    assert scene["image"].shape == (3, 64, 64) and 0 <= scene["image"].min() <= scene["image"].max() <= 1
    assert part[y, x] and whole[y, x] and not (part & ~whole).any() and whole.sum() > 4 * part.sum()
    # the two shapes are painted in their colours: yellow inside the part, blue in the ring
    assert scene["image"][:, y, x].tolist() == pytest.approx([1.0, 0.85, 0.1], abs=0.2)
    with pytest.raises(ValueError, match="inside"):
        nested_scene(outer=("circle", "blue", 0.1), inner=("square", "yellow", 0.3))


@pytest.mark.skipif(NAME not in checkpoints.available(), reason=f"{NAME} is not shipped")
def test_point_masks_ranks_three_masks_by_predicted_iou():
    from vitcourse.models.sam.ambiguity import nested_scene, point_masks
    from vitcourse.models.sam.training import normalize

    torch.set_num_threads(1)
    scene = nested_scene()
    refs = {"part": scene["part"], "whole": scene["whole"]}
    rows = point_masks(checkpoints.load(NAME), scene["image"], scene["point"], normalize, refs)
    assert sorted(r["output"] for r in rows) == [0, 1, 2]
    scores = [r["predicted_iou"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    for r in rows:
        assert r["mask"].shape == (64, 64) and r["area"] == int(r["mask"].sum())
        inter = (r["mask"] & scene["whole"]).sum().item()
        assert r["iou_whole"] == pytest.approx(inter / (r["mask"] | scene["whole"]).sum().item())
        assert 0 <= r["iou_part"] <= 1


def test_nest_shapes_appends_part_and_whole_and_hides_what_they_cover():
    from vitcourse.models.sam.training import SegmentationData, make_instances

    data = SegmentationData()
    plain = make_instances(data, split=2, size=6)
    again = make_instances(data, split=2, size=6, nested=0.0)
    assert torch.equal(plain.images, again.images)  # nested=0 leaves the world as it was
    nested = make_instances(data, split=2, size=6, nested=1.0)
    for image, masks, labels, before in zip(nested.images, nested.masks, nested.labels, plain.images):
        part, whole = masks[-2], masks[-1]
        assert len(labels) == len(masks) and part.any() and not (part & ~whole).any()
        assert whole.sum() > 2 * part.sum()  # the part is clearly smaller than the whole
        for other in masks[:-2]:  # what the pair covers is no longer visible below it
            assert not (other & whole).any() and other.sum() >= 4
        assert not torch.equal(image, before) and 0 <= image.min() <= image.max() <= 1
        # the part is painted on top: most of its pixels (all but the anti-aliased
        # border) have one colour, the small shape's
        inside = image[:, part]
        same = (inside - inside.median(dim=1, keepdim=True).values).abs().amax(0) < 0.05
        assert same.float().mean() > 0.5


class _ThreeMasks(torch.nn.Module):
    """A stand-in SAM whose three masks for image ``i`` are ``outputs[i]``, in that order."""

    def __init__(self, outputs, predicted):
        super().__init__()
        self.outputs, self.predicted, self.calls = outputs, predicted, 0

    def encode_image(self, images):
        return images

    def predict(self, embedding, points, labels, multimask_output=True):
        masks = torch.stack(self.outputs[self.calls]).float() * 2 - 1  # logits: +1 in, -1 out
        self.calls += 1
        return masks[None, None], torch.tensor(self.predicted)[None, None]

    def upscale(self, logits):
        return logits


def test_nested_metrics_on_known_masks():
    """Best IoU with part and whole, and ``both`` only when two outputs find each one."""
    from types import SimpleNamespace

    from vitcourse.models.sam.ambiguity import HIT_IOU, nested_metrics

    whole = torch.zeros(16, 16, dtype=torch.bool)
    whole[2:14, 2:14] = True  # 144 pixels
    part = torch.zeros_like(whole)
    part[6:10, 6:10] = True  # 16 pixels, inside the whole
    empty = torch.zeros_like(whole)
    other = torch.zeros_like(whole)
    other[14:, :4] = True  # another shape of the image, before the pair
    data = SimpleNamespace(images=[torch.zeros(3, 16, 16)] * 2, masks=[
        torch.stack([other, part, whole]), torch.stack([part, whole])])  # fmt: skip
    # image 0: part, whole and nothing; image 1: the whole three times
    sam = _ThreeMasks([(part, whole, empty), (whole, whole, whole)], [0.9, 0.8, 0.1])
    m = nested_metrics(sam, data, lambda x: x)
    assert sam.calls == 2 and m["images"] == 2
    assert m["part_iou"] == pytest.approx((1 + 16 / 144) / 2)
    assert m["whole_iou"] == pytest.approx(1.0)
    assert 16 / 144 < HIT_IOU and m["both"] == pytest.approx(0.5)  # only image 0 has both


@pytest.mark.skipif(NAME not in checkpoints.available(), reason=f"{NAME} is not shipped")
def test_nested_metrics_scores_the_best_of_three_against_part_and_whole():
    from vitcourse.models.sam.ambiguity import nested_metrics
    from vitcourse.models.sam.training import SegmentationData, make_instances, normalize

    torch.set_num_threads(1)
    data = make_instances(SegmentationData(), split=2, size=4, nested=1.0)
    m = nested_metrics(checkpoints.load(NAME), data, normalize)
    assert m["images"] == 4 and 0 <= m["part_iou"] <= 1 and 0 <= m["whole_iou"] <= 1
    assert m["both"] in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_segmentation_data_from_card_inverts_as_dict():
    import json

    from vitcourse.models.sam.training import SegmentationData

    data = SegmentationData(img_size=32, min_shapes=2, max_shapes=3, radius=(0.1, 0.2), seed=4, rotation=0.0)
    card = json.loads(json.dumps({**data.as_dict(), "test_split": 2}))  # radius a list, as stored
    assert SegmentationData.from_card(card) == data
