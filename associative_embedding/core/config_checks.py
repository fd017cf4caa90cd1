"""Up-front checks of an experiment config: every enum, range and shape its consumers need.

    validate_config(config)               # raises ConfigError, one line per bad field

A bad value would otherwise surface late and far from its cause: `codec.adjust='bogus'` after
hours of training, at the first evaluation; `codec.input_size=100` or `loss.push_type='bogus'`
inside the first traced training step. `validate_config` runs when a tool loads a config and
when a trainer is constructed, before any work, and names the field (as the `--config.a.b`
flag that sets it), the bad value and what is allowed.

This module checks the sections every task shares (model, the codec's sizes, augmentation,
loss push type and weights, optimizer, train, the common eval fields). Each task checks its own
fields with a function of a `ConfigChecker`, registered under its `config.task` name
(`register_config_checks`, called by ``tasks.registry.register_task``). Configs are
ConfigDicts or the plain dicts of a work dir's config.json; only the fields a check knows are
checked, and only when present, so configs of older runs and fields added later pass through.
No TensorFlow is imported here or by the task checks; the enums below are spelled out, and
tests check that they agree with the code that consumes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from associative_embedding.core import startup

#: config.codec.output_stride (modeling.hourglass: 4 official, 2 high-resolution heads).
OUTPUT_STRIDES = (4, 2)
#: Stride of the hourglass stem: the input must divide by STEM_STRIDE * 2 ** (len(widths) - 1).
STEM_STRIDE = 4
#: config.input.placement (data.augment.PLACEMENTS).
PLACEMENTS = ("centre", "top_left")
#: config.loss.push_type (losses.PUSH_TYPES).
PUSH_TYPES = ("exp", "hinge")
#: config.codec.adjust of the keypoint tasks (codec.keypoint_config.decoder_options: 'none'
#: turns the adjustment off).
ADJUST_MODES = ("official", "symmetric", "taylor", "none")
#: config.optimizer.schedule (training.schedules.WarmupSchedule).
SCHEDULES = ("step", "cosine", "constant")
#: config.train.mixed_precision ('' = float32).
MIXED_PRECISION_POLICIES = ("", "mixed_bfloat16", "mixed_float16")

#: A task's own checks: called with the checker after the shared sections are checked.
TaskChecks = Callable[["ConfigChecker"], None]

_TASK_CHECKS: dict[str, TaskChecks] = {}


class ConfigError(startup.UserInputError, ValueError):
    """A config with fields its consumers cannot use; one line per field, each naming it."""

    def __init__(self, problems: Sequence[str], source: str = "") -> None:
        self.problems = tuple(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + problem for problem in self.problems))


def register_config_checks(task: str, checks: TaskChecks) -> None:
    """Registers the checks of `config.task == task` (again for the same task: replaced)."""
    _TASK_CHECKS[task] = checks


def registered_tasks() -> tuple[str, ...]:
    """The `config.task` names whose checks are registered, in registration order."""
    return tuple(_TASK_CHECKS)


def validate_config(config: Any, *, source: str = "") -> None:
    """Checks every known field of a config: the shared sections and its task's own.

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
    """The problems `validate_config` reports (empty for a usable config).

    A task whose checks are not registered (its schema module was never imported) is checked
    in its shared sections only; a task name that is not registered while others are is a
    problem of `config.task`.
    """
    values = config.to_dict() if hasattr(config, "to_dict") else config
    if not isinstance(values, Mapping):
        return [f"config: expected a ConfigDict or a dict, got {type(values).__name__}"]
    checker = ConfigChecker(values)
    task = values.get("task", "pose")
    if _TASK_CHECKS:
        checker.choice("task", registered_tasks())
        if task not in _TASK_CHECKS:
            return checker.problems
    _check_dataset(checker)
    _check_model(checker)
    _check_codec(checker)
    _check_input(checker)
    _check_loss(checker)
    _check_optimizer(checker)
    _check_train(checker)
    _check_eval(checker)
    if task in _TASK_CHECKS:
        _TASK_CHECKS[task](checker)
    return checker.problems


def input_multiple(widths: Sequence[int]) -> int:
    """The side every network input must divide by: the stem's stride times one halving per
    hourglass level (`StackedHourglass.input_multiple`)."""
    return STEM_STRIDE * 2 ** (len(widths) - 1)


# ---------------------------------------------------------------------------------- sections


def _check_dataset(checker: ConfigChecker) -> None:
    for name in ("train_annotations", "train_images", "val_annotations", "val_images",
                 "synthetic_dir"):
        checker.string(f"dataset.{name}")
    checker.boolean("dataset.skip_bad_images")
    checker.boolean("dataset.strict_annotations")
    checker.integer("dataset.synthetic_num_train", minimum=1)
    checker.integer("dataset.synthetic_num_val", minimum=0)
    checker.integer("dataset.synthetic_image_size", minimum=1)
    checker.integer("dataset.synthetic_seed")


