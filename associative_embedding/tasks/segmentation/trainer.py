"""Instance segmentation with associative embedding (paper Sec. 3.4), on the shared trainer.

`SegmentationTrainer` is a task of `training.trainer.Trainer`: the same stacked hourglass
(C detection channels + C * D tag channels), optimizer, distributed step, checkpointing,
summaries and driver (`tools/train.py` picks it when `config.task == 'segmentation'`). It
supplies the data (COCO instances, PASCAL VOC or the synthetic shapes), the loss
(`losses.per_example_segmentation_loss`) and the evaluation (mAP^r at IoU 0.5 / 0.7 and COCO
segm AP, `evaluation.instance_segmentation`), whose `mAPr@0.5` picks the best checkpoint.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile
from typing import Any

import ml_collections
import numpy as np
import tensorflow as tf

from associative_embedding import losses
from associative_embedding.data.coco_instances import read_coco_instances
from associative_embedding.data.instance_pipeline import (
    InstanceTargetConfig,
    build_instance_dataset,
)
from associative_embedding.data.instances import InstanceCategories, InstanceRecord
from associative_embedding.data.synthetic import shapes as synthetic_shapes
from associative_embedding.data.synthetic.writer import generate_missing_splits
from associative_embedding.data.voc import read_voc_instances
from associative_embedding.tasks.segmentation.evaluation_hook import evaluate_segmentation
from associative_embedding.tasks.segmentation.predict import write_categories
from associative_embedding.training.config import augment_config
from associative_embedding.training.trainer import Trainer

SEGMENTATION_LOSS_PARTS = ("detection", "pull", "push")


@dataclasses.dataclass
class SegmentationData:
    """Resolved data of one segmentation experiment."""

    train_records: list[InstanceRecord]
    val_records: list[InstanceRecord]
    categories: InstanceCategories


def _synthetic_shapes_paths(config: ml_collections.ConfigDict, root: str) -> dict[str, str]:
    """Generates the synthetic shapes splits when missing; returns their paths."""
    dataset = config.dataset
    return generate_missing_splits(
        root,
        generate=synthetic_shapes.generate_synthetic_shapes,
        annotation_path=synthetic_shapes.shapes_annotation_path,
        num_train=dataset.synthetic_num_train,
        num_val=dataset.synthetic_num_val,
        seed=dataset.synthetic_seed,
        image_size=dataset.synthetic_image_size,
        description="synthetic shapes",
    )


def prepare_segmentation_data(
    config: ml_collections.ConfigDict, workdir: str, *, is_chief: bool = True
) -> SegmentationData:
    """Reads (and for 'synthetic_shapes' first generates) the train and val splits.

    Raises:
        ValueError: on an unknown dataset kind, missing paths, no training images, or
            categories that disagree with `config.dataset.num_categories`.
    """
    dataset = config.dataset
    category_ids = tuple(dataset.category_ids) or None
    if dataset.kind in ("synthetic_shapes", "coco"):
        if dataset.kind == "synthetic_shapes":
            root = dataset.synthetic_dir or os.path.join(workdir, "synthetic_shapes")
            if not is_chief and not dataset.synthetic_dir:
                # A non-chief worker must not write into the work dir; the generation is
                # seeded, so every worker makes the same images (as for the pose data).
                root = tempfile.mkdtemp(prefix="ae_worker_synthetic_shapes_")
                atexit.register(shutil.rmtree, root, ignore_errors=True)
            paths = _synthetic_shapes_paths(config, root)
        else:
            paths = {key: dataset[key] for key in
                     ("train_annotations", "train_images", "val_annotations", "val_images")}
            missing = [key for key, value in paths.items() if not value]
            if missing:
                raise ValueError(
                    "config.dataset needs "
                    + ", ".join(f"--config.dataset.{key}" for key in missing)
                )
        train_records, categories = read_coco_instances(
            paths["train_annotations"], paths["train_images"], category_ids=category_ids
        )
        val_records, val_categories = read_coco_instances(
            paths["val_annotations"], paths["val_images"], category_ids=categories.ids
        )
    elif dataset.kind == "voc":
        if not dataset.voc_root:
            raise ValueError("config.dataset.kind='voc' needs --config.dataset.voc_root")
        train_records, categories = read_voc_instances(
            dataset.voc_root, dataset.voc_train_split, category_ids=category_ids
        )
        val_records, val_categories = read_voc_instances(
            dataset.voc_root, dataset.voc_val_split, category_ids=categories.ids
        )
    else:
        raise ValueError(
            f"config.dataset.kind={dataset.kind!r} is not a segmentation dataset "
            "('synthetic_shapes', 'coco' or 'voc')"
        )
    if categories.num_categories != int(dataset.num_categories):
        raise ValueError(
            f"the dataset has {categories.num_categories} categories {categories.names} but "
            f"config.dataset.num_categories={dataset.num_categories}"
        )
    if val_categories.ids != categories.ids:
        raise ValueError(
            f"train and val categories differ: {categories.ids} vs {val_categories.ids}"
        )
    train_records = [record for record in train_records if record.num_instances]
    if not train_records:
        raise ValueError("no training image has a usable instance")
    return SegmentationData(train_records, val_records, categories)


class SegmentationTrainer(Trainer):
    """Instance segmentation: detection MSE + sampled-pixel grouping loss; mAP^r evaluation."""

    loss_parts = SEGMENTATION_LOSS_PARTS
    best_metric = "mAPr@0.5"

    def prepare_data(self) -> SegmentationData:
        data = prepare_segmentation_data(self.config, self.workdir, is_chief=self.is_chief)
        if self.is_chief:
            # Names and dataset ids of the channels, for predict/export from the work dir.
            write_categories(self.workdir, data.categories)
        return data

    def target_config(self) -> InstanceTargetConfig:
        inputs, codec = self.config.input, self.config.codec
        return InstanceTargetConfig(
            num_categories=int(self.config.dataset.num_categories),
            max_instances=int(codec.max_instances),
            pixels_per_instance=int(codec.pixels_per_instance),
            min_instance_size=float(inputs.min_instance_size),
            max_instance_size=float(inputs.max_instance_size),
            area_average_targets=bool(codec.area_average_targets),
        )

    def build_replica_dataset(
        self, input_context: tf.distribute.InputContext, seed: int
    ) -> tf.data.Dataset:
        return build_instance_dataset(
            self.data.train_records,
            training=True,
            batch_size=self.global_batch_size,
            target_config=self.target_config(),
            # The pose pipeline's augmentation settings (the same `config.input` fields).
            augment_config=augment_config(self.config),
            seed=seed,
            deterministic=bool(self.config.train.deterministic),
            input_context=input_context,
            shuffle_buffer_size=self.config.input.shuffle_buffer_size,
        )

    def build_losses(
        self, outputs: tf.Tensor, batch: dict[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        loss = self.config.loss
        return losses.per_example_segmentation_loss(
            outputs,
            batch,
            num_categories=int(self.config.dataset.num_categories),
            tag_dim=self.config.model.tag_dim,
            detection_weight=loss.detection_weight,
            pull_weight=loss.pull_weight,
            push_weight=loss.push_weight,
            push_type=loss.push_type,
            normalization=loss.normalization,
            detection_foreground_weight=loss.detection_foreground_weight,
        )

    def evaluate(self, step: int) -> dict[str, float]:
        return evaluate_segmentation(self, step)

    def evaluation_summary(self, metrics: dict[str, Any]) -> str:
        return " ".join(
            f"{key}={metrics[key]:.4f}" for key in ("mAPr@0.5", "mAPr@0.7", "segm_AP")
            if isinstance(metrics.get(key), float | int) and np.isfinite(metrics[key])
        )

