"""tf.data input pipelines: training batches (contract 4) and eval-time batches.

Training (``build_dataset``)::

    source ─ records (from_tensor_slices) or TFRecord shards (list_files → interleave)
      → shard per host (tf.distribute.InputContext: files when there are enough, else examples)
      → [training] shuffle (seeded) → repeat(num_epochs)
      → enumerate → per-example seed = fold_in(fold_in((seed, 0), input_pipeline_id), index)
      → parallel map: read/decode image + ignore mask, augment (data/augment.py),
        encode targets (codec/encode.py)
      → batch(per-replica batch size) → prefetch(AUTOTUNE)

Batches (B = per-replica batch size, S = input size, h = w = S / stride):
    'image'      (B, S, S, 3) float32 RGB in [0, 1]
    'heatmaps'   (B, h, w, K) float32
    'mask'       (B, h, w) float32, 1 = supervised
    'keypoints'  (B, 30, K, 3) float32 (x, y, valid), integer output pixels
    'image_id'   (B,) int64
  and with ``include_metadata=True`` also
    'input_from_image'    (B, 3, 3) float64 affine of the augmentation
    'num_dropped_people'  (B,) int32 people beyond max_people in the keypoint targets

Determinism: the augmentation of an example depends only on (seed, input pipeline id, position
in the stream), never on thread timing, so with ``deterministic=True`` and a fixed ``seed`` the
same batches come out in every run. With ``deterministic=False`` elements may be reordered for
speed (each example's augmentation is still seeded). Iterating the *same* dataset object again
replays the same stream: training datasets repeat internally (``num_epochs=None``: forever), so
one iterator sees fresh augmentations every epoch.

Eval (``build_eval_dataset``): no augmentation; ``augment.eval_preprocess`` (long side →
input_size, pad right/bottom to multiples of 64) with the affine kept so that predictions map
back to image pixels; padded_batch pads further right/bottom, which leaves the affine valid.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import tensorflow as tf

from associative_embedding.codec.encode import DEFAULT_MAX_PEOPLE, KeypointEncoder
from associative_embedding.core.keypoint_info import KeypointInfo
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import tfrecord
from associative_embedding.data.augment import AugmentConfig, Augmenter, eval_preprocess
from associative_embedding.data.skeleton import (
    PipelinePlan,
    dataset_options,
    load_and_batch,
    shuffle_and_repeat,
)

Source = Sequence[PoseRecord] | str | os.PathLike | Sequence[str]

_MAX_INTERLEAVE_CYCLE = 16


def decode_raw_example(example: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """Reads and decodes a raw example's image and ignore mask (see data/tfrecord.py).

    Returns:
        image: (H, W, 3) uint8 RGB (grayscale and RGBA files are converted).
        ignore_mask: (H, W) uint8, 1 = ignored.

    Raises (when the dataset is iterated):
        NotFoundError naming the path for a missing file; InvalidArgumentError naming the image
        id and path for an empty file or one whose size differs from the record's, and
        TensorFlow's own InvalidArgumentError (without the path) for other undecodable data.
        Training checks every file up front with ``image_io.check_image_files``
        (``tasks.pose.inputs``), so these are a last line of defence.
    """
    image_bytes = example["image_bytes"]
    encoded = tf.cond(
        tf.strings.length(image_bytes) > 0,
        lambda: image_bytes,
        lambda: tf.io.read_file(example["image_path"]),
    )
    # decode_image's own error ('Input is empty.') does not say which file.
    not_empty = tf.debugging.Assert(
        tf.strings.length(encoded) > 0,
        ["empty image file: image id", example["image_id"], "path", example["image_path"]],
    )
    with tf.control_dependencies([not_empty]):
        encoded = tf.identity(encoded)
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    height, width = example["height"], example["width"]
    size_check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.stack([height, width]))),
        [
            "decoded image size differs from the record: image id",
            example["image_id"],
            "path",
            example["image_path"],
            "decoded (H, W)",
            tf.shape(image)[:2],
            "record (H, W)",
            tf.stack([height, width]),
        ],
    )
    with tf.control_dependencies([size_check]):
        image = tf.identity(image)
    mask_png = example["ignore_mask_png"]
    ignore_mask = tf.cond(
        tf.strings.length(mask_png) > 0,
        lambda: tf.io.decode_png(mask_png, channels=1)[..., 0],
        lambda: tf.zeros(tf.stack([height, width]), tf.uint8),
    )
    ignore_mask = tf.ensure_shape(ignore_mask, [None, None])
    return image, ignore_mask


def build_dataset(
    source: Source,
    *,
    training: bool,
    batch_size: int,
    keypoint_info: KeypointInfo,
    input_size: int | None = None,
    output_stride: int | None = None,
    augment_config: AugmentConfig | None = None,
    sigma: float | None = None,
    subpixel_targets: bool = False,
    max_people: int = DEFAULT_MAX_PEOPLE,
    seed: int | None = None,
    deterministic: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    shuffle_buffer_size: int = 1024,
    num_epochs: int | None = None,
    drop_remainder: bool | None = None,
    include_metadata: bool = False,
    skip_decode_errors: bool = False,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    threadpool_size: int | None = None,
    cache_decoded_images: bool = False,
) -> tf.data.Dataset:
    """Training (or target-producing validation) batches (layout in the module docstring).

    Args:
        source: PoseRecords, or a TFRecord glob / list of shard paths (data/tfrecord.py schema).
        training: True: shuffle, repeat, random augmentation. False: one pass in order, no
            augmentation (the long side fitted to the input, centred), targets still encoded.
        batch_size: *global* batch size; with `input_context` each pipeline batches
            ``input_context.get_per_replica_batch_size(batch_size)``.
        keypoint_info: dataset metadata (K and the flip index).
        input_size: S (default: augment_config.input_size, else 512).
        output_stride: default augment_config.output_stride, else 4.
        augment_config: augmentation ranges (default: official ranges, ``AugmentConfig()``).
        sigma: heatmap σ (default output_size / 64).
        subpixel_targets: Gaussians centred at the exact sub-pixel joint position
            (``KeypointEncoder(subpixel=True)``; default: official integer pixel).
        max_people: rows of the 'keypoints' targets (30).
        seed: global seed of shuffling and augmentation; None draws one at random.
        deterministic: keep element order fixed (with `seed`: identical batches every run).
        input_context: per-host sharding for tf.distribute (``distribute_datasets_from_function``).
        shuffle_buffer_size: examples in the shuffle buffer (training).
        num_epochs: passes over the data (training default None = forever; eval default 1).
        drop_remainder: default True for training (static batch shape), False otherwise.
        include_metadata: also return 'input_from_image' and 'num_dropped_people'.
        skip_decode_errors: drop examples whose image cannot be read/decoded (TF logs each one)
            instead of failing.
        num_parallel_calls: parallelism of the map (AUTOTUNE).
        threadpool_size: private tf.data threadpool size and max intra-op parallelism (None:
            TF defaults); 1 measures per-core throughput.
        cache_decoded_images: decode every image (and ignore mask) once and keep it in memory
            (``Dataset.cache`` before the shuffle): for a small dataset seen many times, e.g.
            an overfit check, where JPEG decoding is most of the input pipeline's CPU time.
            Memory: every decoded image (H x W x 3 bytes each). Augmentation is unchanged.

    Returns:
        A tf.data.Dataset of dict batches.
    """
    plan = PipelinePlan.resolve(
        batch_size=batch_size, seed=seed, training=training, num_epochs=num_epochs,
        input_context=input_context,
    )
    config = _resolve_augment_config(augment_config, input_size, output_stride, training)
    augmenter = Augmenter(config, keypoint_info.flip_index)
    encoder = KeypointEncoder(
        config.output_size,
        keypoint_info.num_joints,
        sigma=sigma,
        max_people=max_people,
        stride=config.output_stride,
        subpixel=subpixel_targets,
    )

    dataset = _raw_dataset(
        source, keypoint_info.num_joints, input_context, deterministic, plan.seed, training
    )
    if cache_decoded_images:
        dataset = dataset.map(
            _decoded_example, num_parallel_calls=num_parallel_calls, deterministic=True
        )
        if skip_decode_errors:
            dataset = dataset.ignore_errors(log_warning=True)
        dataset = dataset.cache()
    dataset = shuffle_and_repeat(
        dataset, plan, training=training, shuffle_buffer_size=shuffle_buffer_size
    )

    # Plain TF ops, no Python control flow on tensors: skipping AutoGraph makes tracing ~10x
    # faster (seconds per dataset otherwise).
    @tf.autograph.experimental.do_not_convert
    def load(example: dict[str, tf.Tensor], example_seed: tf.Tensor) -> dict[str, tf.Tensor]:
        decoded = example if cache_decoded_images else _decoded_example(example)
        image, ignore_mask = decoded["image"], decoded["ignore_mask"]
        augmented = augmenter(image, example["keypoints"], ignore_mask, example_seed)
        targets = encoder.encode(augmented["keypoints"], augmented["ignore_mask"])
        batch = {
            "image": augmented["image"],
            "heatmaps": targets["heatmaps"],
            "mask": targets["mask"],
            "keypoints": targets["keypoints"],
            "image_id": example["image_id"],
        }
        if include_metadata:
            batch["input_from_image"] = augmented["input_from_image"]
            batch["num_dropped_people"] = targets["num_dropped_people"]
        return batch

    return load_and_batch(
        dataset, load, plan, training=training, num_parallel_calls=num_parallel_calls,
        deterministic=deterministic, drop_remainder=drop_remainder,
        skip_errors=skip_decode_errors, threadpool_size=threadpool_size,
    )


@tf.autograph.experimental.do_not_convert
def _decoded_example(example: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """A raw example's decoded image and ignore mask, with the fields `load` reads."""
    image, ignore_mask = decode_raw_example(example)
    return {
        "image": image,
        "ignore_mask": ignore_mask,
        "keypoints": example["keypoints"],
        "image_id": example["image_id"],
    }