def _check_model(checker: ConfigChecker) -> None:
    checker.integer("model.num_stacks", minimum=1)
    checker.integer_sequence("model.widths", minimum=1, min_length=2,
                             example="'(256, 384, 512, 640, 768)'")
    checker.integer_sequence("model.stem_widths", minimum=1, length=2, example="'(64, 128)'")
    checker.integer("model.feature_width", minimum=0, note="0 = widths[0]")
    checker.boolean("model.batch_norm")
    checker.boolean("model.coordinate_channels")


def _check_codec(checker: ConfigChecker) -> None:
    multiple = checker.input_multiple()
    checker.integer("codec.input_size", minimum=1)
    if multiple and is_int(checker.get("codec.input_size")):
        checker.check("codec.input_size", lambda value: value % multiple == 0,
                      f"must be a multiple of {multiple} (stem stride {STEM_STRIDE} x 2 ** "
                      f"{int(math.log2(multiple // STEM_STRIDE))} hourglass levels, "
                      "len(model.widths) - 1)")
    checker.choice("codec.output_stride", OUTPUT_STRIDES)


def check_keypoint_codec(checker: ConfigChecker) -> None:
    """The keypoint codec's own fields (`codec.keypoint_config.keypoint_codec_fields`), shared
    by the keypoint tasks (pose, refinement, tracking), which call this from their checks."""
    checker.number("codec.sigma", minimum=0.0, note="0 = output size / 64")
    checker.boolean("codec.subpixel_targets")
    checker.integer("codec.max_people", minimum=1)
    checker.number("codec.detection_threshold", minimum=0.0)
    checker.number("codec.tag_threshold", minimum=0.0, exclusive_minimum=True)
    checker.boolean("codec.refine")
    checker.choice("codec.adjust", ADJUST_MODES)


def _check_input(checker: ConfigChecker) -> None:
    # The augmentation fields every task shares (data.augment.AugmentConfig's rules).
    checker.number("input.max_rotation_degrees", minimum=0.0)
    checker.check("input.scale_range", _is_scale_range,
                  "must be two numbers (low, high) with 0 < low <= high")
    checker.number("input.max_translation", minimum=0.0)
    checker.number("input.flip_probability", minimum=0.0, maximum=1.0)
    checker.boolean("input.color_jitter")
    checker.integer("input.shuffle_buffer_size", minimum=1)
    checker.choice("input.placement", PLACEMENTS)


def _check_loss(checker: ConfigChecker) -> None:
    for name in ("pull_weight", "push_weight"):
        checker.number(f"loss.{name}", minimum=0.0)
    checker.choice("loss.push_type", PUSH_TYPES)


def _check_optimizer(checker: ConfigChecker) -> None:
    checker.number("optimizer.learning_rate", minimum=0.0, exclusive_minimum=True)
    checker.choice("optimizer.schedule", SCHEDULES)
    checker.number("optimizer.final_learning_rate", minimum=0.0)
    checker.integer("optimizer.decay_step", minimum=0)
    checker.integer("optimizer.warmup_steps", minimum=0)
    checker.number("optimizer.clipnorm", minimum=0.0, note="0 = no clipping")


def _check_train(checker: ConfigChecker) -> None:
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


def _check_eval(checker: ConfigChecker) -> None:
    checker.integer("eval.every_steps", minimum=0, note="0 = only at the end")
    checker.integer("eval.max_images", minimum=0, note="0 = all")
    checker.check("eval.scales", is_positive_numbers,
                  "must be a non-empty sequence of positive numbers, e.g. (1.0,)")
    checker.integer("eval.num_drawn_images", minimum=0)


# ---------------------------------------------------------------------------------- checker

_MISSING = object()


class ConfigChecker:
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
                   f"is not allowed; one of {listing(choices)}")

    def boolean(self, path: str) -> None:
        self.check(path, lambda value: isinstance(value, bool), "must be True or False")

    def string(self, path: str) -> None:
        self.check(path, lambda value: isinstance(value, str), "must be a string")

    def integer(self, path: str, *, minimum: int | None = None, note: str = "") -> None:
        requirement = "must be an integer" + ("" if minimum is None else f" >= {minimum}")
        self.check(path, lambda value: is_int(value) and (minimum is None or value >= minimum),
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
            if not is_number(value) or math.isnan(value):
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
                and all(is_int(item) and item >= minimum for item in value)
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


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scale_range(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(is_number(item) for item in value)
        and 0 < value[0] <= value[1]
    )


def is_positive_numbers(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) > 0
        and all(is_number(item) and item > 0 for item in value)
    )


def listing(choices: Sequence[Any]) -> str:
    return ", ".join(repr(choice) for choice in choices)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
