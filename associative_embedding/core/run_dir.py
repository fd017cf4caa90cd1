"""Training-run directories: the config.json a run writes, and the task and channels it names.

A `tools/train.py` work dir holds config.json, checkpoints/ckpt-N and best/model. Everything that
opens a trained model (evaluation, export, refinement, the tools) starts from the work dir's
config, so reading it lives here, below every consumer, and the loading of the network itself in
`modeling.loading`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import ml_collections
import tensorflow as tf

from associative_embedding.core import startup
from associative_embedding.core.config_checks import (
    ConfigError,
    registered_tasks,
    validate_config,
)
from associative_embedding.core.keypoint_info import get_keypoint_info

__all__ = [
    "CONFIG_NAME",
    "RESTORE_ERRORS",
    "ConfigError",
    "ModelFileError",
    "config_task",
    "move_to_codec_section",
    "num_detection_channels",
    "read_training_config",
    "training_workdir",
]


# Errors a damaged checkpoint can raise while being read: a truncated or empty data file
# (IndexError "Read less bytes than requested" from the checkpoint reader, or
# DataLossError/OutOfRangeError), a missing shard (NotFoundError), a garbled index
# (InvalidArgumentError, generic OpError), an unreadable file (OSError) or a mismatch detected by
# the Python side (ValueError, AssertionError).
RESTORE_ERRORS = (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError)


CONFIG_NAME = "config.json"

#: Where runs written before the `codec` section kept its fields: (section, old name, codec
#: name). The input size and `max_people` were said twice; the eval copy is what the run's
#: evaluations used, so it wins.
_LEGACY_CODEC_FIELDS = (
    ("input", "input_size", "input_size"),
    ("eval", "input_size", "input_size"),
    ("input", "output_stride", "output_stride"),
    ("input", "sigma", "sigma"),
    ("input", "subpixel_targets", "subpixel_targets"),
    ("input", "max_people", "max_people"),
    ("eval", "max_people", "max_people"),
    ("input", "max_instances", "max_instances"),
    ("input", "pixels_per_instance", "pixels_per_instance"),
    ("input", "area_average_targets", "area_average_targets"),
    ("eval", "detection_threshold", "detection_threshold"),
    ("eval", "tag_threshold", "tag_threshold"),
    ("eval", "refine", "refine"),
    ("eval", "adjust", "adjust"),
    ("eval", "bandwidth", "bandwidth"),
    ("eval", "method", "method"),
    ("eval", "min_instance_pixels", "min_instance_pixels"),
    ("eval", "max_instances", "max_output_instances"),
    ("eval", "max_tag_distance", "max_tag_distance"),
)


class ModelFileError(startup.UserInputError, ValueError):
    """A model file, checkpoint or work dir config that exists but cannot be read; the
    message names the path and the reason."""


def config_task(config: Any) -> str:
    """The config's task ('pose' when the config predates `config.task`).

    Raises:
        ValueError: when the tasks are registered (``core.config_checks``) and this is none of
            them.
    """
    task = config.get("task", "pose") if hasattr(config, "get") else "pose"
    tasks = registered_tasks()
    if tasks and task not in tasks:
        raise ValueError(f"config.task must be one of {tasks}, got {task!r}")
    return task


def num_detection_channels(config: Any) -> int:
    """K of the network: `config.dataset.num_categories` when the dataset names categories
    (instance segmentation), else the joints of `config.dataset.keypoints`."""
    if "num_categories" in config.dataset:
        return int(config.dataset.num_categories)
    return get_keypoint_info(config.dataset.keypoints).num_joints


def move_to_codec_section(values: dict[str, Any]) -> list[str]:
    """Moves, in place, the codec fields of a config written before the `codec` section
    (input size, stride, sigma, `max_people`, decoder options under `input` and `eval`) into
    `codec`; a config that has a `codec` section is left alone.

    Args:
        values: a config as a dict (a work dir's config.json).

    Returns:
        The moves made, as 'input.input_size -> codec.input_size' lines (empty when none).
    """
    if "codec" in values:
        return []
    codec: dict[str, Any] = {}
    moves = []
    for section, name, codec_name in _LEGACY_CODEC_FIELDS:
        fields = values.get(section)
        if isinstance(fields, dict) and name in fields:
            codec[codec_name] = fields.pop(name)
            moves.append(f"{section}.{name} -> codec.{codec_name}")
    if codec:
        # Keep the section order of newer configs: codec after model.
        ordered = {}
        for key, value in values.items():
            ordered[key] = value
            if key == "model":
                ordered["codec"] = codec
        ordered.setdefault("codec", codec)
        values.clear()
        values.update(ordered)
    return moves


def training_workdir(path: str) -> str:
    """The `tools/train.py` work dir of a work dir or one of its checkpoint prefixes.

    Args:
        path: a work dir, or a checkpoint prefix inside one (WORKDIR/checkpoints/ckpt-N,
            WORKDIR/best/model).

    Raises:
        FileNotFoundError: naming the path when no config.json is there (or one folder up).
    """
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    candidates = (folder,) if os.path.isdir(path) else (folder, os.path.dirname(folder))
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, CONFIG_NAME)):
            return candidate
    raise FileNotFoundError(f"{path}: no {CONFIG_NAME} found (not a training work dir)")


def read_training_config(path: str) -> ml_collections.ConfigDict:
    """The config.json of a training run, from its work dir or one of its checkpoint prefixes.

    Raises:
        FileNotFoundError: naming the path when no config.json is there (or one folder up).
        ModelFileError: naming the config.json when it is not a readable JSON object.
        ConfigError: naming the config.json and each field its consumers cannot use.
    """
    config_path = os.path.join(training_workdir(path), CONFIG_NAME)
    try:
        with open(config_path) as handle:
            values = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelFileError(
            f"{config_path} exists but is unreadable "
            f"(truncated or corrupt: {describe_error(error)})"
        ) from None
    if not isinstance(values, dict):
        raise ModelFileError(f"{config_path}: expected a JSON object, got {type(values).__name__}")
    # Runs written before the codec section still load, with their own settings.
    move_to_codec_section(values)
    validate_config(values, source=config_path)
    return ml_collections.ConfigDict(values)


def describe_error(error: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def write_json(path: str | os.PathLike, payload: Mapping[str, Any]) -> None:
    """Writes a metrics-like dict as JSON (NaN -> null)."""
    cleaned = {
        key: (None if isinstance(value, float) and math.isnan(value) else value)
        for key, value in payload.items()
    }
    with open(path, "w") as handle:
        json.dump(cleaned, handle, indent=2)
