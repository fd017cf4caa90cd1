"""Training and validation data for the trainer, built from `config.dataset`, `config.codec`
and `config.input`.

`prepare_data` resolves the dataset (generating the synthetic people into the work dir when the
experiment asks for them and they are missing) into `TrainingData`; `train_dataset` builds one
host's shard of the per-replica training batches for a tf.distribute.InputContext (the trainer
stacks them over the local replicas, see `PoseTrainer.build_inputs`).

Bad inputs are found before the first step. Annotations: each file goes through its reader's
check (``data.annotation_checks``), which skips and counts invalid entries, or with
``config.dataset.strict_annotations`` raises naming the file and the ids. Images: every
training and validation image is checked by ``data.image_io.check_image_files``. With
``config.dataset.skip_bad_images=False`` (default) a quick check (header, size, end marker)
runs and the first bad files stop the run with their paths; with True every image is fully
decoded, and the bad ones are skipped, counted in a warning and listed (path, tab, problem) in
WORKDIR/skipped_images.txt.
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

from associative_embedding.core.keypoint_info import KeypointInfo
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import image_io, readers, synthetic
from associative_embedding.data.pipeline import build_dataset
from associative_embedding.data.readers import read_train_records
from associative_embedding.data.synthetic.writer import generate_missing_splits
from associative_embedding.training.config import augment_config


@dataclasses.dataclass
class TrainingData:
    """Resolved data of one experiment.

    Attributes:
        train_records: training images (only those with usable people).
        val_split: the validation split in eval mode (every image kept), with its format, so
            the matching evaluator (COCO OKS AP or MPII multi-person mAP) can be built.
    """

    train_records: list[PoseRecord]
    val_split: readers.Split

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
    return generate_missing_splits(
        root,
        generate=synthetic.generate_synthetic_dataset,
        annotation_path=synthetic.annotation_path,
        num_train=dataset.synthetic_num_train,
        num_val=dataset.synthetic_num_val,
        seed=dataset.synthetic_seed,
        image_size=dataset.synthetic_image_size,
        description="synthetic",
    )


#: Where a run with ``config.dataset.skip_bad_images`` lists the images it skipped.
SKIPPED_IMAGES_NAME = "skipped_images.txt"


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
    strict = bool(dataset.get("strict_annotations", False))
    skip_bad_images = bool(dataset.get("skip_bad_images", False))
    train_records = read_train_records(
        paths["train_annotations"], paths["train_images"], dataset.ignore, strict=strict
    )
    val_split = readers.read_split(
        paths["val_annotations"], paths["val_images"], dataset=dataset.keypoints, strict=strict
    )
    skipped: list[tuple[str, str]] = []
    train_records = checked_images(
        train_records, paths["train_annotations"], skip=skip_bad_images, skipped=skipped
    )
    val_split.records = checked_images(
        val_split.records, paths["val_annotations"], skip=skip_bad_images, skipped=skipped
    )
    if skip_bad_images and is_chief:
        write_skipped_images(workdir, skipped)
    if not train_records:
        raise ValueError(f"no usable training images in {paths['train_annotations']}")
    return TrainingData(train_records, val_split)


def checked_images(
    records: list[PoseRecord],
    annotation_file: str,
    *,
    skip: bool,
    skipped: list[tuple[str, str]] | None = None,
) -> list[PoseRecord]:
    """`records` whose image files are usable (``image_io.check_image_files``).

    Args:
        records: a split's records (file names and annotated sizes).
        annotation_file: the split's annotations (named in messages).
        skip: fully decode every image and drop the bad ones (appended to `skipped` as
            (path, problem) and counted in a warning); False: quick check, and raise.
        skipped: collects the dropped files.

    Raises:
        image_io.ImageDecodeError: without `skip`, naming the bad files (up to 5) and the
            setting that skips them.
    """
    checked = [record for record in records if record.file_name]  # TFDS/bytes-only: no file
    problems = image_io.check_image_files(
        [record.file_name for record in checked], decode=skip,
        expected_sizes=[(record.height, record.width) for record in checked],
        progress=len(checked) >= 1000,
    )
    if not problems:
        return records
    if not skip:
        listed = "\n  ".join(list(problems.values())[:5])
        raise image_io.ImageDecodeError(
            f"{len(problems)} of the {len(records)} images of {annotation_file} cannot be "
            f"used:\n  {listed}\nReplace or remove them, or set "
            "--config.dataset.skip_bad_images=True to skip them (they are then listed in "
            f"WORKDIR/{SKIPPED_IMAGES_NAME})."
        )
    logging.warning(
        "skipping %d of the %d images of %s that cannot be used, e.g. %s",
        len(problems), len(records), annotation_file, next(iter(problems.values())),
    )
    if skipped is not None:
        skipped.extend(problems.items())
    return [record for record in records if record.file_name not in problems]


def write_skipped_images(workdir: str, skipped: list[tuple[str, str]]) -> str:
    """Writes WORKDIR/skipped_images.txt: one 'path<TAB>problem' line per skipped image (an
    empty file when none was skipped, so a rerun does not show a stale list); returns it."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, SKIPPED_IMAGES_NAME)
    with open(path, "w") as handle:
        for file_name, problem in dict(skipped).items():
            problem = problem.removeprefix(f"{file_name}: ")
            handle.write(f"{file_name}\t{problem}\n")
    if skipped:
        logging.warning("%d skipped images are listed in %s", len(dict(skipped)), path)
    return path


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
        sigma=config.codec.sigma or None,
        subpixel_targets=bool(config.codec.subpixel_targets),
        max_people=config.codec.max_people,
        seed=config.train.seed if seed is None else seed,
        deterministic=bool(config.train.deterministic),
        input_context=input_context,
        shuffle_buffer_size=config.input.shuffle_buffer_size,
        include_metadata=include_metadata,
        cache_decoded_images=bool(config.input.get("cache_decoded_images", False)),
    )
