"""Up-front checks of an experiment config: every enum, range and shape its consumers need.

    validate_config(config)               # raises ConfigError, one line per bad field

A bad value would otherwise surface late and far from its cause: `eval.adjust='bogus'` after
hours of training, at the first evaluation; `input.input_size=100` or `loss.push_type='bogus'`
inside the first traced training step. `validate_config` runs when a tool loads a config and
when a trainer is constructed, before any work, and names the field (as the `--config.a.b`
flag that sets it), the bad value and what is allowed.

It reads the pose schema (`tasks.pose.config.base_config`), the segmentation schema
(`tasks.segmentation.config.segmentation_base_config`) and the refinement schema
(`tasks.refinement.trainer.refinement_base_config`), as ConfigDicts or as the plain dicts of a work
dir's config.json. Only the fields it knows are checked, and only when present: configs of
older runs and fields added later pass through. No TensorFlow is imported (the tools validate
before they import it); the enums below are spelled out, and tests check that they agree with
the code that consumes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from associative_embedding.core import startup
from associative_embedding.core.keypoint_info import get_keypoint_info

#: config.task (core.run_dir.TASKS).
TASKS = ("pose", "segmentation", "refinement")
#: config.dataset.kind of the pose and refinement tasks (tasks.pose.inputs.prepare_data).
POSE_DATASET_KINDS = ("coco", "mpii", "synthetic")
#: config.dataset.kind of the segmentation task (tasks.segmentation.config.DATASET_KINDS).
SEGMENTATION_DATASET_KINDS = ("synthetic_shapes", "coco", "voc")
#: config.dataset.keypoints (core.keypoint_info.get_keypoint_info).
KEYPOINT_SETS = ("coco", "crowdpose", "mpii")
#: config.dataset.ignore (data.coco).
IGNORE_MODES = ("crowd_and_unlabelled", "crowd")
#: config.input.output_stride (modeling.hourglass: 4 official, 2 high-resolution heads).
OUTPUT_STRIDES = (4, 2)
#: Stride of the hourglass stem: the input must divide by STEM_STRIDE * 2 ** (len(widths) - 1).
STEM_STRIDE = 4
#: config.input.placement (data.augment.PLACEMENTS).
PLACEMENTS = ("centre", "top_left")
#: config.loss.push_type (losses.PUSH_TYPES).
PUSH_TYPES = ("exp", "hinge")
#: config.loss.normalization of segmentation (losses.SEGMENTATION_NORMALIZATIONS).
SEGMENTATION_NORMALIZATIONS = ("mean", "sum")
#: config.optimizer.schedule (training.schedules.WarmupSchedule).
SCHEDULES = ("step", "cosine", "constant")
#: config.train.mixed_precision ('' = float32).
MIXED_PRECISION_POLICIES = ("", "mixed_bfloat16", "mixed_float16")
#: config.eval.fusion (codec.fusion.FUSION_MODES).
FUSION_MODES = ("official", "paper")
#: config.eval.adjust (tasks.pose.config.decoder_options: 'none' turns the adjustment off).
ADJUST_MODES = ("official", "symmetric", "taylor", "none")
#: config.eval.method of segmentation (codec.instance_decode.DECODE_METHODS).
DECODE_METHODS = ("auto", "histogram", "density")


class ConfigError(startup.UserInputError, ValueError):
    """A config with fields its consumers cannot use; one line per field, each naming it."""

    def __init__(self, problems: Sequence[str], source: str = "") -> None:
        self.problems = tuple(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + problem for problem in self.problems))


def validate_config(config: Any, *, source: str = "") -> None:
    """Checks every known field of a pose, segmentation or refinement config.

    Args:
        config: a ConfigDict, or the dict of a work dir's config.json.
        source: where the config comes from (e.g. the config.json path), put before each line.

    Raises:
        ConfigError: listing every bad field, one line each: the `--config.a.b` flag that sets
            it, the value and the allowed values.
    """
    problems = config_problems(config)
    if problems:
        raise ConfigError(problems, source)


def config_problems(config: Any) -> list[str]:
    """The problems `validate_config` reports (empty for a usable config)."""
    values = config.to_dict() if hasattr(config, "to_dict") else config
    if not isinstance(values, Mapping):
        return [f"config: expected a ConfigDict or a dict, got {type(values).__name__}"]
    checker = _Checker(values)
    task = values.get("task", "pose")
    checker.choice("task", TASKS)
    if task not in TASKS:
        return checker.problems
    _check_dataset(checker, task)
    _check_model(checker, task)
    _check_input(checker, task)
    _check_loss(checker, task)
    _check_optimizer(checker)
    _check_train(checker)
    if task == "segmentation":
        _check_segmentation_eval(checker)
    else:
        _check_pose_eval(checker)
    if task == "refinement":
        _check_refine(checker)
    return checker.problems


def input_multiple(widths: Sequence[int]) -> int:
    """The side every network input must divide by: the stem's stride times one halving per
    hourglass level (`StackedHourglass.input_multiple`)."""
    return STEM_STRIDE * 2 ** (len(widths) - 1)


# ---------------------------------------------------------------------------------- sections


def _check_dataset(checker: _Checker, task: str) -> None:
    if task == "segmentation":
        checker.choice("dataset.kind", SEGMENTATION_DATASET_KINDS)
        checker.integer("dataset.num_categories", minimum=1)
        checker.integer_sequence("dataset.category_ids", minimum=0)
        for name in ("voc_root", "voc_train_split", "voc_val_split"):
            checker.string(f"dataset.{name}")
    else:
        checker.choice("dataset.kind", POSE_DATASET_KINDS)
        checker.check("dataset.keypoints", _is_keypoint_set,
                      f"is not a keypoint set; one of {_listing(KEYPOINT_SETS)}")
        checker.choice("dataset.ignore", IGNORE_MODES)
    for name in ("train_annotations", "train_images", "val_annotations", "val_images",
                 "synthetic_dir"):
        checker.string(f"dataset.{name}")
    checker.boolean("dataset.skip_bad_images")
    checker.boolean("dataset.strict_annotations")
    checker.integer("dataset.synthetic_num_train", minimum=1)
    checker.integer("dataset.synthetic_num_val", minimum=0)
    checker.integer("dataset.synthetic_image_size", minimum=1)
    checker.integer("dataset.synthetic_seed")


def _check_model(checker: _Checker, task: str) -> None:
    checker.integer("model.num_stacks", minimum=1)
    checker.integer_sequence("model.widths", minimum=1, min_length=2,
                             example="'(256, 384, 512, 640, 768)'")
    checker.integer_sequence("model.stem_widths", minimum=1, length=2, example="'(64, 128)'")
    checker.integer("model.feature_width", minimum=0, note="0 = widths[0]")
    if task == "refinement":
        checker.check("model.tag_dim", lambda value: _is_int(value) and value == 0,
                      "must be 0: the refinement network predicts heatmaps only")
    else:
        checker.integer("model.tag_dim", minimum=1)
    checker.boolean("model.batch_norm")
    checker.boolean("model.coordinate_channels")


def _check_input(checker: _Checker, task: str) -> None:
    multiple = checker.input_multiple()
    checker.integer("input.input_size", minimum=1)
    if multiple and _is_int(checker.get("input.input_size")):
        checker.check("input.input_size", lambda value: value % multiple == 0,
                      f"must be a multiple of {multiple} (stem stride {STEM_STRIDE} x 2 ** "
                      f"{int(math.log2(multiple // STEM_STRIDE))} hourglass levels, "
                      "len(model.widths) - 1)")
    checker.choice("input.output_stride", OUTPUT_STRIDES)
    if task == "segmentation":
        checker.integer("input.max_instances", minimum=1)
        checker.integer("input.pixels_per_instance", minimum=1)
        checker.number("input.min_instance_size", minimum=0.0)
        checker.number("input.max_instance_size", minimum=0.0)
        low, high = checker.get("input.min_instance_size"), checker.get("input.max_instance_size")
        if _is_number(low) and _is_number(high) and high <= low:
            checker.fail("input.max_instance_size",
                         f"{high!r} must exceed input.min_instance_size ({low!r})")
        checker.boolean("input.area_average_targets")
    else:
        checker.number("input.sigma", minimum=0.0, note="0 = output size / 64")
        checker.boolean("input.subpixel_targets")
        checker.integer("input.max_people", minimum=1)
        checker.boolean("input.cache_decoded_images")
    # The augmentation fields every task shares (data.augment.AugmentConfig's rules).
    checker.number("input.max_rotation_degrees", minimum=0.0)
    checker.check("input.scale_range", _is_scale_range,
                  "must be two numbers (low, high) with 0 < low <= high")
    checker.number("input.max_translation", minimum=0.0)
    checker.number("input.flip_probability", minimum=0.0, maximum=1.0)
    checker.boolean("input.color_jitter")
    checker.integer("input.shuffle_buffer_size", minimum=1)
    checker.choice("input.placement", PLACEMENTS)


def _check_loss(checker: _Checker, task: str) -> None:
    weights = ("pull_weight", "push_weight")
    if task == "segmentation":
        weights += ("detection_weight", "detection_foreground_weight")
        checker.choice("loss.normalization", SEGMENTATION_NORMALIZATIONS)
    else:
        weights += ("heatmap_weight", "heatmap_foreground_weight")
    for name in weights:
        checker.number(f"loss.{name}", minimum=0.0)
    checker.choice("loss.push_type", PUSH_TYPES)


def _check_optimizer(checker: _Checker) -> None:
    checker.number("optimizer.learning_rate", minimum=0.0, exclusive_minimum=True)
    checker.choice("optimizer.schedule", SCHEDULES)
    checker.number("optimizer.final_learning_rate", minimum=0.0)
    checker.integer("optimizer.decay_step", minimum=0)
    checker.integer("optimizer.warmup_steps", minimum=0)
    checker.number("optimizer.clipnorm", minimum=0.0, note="0 = no clipping")


def _check_train(checker: _Checker) -> None:
    checker.integer("train.global_batch_size", minimum=1)
    checker.integer("train.num_steps", minimum=1)
    checker.integer("train.seed")
    checker.boolean("train.deterministic")
    checker.choice("train.mixed_precision", MIXED_PRECISION_POLICIES)
    checker.boolean("train.jit_compile")
    checker.integer("train.log_every", minimum=1)
    checker.integer("train.checkpoint_every", minimum=1)
    # training.checkpointing.CheckpointKeeper falls back from a corrupt save to the one before.
    checker.integer("train.max_to_keep", minimum=2, note="a corrupt save falls back to the "
                    "previous one")
    checker.number("train.time_limit_minutes", minimum=0.0, note="0 = no limit")
    checker.boolean("train.loss_log")
    checker.string("train.init_checkpoint")


def _check_common_eval(checker: _Checker) -> None:
    checker.integer("eval.every_steps", minimum=0, note="0 = only at the end")
    checker.integer("eval.input_size", minimum=0, note="0 = the original image size")
    checker.integer("eval.max_images", minimum=0, note="0 = all")
    checker.check("eval.scales", _is_positive_numbers,
                  "must be a non-empty sequence of positive numbers, e.g. (1.0,)")
    checker.number("eval.detection_threshold", minimum=0.0)
    checker.integer("eval.num_drawn_images", minimum=0)


def _check_pose_eval(checker: _Checker) -> None:
    _check_common_eval(checker)
    checker.boolean("eval.flip")
    checker.choice("eval.fusion", FUSION_MODES)
    checker.number("eval.tag_threshold", minimum=0.0, exclusive_minimum=True)
    checker.integer("eval.max_people", minimum=1)
    checker.boolean("eval.refine")
    checker.choice("eval.adjust", ADJUST_MODES)
    checker.boolean("eval.gt_detection_diagnostic")
    checker.number("eval.draw_threshold", minimum=0.0)


def _check_segmentation_eval(checker: _Checker) -> None:
    _check_common_eval(checker)
    checker.number("eval.scale_nms_iou", minimum=0.0, maximum=1.0)
    checker.number("eval.bandwidth", minimum=0.0, exclusive_minimum=True)
    checker.choice("eval.method", DECODE_METHODS)
    tag_dim = checker.get("model.tag_dim")
    if checker.get("eval.method") == "histogram" and _is_int(tag_dim) and tag_dim != 1:
        checker.fail("eval.method", f"'histogram' needs model.tag_dim=1, got {tag_dim}; use "
                     "'density' or 'auto'")
    checker.integer("eval.min_instance_pixels", minimum=0)
    checker.integer("eval.max_instances", minimum=1)
    checker.number("eval.max_tag_distance", minimum=0.0, note="0 = no limit")


def _check_refine(checker: _Checker) -> None:
    checker.number("refine.min_side", minimum=0.0, exclusive_minimum=True)
    checker.number("refine.margin", minimum=0.0, exclusive_minimum=True)
    checker.integer("refine.crop_size", minimum=0, note="0 = input.input_size")
    multiple = checker.input_multiple()
    crop_size = checker.get("refine.crop_size")
    if multiple and _is_int(crop_size) and crop_size > 0:
        checker.check("refine.crop_size", lambda value: value % multiple == 0,
                      f"must be 0 or a multiple of {multiple} (the network's input multiple)")
    checker.integer("refine.min_joints", minimum=1)
    checker.boolean("refine.ignore_other_people")
    checker.integer("refine.eval_batch_size", minimum=1)


# ---------------------------------------------------------------------------------- checker

_MISSING = object()


class _Checker:
    """Collects one line per bad field; a field missing from the config is not checked."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values
        self.problems: list[str] = []
        self._failed: set[str] = set()

    def get(self, path: str) -> Any:
        node: Any = self._values
        for key in path.split("."):
            if not isinstance(node, Mapping) or key not in node:
                return _MISSING
            node = node[key]
        return node

    def fail(self, path: str, message: str) -> None:
        if path not in self._failed:  # the first problem of a field is enough
            self._failed.add(path)
            self.problems.append(f"--config.{path}: {message}")

    def check(self, path: str, is_valid: Callable[[Any], bool], requirement: str) -> None:
        value = self.get(path)
        if value is _MISSING or path in self._failed:
            return
        try:
            valid = bool(is_valid(value))
        except (TypeError, ValueError):
            valid = False
        if not valid:
            self.fail(path, f"{_shown(value)} {requirement}")

    def choice(self, path: str, choices: Sequence[Any]) -> None:
        self.check(path, lambda value: value in choices,
                   f"is not allowed; one of {_listing(choices)}")

    def boolean(self, path: str) -> None:
        self.check(path, lambda value: isinstance(value, bool), "must be True or False")

    def string(self, path: str) -> None:
        self.check(path, lambda value: isinstance(value, str), "must be a string")

    def integer(self, path: str, *, minimum: int | None = None, note: str = "") -> None:
        requirement = "must be an integer" + ("" if minimum is None else f" >= {minimum}")
        self.check(path, lambda value: _is_int(value) and (minimum is None or value >= minimum),
                   requirement + (f" ({note})" if note else ""))

    def number(
        self,
        path: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
        note: str = "",
    ) -> None:
        def is_valid(value: Any) -> bool:
            if not _is_number(value) or math.isnan(value):
                return False
            if minimum is not None and (value <= minimum if exclusive_minimum
                                        else value < minimum):
                return False
            return maximum is None or value <= maximum

        if minimum is not None and maximum is not None:
            requirement = f"must be a number in [{minimum:g}, {maximum:g}]"
        elif minimum is not None:
            requirement = f"must be a number {'>' if exclusive_minimum else '>='} {minimum:g}"
        else:
            requirement = "must be a number"
        self.check(path, is_valid, requirement + (f" ({note})" if note else ""))

    def integer_sequence(
        self,
        path: str,
        *,
        minimum: int = 0,
        length: int | None = None,
        min_length: int = 0,
        example: str = "",
    ) -> None:
        def is_valid(value: Any) -> bool:
            return (
                isinstance(value, tuple | list)
                and all(_is_int(item) and item >= minimum for item in value)
                and (length is None or len(value) == length)
                and len(value) >= min_length
            )

        kind = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        if length is not None:
            kind = f"{length} {kind}"
        elif min_length:
            kind = f"{min_length} or more {kind}"
        self.check(path, is_valid,
                   f"must be a tuple of {kind}" + (f", e.g. {example}" if example else ""))

    def input_multiple(self) -> int:
        """The network's input multiple, or 0 while model.widths is missing or bad."""
        widths = self.get("model.widths")
        if "model.widths" in self._failed or not isinstance(widths, tuple | list) or not widths:
            return 0
        return input_multiple(widths)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_keypoint_set(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        get_keypoint_info(value)
    except ValueError:
        return False
    return True


def _is_scale_range(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(_is_number(item) for item in value)
        and 0 < value[0] <= value[1]
    )


def _is_positive_numbers(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) > 0
        and all(_is_number(item) and item > 0 for item in value)
    )


def _listing(choices: Sequence[Any]) -> str:
    return ", ".join(repr(choice) for choice in choices)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
