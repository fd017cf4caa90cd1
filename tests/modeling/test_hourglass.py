"""Tests of the stacked hourglass: shapes, configuration, serialisation, size, options."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.modeling import StackedHourglass, split_outputs

# Tiny but full-depth (4 levels, so inputs must be multiples of 64) configuration for speed.
TINY = {"widths": (8, 8, 12, 12, 16), "stem_widths": (4, 8), "feature_width": 8}


def _images(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(batch, height, width, 3)).astype(np.float32)


def _official_parameter_count(
    num_stacks: int, widths: tuple[int, ...], output_channels: int, stem=(64, 128)
) -> int:
    """Parameters of the official network, counted by hand, independently of Keras."""

    def conv(kernel: int, c_in: int, c_out: int) -> int:
        return kernel * kernel * c_in * c_out + c_out

    stem_count = (
        conv(7, 3, stem[0])
        + conv(3, stem[0], stem[1])
        + conv(3, stem[1], stem[1])
        + conv(3, stem[1], widths[0])
    )
    hourglass = 0
    for level in range(len(widths) - 1):
        f, nf = widths[level], widths[level + 1]
        hourglass += conv(3, f, f) + conv(3, f, nf) + conv(3, nf, f)  # up1, low1, low3
    hourglass += conv(3, widths[-1], widths[-1])  # innermost low2
    head = 2 * conv(3, widths[0], widths[0]) + conv(1, widths[0], output_channels)
    merge = conv(1, output_channels, widths[0]) + conv(1, widths[0], widths[0])
    return stem_count + num_stacks * (hourglass + head) + (num_stacks - 1) * merge


@pytest.mark.parametrize(
    ("num_stacks", "height", "width"), [(1, 64, 64), (2, 64, 128), (4, 128, 64)]
)
def test_output_shape_stacks_and_non_square(num_stacks, height, width):
    model = StackedHourglass(num_stacks=num_stacks, num_joints=17, tag_dim=1, **TINY)
    outputs = model(_images(2, height, width))
    assert outputs.shape == (2, num_stacks, height // 4, width // 4, 34)
    assert outputs.dtype == tf.float32
    assert np.all(np.isfinite(outputs.numpy()))
    # Intermediate supervision: every stack has its own (different) prediction.
    if num_stacks > 1:
        assert not np.allclose(outputs[:, 0], outputs[:, 1])
    assert (model.num_stacks, model.num_joints, model.tag_dim) == (num_stacks, 17, 1)
    assert model.output_stride == 4
    assert model.input_multiple == 64
    assert model.output_channels == 34


def test_static_input_shape_and_tag_dim_two():
    model = StackedHourglass(
        num_stacks=2, num_joints=5, tag_dim=2, input_shape=(64, 192, 3), **TINY
    )
    assert model.output_shape == (None, 2, 16, 48, 15)
    outputs = model(_images(1, 64, 192))
    heatmaps, tags = split_outputs(outputs, 5, 2)
    assert heatmaps.shape == (1, 2, 16, 48, 5)
    assert tags.shape == (1, 2, 16, 48, 5, 2)


def test_rejects_sizes_not_multiple_of_64():
    with pytest.raises(ValueError, match="height 96 is not a multiple of 64"):
        StackedHourglass(num_stacks=1, input_shape=(96, 64, 3), **TINY)
    model = StackedHourglass(num_stacks=1, **TINY)
    with pytest.raises(ValueError, match="width 80 is not a multiple of 64"):
        model(_images(1, 64, 80))
    # Inside a traced function the static shape is known at trace time: same clear error.
    with pytest.raises(ValueError, match="not a multiple of 64"):
        tf.function(model)(tf.zeros((1, 32, 64, 3)))


def test_shallower_hourglass_needs_smaller_multiple():
    model = StackedHourglass(num_stacks=1, widths=(8, 8), stem_widths=(4, 8))
    assert model.input_multiple == 8
    assert model(_images(1, 24, 40)).shape == (1, 1, 6, 10, 34)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_stacks": 2, "num_joints": 17, "tag_dim": 1},
        {
            "num_stacks": 3,
            "num_joints": 14,
            "tag_dim": 2,
            "batch_norm": True,
            "input_shape": (128, 64, 3),
            "kernel_initializer": "he_normal",
            "bias_initializer": keras.initializers.Constant(0.1),
            "kernel_regularizer": keras.regularizers.L2(1e-4),
            "name": "custom_hourglass",
            "dtype": "mixed_bfloat16",
        },
    ],
)
def test_get_config_round_trip(kwargs):
    model = StackedHourglass(**kwargs, **TINY)
    config = model.get_config()
    json.dumps(config)  # JSON-serialisable, as `.keras` needs.
    rebuilt = StackedHourglass.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.count_params() == model.count_params()
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    assert rebuilt.name == kwargs.get("name", "stacked_hourglass")


@pytest.mark.parametrize("batch_norm", [False, True])
def test_keras_save_load_reproduces_outputs(tmp_path, batch_norm):
    model = StackedHourglass(num_stacks=2, num_joints=3, tag_dim=2, batch_norm=batch_norm, **TINY)
    images = _images(2, 64, 128, seed=1)
    if batch_norm:
        # Move the moving statistics away from their initial values so loading them matters.
        model(images, training=True)
    expected = model(images, training=False).numpy()
    path = tmp_path / "hourglass.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, StackedHourglass)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded(images, training=False).numpy(), expected)


def test_default_parameter_count():
    model = StackedHourglass()
    count = model.count_params()
    assert 138.8e6 <= count <= 138.9e6, count
    assert count == _official_parameter_count(4, (256, 384, 512, 640, 768), 34)
    assert model.output_shape == (None, 4, None, None, 34)


def test_parameter_count_formula_other_configs():
    for num_stacks, num_joints, tag_dim in [(1, 16, 1), (3, 17, 2)]:
        model = StackedHourglass(
            num_stacks=num_stacks,
            num_joints=num_joints,
            tag_dim=tag_dim,
            widths=TINY["widths"],
            stem_widths=TINY["stem_widths"],
        )
        expected = _official_parameter_count(
            num_stacks, TINY["widths"], num_joints * (1 + tag_dim), stem=TINY["stem_widths"]
        )
        assert model.count_params() == expected


def test_architecture_is_plain_functional_without_lambda():
    model = StackedHourglass(num_stacks=2, **TINY)
    layer_types = {type(layer).__name__ for layer in model.layers}
    assert "Lambda" not in layer_types
    assert "BatchNormalization" not in layer_types
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    depth = len(TINY["widths"]) - 1
    # stem 4 + per stack (3 per level + innermost + 2 head + 1 prediction) + 2 merges.
    assert len(convs) == 4 + 2 * (3 * depth + 1 + 3) + 2
    assert all(conv.use_bias for conv in convs)
    upsampling = [layer for layer in model.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert len(upsampling) == 2 * depth
    assert all(layer.interpolation == "nearest" for layer in upsampling)
    # Only the 1x1 prediction and merge convs are linear; every 3x3/7x7 conv is followed by ReLU.
    relus = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    assert len(relus) == len([conv for conv in convs if conv.kernel_size != (1, 1)])


def test_batch_norm_option():
    plain = StackedHourglass(num_stacks=2, **TINY)
    model = StackedHourglass(num_stacks=2, batch_norm=True, **TINY)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    relus = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    assert len(norms) == len(relus) > 0
    # BN'ed convs drop the bias (BN's beta replaces it); 1x1 heads keep theirs.
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.use_bias == (layer.kernel_size == (1, 1))
    images = _images(2, 64, 64)
    train_out = model(images, training=True).numpy()
    eval_out = model(images, training=False).numpy()
    assert not np.allclose(train_out, eval_out)  # batch vs moving statistics
    assert len(model.non_trainable_weights) == 2 * len(norms)
    assert model.count_params() != plain.count_params()


def test_stem_padding_is_symmetric_like_official():
    """The 7x7/2 stem conv sees input pixels 2j-3..2j+3 (PyTorch padding=3), not Keras 'same'."""
    model = StackedHourglass(num_stacks=1, bias_initializer="zeros", **TINY)
    stem = keras.Model(model.input, model.get_layer("stem1_conv").output)
    impulse = np.zeros((1, 64, 64, 3), np.float32)
    impulse[0, 10, 20, :] = 1.0
    response = np.abs(stem(impulse).numpy()).sum(axis=-1)[0]
    rows, cols = np.nonzero(response)
    assert sorted(set(rows)) == [4, 5, 6]  # |2j - 10| <= 3
    assert sorted(set(cols)) == [9, 10, 11]  # |2j - 20| <= 3


def test_default_initialisation_matches_pytorch_and_layers_differ():
    model = StackedHourglass(num_stacks=2, **TINY)
    conv = model.get_layer("stem2_conv")
    bound = 1.0 / np.sqrt(3 * 3 * TINY["stem_widths"][0])
    kernel, bias = (weight.numpy() for weight in conv.weights)
    assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
    assert np.abs(kernel).max() > 0.8 * bound
    # A shared user initializer instance must not give same-shaped layers identical kernels.
    shared = StackedHourglass(
        num_stacks=2, kernel_initializer=keras.initializers.GlorotUniform(), **TINY
    )
    first = shared.get_layer("stack0_feat1_conv").kernel.numpy()
    second = shared.get_layer("stack1_feat1_conv").kernel.numpy()
    assert not np.array_equal(first, second)


def test_mixed_precision_outputs_float32():
    model = StackedHourglass(num_stacks=2, dtype="mixed_bfloat16", **TINY)
    assert model.get_layer("stem1_conv").compute_dtype == "bfloat16"
    outputs = model(_images(1, 64, 64))
    assert outputs.dtype == tf.float32


def test_trains_under_tf_function_and_xla():
    model = StackedHourglass(num_stacks=2, num_joints=2, **TINY)
    images = tf.constant(_images(2, 64, 64))
    target = tf.zeros((2, 2, 16, 16, 4))

    @tf.function(jit_compile=True)
    def gradients():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(images, training=True) - target) ** 2)
        return loss, tape.gradient(loss, model.trainable_variables)

    loss, grads = gradients()
    assert np.isfinite(loss.numpy())
    assert all(grad is not None and np.all(np.isfinite(grad.numpy())) for grad in grads)
    assert np.abs(grads[0].numpy()).sum() > 0  # the stem receives gradient


def test_heatmap_only_network_with_tag_dim_zero():
    model = StackedHourglass(num_stacks=1, num_joints=5, tag_dim=0, **TINY)
    outputs = model(np.zeros((1, 64, 64, 3), np.float32))
    assert outputs.shape == (1, 1, 16, 16, 5)
    heatmaps, tags = split_outputs(outputs, 5, 0)
    assert heatmaps.shape == (1, 1, 16, 16, 5) and tags.shape == (1, 1, 16, 16, 5, 0)
    with pytest.raises(ValueError, match="tag_dim >= 0"):
        StackedHourglass(num_stacks=1, num_joints=5, tag_dim=-1, **TINY)


def test_coordinate_channels_layer_values_eager_and_in_a_graph():
    from associative_embedding.modeling.layers import CoordinateChannels

    features = np.zeros((2, 4, 8, 3), np.float32)
    eager = CoordinateChannels()(features).numpy()
    assert eager.shape == (2, 4, 8, 5)
    np.testing.assert_allclose(eager[0, 0, :, 3], (np.arange(8) + 0.5) / 8 * 2 - 1, atol=1e-6)
    np.testing.assert_allclose(eager[1, :, 5, 4], (np.arange(4) + 0.5) / 4 * 2 - 1, atol=1e-6)
    np.testing.assert_array_equal(eager[..., :3], 0.0)
    # Unknown spatial sizes inside a traced function give the same values.
    traced = tf.function(
        CoordinateChannels(), input_signature=[tf.TensorSpec((None, None, None, 3))]
    )
    np.testing.assert_allclose(traced(features).numpy(), eager, atol=1e-6)


def test_coordinate_channels_option_feeds_the_heads(tmp_path):
    """The option adds (x, y) inputs to each stack's feat1 and pred convs; zeroing their
    kernel rows changes the outputs (they are used); the option round-trips through .keras."""
    kwargs = dict(num_stacks=2, num_joints=3, tag_dim=2, **TINY)
    plain = StackedHourglass(**kwargs)
    model = StackedHourglass(coordinate_channels=True, **kwargs)
    # Two extra input channels in each of the 2 stacks' feat1 (3x3) and pred (1x1) convs.
    extra = 2 * (2 * 9 * TINY["feature_width"] + 2 * 3 * (1 + 2))
    assert model.count_params() == plain.count_params() + extra
    images = _images(1, 128, 128)
    before = model(images, training=False).numpy()
    path = tmp_path / "coordinates.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.get_config()["coordinate_channels"] is True
    np.testing.assert_allclose(loaded(images, training=False).numpy(), before, atol=1e-6)
    for stack in range(2):
        for conv_name in (f"stack{stack}_feat1_conv", f"stack{stack}_pred_conv"):
            kernel = model.get_layer(conv_name).kernel
            values = kernel.numpy()
            values[:, :, -2:, :] = 0.0
            kernel.assign(values)
    assert np.abs(model(images, training=False).numpy() - before).max() > 1e-4


def test_output_stride_two_heads(tmp_path):
    """output_stride=2 predicts every stack at half the input size: each head adds one
    3x3 conv over the upsampled features joined with the stem's stride-2 features, the merges
    read average-pooled maps, the option round-trips through .keras, and the skip is used."""
    kwargs = dict(num_stacks=2, num_joints=3, tag_dim=2, **TINY)
    plain = StackedHourglass(**kwargs)
    model = StackedHourglass(output_stride=2, **kwargs)
    assert model.output_stride == 2 and model.input_multiple == plain.input_multiple == 64
    images = _images(2, 64, 128)
    outputs = model(images, training=False).numpy()
    assert outputs.shape == (2, 2, 32, 64, 9)
    assert plain(images, training=False).shape == (2, 2, 16, 32, 9)
    feature_width, stem_width = TINY["feature_width"], TINY["stem_widths"][1]
    extra = 2 * (9 * (feature_width + stem_width) * feature_width + feature_width)
    assert model.count_params() == plain.count_params() + extra
    path = tmp_path / "stride2.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.output_stride == 2
    np.testing.assert_allclose(loaded(images, training=False).numpy(), outputs, atol=1e-6)
    # The stride-2 stem features reach the heads: zeroing their kernel rows changes the maps.
    kernel = model.get_layer("stack1_feat_hr_conv").kernel
    values = kernel.numpy()
    values[:, :, feature_width:, :] = 0.0
    kernel.assign(values)
    changed = model(images, training=False).numpy()
    np.testing.assert_allclose(changed[:, 0], outputs[:, 0], atol=1e-6)
    assert np.abs(changed[:, 1] - outputs[:, 1]).max() > 1e-4


def test_output_stride_is_checked():
    with pytest.raises(ValueError, match="output_stride must be one of"):
        StackedHourglass(num_stacks=1, output_stride=8, **TINY)
    with pytest.raises(ValueError, match="pose_ae_demo"):
        StackedHourglass(num_stacks=1, output_stride=2, layout="pose_ae_demo", **TINY)
