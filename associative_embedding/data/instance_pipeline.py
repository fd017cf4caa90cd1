"""tf.data pipeline of instance-segmentation training batches (paper Sec. 3.4 targets).

    dataset = build_instance_dataset(records, training=True, batch_size=32,
                                     target_config=InstanceTargetConfig(num_categories=3),
                                     augment_config=AugmentConfig(input_size=128))

Every element is a dict (the segmentation batch contract):

    'image'             (B, S, S, 3) float32 in [0, 1], augmented like the pose pipeline
                        (`data/augment.py`: one affine for image and masks, colour jitter).
    'detection_target'  (B, h, w, C) float32: per category, the union of its instance masks,
                        area-averaged from the input resolution onto the (h, w) = S / stride
                        output grid (the fraction of each output pixel covered; with
                        `area_average_targets=False`, that fraction thresholded at 0.5).
    'detection_weight'  (B, h, w, C) float32: 0 where the loss is ignored (crowd / VOC void
                        pixels and the region outside the source image, for every category;
                        instances outside the supervised size range, for their category),
                        else 1.
    'instance_pixels'   (B, N, P) int32 flat indices y * w + x of P output pixels drawn
                        uniformly (with replacement) from each instance's pixels at output
                        resolution; N = `max_instances`.
    'instance_category' (B, N) int32 category channel (-1 on padding rows).
    'instance_valid'    (B, N) float32 1 for an instance with >= 1 output pixel inside the
                        supervised size range, 0 otherwise (padding, cropped away, too small or
                        too large).
    'image_id'          (B,) int64.

The output-resolution instance labels are the instance label map (`data/instances.py`, smaller
instances over larger ones) sampled at the output pixel centres (nearest neighbour), so every
sampled pixel belongs to exactly one instance. The pixel sampling is stateless: a per-example
seed (global seed, pipeline id, element index) drives the augmentation and the samples, so a
seed reproduces the same batches eagerly, in tf.function and in Dataset.map.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from associative_embedding.data import augment
from associative_embedding.data.augment import AugmentConfig
from associative_embedding.data.instances import InstanceRecord, instance_label_map
from associative_embedding.data.skeleton import (
    PipelinePlan,
    load_and_batch,
    shard,
    shuffle_and_repeat,
)

__all__ = ["InstanceTargetConfig", "InstanceTargetEncoder", "build_instance_dataset"]


@dataclasses.dataclass(frozen=True)
class InstanceTargetConfig:
    """How instance targets are encoded.

    Attributes:
        num_categories: C, the detection channels.
        max_instances: N, rows of the instance tensors; further instances (the smallest first
            are kept) still count in the detection target but not in the grouping loss.
        pixels_per_instance: P, pixels sampled per instance for the grouping loss.
        min_instance_size, max_instance_size: supervised range of an instance's size, the
            square root of its visible area in *input* pixels after augmentation (the paper
            supervises only objects within a size range; outside it the instance's pixels are
            ignored for its category). 0 and inf supervise every size.
        area_average_targets: detection targets as the covered fraction of each output pixel
            (True) or that fraction thresholded at 0.5 (False).
    """

    num_categories: int
    max_instances: int = 20
    pixels_per_instance: int = 16
    min_instance_size: float = 0.0
    max_instance_size: float = math.inf
    area_average_targets: bool = True

    def __post_init__(self) -> None:
        if self.num_categories < 1:
            raise ValueError(f"num_categories must be >= 1, got {self.num_categories}")
        if self.max_instances < 1 or self.pixels_per_instance < 1:
            raise ValueError("max_instances and pixels_per_instance must be >= 1")
        if not 0 <= self.min_instance_size <= self.max_instance_size:
            raise ValueError(
                f"need 0 <= min_instance_size <= max_instance_size, got "
                f"{self.min_instance_size}, {self.max_instance_size}"
            )


class InstanceTargetEncoder:
    """Augments one example and encodes its segmentation targets, in TF ops.

    Args:
        target_config: target settings.
        augment_config: geometry and colour augmentation (`AugmentConfig.identity(...)` for
            none); its flip needs no channel swap (categories are flip invariant).
    """

    def __init__(self, target_config: InstanceTargetConfig, augment_config: AugmentConfig):
        self.target_config = target_config
        self.augment_config = augment_config

    def __call__(
        self,
        image: tf.Tensor,
        label_map: tf.Tensor,
        categories: tf.Tensor,
        ignore_mask: tf.Tensor,
        seed: tf.Tensor,
        params: dict[str, tf.Tensor] | None = None,
    ) -> dict[str, tf.Tensor]:
        """One example's network input and targets.

        Args:
            image: (H, W, 3) uint8 or float32 in [0, 1].
            label_map: (H, W) int32, 0 = background, n + 1 = instance n.
            categories: (M,) int32 category channel of instance n.
            ignore_mask: (H, W) uint8, 1 = ignored.
            seed: (2,) int stateless seed (augmentation and pixel sampling).
            params: optional fixed augmentation parameters (keys of
                `augment.sample_augmentation`).

        Returns:
            The batch contract's per-example tensors (module docstring) plus
            'input_from_image' (3, 3) float64.
        """
        config, geometry = self.target_config, self.augment_config
        seed = tf.cast(seed, tf.int64)
        augment_seed = tf.random.experimental.stateless_fold_in(seed, 0)
        sample_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        if params is None:
            params = augment.sample_augmentation(augment_seed, geometry)
        image = tf.convert_to_tensor(image)
        shape = tf.shape(image)
        size, stride = geometry.input_size, geometry.output_stride
        output_size = geometry.output_size
        input_from_image = augment.augmentation_affine(shape[0], shape[1], params, size)
        output_from_image = augment.scale_matrix(tf.constant(1.0 / stride, tf.float64)) @ (
            input_from_image
        )

        warped = augment.warp_image(augment.to_float_image(image), input_from_image, (size, size))
        if geometry.has_color_jitter:
            warped = augment.color_jitter(
                warped, params, geometry.contrast_mode, geometry.color_space
            )
        warped = tf.ensure_shape(warped, [size, size, 3])

        labels = tf.cast(label_map, tf.float32)
        labels_input = tf.cast(
            augment.warp_image(labels, input_from_image, (size, size), interpolation="nearest"),
            tf.int32,
        )
        labels_output = tf.cast(
            augment.warp_image(
                labels, output_from_image, (output_size, output_size), interpolation="nearest"
            ),
            tf.int32,
        )
        ignore = augment.warp_ignore_mask(
            ignore_mask,
            output_from_image,
            (output_size, output_size),
            ignore_outside_image=geometry.ignore_outside_image,
            interpolation=geometry.mask_interpolation,
        )

        categories = tf.cast(tf.reshape(categories, [-1]), tf.int32)
        num_instances = tf.shape(categories)[0]
        # Visible size of each instance in input pixels, after the augmentation.
        input_area = tf.math.bincount(
            tf.reshape(labels_input, [-1]), minlength=num_instances + 1,
            maxlength=num_instances + 1, dtype=tf.float32,
        )[1:]
        instance_size = tf.sqrt(input_area)
        in_range = (
            (input_area > 0)
            & (instance_size >= config.min_instance_size)
            & (instance_size <= config.max_instance_size)
        )

        # Detection target: per-category union at input resolution, area-averaged per output
        # pixel. Out-of-range instances are masked for their category only.
        label_category = tf.concat([[-1], categories], axis=0)
        label_out_of_range = tf.concat([[False], ~in_range], axis=0)
        category_input = tf.gather(label_category, labels_input)  # (S, S), -1 = background
        union = tf.one_hot(category_input, config.num_categories, dtype=tf.float32)
        out_of_range = union * tf.cast(
            tf.gather(label_out_of_range, labels_input), tf.float32
        )[..., None]
        union_out = tf.nn.avg_pool2d(union[None], stride, stride, "VALID")[0]
        if not config.area_average_targets:
            union_out = tf.cast(union_out >= 0.5, tf.float32)
        out_of_range_out = tf.nn.max_pool2d(out_of_range[None], stride, stride, "VALID")[0]
        weight = (1.0 - ignore)[..., None] * (1.0 - out_of_range_out)

        pixels, output_count = _sample_instance_pixels(
            labels_output, num_instances, config.pixels_per_instance, sample_seed
        )
        valid = in_range & (output_count > 0)
        pixels, categories, valid = _pad_instances(
            pixels, categories, valid, input_area, config.max_instances
        )
        return {
            "image": warped,
            "detection_target": tf.ensure_shape(
                union_out, [output_size, output_size, config.num_categories]
            ),
            "detection_weight": tf.ensure_shape(
                weight, [output_size, output_size, config.num_categories]
            ),
            "instance_pixels": pixels,
            "instance_category": categories,
            "instance_valid": tf.cast(valid, tf.float32),
            "input_from_image": input_from_image,
        }


def _sample_instance_pixels(
    labels: tf.Tensor, num_instances: tf.Tensor, samples: int, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """P uniform draws (with replacement) from each instance's pixels of an (h, w) label map.

    Returns:
        pixels (M, P) int32 flat indices (0 for an instance with no pixel), count (M,) int32.
    """
    flat = tf.reshape(labels, [-1])
    num_pixels = tf.shape(flat)[0]
    counts = tf.math.bincount(
        flat, minlength=num_instances + 1, maxlength=num_instances + 1, dtype=tf.int32
    )
    starts = tf.cumsum(counts, exclusive=True)[1:]
    counts = counts[1:]
    # Pixels sorted by label: instance n's pixels are order[starts[n] : starts[n] + counts[n]].
    order = tf.argsort(flat, stable=True)
    uniform = tf.random.stateless_uniform([num_instances, samples], seed=seed)
    offset = tf.cast(tf.floor(uniform * tf.cast(counts[:, None], tf.float32)), tf.int32)
    offset = tf.minimum(offset, tf.maximum(counts[:, None] - 1, 0))
    index = tf.clip_by_value(starts[:, None] + offset, 0, num_pixels - 1)
    pixels = tf.where(counts[:, None] > 0, tf.gather(order, index), tf.zeros_like(index))
    return tf.cast(pixels, tf.int32), counts


def _pad_instances(
    pixels: tf.Tensor,
    categories: tf.Tensor,
    valid: tf.Tensor,
    area: tf.Tensor,
    max_instances: int,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Keeps at most `max_instances` valid instances (largest visible first), padded to N."""
    # Valid instances first, larger first: the grouping loss sees the most pixels.
    key = tf.where(valid, area, -tf.ones_like(area))
    keep = tf.argsort(key, direction="DESCENDING", stable=True)[:max_instances]
    pixels = tf.gather(pixels, keep)
    categories = tf.gather(categories, keep)
    valid = tf.gather(valid, keep)
    missing = max_instances - tf.shape(keep)[0]
    pixels = tf.pad(pixels, [[0, missing], [0, 0]])
    categories = tf.pad(categories, [[0, missing]], constant_values=-1)
    valid = tf.pad(valid, [[0, missing]], constant_values=False)
    samples = pixels.shape[1]
    return (
        tf.ensure_shape(pixels, [max_instances, samples]),
        tf.ensure_shape(categories, [max_instances]),
        tf.ensure_shape(valid, [max_instances]),
    )


