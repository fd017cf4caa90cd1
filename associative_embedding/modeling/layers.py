"""Building blocks of the stacked hourglass: the conv block and two small serialisable layers.

Everything here is a plain, registered Keras 3 layer or a function that wires existing Keras
layers into a functional graph, so a model built from them saves to `.keras` and reloads with
`safe_mode=True` (no Lambda layers).
"""

from __future__ import annotations

import math
from typing import Any

import keras

_PACKAGE = "associative_embedding"


def pytorch_kernel_initializer() -> keras.initializers.Initializer:
    """The initializer PyTorch's `nn.Conv2d` uses by default (and hence the official code).

    PyTorch draws conv kernels from kaiming_uniform(a=sqrt(5)), i.e. U(-b, b) with
    b = 1 / sqrt(fan_in); that is variance scaling with scale 1/3, fan_in, uniform.

    Returns:
        A fresh (unseeded) Keras initializer.
    """
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
    )


def pytorch_bias_initializer(fan_in: int) -> keras.initializers.Initializer:
    """PyTorch's default conv bias initializer U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Keras bias initializers only see the bias shape, so the fan-in is baked into the bound here.

    Args:
        fan_in: kernel_height * kernel_width * input_channels of the conv.

    Returns:
        A fresh (unseeded) Keras initializer.
    """
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(minval=-bound, maxval=bound)


def fresh_initializer(identifier: Any) -> keras.initializers.Initializer:
    """A new initializer instance equivalent to `identifier`, for one layer.

    An unseeded Keras 3 initializer instance draws its seed once at construction, so sharing
    one instance between layers would give every same-shaped kernel identical values. Cloning
    from the config gives each layer its own seed (a user-set integer seed stays as given).

    Args:
        identifier: initializer instance, name or config dict.

    Returns:
        A new initializer instance.
    """
    initializer = keras.initializers.get(identifier)
    return keras.initializers.deserialize(keras.initializers.serialize(initializer))


def conv_block(
    x: keras.KerasTensor,
    filters: int,
    *,
    kernel_size: int = 3,
    strides: int = 1,
    relu: bool = True,
    batch_norm: bool = False,
    kernel_initializer: Any = None,
    bias_initializer: Any = None,
    kernel_regularizer: Any = None,
    padding: str = "symmetric",
    dtype: Any = None,
    name: str,
) -> keras.KerasTensor:
    """Conv (+ BatchNorm) (+ ReLU), the official `Conv` module, wired into a functional graph.

    Padding is symmetric, (kernel_size - 1) // 2 on every side, like the official code
    (`nn.Conv2d(padding=(k - 1) // 2)`); Keras 'same' would pad the strided 7x7 stem conv
    asymmetrically (2 before, 3 after) and shift the whole output grid by half an input pixel.

    Args:
        x: (B, H, W, C_in) symbolic tensor.
        filters: output channels.
        kernel_size: square kernel size (odd).
        strides: stride in both axes.
        relu: apply ReLU at the end (False for the 1x1 prediction and merge convs).
        batch_norm: insert BatchNormalization after the conv; the conv then has no bias
            (it would be cancelled by the BN mean). Default False, as the official code.
        kernel_initializer: Keras initializer (or identifier); None = PyTorch's default.
        bias_initializer: Keras initializer (or identifier); None = PyTorch's default.
        kernel_regularizer: optional Keras regularizer for the kernel.
        padding: 'symmetric' ((kernel_size - 1) // 2 zeros on every side, PyTorch's
            `padding=(k - 1) // 2`) or 'same' (TensorFlow's 'SAME': for a strided conv the
            extra zero goes after, as in the TensorFlow 1 pose-ae-demo network). The two only
            differ for strided convs.
        dtype: layer dtype / dtype policy (None = global policy).
        name: prefix of the created layers' names.

    Returns:
        (B, ceil(H / strides), ceil(W / strides), filters) symbolic tensor.

    Raises:
        ValueError: for an unknown `padding`.
    """
    if padding not in ("symmetric", "same"):
        raise ValueError(f"padding must be 'symmetric' or 'same', got {padding!r}.")
    fan_in = kernel_size * kernel_size * x.shape[-1]
    pad_width = (kernel_size - 1) // 2
    if padding == "symmetric" and pad_width and strides > 1:
        x = keras.layers.ZeroPadding2D(pad_width, dtype=dtype, name=f"{name}_pad")(x)
        conv_padding = "valid"
    else:
        # For stride 1 'same' is symmetric for odd kernels and avoids a padding copy; for a
        # strided conv it is TensorFlow's asymmetric 'SAME', asked for explicitly.
        conv_padding = "same"
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=conv_padding,
        use_bias=not batch_norm,
        kernel_initializer=(
            pytorch_kernel_initializer()
            if kernel_initializer is None
            else fresh_initializer(kernel_initializer)
        ),
        bias_initializer=(
            pytorch_bias_initializer(fan_in)
            if bias_initializer is None
            else fresh_initializer(bias_initializer)
        ),
        kernel_regularizer=kernel_regularizer,
        dtype=dtype,
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        # PyTorch BatchNorm2d defaults (momentum 0.1 there = 0.9 here, eps 1e-5).
        x = keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, dtype=dtype, name=f"{name}_bn"
        )(x)
    if relu:
        x = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu")(x)
    return x


