"""Segmentation targets: detection unions, weights, sampled pixels; eager == Dataset.map."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.data.augment import AugmentConfig
from associative_embedding.data.instance_pipeline import (
    InstanceTargetConfig,
    InstanceTargetEncoder,
    build_instance_dataset,
)
from associative_embedding.data.instances import InstanceRecord, InstanceSegment


def _scene(size=64):
    """Two touching squares of category 0, a disc of category 1, a tiny square of category 0."""
    masks = np.zeros((4, size, size), np.uint8)
    masks[0, 8:32, 8:24] = 1
    masks[1, 8:32, 24:40] = 1  # shares the boundary x = 24 with the first square
    cv2.circle(masks[2], (48, 48), 10, 1, -1)
    masks[3, 49:52, 8:11] = 1
    categories = [0, 0, 1, 0]
    image = np.full((size, size, 3), 40, np.uint8)
    for mask, colour in zip(masks, [(200, 0, 0), (200, 10, 0), (0, 200, 0), (0, 0, 200)],
                            strict=True):
        image[mask > 0] = colour
    return image, masks, categories


def _record(tmp_path, ignore=None):
    image, masks, categories = _scene()
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), image[..., ::-1])
    segments = [InstanceSegment.from_mask(m, c, i) for i, (m, c) in
                enumerate(zip(masks, categories, strict=True))]
    ignore_rle = None
    if ignore is not None:
        from associative_embedding.data.instances import encode_mask
        ignore_rle = encode_mask(ignore)
    return InstanceRecord(7, str(path), 64, 64, segments, ignore_rle, "test"), masks


def _first(record, **config_overrides):
    target_config = InstanceTargetConfig(num_categories=2, max_instances=6,
                                         pixels_per_instance=8, **config_overrides)
    dataset = build_instance_dataset(
        [record], training=False, batch_size=1, target_config=target_config,
        augment_config=AugmentConfig(input_size=64), include_metadata=True,
    )
    return {k: v.numpy()[0] for k, v in next(iter(dataset)).items()}


def test_identity_targets(tmp_path):
    record, masks = _record(tmp_path)
    batch = _first(record)
    assert batch["image"].shape == (64, 64, 3)
    assert batch["detection_target"].shape == (16, 16, 2)
    union0 = np.maximum.reduce([masks[0], masks[1], masks[3]]).astype(np.float32)
    expected0 = union0.reshape(16, 4, 16, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(batch["detection_target"][..., 0], expected0, atol=1e-6)
    np.testing.assert_allclose(batch["detection_weight"], 1.0)
    assert batch["image_id"] == 7
    # Valid instances first (larger first), padded with category -1.
    valid = batch["instance_valid"].astype(bool)
    assert valid.sum() == 4
    assert list(batch["instance_category"][4:]) == [-1, -1]
    # Every sampled pixel lies in an instance of the row's category at output resolution.
    labels_out = np.zeros((16, 16), np.int32)
    for index, mask in enumerate(masks):
        labels_out[mask[1::4, 1::4] > 0] = index + 1  # nearest: output centre = 4x + 1.5
    for row in np.flatnonzero(valid):
        labels = labels_out.reshape(-1)[batch["instance_pixels"][row]]
        assert len(set(labels.tolist())) == 1 and labels[0] > 0


def test_touching_instances_get_separate_samples(tmp_path):
    record, _ = _record(tmp_path)
    batch = _first(record)
    rows = [r for r in range(6) if batch["instance_valid"][r] and
            batch["instance_category"][r] == 0]
    columns = [set((batch["instance_pixels"][r] % 16).tolist()) for r in rows]
    left = [c for c in columns if max(c) < 6]
    right = [c for c in columns if min(c) >= 6 and max(c) < 10]
    assert left and right


def test_size_range_and_ignore(tmp_path):
    ignore = np.zeros((64, 64), np.uint8)
    ignore[:, 56:] = 1
    record, masks = _record(tmp_path, ignore=ignore)
    batch = _first(record, min_instance_size=4.0)  # the 3x3 square (size 3) is unsupervised
    assert batch["instance_valid"].sum() == 3
    assert np.all(batch["detection_weight"][:, 14:] == 0)
    assert batch["detection_weight"][12, 2, 0] == 0  # tiny square's output pixel (50/4, 8/4)
    assert batch["detection_weight"][12, 2, 1] == 1  # other category still supervised


def test_eager_equals_dataset_map(tmp_path):
    image, masks, categories = _scene()
    label_map = np.zeros((64, 64), np.int32)
    for index, mask in enumerate(masks):
        label_map[mask > 0] = index + 1
    encoder = InstanceTargetEncoder(
        InstanceTargetConfig(num_categories=2, max_instances=5, pixels_per_instance=4),
        AugmentConfig(input_size=64),
    )
    args = (image, label_map, np.asarray(categories, np.int32), np.zeros((64, 64), np.uint8),
            tf.constant([3, 4], tf.int64))
    eager = encoder(*args)
    mapped = next(iter(tf.data.Dataset.from_tensors(args).map(encoder)))
    for key in eager:
        np.testing.assert_allclose(eager[key], mapped[key], atol=1e-6, err_msg=key)


def test_training_dataset_batches(tmp_path):
    record, _ = _record(tmp_path)
    dataset = build_instance_dataset(
        [record] * 3, training=True, batch_size=2, seed=1,
        target_config=InstanceTargetConfig(num_categories=2, max_instances=4),
        augment_config=AugmentConfig(input_size=64),
    )
    batch = next(iter(dataset))
    assert batch["instance_pixels"].shape == (2, 4, 16)
    assert batch["detection_target"].shape == (2, 16, 16, 2)
    with pytest.raises(ValueError, match="no records"):
        build_instance_dataset([], training=True, batch_size=1,
                               target_config=InstanceTargetConfig(num_categories=1))
