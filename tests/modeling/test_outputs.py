"""Tests of the output layout helper `split_outputs` (contract: channel K + k*D + d = tag k, d)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.modeling import split_outputs


def _layout(batch: int, stacks: int, h: int, w: int, num_joints: int, tag_dim: int):
    """Outputs whose values encode their meaning, plus the expected heatmaps and tags."""
    rng = np.random.default_rng(num_joints * 10 + tag_dim)
    heatmaps = rng.normal(size=(batch, stacks, h, w, num_joints)).astype(np.float32)
    tags = rng.normal(size=(batch, stacks, h, w, num_joints, tag_dim)).astype(np.float32)
    outputs = np.zeros((batch, stacks, h, w, num_joints * (1 + tag_dim)), np.float32)
    outputs[..., :num_joints] = heatmaps
    for joint in range(num_joints):
        for dim in range(tag_dim):
            outputs[..., num_joints + joint * tag_dim + dim] = tags[..., joint, dim]
    return outputs, heatmaps, tags


@pytest.mark.parametrize(("num_joints", "tag_dim"), [(17, 1), (4, 2), (3, 3)])
def test_split_values_and_shapes(num_joints, tag_dim):
    outputs, heatmaps, tags = _layout(2, 3, 4, 5, num_joints, tag_dim)
    got_heatmaps, got_tags = split_outputs(outputs, num_joints, tag_dim)
    assert got_heatmaps.shape == (2, 3, 4, 5, num_joints)
    assert got_tags.shape == (2, 3, 4, 5, num_joints, tag_dim)
    np.testing.assert_array_equal(got_heatmaps.numpy(), heatmaps)
    np.testing.assert_array_equal(got_tags.numpy(), tags)


def test_tag_dim_two_channel_mapping_by_hand():
    # K = 2, D = 2: channels [h0, h1, t0d0, t0d1, t1d0, t1d1].
    outputs = np.arange(6, dtype=np.float32).reshape(1, 1, 1, 1, 6)
    heatmaps, tags = split_outputs(outputs, 2, 2)
    np.testing.assert_array_equal(heatmaps.numpy().ravel(), [0, 1])
    np.testing.assert_array_equal(tags.numpy().reshape(2, 2), [[2, 3], [4, 5]])


def test_single_stack_without_stack_axis():
    outputs, heatmaps, tags = _layout(2, 1, 4, 4, 5, 2)
    got_heatmaps, got_tags = split_outputs(outputs[:, 0], 5, 2)
    assert got_heatmaps.shape == (2, 4, 4, 5)
    assert got_tags.shape == (2, 4, 4, 5, 2)
    np.testing.assert_array_equal(got_tags.numpy(), tags[:, 0])


def test_wrong_channel_count_raises():
    with pytest.raises(ValueError, match="expected num_joints"):
        split_outputs(np.zeros((1, 1, 2, 2, 33), np.float32), 17, 1)


def test_dynamic_shapes_in_tf_function_and_dataset_map():
    outputs, heatmaps, tags = _layout(2, 2, 4, 6, 3, 2)

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, None, 9), tf.float32)])
    def traced(x):
        got_heatmaps, got_tags = split_outputs(x, 3, 2)
        # Static channel axes survive the dynamic reshape.
        assert got_tags.shape[-2:] == (3, 2)
        return got_heatmaps, got_tags

    got_heatmaps, got_tags = traced(outputs)
    np.testing.assert_array_equal(got_heatmaps.numpy(), heatmaps)
    np.testing.assert_array_equal(got_tags.numpy(), tags)

    dataset = tf.data.Dataset.from_tensor_slices(outputs).map(lambda x: split_outputs(x, 3, 2))
    for index, (got_heatmaps, got_tags) in enumerate(dataset):
        np.testing.assert_array_equal(got_heatmaps.numpy(), heatmaps[index])
        np.testing.assert_array_equal(got_tags.numpy(), tags[index])
