"""Tests of the instance decoder (codec/instance_decode.py): maps -> instance masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from associative_embedding.codec.instance_decode import (
    DecodedInstance,
    decode_instances,
    merge_scales,
    resize_instance_maps,
)

HEIGHT = WIDTH = 128
NUM_CATEGORIES = 3


def _scene() -> list[tuple[int, np.ndarray, tuple[float, ...]]]:
    """Ground-truth instances (category, (H, W) bool mask, 2-D tag) of a 128x128 image.

    Category 0: two rectangles sharing the column-60 boundary (one object each side) and a
    third separate one. Category 1: a disk (same tag as a category-0 object: categories are
    decoded independently). Category 2: a square cut along its diagonal into two touching
    triangles. The touching pairs differ in BOTH tag dimensions; ``_scene_2d_only`` gives tags
    whose first dimension is equal for the touching pairs.
    """
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]

    def rectangle(top: int, bottom: int, left: int, right: int) -> np.ndarray:
        return (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)

    square = rectangle(60, 120, 60, 120)
    lower_triangle = square & (rows - 60 > cols - 60)
    return [
        (0, rectangle(10, 50, 10, 60), (1.0, 0.0)),
        (0, rectangle(10, 50, 60, 110), (2.0, 1.0)),
        (0, rectangle(70, 120, 10, 50), (-1.0, -1.0)),
        (1, (rows - 90) ** 2 + (cols - 90) ** 2 < 25**2, (1.0, 0.0)),
        (2, lower_triangle, (0.0, 0.0)),
        (2, square & ~lower_triangle, (1.5, -1.0)),
    ]


def _render(
    instances, tag_dim: int, background_tags: str = "zero"
) -> tuple[np.ndarray, np.ndarray]:
    """Perfect maps: detection = union of each category's masks, tag = per-instance constant.

    background_tags: "zero", or "nearest" (every background pixel gets the tag of the nearest
    instance pixel of its category, as a network's smooth tag field would).
    """
    detection = np.zeros((HEIGHT, WIDTH, NUM_CATEGORIES), np.float32)
    tags = np.zeros((HEIGHT, WIDTH, NUM_CATEGORIES, tag_dim), np.float32)
    for category, mask, tag in instances:
        detection[mask, category] = 1.0
        tags[mask, category] = tag[:tag_dim]
    if background_tags == "nearest":
        for category in range(NUM_CATEGORIES):
            foreground = detection[:, :, category] > 0
            _, (near_rows, near_cols) = ndimage.distance_transform_edt(
                ~foreground, return_indices=True
            )
            tags[:, :, category] = tags[near_rows, near_cols, category]
    return detection, tags


def _iou(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.count_nonzero(first & second) / max(np.count_nonzero(first | second), 1))


def _assert_matches(decoded: list[DecodedInstance], instances, min_iou: float) -> None:
    """One decoded instance per ground-truth one, same category, IoU >= min_iou."""
    assert len(decoded) == len(instances), [(d.category_index, d.area) for d in decoded]
    unused = list(range(len(decoded)))
    for category, mask, _ in instances:
        candidates = [i for i in unused if decoded[i].category_index == category]
        assert candidates, f"no decoded instance left for category {category}"
        best = max(candidates, key=lambda i: _iou(decoded[i].mask, mask))
        assert _iou(decoded[best].mask, mask) >= min_iou, (category, _iou(decoded[best].mask, mask))
        unused.remove(best)


@pytest.mark.parametrize(
    ("tag_dim", "method"), [(1, "histogram"), (1, "density"), (2, "density"), (2, "auto")]
)
def test_perfect_maps_decode_to_the_instance_masks(tag_dim, method):
    instances = _scene()
    detection, tags = _render(instances, tag_dim)
    decoded = decode_instances(detection, tags, method=method)
    _assert_matches(decoded, instances, min_iou=0.99)
    for instance in decoded:
        assert instance.mask.shape == (HEIGHT, WIDTH) and instance.mask.dtype == bool
        assert instance.score == pytest.approx(1.0)  # detection 1, all tags on the identifier
    # The touching pair of category 0 is split exactly at its shared boundary.
    left = next(d for d in decoded if d.category_index == 0 and d.mask[30, 59])
    right = next(d for d in decoded if d.category_index == 0 and d.mask[30, 60])
    assert left is not right
    np.testing.assert_array_equal(left.mask, instances[0][1])
    np.testing.assert_array_equal(right.mask, instances[1][1])


@pytest.mark.parametrize(
    ("tag_dim", "method"), [(1, "histogram"), (1, "density"), (2, "density")]
)
def test_noisy_tags_decode_to_the_instance_masks(tag_dim, method):
    instances = _scene()
    detection, tags = _render(instances, tag_dim)
    rng = np.random.default_rng(7)
    tags = tags + rng.normal(0.0, 0.1, tags.shape).astype(np.float32)
    decoded = decode_instances(detection, tags, method=method)
    _assert_matches(decoded, instances, min_iou=0.99)
    # Score = fraction of tags within b/2 = 0.25 = 2.5 sigma of the identifier:
    # P(|N(0, 1)| < 2.5) = 0.988 for D = 1, P(chi2_2 < 6.25) = 1 - exp(-3.125) = 0.956 for D = 2.
    expected = 0.9876 if tag_dim == 1 else 1.0 - np.exp(-3.125)
    for instance in decoded:
        assert instance.score == pytest.approx(expected, abs=0.015)


def test_two_dimensional_tags_separate_instances_that_share_one_dimension():
    # Touching instances of category 0 get the same first tag dimension: only D = 2 splits them.
    instances = _scene()
    same_first = [(c, m, (1.0, t[1])) for c, m, t in instances]
    detection, tags = _render(same_first, 2)
    _assert_matches(decode_instances(detection, tags), same_first, min_iou=0.99)
    # The first dimension alone cannot: each category collapses to one instance.
    one_dim = decode_instances(detection, tags[..., :1])
    assert sorted(d.category_index for d in one_dim) == [0, 1, 2]


def test_histogram_and_density_methods_agree_on_one_dimensional_tags():
    instances = _scene()
    detection, tags = _render(instances, 1)
    tags = tags + np.random.default_rng(3).normal(0.0, 0.08, tags.shape).astype(np.float32)
    by_histogram = decode_instances(detection, tags, method="histogram")
    by_density = decode_instances(detection, tags, method="density")
    assert len(by_histogram) == len(by_density) == len(instances)
    for first in by_histogram:
        best = max(_iou(first.mask, second.mask) for second in by_density
                   if second.category_index == first.category_index)
        assert best >= 0.99


def test_histogram_method_needs_one_dimensional_tags():
    detection, tags = _render(_scene(), 2)
    with pytest.raises(ValueError, match="histogram"):
        decode_instances(detection, tags, method="histogram")


def test_background_only_maps_give_no_instances():
    detection = np.full((32, 40, 2), 0.2, np.float32)
    tags = np.random.default_rng(0).normal(size=(32, 40, 2, 1)).astype(np.float32)
    assert decode_instances(detection, tags) == []
    assert decode_instances(np.zeros((32, 40, 2)), np.zeros((32, 40, 2))) == []


def test_detection_threshold_is_strict_and_score_is_the_mean_detection():
    instances = _scene()[:2]
    detection, tags = _render(instances, 1)
    detection *= 0.8
    decoded = decode_instances(detection, tags, detection_threshold=0.5)
    assert [d.score for d in decoded] == pytest.approx([0.8, 0.8])
    assert decode_instances(detection, tags, detection_threshold=0.8) == []


def test_compactness_lowers_the_score_of_spread_out_tags():
    detection, tags = _render(_scene()[:2], 1)
    rng = np.random.default_rng(1)
    # The right-hand object's tags spread uniformly over [1.5, 2.5]: only half lie within
    # b/2 = 0.25 of its identifier.
    right = _scene()[1][1]
    tags[right, 0, 0] = rng.uniform(1.5, 2.5, np.count_nonzero(right))
    decoded = decode_instances(detection, tags)
    by_side = {bool(d.mask[30, 80]): d for d in decoded}
    assert by_side[False].score == pytest.approx(1.0)
    assert 0.3 < by_side[True].score < 0.7
    plain = decode_instances(detection, tags, compactness_score=False)
    assert [d.score for d in plain] == pytest.approx([1.0, 1.0])


def test_min_instance_pixels_drops_small_instances():
    detection = np.zeros((40, 40, 1), np.float32)
    tags = np.zeros((40, 40, 1, 1), np.float32)
    detection[2:22, 2:22, 0] = 1.0  # 400 pixels, tag 0
    detection[30:32, 30:33, 0] = 1.0  # 6 pixels, tag 3
    tags[30:32, 30:33, 0, 0] = 3.0
    options = {"min_peak_pixels": 1, "min_peak_fraction": 0.0}
    kept = decode_instances(detection, tags, min_instance_pixels=6, **options)
    assert sorted(d.area for d in kept) == [6, 400]
    dropped = decode_instances(detection, tags, min_instance_pixels=7, **options)
    assert [d.area for d in dropped] == [400]
    # With the default peak-size rule the 6 pixels form no identifier: they join the big one.
    default = decode_instances(detection, tags)
    assert [d.area for d in default] == [406]


def test_max_tag_distance_leaves_far_pixels_unassigned():
    detection = np.zeros((30, 30, 1), np.float32)
    tags = np.zeros((30, 30, 1, 1), np.float32)
    detection[5:25, 5:25, 0] = 1.0
    tags[5:7, 5:25, 0, 0] = 5.0  # 40 outlier tags
    # min_peak_pixels=100 denies the 40 outliers an identifier of their own, so they either
    # join the one instance (no distance limit) or stay unassigned.
    options = {"min_peak_pixels": 100}
    assert [d.area for d in decode_instances(detection, tags, **options)] == [400]
    near = decode_instances(detection, tags, max_tag_distance=1.0, **options)
    assert [d.area for d in near] == [360]
    assert not near[0].mask[5:7].any()


def test_max_instances_keeps_the_densest():
    detection = np.zeros((10, 60, 1), np.float32)
    tags = np.zeros((10, 60, 1, 1), np.float32)
    detection[:, :, 0] = 1.0
    for index, (start, stop) in enumerate([(0, 10), (10, 40), (40, 60)]):
        tags[:, start:stop, 0, 0] = float(index)
    decoded = decode_instances(detection, tags, max_instances=2)
    # The 100-pixel object has no identifier: its pixels join the nearest one (tag 1).
    assert sorted(d.area for d in decoded) == [200, 400]


def test_decoding_is_deterministic():
    instances = _scene()
    detection, tags = _render(instances, 2)
    tags = tags + np.random.default_rng(5).normal(0.0, 0.15, tags.shape).astype(np.float32)
    for options in ({}, {"density_samples": 200}):
        first = decode_instances(detection, tags, **options)
        second = decode_instances(detection.copy(), tags.copy(), **options)
        assert [(d.category_index, d.score) for d in first] == [
            (d.category_index, d.score) for d in second
        ]
        for one, two in zip(first, second, strict=True):
            np.testing.assert_array_equal(one.mask, two.mask)
    # Scores come out sorted, descending.
    scores = [d.score for d in first]
    assert scores == sorted(scores, reverse=True)


def test_subsampled_density_still_finds_every_instance():
    instances = _scene()
    detection, tags = _render(instances, 2)
    tags = tags + np.random.default_rng(9).normal(0.0, 0.1, tags.shape).astype(np.float32)
    decoded = decode_instances(detection, tags, density_samples=300)
    _assert_matches(decoded, instances, min_iou=0.99)


def test_large_tag_offsets_do_not_change_the_result():
    # Identifiers work on tag differences: shifting every tag by 1000 changes nothing.
    instances = _scene()
    detection, tags = _render(instances, 2)
    tags = tags + np.random.default_rng(2).normal(0.0, 0.1, tags.shape).astype(np.float32)
    shifted = decode_instances(detection, tags + 1000.0)
    _assert_matches(shifted, instances, min_iou=0.99)


def test_maps_resized_down_and_up_keep_the_boundaries():
    # Network maps are 4x smaller than the image: downsample the perfect maps 4x and bring
    # them back with resize_instance_maps. Background tags follow the nearest instance (a
    # network's tag field is smooth; it is not trained to any value on the background).
    instances = _scene()
    for tag_dim in (1, 2):
        detection, tags = _render(instances, tag_dim, background_tags="nearest")
        small_detection, small_tags = resize_instance_maps(
            detection, tags, (HEIGHT // 4, WIDTH // 4)
        )
        assert small_detection.shape == (32, 32, 3) and small_tags.shape == (32, 32, 3, tag_dim)
        big_detection, big_tags = resize_instance_maps(small_detection, small_tags, (HEIGHT, WIDTH))
        decoded = decode_instances(big_detection, big_tags)
        _assert_matches(decoded, instances, min_iou=0.9)
        # Identifiers sit on the instances' tags, not beside them (a flat box-smoothed
        # histogram would put a seed b/2 off and leave most pixels outside b/2).
        assert min(d.score for d in decoded) > 0.8


def test_pixels_halfway_between_identifiers_go_to_the_denser_one():
    detection = np.ones((1, 505, 1), np.float32)
    tags = np.zeros((1, 505, 1, 1), np.float32)
    tags[0, 300:500, 0, 0] = 2.0  # 300 pixels at 0, 200 at 2 ...
    tags[0, 500:, 0, 0] = 1.0  # ... and 5 exactly halfway
    decoded = decode_instances(detection, tags)
    assert sorted(d.area for d in decoded) == [200, 305]
    larger = max(decoded, key=lambda d: d.area)
    assert larger.mask[0, :300].all() and larger.mask[0, 500:].all()


def test_resize_instance_maps_uses_half_pixel_centres():
    detection = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    tags = np.stack([detection, -detection], axis=-1)  # (3, 4, 1, 2)
    big_detection, big_tags = resize_instance_maps(detection, tags, (6, 8))
    # Output pixel x samples input x_in = (x + 0.5) / 2 - 0.5 (borders replicate).
    expected_cols = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    expected_rows = np.clip((np.arange(6) + 0.5) / 2 - 0.5, 0, 2)
    expected = expected_rows[:, None] * 4 + expected_cols[None, :]
    np.testing.assert_allclose(big_detection[..., 0], expected, atol=1e-5)
    np.testing.assert_allclose(big_tags[..., 0, 1], -expected, atol=1e-5)
    # A 3-D (h, w, C) tag map comes back (H, W, C, 1).
    assert resize_instance_maps(detection, detection, (6, 8))[1].shape == (6, 8, 1, 1)


def _instance(category: int, box: tuple[int, int, int, int], score: float) -> DecodedInstance:
    mask = np.zeros((40, 40), bool)
    top, bottom, left, right = box
    mask[top:bottom, left:right] = True
    return DecodedInstance(category_index=category, mask=mask, score=score)


def test_merge_scales_keeps_the_best_duplicate_and_distinct_proposals():
    half = [_instance(0, (0, 20, 0, 20), 0.6), _instance(0, (25, 35, 25, 35), 0.5)]
    one = [_instance(0, (0, 20, 1, 21), 0.9), _instance(1, (0, 20, 0, 20), 0.4)]
    one_and_half = [_instance(0, (1, 21, 0, 20), 0.7), _instance(0, (0, 20, 20, 40), 0.3)]
    merged = merge_scales([half, one, one_and_half], iou_threshold=0.5)
    # The three overlapping category-0 squares (IoU ~0.9) keep the 0.9 one; the separate
    # category-0 squares and the category-1 square (other category) stay.
    assert [(d.category_index, d.score) for d in merged] == [
        (0, 0.9), (0, 0.5), (1, 0.4), (0, 0.3)
    ]
    assert merged[0] is one[0]
    # A higher threshold keeps all overlapping proposals.
    assert len(merge_scales([half, one, one_and_half], iou_threshold=0.95)) == 6
    assert merge_scales([[], []]) == []


def test_merge_scales_of_decoded_scales_removes_the_duplicates():
    instances = _scene()
    detection, tags = _render(instances, 1)
    decoded = decode_instances(detection, tags)
    noisy = decode_instances(
        detection * 0.9,
        tags + np.random.default_rng(4).normal(0.0, 0.05, tags.shape).astype(np.float32),
    )
    merged = merge_scales([noisy, decoded])
    _assert_matches(merged, instances, min_iou=0.99)
    assert all(d.score == pytest.approx(1.0) for d in merged)


def test_merge_scales_rejects_masks_of_different_sizes():
    small = DecodedInstance(0, np.ones((10, 10), bool), 0.5)
    with pytest.raises(ValueError, match="one shape"):
        merge_scales([[small], [_instance(0, (0, 5, 0, 5), 0.4)]])


@pytest.mark.parametrize(
    ("detection_shape", "tags_shape", "options", "message"),
    [
        ((8, 8), (8, 8, 1), {}, "detection must be"),
        ((8, 8, 2), (8, 8, 3, 1), {}, "tags must be"),
        ((8, 8, 2), (8, 8, 2, 1), {"bandwidth": 0.0}, "bandwidth"),
        ((8, 8, 2), (8, 8, 2, 1), {"method": "kmeans"}, "method"),
        ((8, 8, 2), (8, 8, 2, 1), {"min_peak_fraction": 1.5}, "min_peak_fraction"),
        ((8, 8, 2), (8, 8, 2, 1), {"max_instances": 0}, "max_instances"),
        ((8, 8, 2), (8, 8, 2, 1), {"max_tag_distance": -1.0}, "max_tag_distance"),
    ],
)
def test_invalid_input_raises(detection_shape, tags_shape, options, message):
    with pytest.raises(ValueError, match=message):
        decode_instances(np.zeros(detection_shape), np.zeros(tags_shape), **options)


def test_non_finite_maps_raise():
    tags = np.zeros((8, 8, 1, 1))
    tags[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        decode_instances(np.zeros((8, 8, 1)), tags)
