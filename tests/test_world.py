"""The generated image world: geometry, determinism, annotations that agree with the pixels."""

import numpy as np
import pytest
import torch

from vitcourse.data import shapes as shape_module
from vitcourse.data.backgrounds import BACKGROUNDS, COLORS, luminance, render_background, sample_background_colors
from vitcourse.data.captions import describe_shape, join_phrases, position_index, size_index
from vitcourse.data.shapes import SHAPE_NAMES, SHAPES, polygon_sdf, regular_polygon, shape_coverage
from vitcourse.data.text import ascii_fold, generate_text_line
from vitcourse.data.world import WorldConfig, generate, masks_to_boxes


def test_polygon_sdf_matches_box_sdf_for_a_square():
    y, x = np.mgrid[-2:2:41j, -2:2:41j]
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    np.testing.assert_allclose(polygon_sdf(x, y, square), shape_module.box_sdf(x, y, 1, 1), atol=1e-9)


def test_regular_polygon_sdf_sign_and_distance():
    hexagon = regular_polygon(6)
    centre = polygon_sdf(np.array([0.0]), np.array([0.0]), hexagon)
    assert centre[0] == pytest.approx(-np.cos(np.pi / 6))  # minus the apothem
    assert polygon_sdf(np.array([3.0]), np.array([0.0]), hexagon)[0] == pytest.approx(3.0 - np.cos(np.pi / 6))


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_every_shape_fits_the_unit_disk_and_is_not_a_disk(name):
    y, x = np.mgrid[-1.3:1.3:261j, -1.3:1.3:261j]
    inside = SHAPES[name].sdf(x, y) <= 0
    assert inside.any()
    assert np.hypot(x, y)[inside].max() <= 1.0  # so a shape of radius r stays in its disk
    area = inside.mean() * 2.6**2
    assert 0.25 < area < np.pi  # something, not everything


def test_shape_coverage_mask_is_coverage_at_least_half():
    coverage, mask = shape_coverage("star", (20, 24), (12.3, 9.7), 8.0, 0.4)
    assert coverage.shape == mask.shape == (20, 24)
    assert np.array_equal(mask, coverage >= 0.5)
    assert ((coverage > 0) & (coverage < 1)).any()  # anti-aliased edge


def test_unknown_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown shape 'hexagon'"):
        shape_coverage("hexagon", 8, (4, 4), 3)


@pytest.mark.parametrize("kind", BACKGROUNDS)
def test_backgrounds_are_deterministic_and_in_range(kind):
    colors = np.array([[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]], dtype=np.float32)
    first = render_background(kind, np.random.default_rng(3), (13, 17), colors)
    second = render_background(kind, np.random.default_rng(3), (13, 17), colors)
    assert first.shape == (13, 17, 3) and first.dtype == np.float32
    assert np.array_equal(first, second)
    assert 0.0 <= first.min() and first.max() <= 1.0


def test_background_colors_keep_their_brightness_away_from_shape_colors():
    avoid = [np.array(COLORS[name].rgb) for name in ("red", "yellow")]
    colors = sample_background_colors(np.random.default_rng(0), 50, avoid, min_contrast=0.3)
    assert np.abs(luminance(colors)[:, None] - luminance(np.array(avoid))[None]).min() >= 0.3
    crowded = sample_background_colors(np.random.default_rng(0), 1, [(0, 0, 0), (1, 1, 1)], min_contrast=0.9)
    assert np.allclose(crowded, 0.5)  # impossible: the middle grey, farthest from both


