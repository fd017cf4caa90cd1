"""The task registry: `config.task` -> the task's trainer, config schema and config checks.

The tools build every trainer through `make_trainer` and never name a task's classes, so a new
task is a folder under `tasks/` plus one `register_task` line below. Registering a task also
registers its config checks with `core.config_checks`, so a config of any registered task is
checked in full wherever it is read (the `tasks` package imports this module, so importing any
task registers them all).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections
import tensorflow as tf

from associative_embedding.core.config_checks import (
    TaskChecks,
    register_config_checks,
    validate_config,
)
from associative_embedding.core.run_dir import config_task
from associative_embedding.tasks.pose.config import base_config
from associative_embedding.tasks.pose.config_checks import check_pose_config
from associative_embedding.tasks.pose.trainer import PoseTrainer
from associative_embedding.tasks.refinement.config_checks import check_refinement_config
from associative_embedding.tasks.refinement.trainer import RefinementTrainer, refinement_base_config
from associative_embedding.tasks.segmentation.config import segmentation_base_config
from associative_embedding.tasks.segmentation.config_checks import check_segmentation_config
from associative_embedding.tasks.segmentation.trainer import SegmentationTrainer
from associative_embedding.training.trainer import Trainer


@dataclasses.dataclass(frozen=True)
class Task:
    """One task.

    Attributes:
        name: its `config.task`.
        trainer: the `Trainer` subclass, called as trainer(config, workdir, strategy, data).
        base_config: the task's config schema with its defaults.
        config_checks: the checks of the task's own config fields (`core.config_checks`).
    """

    name: str
    trainer: type[Trainer]
    base_config: Callable[[], ml_collections.ConfigDict]
    config_checks: TaskChecks


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
    validate_config(config)
    return TASKS[config_task(config)].trainer(config, workdir, strategy, data)


register_task(Task("pose", PoseTrainer, base_config, check_pose_config))
register_task(
    Task("segmentation", SegmentationTrainer, segmentation_base_config, check_segmentation_config)
)
register_task(
    Task("refinement", RefinementTrainer, refinement_base_config, check_refinement_config)
)
