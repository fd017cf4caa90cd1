"""The whole chain on tiny data: train the ':smoke' experiments, then evaluate a table's rows."""

from __future__ import annotations

import importlib.util
import os
import pathlib
from collections.abc import Callable
from typing import Any

from absl import logging

from associative_embedding.reproduce.checkpoints import synthetic_val_split
from associative_embedding.reproduce.evaluate import (
    PoseEvaluationOptions,
    evaluate_pose_rows,
    evaluate_segmentation_row,
)
from associative_embedding.reproduce.report import TableReport
from associative_embedding.reproduce.tables import TASK_MPII, TASK_SEGMENTATION, get_table

#: The experiments folder beside the package (repository layout).
EXPERIMENTS_DIR = pathlib.Path(__file__).resolve().parents[2] / "experiments"


def load_experiment(spec: str) -> Any:
    """An experiment config from 'NAME.py[:variant]' in ``EXPERIMENTS_DIR`` (or a path), as
    ``tools/train.py --config`` reads it.

    Raises:
        FileNotFoundError: naming the missing config file.
    """
    file_name, _, variant = spec.partition(":")
    path = pathlib.Path(file_name)
    if not path.is_absolute() and not path.is_file():
        path = EXPERIMENTS_DIR / file_name
    if not path.is_file():
        raise FileNotFoundError(f"experiment config not found: {path}")
    module_spec = importlib.util.spec_from_file_location(f"_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(variant)


def train_smoke_run(spec: str, workdir: str, overrides: Callable[[Any], None] | None = None) -> str:
    """Trains ``spec`` (a ':smoke' experiment) into ``workdir``; returns the work dir.

    A work dir that already holds the finished run is resumed, i.e. only re-evaluated.
    """
    from associative_embedding.tasks.registry import make_trainer

    config = load_experiment(spec)
    if overrides is not None:
        overrides(config)
    logging.info("smoke: training %s into %s", spec, workdir)
    make_trainer(config, workdir).train()
    return workdir


def _share_synthetic_people(root: str) -> Callable[[Any], None]:
    def override(config: Any) -> None:
        config.dataset.synthetic_dir = root

    return override


def run_smoke(
    table_number: int, work_dir: str | os.PathLike, *, progress: bool = False
) -> TableReport:
    """The whole chain on tiny data: train the ':smoke' experiments (2 steps each), then
    evaluate the table's rows on their validation split.

    Tables 2-4: synthetic_pose:smoke and synthetic_refine:smoke on one shared set of synthetic
    people (WORK_DIR/synthetic), evaluated on its 4 validation images (Table 4: all four rows).
    Table 1: mpii_hg4_512:smoke and a refinement run on the same 5 MPII sample images
    (the samples that experiment's config names; train = val). Table 5:
    synthetic_shapes_seg:smoke.
    The numbers of 2-step models are meaningless; the chain and the layout are what is tested.

    Returns:
        The report, with a note saying it is a smoke run.
    """
    table = get_table(table_number)
    work_dir = os.fspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    smoke_note = (
        "SMOKE RUN: 2-step models on tiny data; the numbers only show that the chain runs."
    )
    if table.task == TASK_SEGMENTATION:
        run = train_smoke_run(
            "synthetic_shapes_seg.py:smoke", os.path.join(work_dir, "segmentation")
        )
        annotations, images = synthetic_val_split(run)
        report = evaluate_segmentation_row(
            table, run, work_dir, annotations=annotations, images=images, progress=progress,
            split_description=f"evaluated on the synthetic shapes {annotations}",
            synthetic_data=True,
        )
    else:
        if table.task == TASK_MPII:
            samples = load_experiment("mpii_hg4_512.py:smoke").dataset.val_annotations
            if not os.path.isfile(samples):
                raise FileNotFoundError(
                    f"Table 1's smoke run trains on the MPII samples {samples} (../shared/data "
                    "beside the repository), which are absent."
                )
            pose = train_smoke_run("mpii_hg4_512.py:smoke", os.path.join(work_dir, "pose_mpii"))
            refine = train_smoke_run(
                "mpii_refine_hg.py:smoke", os.path.join(work_dir, "refine_mpii")
            )
            config = load_experiment("mpii_hg4_512.py:smoke").dataset
            annotations, images = config.val_annotations, config.val_images
            description = f"evaluated on the MPII samples {annotations}"
        else:
            shared = _share_synthetic_people(os.path.join(work_dir, "synthetic"))
            pose = train_smoke_run("synthetic_pose.py:smoke", os.path.join(work_dir, "pose"),
                                   shared)
            refine = train_smoke_run(
                "synthetic_refine.py:smoke", os.path.join(work_dir, "refine"), shared
            )
            annotations, images = synthetic_val_split(pose)
            description = f"evaluated on the synthetic people {annotations}"
        options = PoseEvaluationOptions(
            checkpoint=pose, refine_checkpoint=refine, progress=progress
        )
        report = evaluate_pose_rows(
            table, annotations, images, options, work_dir, split_description=description,
            synthetic_data=table.task != TASK_MPII,
        )
    report.notes.insert(0, smoke_note)
    return report
