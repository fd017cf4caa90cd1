"""Tests of StackedHourglass's layout options (the authors' released networks)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from associative_embedding.modeling import StackedHourglass

SMALL = {"widths": (8, 12, 16), "stem_widths": (4, 6), "num_stacks": 2}


def _conv_kernel_shapes(model: keras.Model) -> dict[str, tuple[int, ...]]:
    return {
        layer.name: tuple(layer.kernel.shape)
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D)
    }


def test_demo_layout_adds_stem_conv_and_1x1_head_conv():
    train = _conv_kernel_shapes(StackedHourglass(**SMALL))
    demo = _conv_kernel_shapes(StackedHourglass(layout="pose_ae_demo", **SMALL))
    assert set(demo) - set(train) == {"stem3b_conv"}
    assert demo["stem3b_conv"] == (3, 3, 6, 6)
    assert train["stack0_feat2_conv"] == (3, 3, 8, 8)
    assert demo["stack1_feat2_conv"] == (1, 1, 8, 8)
    assert demo["stack0_feat1_conv"] == (3, 3, 8, 8)


def test_demo_layout_pads_the_strided_stem_conv_like_tensorflow_same():
    demo = StackedHourglass(layout="pose_ae_demo", **SMALL)
    train = StackedHourglass(**SMALL)
    names = {layer.name for layer in demo.layers}
    assert "stem1_pad" not in names and "stem1_pad" in {layer.name for layer in train.layers}
    assert demo.get_layer("stem1_conv").padding == "same"
    # A one-hot input in the last row reaches the first output row only through asymmetric
    # (TensorFlow 'SAME': 2 zeros before, 3 after) padding windows: check against a direct conv.
    kernel = np.random.default_rng(0).normal(size=(7, 7, 3, 4)).astype(np.float32)
    images = np.random.default_rng(1).uniform(size=(1, 16, 16, 3)).astype(np.float32)
    padded = np.pad(images, ((0, 0), (2, 3), (2, 3), (0, 0)))
    expected = np.zeros((1, 8, 8, 4), np.float32)
    for i in range(8):
        for j in range(8):
            window = padded[0, 2 * i : 2 * i + 7, 2 * j : 2 * j + 7]
            expected[0, i, j] = np.tensordot(window, kernel, axes=3)
    conv = keras.layers.Conv2D(4, 7, strides=2, padding="same", use_bias=False)
    conv.build((None, 16, 16, 3))
    conv.kernel.assign(kernel)
    np.testing.assert_allclose(conv(images).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_extra_prediction_channels_feed_the_merge_but_not_the_outputs():
    model = StackedHourglass(num_joints=3, extra_prediction_channels=5, **SMALL)
    shapes = _conv_kernel_shapes(model)
    assert shapes["stack0_pred_conv"] == (1, 1, 8, 11)
    assert shapes["stack0_merge_pred_conv"] == (1, 1, 11, 8)
    images = np.random.default_rng(0).uniform(size=(1, 32, 48, 3)).astype(np.float32)
    outputs = model(images).numpy()
    assert outputs.shape == (1, 2, 8, 12, 6)
    # The extra channels change the second stack (through the merge) but are not outputs.
    pred = model.get_layer("stack0_pred_conv")
    bias = pred.bias.numpy()
    bias[6:] += 10.0
    pred.bias.assign(bias)
    changed = model(images).numpy()
    np.testing.assert_array_equal(changed[:, 0], outputs[:, 0])
    assert not np.allclose(changed[:, 1], outputs[:, 1])


@pytest.mark.parametrize("layout", ["pose_ae_train", "pose_ae_demo"])
def test_layout_options_survive_keras_save_and_safe_load(tmp_path, layout):
    model = StackedHourglass(
        layout=layout, num_joints=2, tag_dim=0, extra_prediction_channels=3, **SMALL
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert loaded.layout == layout and loaded.extra_prediction_channels == 3
    images = np.random.default_rng(0).uniform(size=(1, 16, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(images).numpy(), model(images).numpy())


def test_invalid_layout_options_are_rejected():
    with pytest.raises(ValueError, match="layout"):
        StackedHourglass(layout="pose_ae", **SMALL)
    with pytest.raises(ValueError, match="extra_prediction_channels"):
        StackedHourglass(extra_prediction_channels=-1, **SMALL)