def build_eval_dataset(
    source: Source,
    *,
    keypoint_info: KeypointInfo,
    input_size: int = 512,
    multiple: int = 64,
    batch_size: int = 1,
    antialias: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    skip_decode_errors: bool = False,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    threadpool_size: int | None = None,
) -> tf.data.Dataset:
    """Eval-time batches: resized/padded images with the affine back to image pixels.

    Elements are in source order (deterministic), one pass. Batches:
        'image'             (B, Hp, Wp, 3) float32 in [0, 1], zero padding right/bottom
        'input_from_image'  (B, 3, 3) float64 (``transforms.eval_resize_affine``)
        'image_id'          (B,) int64
        'image_size'        (B, 2) int32 original (height, width)
        'resized_size'      (B, 2) int32 size of the resized image inside the padding
        'keypoints'         (B, P, K, 3) float32 annotated keypoints in *image* pixels, padded
                            with zeros to the batch's largest P

    Args:
        source: PoseRecords or TFRecord glob / paths.
        keypoint_info: dataset metadata (K).
        input_size: long side after resizing (0 keeps the original resolution).
        multiple: padding multiple (64).
        batch_size: images per batch (global; per-replica with `input_context`). With B > 1 the
            images are padded to the largest in the batch.
        antialias: antialiased resize when shrinking.
        input_context, skip_decode_errors, num_parallel_calls, threadpool_size: as in
            ``build_dataset``.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    per_replica_batch = (
        input_context.get_per_replica_batch_size(batch_size) if input_context else batch_size
    )
    dataset = _raw_dataset(
        source, keypoint_info.num_joints, input_context, True, 0, training=False
    )

    @tf.autograph.experimental.do_not_convert
    def load(example: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        image, _ = decode_raw_example(example)
        processed = eval_preprocess(image, input_size, multiple, antialias=antialias)
        return {
            "image": processed["image"],
            "input_from_image": processed["input_from_image"],
            "image_id": example["image_id"],
            "image_size": processed["image_size"],
            "resized_size": processed["resized_size"],
            "keypoints": tf.ensure_shape(example["keypoints"], [None, keypoint_info.num_joints, 3]),
        }

    dataset = dataset.map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
    if skip_decode_errors:
        dataset = dataset.ignore_errors(log_warning=True)
    dataset = dataset.padded_batch(per_replica_batch)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(dataset_options(True, threadpool_size))


# --------------------------------------------------------------------------------------------


def _raw_dataset(
    source: Source,
    num_joints: int,
    input_context: tf.distribute.InputContext | None,
    deterministic: bool,
    seed: int,
    training: bool,
) -> tf.data.Dataset:
    """Raw examples (data/tfrecord.py), sharded for this input pipeline."""
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    if _is_record_list(source):
        dataset = tfrecord.records_to_dataset(list(source), num_joints=num_joints)
        if num_pipelines > 1:
            dataset = dataset.shard(num_pipelines, pipeline_id)
        return dataset

    files = tfrecord.resolve_files(source)
    shard_files = num_pipelines > 1 and len(files) >= num_pipelines
    if shard_files:
        files = files[pipeline_id::num_pipelines]
    # Sharding examples by position needs the same order on every host: no file shuffle (the
    # hosts' seeds may differ) and a deterministic interleave.
    shard_examples = num_pipelines > 1 and not shard_files
    deterministic = deterministic or shard_examples
    file_dataset = tf.data.Dataset.from_tensor_slices(files)
    if training and len(files) > 1 and not shard_examples:
        file_dataset = file_dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = file_dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), _MAX_INTERLEAVE_CYCLE),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if shard_examples:
        # Fewer files than hosts: every host reads everything and keeps every n-th example.
        dataset = dataset.shard(num_pipelines, pipeline_id)
    return dataset.map(
        tf.autograph.experimental.do_not_convert(
            lambda serialized: tfrecord.parse_example(serialized, num_joints)
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )


def _is_record_list(source: Source) -> bool:
    if isinstance(source, (str, os.PathLike)):
        return False
    items = list(source)
    if not items:
        raise ValueError("build_dataset: the source is empty (no records and no files).")
    if all(isinstance(item, PoseRecord) for item in items):
        return True
    if all(isinstance(item, (str, os.PathLike)) for item in items):
        return False
    raise TypeError("source must be PoseRecords, a TFRecord glob, or a list of paths.")


def _resolve_augment_config(
    config: AugmentConfig | None,
    input_size: int | None,
    output_stride: int | None,
    training: bool,
) -> AugmentConfig:
    if config is None:
        config = AugmentConfig(
            input_size=512 if input_size is None else input_size,
            output_stride=4 if output_stride is None else output_stride,
        )
    for name, value in (("input_size", input_size), ("output_stride", output_stride)):
        if value is not None and getattr(config, name) != value:
            raise ValueError(
                f"{name}={value} disagrees with augment_config.{name}={getattr(config, name)}."
            )
    if not training:
        # Validation targets: same geometry and mask rules, no randomness.
        config = config.without_randomness()
    return config