def record_arrays(record: InstanceRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label map (H, W) int32, categories (M,) int32, ignore (H, W) uint8) of a record."""
    return instance_label_map(record), record.category_indices, record.ignore_mask()


def build_instance_dataset(
    records: Sequence[InstanceRecord],
    *,
    training: bool,
    batch_size: int,
    target_config: InstanceTargetConfig,
    augment_config: AugmentConfig | None = None,
    seed: int | None = 0,
    deterministic: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    shuffle_buffer_size: int = 1024,
    num_epochs: int | None = None,
    drop_remainder: bool | None = None,
    include_metadata: bool = False,
    num_parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """Segmentation batches (module docstring) from instance records.

    Args:
        records: `InstanceRecord`s (COCO instances, VOC, synthetic shapes).
        training: shuffle, repeat and augment (False: one pass in order, the long side fitted
            to the input and centred, targets still encoded).
        batch_size: *global* batch size (per replica with `input_context`).
        target_config: target encoding.
        augment_config: augmentation (default `AugmentConfig()`; identity when not training).
        seed: global seed of shuffling, augmentation and pixel sampling (None: random).
        deterministic: fixed element order.
        input_context: tf.distribute per-host sharding.
        shuffle_buffer_size: examples in the shuffle buffer.
        num_epochs: passes (training default: forever; otherwise 1).
        drop_remainder: default True for training.
        include_metadata: also return 'input_from_image'.
        num_parallel_calls: map parallelism.

    Raises:
        ValueError: on an empty record list or a bad batch size.
    """
    records = list(records)
    if not records:
        raise ValueError("build_instance_dataset: no records")
    plan = PipelinePlan.resolve(
        batch_size=batch_size, seed=seed, training=training, num_epochs=num_epochs,
        input_context=input_context,
    )
    augment_config = augment_config or AugmentConfig()
    if not training:
        augment_config = AugmentConfig.identity(
            augment_config.input_size, augment_config.output_stride
        )
    encoder = InstanceTargetEncoder(target_config, augment_config)

    file_names = [record.file_name for record in records]
    image_ids = np.asarray([record.image_id for record in records], np.int64)
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.arange(len(records), dtype=np.int64), file_names, image_ids)
    )
    dataset = shard(dataset, input_context)
    dataset = shuffle_and_repeat(
        dataset, plan, training=training,
        shuffle_buffer_size=min(shuffle_buffer_size, len(records)),
    )

    def load_arrays(index: np.int64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return record_arrays(records[int(index)])

    @tf.autograph.experimental.do_not_convert
    def load(example: tuple, example_seed: tf.Tensor) -> dict[str, tf.Tensor]:
        record_index, file_name, image_id = example
        image = tf.io.decode_image(
            tf.io.read_file(file_name), channels=3, expand_animations=False
        )
        label_map, categories, ignore = tf.numpy_function(
            load_arrays, [record_index], (tf.int32, tf.int32, tf.uint8), stateful=False
        )
        label_map.set_shape([None, None])
        categories.set_shape([None])
        ignore.set_shape([None, None])
        encoded = encoder(image, label_map, categories, ignore, example_seed)
        encoded["image_id"] = image_id
        if not include_metadata:
            encoded.pop("input_from_image")
        return encoded

    return load_and_batch(
        dataset, load, plan, training=training, num_parallel_calls=num_parallel_calls,
        deterministic=deterministic, drop_remainder=drop_remainder,
    )
