"""The task registry: `config.task` -> the task's trainer, config schema and config checks.

The tools build every trainer through `make_trainer` and never name a task's classes, so a new
task is a folder under `tasks/` plus one `register_task` line below. Registering a task also
registers its config checks with `core.config_checks`, so a config of any registered task is
checked in full wherever it is read: the `tasks` package imports this module, so importing any
task registers them all. The trainer and the schema are named by import path and imported when
first used, so that registering (and checking a config) loads no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from associative_embedding.core.config_checks import (
    TaskChecks,
    register_config_checks,
    validate_config,
)
from associative_embedding.tasks.pose.config_checks import check_pose_config
from associative_embedding.tasks.refinement.config_checks import check_refinement_config
from associative_embedding.tasks.segmentation.config_checks import check_segmentation_config
from associative_embedding.tasks.tracking.config_checks import check_tracking_config

if TYPE_CHECKING:
    import ml_collections
    import tensorflow as tf

    from associative_embedding.training.trainer import Trainer


@dataclasses.dataclass(frozen=True)
class Task:
    """One task.

    Attributes:
        name: its `config.task`.
        trainer: 'module:name' of the `Trainer` subclass, called as
            trainer(config, workdir, strategy, data).
        base_config: 'module:name' of the function giving the task's config schema with its
            defaults.
        config_checks: the checks of the task's own config fields (`core.config_checks`).
    """

    name: str
    trainer: str
    base_config: str
    config_checks: TaskChecks

    def trainer_class(self) -> type[Trainer]:
        """The `Trainer` subclass (imported on first use)."""
        return _import_attribute(self.trainer)

    def schema(self) -> ml_collections.ConfigDict:
        """A fresh config with the task's defaults (imported on first use)."""
        return _import_attribute(self.base_config)()


#: The registered tasks by name.
TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Adds a task, and its config checks under the same name."""
    if task.name in TASKS:
        raise ValueError(f"a task named {task.name!r} is already registered")
    TASKS[task.name] = task
    register_config_checks(task.name, task.config_checks)
    return task


def make_trainer(
    config: ml_collections.ConfigDict,
    workdir: str,
    strategy: tf.distribute.Strategy | None = None,
    data: Any | None = None,
) -> Trainer:
    """The trainer of `config.task`: `PoseTrainer`, `SegmentationTrainer` or (the paper's
    single-person refinement network) `RefinementTrainer`."""
    from associative_embedding.core.run_dir import config_task

    validate_config(config)
    return TASKS[config_task(config)].trainer_class()(config, workdir, strategy, data)


def _import_attribute(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


_TASKS_PACKAGE = "associative_embedding.tasks"

register_task(Task(
    "pose", f"{_TASKS_PACKAGE}.pose.trainer:PoseTrainer",
    f"{_TASKS_PACKAGE}.pose.config:base_config", check_pose_config,
))
register_task(Task(
    "segmentation", f"{_TASKS_PACKAGE}.segmentation.trainer:SegmentationTrainer",
    f"{_TASKS_PACKAGE}.segmentation.config:segmentation_base_config", check_segmentation_config,
))
register_task(Task(
    "refinement", f"{_TASKS_PACKAGE}.refinement.trainer:RefinementTrainer",
    f"{_TASKS_PACKAGE}.refinement.trainer:refinement_base_config", check_refinement_config,
))
register_task(Task(
    "tracking", f"{_TASKS_PACKAGE}.tracking.trainer:TrackingTrainer",
    f"{_TASKS_PACKAGE}.tracking.config:tracking_base_config", check_tracking_config,
))
