"""The task registry: `config.task` -> the task's trainer and config schema.

The tools build every trainer through `make_trainer` and never name a task's classes, so a new
task is a folder under `tasks/` plus one `register_task` line below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections
import tensorflow as tf

from associative_embedding.core.config_checks import validate_config
from associative_embedding.core.run_dir import config_task
from associative_embedding.tasks.pose.config import base_config
from associative_embedding.tasks.pose.trainer import PoseTrainer
from associative_embedding.tasks.refinement.trainer import RefinementTrainer, refinement_base_config
from associative_embedding.tasks.segmentation.config import segmentation_base_config
from associative_embedding.tasks.segmentation.trainer import SegmentationTrainer
from associative_embedding.training.trainer import Trainer


@dataclasses.dataclass(frozen=True)
class Task:
    """One task.

    Attributes:
        name: its `config.task`.
        trainer: the `Trainer` subclass, called as trainer(config, workdir, strategy, data).
        base_config: the task's config schema with its defaults.
    """

    name: str
    trainer: type[Trainer]
    base_config: Callable[[], ml_collections.ConfigDict]


#: The registered tasks by name.
TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Adds a task; its name must also be listed in `core.config_checks.TASKS`, which checks
    configs without importing TensorFlow."""
    if task.name in TASKS:
        raise ValueError(f"a task named {task.name!r} is already registered")
    TASKS[task.name] = task
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


register_task(Task("pose", PoseTrainer, base_config))
register_task(Task("segmentation", SegmentationTrainer, segmentation_base_config))
register_task(Task("refinement", RefinementTrainer, refinement_base_config))
