"""InstanceSegmenter: network maps are brought back to the image in the right place."""

from __future__ import annotations

import numpy as np
import pytest

from associative_embedding.modeling.loading import Predictor
from associative_embedding.tasks.segmentation.segmenter import InstanceSegmenter


def _masks(height, width):
    rows, columns = np.mgrid[:height, :width]
    disc = (rows - 40) ** 2 + (columns - 40) ** 2 < 25**2
    square_a = (rows >= 20) & (rows < 80) & (columns >= 75) & (columns < 100)
    square_b = (rows >= 20) & (rows < 80) & (columns >= 100) & (columns < 130)  # touches a
    return [disc, square_a, square_b], [0, 1, 1]


class _PerfectNetwork:
    """Renders the ground-truth masks into the stride-4 output maps of the padded input.

    The image's long side (its width) is resized to the padded input width: the tests use
    input sizes that are multiples of 64, so no padding is added along the width.
    """

    def __init__(self, height, width):
        self.masks, self.categories = _masks(height, width)
        self.calls = []

    def __call__(self, images):
        images = np.asarray(images)
        self.calls.append(images.shape)
        _, padded_h, padded_w, _ = images.shape
        height, width = self.masks[0].shape
        scale = padded_w / width
        out_h, out_w = padded_h // 4, padded_w // 4
        rows, columns = np.mgrid[:out_h, :out_w]
        # Output pixel centre -> input pixel centre -> image pixel (half-pixel conventions).
        image_x = (4 * columns + 2.0) / scale - 0.5
        image_y = (4 * rows + 2.0) / scale - 0.5
        inside = (image_x < width - 0.5) & (image_y < height - 0.5)
        x = np.clip(np.round(image_x).astype(int), 0, width - 1)
        y = np.clip(np.round(image_y).astype(int), 0, height - 1)
        detection = np.zeros((out_h, out_w, 2), np.float32)
        tags = np.zeros((out_h, out_w, 2), np.float32)
        for index, (mask, category) in enumerate(zip(self.masks, self.categories, strict=True)):
            hit = mask[y, x] & inside
            detection[hit, category] = 1.0
            tags[hit, category] = 2.0 * index
        return np.concatenate([detection, tags], axis=-1)[None, None]


def _best_ious(instances, height, width):
    masks, categories = _masks(height, width)
    best = []
    for mask, category in zip(masks, categories, strict=True):
        ious = [
            (inst.mask & mask).sum() / (inst.mask | mask).sum()
            for inst in instances if inst.category_index == category
        ]
        best.append(max(ious, default=0.0))
    return best


def test_perfect_maps_give_the_instances_at_image_resolution():
    height, width = 100, 140
    network = _PerfectNetwork(height, width)
    segmenter = InstanceSegmenter(
        Predictor(network), num_categories=2, tag_dim=1, input_size=128,
        decoder={"detection_threshold": 0.5, "min_instance_pixels": 20},
    )
    instances = segmenter(np.zeros((height, width, 3), np.uint8))
    assert network.calls == [(1, 128, 128, 3)]  # 91 x 128 resized, padded to 128 x 128
    assert len(instances) == 3
    assert min(_best_ious(instances, height, width)) > 0.85


def test_multiscale_merges_duplicates():
    height, width = 100, 140
    network = _PerfectNetwork(height, width)
    segmenter = InstanceSegmenter(
        Predictor(network), num_categories=2, tag_dim=1, input_size=128, scales=(1.0, 1.5),
        decoder={"detection_threshold": 0.5, "min_instance_pixels": 20},
    )
    instances = segmenter(np.zeros((height, width, 3), np.uint8))
    assert [shape[2] for shape in network.calls] == [128, 192]
    assert len(instances) == 3  # each object proposed at both scales, merged by NMS
    assert min(_best_ious(instances, height, width)) > 0.85


def test_bad_arguments():
    with pytest.raises(ValueError, match="scales"):
        InstanceSegmenter(Predictor(lambda x: x), 2, scales=())
    segmenter = InstanceSegmenter(Predictor(lambda x: x), 2)
    with pytest.raises(ValueError, match="image must be"):
        segmenter(np.zeros((10, 10), np.uint8))