@keras.saving.register_keras_serializable(package=_PACKAGE)
class InputSizeCheck(keras.layers.Layer):
    """Identity layer that rejects images whose height or width is not a multiple of `multiple`.

    The hourglass halves the resolution `depth` times after the stride-4 stem and adds the
    upsampled result back to the skip branch, so any other size fails deep inside the graph
    with an unreadable shape error. The check runs whenever the size is statically known
    (eager calls, tf.function traces with concrete shapes); fully dynamic shapes pass through.
    """

    def __init__(self, multiple: int, **kwargs: Any) -> None:
        """Args:
        multiple: required divisor of height and width (64 for the default model).
        **kwargs: standard Keras layer arguments (name, dtype, ...).
        """
        super().__init__(**kwargs)
        if multiple < 1:
            raise ValueError(f"multiple must be >= 1, got {multiple}.")
        self.multiple = int(multiple)

    def check_shape(self, shape: tuple[int | None, ...]) -> None:
        """Raises ValueError when a known spatial size is not a multiple of `self.multiple`.

        Args:
            shape: (B, H, W, C) shape; None entries are unknown and skipped.
        """
        if len(shape) != 4:
            raise ValueError(f"{self.name}: expected images (B, H, W, C), got shape {shape}.")
        height, width = shape[1], shape[2]
        for axis_name, size in (("height", height), ("width", width)):
            if size is not None and size % self.multiple != 0:
                raise ValueError(
                    f"{self.name}: image {axis_name} {size} is not a multiple of "
                    f"{self.multiple} (input shape {tuple(shape)}); resize or pad the images "
                    f"(see data/transforms.eval_resize_affine)."
                )

    def call(self, images):
        self.check_shape(tuple(images.shape))
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"multiple": self.multiple})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StackPredictions(keras.layers.Layer):
    """Stacks per-stack predictions along a new axis 1: S x (B, h, w, C) -> (B, S, h, w, C).

    Created with dtype float32 by the model so the outputs stay float32 under mixed precision.
    """

    def call(self, predictions):
        return keras.ops.stack(list(predictions), axis=1)

    def compute_output_shape(self, input_shape):
        first = tuple(input_shape[0])
        return (first[0], len(input_shape), *first[1:])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LeadingChannels(keras.layers.Layer):
    """Keeps the first `count` channels: (B, H, W, C) -> (B, H, W, count).

    Used when a prediction conv has more channels than the model outputs (the released
    networks predict 68 channels, of which the merge conv reads all but only 34 are heatmaps
    and tags).
    """

    def __init__(self, count: int, **kwargs: Any) -> None:
        """Args:
        count: number of leading channels kept (>= 1).
        **kwargs: standard Keras layer arguments (name, dtype, ...).
        """
        super().__init__(**kwargs)
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}.")
        self.count = int(count)

    def call(self, features):
        return features[..., : self.count]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.count)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"count": self.count})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CoordinateChannels(keras.layers.Layer):
    """Appends the pixel's normalised position: (B, H, W, C) -> (B, H, W, C + 2) (CoordConv).

    Channel C is x and channel C + 1 is y, both at pixel centres and normalised to (-1, 1)
    over the map, so the same image content gets the same value at any input scale. A tag head
    that sees them can make a person's tag depend on where the person is - neighbours then
    start apart instead of having to be pushed apart from a random start.
    """

    def call(self, features):
        shape = keras.ops.shape(features)
        height, width = shape[1], shape[2]
        dtype = features.dtype
        xs = (keras.ops.cast(keras.ops.arange(width), dtype) + 0.5) / keras.ops.cast(width, dtype)
        ys = (keras.ops.cast(keras.ops.arange(height), dtype) + 0.5) / keras.ops.cast(
            height, dtype
        )
        xs = 2.0 * xs - 1.0
        ys = 2.0 * ys - 1.0
        grid = keras.ops.stack(
            [
                keras.ops.broadcast_to(xs[None, :], (height, width)),
                keras.ops.broadcast_to(ys[:, None], (height, width)),
            ],
            axis=-1,
        )
        grid = keras.ops.broadcast_to(grid[None], (shape[0], height, width, 2))
        return keras.ops.concatenate([features, grid], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (*input_shape[:-1], None if channels is None else channels + 2)