def test_same_seed_same_sample_different_seed_different_sample():
    config = WorldConfig(img_size=40, max_shapes=3, text_probability=0.5)
    a, b, c = generate((1, 2, 3), config), generate((1, 2, 3), config), generate((1, 2, 4), config)
    for field in ("image", "labels", "boxes", "masks"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert a.caption == b.caption and a.caption_en == b.caption_en
    assert not torch.equal(a.image, c.image)


@pytest.mark.parametrize("seed", range(25))
def test_annotations_agree_with_the_pixels(seed):
    config = WorldConfig(img_size=(48, 56), min_shapes=1, max_shapes=5)
    sample = generate(seed, config)
    K = len(sample.labels)
    assert sample.image.shape == (3, 48, 56) and sample.image.dtype == torch.float32
    assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0
    assert sample.boxes.shape == (K, 4) and sample.masks.shape == (K, 48, 56) and K >= 1
    assert sample.masks.flatten(1).any(dim=1).all()  # no empty mask
    assert not (sample.masks.sum(dim=0) > 1).any()  # visible masks don't overlap
    for mask, box in zip(sample.masks, sample.boxes):
        x0, y0, x1, y1 = box.int().tolist()
        assert 0 <= x0 < x1 <= 56 and 0 <= y0 < y1 <= 48
        inside = torch.zeros_like(mask)
        inside[y0:y1, x0:x1] = True
        assert not (mask & ~inside).any()  # the box contains the mask...
        assert mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()  # ...and is tight
        assert mask[y0:y1, x0].any() and mask[y0:y1, x1 - 1].any()
    for placed, label, mask in zip(sample.shapes, sample.labels, sample.masks):
        assert config.shapes[label] == placed.shape
        rgb = torch.tensor(placed.rgb).view(3, 1)
        painted = sample.image[:, mask]  # (3, pixels)
        assert (painted - rgb).abs().max(dim=0).values.min() < 0.02  # the shape's colour is in its mask


@pytest.mark.parametrize("seed", range(10))
def test_captions_name_colour_shape_size_and_place(seed):
    sample = generate(seed, WorldConfig(img_size=64, max_shapes=3))
    for placed in sample.shapes:
        kind, paint = SHAPES[placed.shape], COLORS[placed.color]
        adjective = paint.es_feminine if kind.feminine else paint.es_masculine
        assert f"{kind.name_es} {adjective}" in sample.caption
        assert f"{paint.name} {placed.shape}" in sample.caption_en
    assert sample.caption.count(" y ") <= 1 and sample.caption.startswith(("un ", "una "))


def test_caption_grammar():
    assert describe_shape("star", "red", 0, 0).es == "una estrella roja pequeña arriba a la izquierda"
    assert describe_shape("circle", "red", 2, 0).es == "un círculo rojo grande arriba a la izquierda"
    assert describe_shape("cross", "green", 1, 4).es == "una cruz verde mediana en el centro"
    assert describe_shape("circle", "red", 2, 8).en == "a large red circle at the bottom right"
    assert join_phrases(["a", "b", "c"], "y") == "a, b y c"
    assert join_phrases(["a"], "and") == "a"


def test_size_and_position_words():
    assert [size_index(r, 100) for r in (10, 16.9, 17, 24.9, 25, 40)] == [0, 0, 1, 1, 2, 2]
    assert position_index((5, 5), (30, 30)) == 0
    assert position_index((15, 15), (30, 30)) == 4
    assert position_index((29.9, 29.9), (30, 30)) == 8
    assert position_index((25, 5), (30, 60)) == 1  # (cx, cy) in an (H, W) = (30, 60) image


def test_forced_label_and_invalid_config():
    config = WorldConfig(img_size=32)
    assert [int(generate(i, config, label=i % 8).labels[0]) for i in range(16)] == [i % 8 for i in range(16)]
    with pytest.raises(ValueError, match="label must be in"):
        generate(0, config, label=8)
    with pytest.raises(ValueError, match="shapes must be a non-empty subset"):
        WorldConfig(shapes=("circle", "hexagon"))
    with pytest.raises(ValueError, match="raise radius"):
        WorldConfig(img_size=8, radius=(0.1, 0.3))
    with pytest.raises(ValueError, match="min_shapes"):
        WorldConfig(min_shapes=3, max_shapes=2)


def test_subset_of_classes_relabels_from_zero():
    config = WorldConfig(shapes=("ring", "star"))
    labels = {int(generate(i, config).labels[0]) for i in range(20)}
    assert labels == {0, 1}


def test_masks_to_boxes_is_exclusive_at_the_far_edge():
    masks = np.zeros((1, 6, 7), dtype=bool)
    masks[0, 2:4, 1:6] = True
    assert masks_to_boxes(masks).tolist() == [[1.0, 2.0, 6.0, 4.0]]


def test_a_word_is_written_where_no_shape_is():
    config = WorldConfig(img_size=96, max_shapes=2, text_probability=1.0, radius=(0.1, 0.15))
    samples = [generate(i, config) for i in range(6)]
    written = [s for s in samples if s.text]
    assert written, "with small shapes and a 96-pixel image some word must fit"
    for sample in written:
        assert f'"{sample.text}"' in sample.caption
        x0, y0, x1, y1 = sample.text_box.tolist()
        for box in sample.boxes.tolist():
            assert x1 <= box[0] or box[2] <= x0 or y1 <= box[1] or box[3] <= y0


def test_text_lines_are_deterministic_and_boxes_hold_ink():
    a, b = generate_text_line((0, 5)), generate_text_line((0, 5))
    assert torch.equal(a.image, b.image) and a.text == b.text == " ".join(a.words)
    assert a.image.shape == (3, 32, 128) and len(a.boxes) == len(a.words)
    for x0, y0, x1, y1 in a.boxes.int().tolist():
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 32
        patch = a.image[:, y0:y1, x0:x1]
        assert patch.std() > 0.1  # ink on a background, not a blank box


def test_pillow_font_folds_accents_so_image_and_text_agree():
    assert ascii_fold("visión año ñandú") == "vision ano nandu"
    sample = generate_text_line(3, words=["canción"], max_words=1, font="pillow")
    assert sample.text == "cancion"
