"""The stacked hourglass network of Associative Embedding (official pose-ae-train layout).

    images (B, H, W, 3) in [0, 1]
      -> stem: conv7x7/2 (3->64), conv3 (64->128), maxpool 2, conv3 (128->128), conv3 (128->256)
      -> S stacks of: hourglass -> conv3 (256) -> conv3 (256) = feature -> 1x1 -> prediction
         (between stacks: x = x + 1x1(prediction) + 1x1(feature))
      -> outputs (B, S, H/4, W/4, K * (1 + D)) float32, every stack supervised.

The output layout (K heatmaps, then K * D joint-major tags) is documented in
`associative_embedding.modeling.outputs`; split it with `split_outputs`.

`layout='pose_ae_demo'` builds the authors' TensorFlow 1 release (princeton-vl/pose-ae-demo)
instead, so its weights can be loaded (`associative_embedding.conversion`):

    stem: conv7x7/2 with TensorFlow 'SAME' padding (3->64), conv3 (64->128), maxpool 2,
          conv3 (128->128), conv3 (128->128), conv3 (128->256)
    per stack: hourglass -> conv3 (256) -> conv1x1 (256) = feature -> 1x1 -> prediction

`output_stride=2` (not official) keeps the hourglasses at stride 4 and predicts every stack's
maps at stride 2, as HigherHRNet's deconvolution module does for small people:

    per stack: feature (H/4) -> nearest x2 -> concat stem2 (H/2, the stem's last stride-2
               features) -> conv3 (feature width) -> 1x1 -> prediction (H/2)
    (between stacks the prediction enters the merge average-pooled back to H/4)

It doubles the output resolution for about a fifth more compute at the widths of the embedded
default, where a whole network at stride 2 would cost four times as much.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from associative_embedding.modeling.layers import (
    CoordinateChannels,
    InputSizeCheck,
    LeadingChannels,
    StackPredictions,
    conv_block,
)

#: Official hourglass widths: 256 at the top level, +128 per level down (pose-ae-train).
DEFAULT_WIDTHS = (256, 384, 512, 640, 768)
#: Stem channels before the last stem conv (which outputs widths[0]).
DEFAULT_STEM_WIDTHS = (64, 128)
#: Stride of the stem (conv7x7/2 + maxpool 2), hence of the hourglasses and, by default, of the
#: output maps.
OUTPUT_STRIDE = 4
#: Output strides a network can be built with: 4 (official) or 2 (high-resolution heads).
OUTPUT_STRIDES = (4, 2)
#: Network layouts: the official pose-ae-train PyTorch network (default) and the TensorFlow 1
#: pose-ae-demo network (one more stem conv, 1x1 second head conv, TF 'SAME' stem padding).
LAYOUTS = ("pose_ae_train", "pose_ae_demo")


def hourglass_module(
    x: keras.KerasTensor,
    widths: Sequence[int],
    *,
    name: str,
    **block_kwargs: Any,
) -> keras.KerasTensor:
    """One recursive hourglass (official `Hourglass(n=len(widths) - 1, f=widths[0])`).

    At each level with width f = widths[0] and inner width nf = widths[1]:
    up1 = conv3(f->f); low1 = conv3(f->nf)(maxpool2(x)); low2 = next level, or conv3(nf->nf)
    at the innermost level; low3 = conv3(nf->f); out = up1 + nearest_upsample_x2(low3).

    Args:
        x: (B, H, W, widths[0]) symbolic tensor, H and W divisible by 2 ** (len(widths) - 1).
        widths: channel widths from this level down, at least two entries.
        name: prefix of the created layers' names.
        **block_kwargs: forwarded to `conv_block` (batch_norm, initializers, dtype, ...).

    Returns:
        (B, H, W, widths[0]) symbolic tensor.
    """
    width, inner_width = widths[0], widths[1]
    dtype = block_kwargs.get("dtype")
    up1 = conv_block(x, width, name=f"{name}_up1", **block_kwargs)
    low = keras.layers.MaxPooling2D(2, strides=2, dtype=dtype, name=f"{name}_pool")(x)
    low = conv_block(low, inner_width, name=f"{name}_low1", **block_kwargs)
    if len(widths) > 2:
        low = hourglass_module(low, widths[1:], name=f"{name}_inner", **block_kwargs)
    else:
        low = conv_block(low, inner_width, name=f"{name}_low2", **block_kwargs)
    low = conv_block(low, width, name=f"{name}_low3", **block_kwargs)
    up2 = keras.layers.UpSampling2D(2, interpolation="nearest", dtype=dtype, name=f"{name}_up2")(
        low
    )
    return keras.layers.Add(dtype=dtype, name=f"{name}_add")([up1, up2])


@keras.saving.register_keras_serializable(package="associative_embedding")
class StackedHourglass(keras.Model):
    """Stacked hourglass for Associative Embedding, a functional Keras model.

    Follows the official code (princeton-vl/pose-ae-train): plain conv + bias + ReLU blocks
    (BatchNorm optional), recursive hourglass of depth len(widths) - 1, intermediate supervision
    of every stack, PyTorch's default initialisation. With the defaults (4 stacks, COCO's 17
    joints, 1-D tags) it has 138.83 M parameters.

    Call: `model(images)` with images (B, H, W, 3) float32 RGB in [0, 1] (no mean/std),
    H and W multiples of `input_multiple` (64 by default) -> outputs
    (B, S, H / r, W / r, K * (1 + D)) float32 with r = `output_stride` (4 by default); channel
    k < K is the heatmap of joint k, channel K + k * D + d the tag of joint k in dimension d
    (see `split_outputs`).

    Attributes:
        num_stacks: S.
        num_joints: K.
        tag_dim: D.
        output_stride: 4, or 2 for high-resolution heads.
        output_channels: K * (1 + D).
        input_multiple: required divisor of H and W, 4 * 2 ** (len(widths) - 1).

    Example:
        >>> model = StackedHourglass(num_stacks=2, widths=(16, 16, 16), num_joints=17)
        >>> model(np.zeros((1, 64, 128, 3), np.float32)).shape
        TensorShape([1, 2, 16, 32, 34])
    """

    def __init__(
        self,
        num_stacks: int = 4,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        num_joints: int = 17,
        tag_dim: int = 1,
        batch_norm: bool = False,
        stem_widths: Sequence[int] = DEFAULT_STEM_WIDTHS,
        feature_width: int | None = None,
        input_shape: Sequence[int | None] = (None, None, 3),
        coordinate_channels: bool = False,
        layout: str = "pose_ae_train",
        extra_prediction_channels: int = 0,
        output_stride: int = OUTPUT_STRIDE,
        kernel_initializer: Any = None,
        bias_initializer: Any = None,
        kernel_regularizer: Any = None,
        name: str = "stacked_hourglass",
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        """Builds the functional graph.

        Args:
            num_stacks: number of hourglass stacks S (>= 1); all are supervised.
            widths: hourglass channel widths, top level first; the depth is len(widths) - 1
                (>= 1). widths[0] is also the stem output width. Official: 256..768 (+128).
            num_joints: K, heatmap (and tag) channels per person part.
            tag_dim: D, dimension of each joint's tag (>= 1); 0 builds a heatmap-only network
                (K channels), e.g. the single-person refinement model of the paper's Table 4.
            batch_norm: add BatchNorm after every 3x3 conv (mmpose style); default False.
            stem_widths: channels of the stem's conv7x7/2 and first conv3 (official (64, 128)).
            feature_width: channels of the two 3x3 head convs after each hourglass; None =
                widths[0] (official). The 1x1 merge conv maps it back to widths[0].
            input_shape: (H, W, 3) of one image; None for any size (H, W checked when known).
            coordinate_channels: append the normalised (x, y) of each output pixel
                (`CoordinateChannels`) to the input of each stack's head convs, so tags can
                vary with position (CoordConv). Not in the official network; default False.
            layout: 'pose_ae_train' (the official PyTorch network, default) or 'pose_ae_demo'
                (the authors' TensorFlow 1 demo network: a fourth 3x3 stem conv 'stem3b'
                after 'stem3', a 1x1 instead of a 3x3 second head conv 'feat2', and
                TensorFlow 'SAME' padding of the strided 7x7 stem conv). Used to run the
                released weights (`associative_embedding.conversion`).
            extra_prediction_channels: channels the prediction conv computes beyond the
                K * (1 + D) outputs; the merge conv reads all of them, the model outputs only
                the first K * (1 + D). The released networks predict 68 channels for 34
                outputs (34 extra). Default 0.
            output_stride: 4 (official: the maps at the hourglasses' resolution) or 2 (each
                stack's head upsamples its features x2, joins the stem's stride-2 features and
                predicts at H/2 x W/2; see the module docstring). Not with 'pose_ae_demo'.
            kernel_initializer: Keras initializer for all convs; None = PyTorch's default
                (U(+-1/sqrt(fan_in)), as the official code).
            bias_initializer: Keras initializer for all conv biases; None = PyTorch's default.
            kernel_regularizer: optional Keras regularizer applied to every conv kernel.
            name: model name.
            dtype: dtype policy of the layers (e.g. "mixed_float16"); outputs stay float32.
            **kwargs: forwarded to keras.Model (e.g. trainable).

        Raises:
            ValueError: on an invalid configuration or a static input size that is not a
                multiple of `input_multiple`.
        """
        widths = tuple(int(width) for width in widths)
        stem_widths = tuple(int(width) for width in stem_widths)
        input_shape = tuple(None if size is None else int(size) for size in input_shape)
        if num_stacks < 1:
            raise ValueError(f"num_stacks must be >= 1, got {num_stacks}.")
        if len(widths) < 2:
            raise ValueError(f"widths needs >= 2 entries (depth >= 1), got {widths}.")
        if len(stem_widths) != 2:
            raise ValueError(f"stem_widths must have 2 entries, got {stem_widths}.")
        if num_joints < 1 or tag_dim < 0:
            raise ValueError(
                f"num_joints must be >= 1 and tag_dim >= 0, got {num_joints}, {tag_dim}."
            )
        if min(widths + stem_widths) < 1:
            raise ValueError(f"widths must be positive, got {widths} and {stem_widths}.")
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (H, W, C), got {input_shape}.")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}.")
        if extra_prediction_channels < 0:
            raise ValueError(
                f"extra_prediction_channels must be >= 0, got {extra_prediction_channels}."
            )
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}.")
        demo_layout = layout == "pose_ae_demo"
        if demo_layout and output_stride != OUTPUT_STRIDE:
            raise ValueError("layout 'pose_ae_demo' has output_stride 4 only.")
        high_resolution = output_stride != OUTPUT_STRIDE
        depth = len(widths) - 1
        input_multiple = OUTPUT_STRIDE * 2**depth
        resolved_feature_width = widths[0] if feature_width is None else int(feature_width)
        output_channels = num_joints * (1 + tag_dim)
        block_kwargs = {
            "batch_norm": batch_norm,
            "kernel_initializer": kernel_initializer,
            "bias_initializer": bias_initializer,
            "kernel_regularizer": kernel_regularizer,
            "dtype": dtype,
        }
        head_kwargs = dict(block_kwargs, kernel_size=1, relu=False, batch_norm=False)

        # === Functional graph ===
        images = keras.Input(shape=input_shape, name="images")
        size_check = InputSizeCheck(input_multiple, dtype=dtype, name="input_size_check")
        size_check.check_shape((None, *input_shape))
        x = size_check(images)
        # Stem, stride 4 (official `pre`).
        x = conv_block(
            x,
            stem_widths[0],
            kernel_size=7,
            strides=2,
            padding="same" if demo_layout else "symmetric",
            name="stem1",
            **block_kwargs,
        )
        x = conv_block(x, stem_widths[1], name="stem2", **block_kwargs)
        stride2_features = x
        x = keras.layers.MaxPooling2D(2, strides=2, dtype=dtype, name="stem_pool")(x)
        x = conv_block(x, stem_widths[1], name="stem3", **block_kwargs)
        if demo_layout:
            x = conv_block(x, stem_widths[1], name="stem3b", **block_kwargs)
        x = conv_block(x, widths[0], name="stem4", **block_kwargs)

        predictions = []
        for stack in range(num_stacks):
            prefix = f"stack{stack}"
            feature = hourglass_module(x, widths, name=f"{prefix}_hg", **block_kwargs)
            if coordinate_channels:
                feature = CoordinateChannels(dtype=dtype, name=f"{prefix}_coords1")(feature)
            feature = conv_block(
                feature, resolved_feature_width, name=f"{prefix}_feat1", **block_kwargs
            )
            feature = conv_block(
                feature,
                resolved_feature_width,
                kernel_size=1 if demo_layout else 3,
                name=f"{prefix}_feat2",
                **block_kwargs,
            )
            if high_resolution:
                feature = keras.layers.UpSampling2D(
                    2, interpolation="nearest", dtype=dtype, name=f"{prefix}_up"
                )(feature)
                feature = keras.layers.Concatenate(dtype=dtype, name=f"{prefix}_skip")(
                    [feature, stride2_features]
                )
                feature = conv_block(
                    feature, resolved_feature_width, name=f"{prefix}_feat_hr", **block_kwargs
                )
            head_input = feature
            if coordinate_channels:
                head_input = CoordinateChannels(dtype=dtype, name=f"{prefix}_coords2")(feature)
            prediction = conv_block(
                head_input,
                output_channels + extra_prediction_channels,
                name=f"{prefix}_pred",
                **head_kwargs,
            )
            if extra_prediction_channels:
                predictions.append(
                    LeadingChannels(output_channels, dtype=dtype, name=f"{prefix}_outputs")(
                        prediction
                    )
                )
            else:
                predictions.append(prediction)
            if stack < num_stacks - 1:
                merge_inputs = (prediction, feature)
                if high_resolution:
                    merge_inputs = tuple(
                        keras.layers.AveragePooling2D(
                            2, dtype=dtype, name=f"{prefix}_merge_{kind}_pool"
                        )(tensor)
                        for kind, tensor in zip(("pred", "feat"), merge_inputs, strict=True)
                    )
                merged_prediction = conv_block(
                    merge_inputs[0], widths[0], name=f"{prefix}_merge_pred", **head_kwargs
                )
                merged_feature = conv_block(
                    merge_inputs[1], widths[0], name=f"{prefix}_merge_feat", **head_kwargs
                )
                x = keras.layers.Add(dtype=dtype, name=f"{prefix}_merge")(
                    [x, merged_prediction, merged_feature]
                )
        # float32 outputs whatever the compute dtype, so losses see float32 (contract 3).
        outputs = StackPredictions(dtype="float32", name="stacked_outputs")(predictions)
        super().__init__(inputs=images, outputs=outputs, name=name, **kwargs)

        # === Config ===
        self.num_stacks = int(num_stacks)
        self.widths = widths
        self.num_joints = int(num_joints)
        self.tag_dim = int(tag_dim)
        self.batch_norm = bool(batch_norm)
        self.stem_widths = stem_widths
        self.feature_width = None if feature_width is None else int(feature_width)
        self.image_shape = input_shape
        self.coordinate_channels = bool(coordinate_channels)
        self.layout = layout
        self.extra_prediction_channels = int(extra_prediction_channels)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.layer_dtype = dtype
        self.output_stride = int(output_stride)
        self.output_channels = output_channels
        self.input_multiple = input_multiple

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable); `from_config` rebuilds the model."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_stacks": self.num_stacks,
            "widths": list(self.widths),
            "num_joints": self.num_joints,
            "tag_dim": self.tag_dim,
            "batch_norm": self.batch_norm,
            "stem_widths": list(self.stem_widths),
            "feature_width": self.feature_width,
            "input_shape": list(self.image_shape),
            "coordinate_channels": self.coordinate_channels,
            "layout": self.layout,
            "extra_prediction_channels": self.extra_prediction_channels,
            "output_stride": self.output_stride,
            "kernel_initializer": _serialize_or_none(keras.initializers, self.kernel_initializer),
            "bias_initializer": _serialize_or_none(keras.initializers, self.bias_initializer),
            "kernel_regularizer": _serialize_or_none(keras.regularizers, self.kernel_regularizer),
            "dtype": _serialize_or_none(keras.dtype_policies, self.layer_dtype),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StackedHourglass:
        """Inverse of `get_config`."""
        config = dict(config)
        for key, module in (
            ("kernel_initializer", keras.initializers),
            ("bias_initializer", keras.initializers),
            ("kernel_regularizer", keras.regularizers),
            ("dtype", keras.dtype_policies),
        ):
            if isinstance(config.get(key), dict):
                config[key] = module.deserialize(config[key])
        return cls(**config)


def _serialize_or_none(module: Any, value: Any) -> Any:
    """Serialises a Keras object (initializer, regularizer, dtype policy); keeps None/strings."""
    if value is None or isinstance(value, str):
        return value
    return module.serialize(value)
