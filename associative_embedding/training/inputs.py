"""Training and validation data for the trainer, built from `config.dataset` and `config.input`.

`prepare_data` resolves the dataset (generating the synthetic people into the work dir when the
experiment asks for them and they are missing) into `TrainingData`; `train_dataset` builds one
host's shard of the per-replica training batches for a tf.distribute.InputContext (the trainer
stacks them over the local replicas, see `PoseTrainer.build_inputs`).
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile

import ml_collections
import tensorflow as tf
from absl import logging

from associative_embedding.data import coco, mpii, synthetic
from associative_embedding.data.augment import AugmentConfig
from associative_embedding.data.keypoint_info import KeypointInfo
from associative_embedding.data.pipeline import build_dataset
from associative_embedding.data.record import PoseRecord
from associative_embedding.evaluation import predictor


@dataclasses.dataclass
class TrainingData:
    """Resolved data of one experiment.

    Attributes:
        train_records: training images (only those with usable people).
        val_split: the validation split in eval mode (every image kept), with its format, so
            the matching evaluator (COCO OKS AP or MPII multi-person mAP) can be built.
    """

    train_records: list[PoseRecord]
    val_split: predictor.Split

    @property
    def val_records(self) -> list[PoseRecord]:
        return self.val_split.records


def _synthetic_paths(
    config: ml_collections.ConfigDict, workdir: str, private_dir: str | None = None
) -> dict[str, str]:
    """Generates the synthetic dataset when missing; returns its annotation/image paths.

    `private_dir` replaces WORKDIR/synthetic (a non-chief worker must not write into the work
    dir; the generation is seeded, so every worker makes the same images).
    """
    dataset = config.dataset
    root = dataset.synthetic_dir or private_dir or os.path.join(workdir, "synthetic")
    paths = {}
    for split, num_images, seed in (
        ("train", dataset.synthetic_num_train, dataset.synthetic_seed),
        ("val", dataset.synthetic_num_val, dataset.synthetic_seed + 1),
    ):
        annotation = synthetic.annotation_path(root, split)
        if not annotation.exists():
            logging.info("generating %d synthetic %s images into %s", num_images, split, root)
            synthetic.generate_synthetic_dataset(
                root, split=split, num_images=num_images, seed=seed,
                image_size=dataset.synthetic_image_size, show_progress=True,
            )
        paths[f"{split}_annotations"] = os.fspath(annotation)
        paths[f"{split}_images"] = os.path.join(root, split)
    return paths


def read_train_records(
    annotation_file: str, image_dir: str, ignore: str
) -> list[PoseRecord]:
    """Training records of a COCO-format file or an MPII JSON conversion / .mat release."""
    annotation_format = predictor.detect_annotation_format(annotation_file)
    common = dict(split_role="train", ignore=ignore)
    if annotation_format == predictor.FORMAT_COCO:
        records, _ = coco.read_coco_keypoints(annotation_file, image_dir, **common)
    elif annotation_format == predictor.FORMAT_MPII_JSON:
        records, _ = mpii.read_mpii_json(annotation_file, image_dir, **common)
    else:
        records, _ = mpii.read_mpii_mat(annotation_file, image_dir, **common)
    return records


def resolve_split_paths(dataset: ml_collections.ConfigDict) -> dict[str, str]:
    """The train/val annotation and image paths of a 'coco' or 'mpii' `config.dataset`.

    Validation defaults to the training split when both val fields are empty (an overfit
    check, e.g. experiments/coco_overfit.py, evaluates on the images it memorises); that
    choice is logged, because AP on training images says nothing about generalisation.

    Raises:
        ValueError: naming the flags when the train paths, or only one val path, are missing.
        FileNotFoundError: naming the config field whose file or folder does not exist.
    """
    paths = {key: dataset[key] for key in
             ("train_annotations", "train_images", "val_annotations", "val_images")}
    if not paths["val_annotations"] and not paths["val_images"]:
        paths["val_annotations"] = paths["train_annotations"]
        paths["val_images"] = paths["train_images"]
        if paths["train_annotations"]:
            logging.warning(
                "config.dataset.val_annotations/val_images are empty: validating on the "
                "training split %s (AP on the training images)", paths["train_annotations"],
            )
    missing = [key for key, value in paths.items() if not value]
    if missing:
        raise ValueError(
            "config.dataset needs " + ", ".join(f"--config.dataset.{k}" for k in missing)
        )
    for key, value in paths.items():
        if not os.path.exists(value):
            raise FileNotFoundError(
                f"config.dataset.{key}: {value} does not exist (set --config.dataset.{key})"
            )
    return paths


def prepare_data(
    config: ml_collections.ConfigDict, workdir: str, *, is_chief: bool = True, worker_index: int = 0
) -> TrainingData:
    """Reads (and for 'synthetic' first generates) the experiment's train and val splits.

    Args:
        config: the experiment config (`dataset` section).
        workdir: the work dir; synthetic data is generated into WORKDIR/synthetic by the chief
            and into a private temporary folder by the other workers of a cluster.
        is_chief, worker_index: this worker's role in a multi-worker cluster.
    """
    dataset = config.dataset
    if dataset.kind == "synthetic":
        private_dir = None
        if not is_chief:
            private_dir = tempfile.mkdtemp(prefix=f"ae_worker{worker_index}_synthetic_")
            atexit.register(shutil.rmtree, private_dir, ignore_errors=True)
        paths = _synthetic_paths(config, workdir, private_dir)
    elif dataset.kind in ("coco", "mpii"):
        paths = resolve_split_paths(dataset)
    else:
        raise ValueError(
            f"config.dataset.kind={dataset.kind!r} is not supported by the pose trainer "
            "(use 'coco' for any COCO-format keypoint file, 'mpii', or 'synthetic')"
        )
    train_records = read_train_records(
        paths["train_annotations"], paths["train_images"], dataset.ignore
    )
    if not train_records:
        raise ValueError(f"no usable training images in {paths['train_annotations']}")
    val_split = predictor.read_split(
        paths["val_annotations"], paths["val_images"], dataset=dataset.keypoints
    )
    return TrainingData(train_records, val_split)


def augment_config(config: ml_collections.ConfigDict) -> AugmentConfig:
    """The augmentation settings of `config.input`."""
    inputs = config.input
    values = dict(
        input_size=inputs.input_size,
        output_stride=inputs.output_stride,
        max_rotation_degrees=inputs.max_rotation_degrees,
        scale_range=tuple(inputs.scale_range),
        max_translation=inputs.max_translation,
        flip_probability=inputs.flip_probability,
        placement=inputs.get("placement", "centre"),
    )
    if not inputs.color_jitter:
        values.update(max_hue_delta=0.0, saturation_range=(1.0, 1.0),
                      max_brightness_delta=0.0, contrast_range=(1.0, 1.0))
    return AugmentConfig(**values)


def train_dataset(
    config: ml_collections.ConfigDict,
    data: TrainingData,
    keypoint_info: KeypointInfo,
    input_context: tf.distribute.InputContext | None = None,
    seed: int | None = None,
    include_metadata: bool = False,
) -> tf.data.Dataset:
    """One host's training batches (per-replica batch size when `input_context` is given).

    `seed` overrides `config.train.seed` (shuffling and augmentation); `include_metadata` adds
    each example's augmentation affine 'input_from_image' (B, 3, 3), for checks that map the
    targets back to the image (``data.pipeline.build_dataset``).
    """
    return build_dataset(
        data.train_records,
        training=True,
        batch_size=config.train.global_batch_size,
        keypoint_info=keypoint_info,
        augment_config=augment_config(config),
        sigma=config.input.sigma or None,
        subpixel_targets=bool(config.input.subpixel_targets),
        max_people=config.input.max_people,
        seed=config.train.seed if seed is None else seed,
        deterministic=bool(config.train.deterministic),
        input_context=input_context,
        shuffle_buffer_size=config.input.shuffle_buffer_size,
        include_metadata=include_metadata,
        cache_decoded_images=bool(config.input.get("cache_decoded_images", False)),
    )
