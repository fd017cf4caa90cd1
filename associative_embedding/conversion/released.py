"""Converts the authors' released weights into the project's `StackedHourglass`.

Three formats:

- 'pose_ae_train': the princeton-vl/pose-ae-train PyTorch checkpoint
  (`torch.save({'state_dict', 'optimizer', 'epoch'})`, keys `model.module.<...>` of
  `PoseNet(nstack=4, inp_dim=256, oup_dim=68)`), legacy or zip torch format, read by
  `torch_reader` (no PyTorch, no arbitrary unpickling). 68 prediction channels: 0-16
  heatmaps, 17-33 tags, 34-67 unused outputs that still feed the next stack.
- 'pose_ae_demo': the princeton-vl/pose-ae-demo TensorFlow 1 snapshot of
  `inference(img, 68)` under the variable scope 'my_model': layout 'pose_ae_demo'; heatmaps
  are channels 0-16 and tags the last 17 channels; input RGB in 0..255.
- 'pose_ae_demo_refine': the demo's single-person refinement network, `inference(img, 17)`
  saved the same way: heatmaps only (tag_dim 0).

The converted model takes the project's input (RGB in [0, 1]) and returns the project's
output layout: the demo's 0..255 scaling is folded into the first conv's kernel and the
prediction channels are permuted so the model's outputs come first (the merge conv's input
channels are permuted alike, so the network computes the same function).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from associative_embedding.modeling.hourglass import StackedHourglass

#: Accepted `--format` values.
FORMATS = ("pose_ae_train", "pose_ae_demo", "pose_ae_demo_refine")

_DEMO_INPUT_SCALE = 255.0


class ConversionError(ValueError):
    """The source does not match the expected network (names the offending tensor)."""


@dataclasses.dataclass
class Conversion:
    """A converted network.

    Attributes:
        model: the `StackedHourglass` with the released weights.
        format: one of `FORMATS`.
        assigned: path of every model variable, in assignment order (each exactly once).
    """

    model: StackedHourglass
    format: str
    assigned: list[str]


#: One conv's weights: kernel (kh, kw, in, out), bias (out,) and the source's name for it.
ConvWeights = tuple[np.ndarray, np.ndarray, str]


class _Source:
    """Named source tensors, each fetched at most once, with the ones never used reported."""

    def __init__(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        fetch: Callable[[str], np.ndarray],
        ignored: Callable[[str], bool],
    ) -> None:
        self.shapes = dict(shapes)
        self._fetch = fetch
        self._ignored = ignored
        self.used: set[str] = set()

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise ConversionError(f"tensor '{name}' is missing from the source")
        return tuple(self.shapes[name])

    def get(self, name: str) -> np.ndarray:
        shape = self.shape(name)
        if name in self.used:
            raise ConversionError(f"tensor '{name}' would be used twice")
        value = np.asarray(self._fetch(name))
        if tuple(value.shape) != shape:
            raise ConversionError(f"tensor '{name}' has shape {value.shape}, expected {shape}")
        if not np.issubdtype(value.dtype, np.floating):
            raise ConversionError(f"tensor '{name}' has dtype {value.dtype}, expected floats")
        self.used.add(name)
        return value.astype(np.float32)

    def check_all_used(self) -> None:
        unused = sorted(
            name for name in self.shapes if name not in self.used and not self._ignored(name)
        )
        if unused:
            shown = ", ".join(f"'{name}'" for name in unused[:5])
            more = f" and {len(unused) - 5} more" if len(unused) > 5 else ""
            raise ConversionError(
                f"the source has tensors this network does not use: {shown}{more} (another "
                "layout or format?)"
            )


# ------------------------------------------------------------------------ pose-ae-train


def _torch_source(path: str) -> tuple[_Source, str]:
    from associative_embedding.conversion.torch_reader import find_state_dict, load_torch_file

    state = find_state_dict(load_torch_file(path))
    stems = [name for name in state if name.endswith("pre.0.conv.weight")]
    if len(stems) != 1:
        raise ConversionError(
            "no PoseNet stem tensor '...pre.0.conv.weight' in the state dict (not a "
            "pose-ae-train checkpoint?)"
        )
    prefix = stems[0][: -len("pre.0.conv.weight")]
    shapes = {name: tensor.shape for name, tensor in state.items()}

    def fetch(name: str) -> np.ndarray:
        return state[name].numpy()

    # BatchNorm's bookkeeping counter is the only tensor a converted network may not need.
    source = _Source(shapes, fetch, ignored=lambda name: name.endswith("num_batches_tracked"))
    return source, prefix


def _torch_conv(source: _Source, module: str) -> ConvWeights:
    kernel = source.get(f"{module}.conv.weight")
    if kernel.ndim != 4:
        raise ConversionError(f"tensor '{module}.conv.weight' is not a conv kernel")
    bias = source.get(f"{module}.conv.bias")
    # PyTorch (out, in, kh, kw) -> Keras (kh, kw, in, out).
    return kernel.transpose(2, 3, 1, 0), bias, f"{module}.conv"


def _pose_ae_train_weights(
    source: _Source, prefix: str, num_joints: int
) -> tuple[dict[str, Any], dict[str, ConvWeights]]:
    """Model config and layer name -> (kernel, bias) of a PoseNet state dict."""
    if any(".bn." in name for name in source.shapes):
        raise ConversionError(
            "the checkpoint has BatchNorm tensors ('.bn.'): only the released bn=False PoseNet "
            "is supported"
        )
    p = prefix

    def out_channels(module: str) -> int:
        return source.shape(f"{p}{module}.conv.weight")[0]

    num_stacks = 0
    while f"{p}outs.{num_stacks}.conv.weight" in source.shapes:
        num_stacks += 1
    if num_stacks == 0:
        raise ConversionError(f"tensor '{p}outs.0.conv.weight' is missing from the source")
    widths = [out_channels("features.0.0.up1")]
    level = "features.0.0."
    while f"{p}{level}low2.up1.conv.weight" in source.shapes:
        widths.append(out_channels(level + "low1"))
        level += "low2."
    widths.append(out_channels(level + "low1"))
    depth = len(widths) - 1
    stem_widths = (out_channels("pre.0"), out_channels("pre.1"))
    if out_channels("pre.3") != stem_widths[1]:
        raise ConversionError(f"tensor '{p}pre.3.conv.weight' has an unexpected width")
    prediction_channels = out_channels("outs.0")
    output_channels = 2 * num_joints
    if prediction_channels < output_channels:
        raise ConversionError(
            f"tensor '{p}outs.0.conv.weight' has {prediction_channels} output channels, fewer "
            f"than {num_joints} heatmaps + {num_joints} tags"
        )
    config = {
        "num_stacks": num_stacks,
        "widths": widths,
        "stem_widths": stem_widths,
        "feature_width": out_channels("features.0.1"),
        "num_joints": num_joints,
        "tag_dim": 1,
        "layout": "pose_ae_train",
        "extra_prediction_channels": prediction_channels - output_channels,
    }
    weights = {
        "stem1": _torch_conv(source, f"{p}pre.0"),
        "stem2": _torch_conv(source, f"{p}pre.1"),
        "stem3": _torch_conv(source, f"{p}pre.3"),
        "stem4": _torch_conv(source, f"{p}pre.4"),
    }
    for stack in range(num_stacks):
        module = f"{p}features.{stack}.0."
        name = f"stack{stack}_hg"
        for level in range(depth):
            for part in ("up1", "low1", "low3"):
                weights[f"{name}_{part}"] = _torch_conv(source, module + part)
            if level == depth - 1:
                weights[f"{name}_low2"] = _torch_conv(source, module + "low2")
            module += "low2."
            name += "_inner"
        weights[f"stack{stack}_feat1"] = _torch_conv(source, f"{p}features.{stack}.1")
        weights[f"stack{stack}_feat2"] = _torch_conv(source, f"{p}features.{stack}.2")
        # Heatmaps 0..K-1 and tags K..2K-1 already come first: no permutation.
        weights[f"stack{stack}_pred"] = _torch_conv(source, f"{p}outs.{stack}")
        if stack < num_stacks - 1:
            weights[f"stack{stack}_merge_feat"] = _torch_conv(
                source, f"{p}merge_features.{stack}.conv"
            )
            weights[f"stack{stack}_merge_pred"] = _torch_conv(
                source, f"{p}merge_preds.{stack}.conv"
            )
    return config, weights


# ------------------------------------------------------------------------ pose-ae-demo


def resolve_tf_checkpoint(path: str) -> str:
    """The checkpoint prefix of a pose-ae-demo model: `DIR/snapshot` for a directory.

    Args:
        path: a directory holding `snapshot.index` (or a `checkpoint` file) or a prefix.

    Returns:
        The prefix to give `tf.train.load_checkpoint`.

    Raises:
        FileNotFoundError: when no checkpoint is found there.
    """
    import tensorflow as tf

    if os.path.isdir(path):
        snapshot = os.path.join(path, "snapshot")
        if os.path.exists(snapshot + ".index") or os.path.isfile(snapshot):
            return snapshot
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        raise FileNotFoundError(f"no TensorFlow checkpoint ('snapshot.index') in {path}")
    if os.path.exists(path + ".index") or os.path.isfile(path):
        return path
    raise FileNotFoundError(f"no TensorFlow checkpoint at {path}")


def _tf_source(path: str) -> tuple[_Source, str]:
    import tensorflow as tf

    prefix_path = resolve_tf_checkpoint(path)
    try:
        reader = tf.train.load_checkpoint(prefix_path)
    except (tf.errors.OpError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConversionError(f"not a readable TensorFlow checkpoint: {message}") from None
    shapes = {name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()}
    stems = [name for name in shapes if name.endswith("cnv1/weights")]
    if len(stems) != 1:
        raise ConversionError(
            "no tensor '<scope>/cnv1/weights' in the checkpoint (not a pose-ae-demo snapshot?)"
        )
    scope = stems[0][: -len("cnv1/weights")]

    def ignored(name: str) -> bool:
        # Training state saved alongside the weights.
        return (
            not name.startswith(scope)
            or "/Adam" in name
            or name.endswith(("global_step", "beta1_power", "beta2_power"))
        )

    return _Source(shapes, reader.get_tensor, ignored), scope


def _tf_conv(source: _Source, scope: str) -> ConvWeights:
    kernel = source.get(f"{scope}/weights")
    if kernel.ndim != 4:
        raise ConversionError(f"tensor '{scope}/weights' is not a conv kernel")
    return kernel, source.get(f"{scope}/biases"), scope


def _pose_ae_demo_weights(
    source: _Source, scope: str, num_joints: int, refine: bool
) -> tuple[dict[str, Any], dict[str, ConvWeights]]:
    """Model config and layer name -> (kernel, bias) of a pose-ae-demo snapshot."""
    s = scope

    def out_channels(name: str) -> int:
        return source.shape(f"{s}{name}/weights")[-1]

    num_stacks = 0
    while f"{s}out_{num_stacks}/weights" in source.shapes:
        num_stacks += 1
    if num_stacks == 0:
        raise ConversionError(f"tensor '{s}out_0/weights' is missing from the source")
    levels = sorted(
        int(match.group(1))
        for name in source.shapes
        if (match := re.fullmatch(re.escape(s) + r"0_(\d+)_up1/weights", name))
    )
    if not levels or levels != list(range(1, len(levels) + 1)):
        raise ConversionError(f"tensors '{s}0_<n>_up1/weights' are missing or incomplete")
    depth = len(levels)
    # Level n = depth is the outermost; n = 1 holds the innermost conv 'low2'.
    widths = [out_channels(f"0_{depth}_up1")] + [
        out_channels(f"0_{n}_low1") for n in range(depth, 0, -1)
    ]
    stem_widths = (out_channels("cnv1"), out_channels("cnv2"))
    for name in ("cnv2b", "cnv3"):
        if out_channels(name) != stem_widths[1]:
            raise ConversionError(f"tensor '{s}{name}/weights' has an unexpected width")
    prediction_channels = out_channels("out_0")
    tag_dim = 0 if refine else 1
    output_channels = num_joints * (1 + tag_dim)
    if prediction_channels < output_channels:
        raise ConversionError(
            f"tensor '{s}out_0/weights' has {prediction_channels} output channels, fewer than "
            f"the {output_channels} outputs (the refinement network? use "
            "--format=pose_ae_demo_refine)"
        )
    if refine and prediction_channels != num_joints:
        # The demo's refinement network is inference(img, K): K heatmaps, nothing else.
        raise ConversionError(
            f"tensor '{s}out_0/weights' has {prediction_channels} output channels, the "
            f"refinement network {num_joints} (the multi-person network? use "
            "--format=pose_ae_demo)"
        )
    # Demo main.py: heatmaps = channels [:K], tags = channels [-K:]; model outputs first.
    order = np.arange(prediction_channels)
    if tag_dim:
        tags = order[prediction_channels - num_joints :]
        order = np.concatenate([order[:num_joints], tags, order[num_joints:-num_joints]])
    config = {
        "num_stacks": num_stacks,
        "widths": widths,
        "stem_widths": stem_widths,
        "feature_width": out_channels("cnv5_0"),
        "num_joints": num_joints,
        "tag_dim": tag_dim,
        "layout": "pose_ae_demo",
        "extra_prediction_channels": prediction_channels - output_channels,
    }
    stem_kernel, stem_bias, stem_name = _tf_conv(source, f"{s}cnv1")
    weights = {
        # The demo feeds RGB in 0..255: scaling the kernel lets the model take [0, 1]
        # (zero padding is unaffected by the scale).
        "stem1": (stem_kernel * np.float32(_DEMO_INPUT_SCALE), stem_bias, stem_name),
        "stem2": _tf_conv(source, f"{s}cnv2"),
        "stem3": _tf_conv(source, f"{s}cnv2b"),
        "stem3b": _tf_conv(source, f"{s}cnv3"),
        "stem4": _tf_conv(source, f"{s}cnv4"),
    }
    for stack in range(num_stacks):
        name = f"stack{stack}_hg"
        for n in range(depth, 0, -1):
            for part in ("up1", "low1", "low3"):
                weights[f"{name}_{part}"] = _tf_conv(source, f"{s}{stack}_{n}_{part}")
            if n == 1:
                weights[f"{name}_low2"] = _tf_conv(source, f"{s}{stack}_{n}_low2")
            name += "_inner"
        weights[f"stack{stack}_feat1"] = _tf_conv(source, f"{s}cnv5_{stack}")
        weights[f"stack{stack}_feat2"] = _tf_conv(source, f"{s}cnv6_{stack}")
        kernel, bias, name = _tf_conv(source, f"{s}out_{stack}")
        weights[f"stack{stack}_pred"] = (kernel[..., order], bias[order], name)
        if stack < num_stacks - 1:
            weights[f"stack{stack}_merge_feat"] = _tf_conv(source, f"{s}tmp_{stack}")
            kernel, bias, name = _tf_conv(source, f"{s}tmp_out_{stack}")
            weights[f"stack{stack}_merge_pred"] = (kernel[:, :, order, :], bias, name)
    return config, weights


# ------------------------------------------------------------------------ common


def assign_conv_weights(model: keras.Model, weights: Mapping[str, ConvWeights]) -> list[str]:
    """Assigns (kernel, bias) to every Conv2D layer '<name>_conv' of `model`.

    Args:
        model: a built model whose only variables are conv kernels and biases.
        weights: layer name prefix -> (kernel (kh, kw, in, out), bias (out,), source name).

    Returns:
        The path of every assigned variable, in order.

    Raises:
        ConversionError: when a layer has no weights, a shape differs, some weights belong to
            no layer, or the model has variables that are not conv kernels or biases.
    """
    remaining = dict(weights)
    assigned: list[str] = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            if layer.weights:
                raise ConversionError(f"layer '{layer.name}' has weights no source provides")
            continue
        name = layer.name.removesuffix("_conv")
        if name not in remaining:
            raise ConversionError(f"no source weights for layer '{layer.name}'")
        kernel, bias, source_name = remaining.pop(name)
        if layer.bias is None:
            raise ConversionError(f"layer '{layer.name}' has no bias (batch-norm model?)")
        for variable, value in ((layer.kernel, kernel), (layer.bias, bias)):
            if tuple(variable.shape) != tuple(value.shape):
                raise ConversionError(
                    f"source conv '{source_name}' gives shape {tuple(value.shape)} for "
                    f"'{variable.path}', which has shape {tuple(variable.shape)}"
                )
            variable.assign(value)
            assigned.append(variable.path)
    if remaining:
        raise ConversionError(f"source weights for no layer: {sorted(remaining)}")
    model_paths = sorted(variable.path for variable in model.weights)
    if sorted(assigned) != model_paths:
        raise ConversionError("not every model variable was assigned exactly once")
    return assigned


def convert_released_weights(
    format: str, path: str | os.PathLike, *, num_joints: int = 17
) -> Conversion:
    """Builds a `StackedHourglass` holding one of the authors' released networks.

    Args:
        format: one of `FORMATS`.
        path: the pose-ae-train checkpoint file, or the pose-ae-demo model directory (holding
            `snapshot.index`) or checkpoint prefix.
        num_joints: K (17 for COCO, the releases' joint set).

    Returns:
        A `Conversion`: model (input RGB in [0, 1], (B, H, W, 3); outputs
        (B, S, H/4, W/4, K * (1 + D)), D = 1, or 0 for the refinement network) and the
        assigned variable paths.

    Raises:
        ValueError: for an unknown format (`ConversionError` for a source that does not fit).
        FileNotFoundError: when the source does not exist.
        torch_reader.TorchFormatError: for a file that is not a readable PyTorch checkpoint.
    """
    path = os.fspath(path)
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise FileNotFoundError(f"no such file or directory: {path}")
    if format == "pose_ae_train":
        if os.path.isdir(path):
            raise ConversionError(f"{path} is a directory; give the checkpoint file")
        source, prefix = _torch_source(path)
        config, weights = _pose_ae_train_weights(source, prefix, num_joints)
    else:
        source, scope = _tf_source(path)
        config, weights = _pose_ae_demo_weights(
            source, scope, num_joints, refine=format == "pose_ae_demo_refine"
        )
    source.check_all_used()
    model = StackedHourglass(name=f"{format}_hourglass", **config)
    assigned = assign_conv_weights(model, weights)
    return Conversion(model, format, assigned)
