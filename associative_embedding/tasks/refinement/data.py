"""Single-person crops for the refinement network: one tf.data element per annotated person.

The paper refines each grouped person with a single-person hourglass (Sec. 4.1, [40]) trained
on the same dataset; this module makes its training batches from ``PoseRecord``s.

Crop rule (the same at training, evaluation and inference, so that the network sees at test
time the framing it was trained on; ``tasks.refinement.crops.person_crop_affine``):

    box     = the bounding box (x, y, w, h) of the person's *labelled keypoints* (v > 0), in
              image pixel-centre coordinates (not the record's annotated box: at inference only
              the grouped keypoints are known, so training uses the keypoints too);
    side s  = max(w, h, min_side) * margin        (official demo: min_side 60, margin 1.3);
    centre  = (x + w / 2, y + h / 2);
    crop_from_image: x_crop = S / s * (x - cx) + (S - 1) / 2 (and the same for y), S the crop
              (network input) side, pixel-centre convention (``core.record``).

Training augmentation, the pose pipeline's family (``data/augment.py``) applied to the crop:

    input_from_image = [flip] @ T((S-1)/2, (S-1)/2) @ R(θ) @ Z(S / (s·c)) @ T(-(centre + t·s·c))

θ ~ U(±max_rotation_degrees), crop-side jitter c ~ U(scale_range) (c > 1 shows the person
smaller), translation t ~ U(±max_translation) of the jittered side, horizontal flip (with the
dataset's joint swap) and colour jitter; with no jitter the matrix is exactly
``crop_from_image`` above. ``AugmentConfig.input_size`` is S.

Targets: the K heatmaps of *that person only* at stride 4 (``codec.KeypointEncoder`` with one
person; Gaussians σ = S / 4 / 64 by default), so other people inside the crop are negatives, as
in single-person training on MPII/COCO: the network learns to report the centred person. With
``ignore_other_people=True`` the pixels within the Gaussian windows of other people's labelled
joints are ignored instead (except where the person's own targets are drawn). 'mask' ignores
what the record ignores (crowds and, by default, unlabelled people), warped like the pose
pipeline, and the crop area outside the image.

Batches (B = per-replica batch size, S = crop side, h = w = S / 4):
    'image'         (B, S, S, 3) float32 RGB in [0, 1]
    'heatmaps'      (B, h, w, K) float32
    'mask'          (B, h, w) float32, 1 = supervised
    'image_id'      (B,) int64
    'person_index'  (B,) int32, row of the person in its record's keypoints
  and with ``include_metadata=True`` also
    'keypoints'         (B, 1, K, 3) float32 (ix, iy, valid) integer output pixels (contract 4)
    'input_from_image'  (B, 3, 3) float64, the crop affine (augmentation included)

Pipeline: records → image examples (``data.tfrecord.records_to_dataset``), sharded per host →
[training] shuffle images, repeat → one element per person with >= ``min_joints`` labelled
joints → [training] shuffle people → enumerate → per-example stateless seed (as
``data.pipeline``) → parallel map: decode, crop + augment, encode → batch → prefetch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from associative_embedding.codec.encode import KeypointEncoder
from associative_embedding.core.keypoint_info import KeypointInfo
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import tfrecord
from associative_embedding.data.augment import (
    AugmentConfig,
    Augmenter,
    sample_augmentation,
    square_crop_affine,
    to_float_image,
    transform_keypoints,
    warp_image,
)
from associative_embedding.data.pipeline import decode_raw_example
from associative_embedding.data.skeleton import (
    PipelinePlan,
    load_and_batch,
    shard,
    shuffle_and_repeat,
)
from associative_embedding.tasks.refinement.crops import DEFAULT_MARGIN, DEFAULT_MIN_SIDE


@dataclasses.dataclass(frozen=True)
class PersonCropConfig:
    """Which people are cropped and how (module docstring).

    Attributes:
        min_side: lower bound of the box side before the margin (image pixels; 60 officially).
        margin: crop side = max(w, h, min_side) * margin (1.3 officially).
        min_joints: a person is a training example when it has at least this many labelled
            joints (v > 0); the keypoint box of fewer joints frames the person poorly.
        ignore_other_people: ignore the heatmap loss around other people's labelled joints
            instead of treating them as background (default: background).
    """

    min_side: float = DEFAULT_MIN_SIDE
    margin: float = DEFAULT_MARGIN
    min_joints: int = 1
    ignore_other_people: bool = False

    def __post_init__(self) -> None:
        if self.min_side <= 0 or self.margin <= 0:
            raise ValueError(
                f"min_side and margin must be positive, got {self.min_side}, {self.margin}."
            )
        if self.min_joints < 1:
            raise ValueError(f"min_joints must be >= 1, got {self.min_joints}.")


# --------------------------------------------------------------------------------------------
# Geometry (TF, float64; usable eagerly, in tf.function and in Dataset.map).


def keypoint_box(keypoints: tf.Tensor) -> tf.Tensor:
    """(x, y, w, h) float64 box of one person's labelled joints (v > 0).

    Args:
        keypoints: (K, 3) (x, y, v) image pixels.

    Returns:
        (4,) float64; all zeros when no joint is labelled.
    """
    keypoints = tf.cast(tf.convert_to_tensor(keypoints), tf.float64)
    labelled = keypoints[:, 2] > 0
    xy = tf.boolean_mask(keypoints[:, :2], labelled)
    has_joint = tf.shape(xy)[0] > 0
    safe = tf.cond(has_joint, lambda: xy, lambda: tf.zeros([1, 2], tf.float64))
    low = tf.reduce_min(safe, axis=0)
    high = tf.reduce_max(safe, axis=0)
    return tf.concat([low, high - low], axis=0)


def crop_side(box: tf.Tensor, min_side: float = DEFAULT_MIN_SIDE,
              margin: float = DEFAULT_MARGIN) -> tf.Tensor:
    """s = max(w, h, min_side) * margin, float64 scalar, for a (4,) (x, y, w, h) box."""
    box = tf.cast(box, tf.float64)
    return tf.maximum(tf.maximum(box[2], box[3]), tf.constant(min_side, tf.float64)) * margin


def person_crop_affine(
    box: tf.Tensor,
    crop_size: int,
    *,
    min_side: float = DEFAULT_MIN_SIDE,
    margin: float = DEFAULT_MARGIN,
) -> tf.Tensor:
    """crop_from_image (3, 3) float64: the square of side s about the box centre → S x S.

    TF twin of ``tasks.refinement.crops.person_crop_affine`` (same formula, module docstring), so
    training crops equal the crops of inference.

    Args:
        box: (4,) (x, y, w, h) image pixels.
        crop_size: S.
        min_side, margin: see ``PersonCropConfig``.
    """
    params = identity_augmentation()
    return augmented_crop_affine(box, params, crop_size, min_side=min_side, margin=margin)


def identity_augmentation() -> dict[str, tf.Tensor]:
    """Augmentation parameters (keys of ``augment.sample_augmentation``) that change nothing."""
    zero64 = tf.constant(0.0, tf.float64)
    zero32 = tf.constant(0.0, tf.float32)
    one32 = tf.constant(1.0, tf.float32)
    return {
        "rotation": zero64, "crop_scale": tf.constant(1.0, tf.float64),
        "translate_x": zero64, "translate_y": zero64, "flip": tf.constant(False),
        "hue": zero32, "saturation": one32, "brightness": zero32, "contrast": one32,
    }


def augmented_crop_affine(
    box: tf.Tensor,
    params: dict[str, tf.Tensor],
    crop_size: int,
    *,
    min_side: float = DEFAULT_MIN_SIDE,
    margin: float = DEFAULT_MARGIN,
) -> tf.Tensor:
    """input_from_image (3, 3) float64 of an augmented person crop (module docstring).

    Args:
        box: (4,) (x, y, w, h) keypoint box in image pixels.
        params: ``augment.sample_augmentation`` output ('rotation', 'crop_scale',
            'translate_x', 'translate_y', 'flip').
        crop_size: S.
        min_side, margin: crop rule.
    """
    box = tf.cast(box, tf.float64)
    side = crop_side(box, min_side, margin) * tf.cast(params["crop_scale"], tf.float64)
    centre_x = box[0] + 0.5 * box[2] + tf.cast(params["translate_x"], tf.float64) * side
    centre_y = box[1] + 0.5 * box[3] + tf.cast(params["translate_y"], tf.float64) * side
    return square_crop_affine(centre_x, centre_y, side, params, crop_size)


def crop_image(image: tf.Tensor, crop_from_image: tf.Tensor, crop_size: int) -> tf.Tensor:
    """(S, S, 3) float32 in [0, 1]: bilinear warp of a uint8/float image (black outside).

    The same pixels as the inference crop ``tasks.refinement.crops.crop_image`` of the float image
    (tested to 1e-5), so the network is evaluated on the crops it was trained on.
    """
    warped = warp_image(to_float_image(image), crop_from_image, (crop_size, crop_size))
    return tf.ensure_shape(warped, [crop_size, crop_size, 3])


# --------------------------------------------------------------------------------------------
# One example.


class PersonCropper:
    """Crops, augments and encodes one person of one image (module docstring).

    Args:
        augment_config: ranges and sizes; ``input_size`` is the crop side S.
        flip_index: (K,) joint that joint k becomes after a horizontal flip.
        crop_config: the crop rule and the handling of other people.
        sigma: heatmap σ in output pixels (default (S / stride) / 64).
        subpixel_targets: Gaussians at the exact sub-pixel joint position.
    """

    def __init__(
        self,
        augment_config: AugmentConfig,
        flip_index: Sequence[int],
        crop_config: PersonCropConfig | None = None,
        *,
        sigma: float | None = None,
        subpixel_targets: bool = False,
    ) -> None:
        self.augment_config = augment_config
        # The pose pipeline's warp, colour jitter, ignore-mask warp and flip swap, applied
        # with the person-crop affine (Augmenter.apply).
        self.augmenter = Augmenter(augment_config, flip_index)
        self.flip_index = self.augmenter.flip_index
        self.crop_config = crop_config or PersonCropConfig()
        self.encoder = KeypointEncoder(
            augment_config.output_size,
            len(self.flip_index),
            sigma=sigma,
            max_people=1,
            stride=augment_config.output_stride,
            subpixel=subpixel_targets,
        )

    @property
    def crop_size(self) -> int:
        return self.augment_config.input_size

    def __call__(
        self,
        image: tf.Tensor,
        keypoints: tf.Tensor,
        person_index: tf.Tensor,
        ignore_mask: tf.Tensor | None,
        seed: tf.Tensor,
        params: dict[str, tf.Tensor] | None = None,
    ) -> dict[str, tf.Tensor]:
        """Makes one training example.

        Args:
            image: (H, W, 3) uint8 or float32 in [0, 1].
            keypoints: (P, K, 3) float (x, y, v) image pixels of every person of the image.
            person_index: () int, the cropped person's row.
            ignore_mask: (H, W) 1 = ignored, or None.
            seed: (2,) int stateless seed (unused when `params` is given).
            params: fixed augmentation parameters (keys of ``augment.sample_augmentation``).

        Returns:
            Dict with 'image' (S, S, 3) float32, 'heatmaps' (h, w, K), 'mask' (h, w),
            'keypoints' (1, K, 3) integer output pixels + valid, 'input_from_image' (3, 3)
            float64, 'flip' () bool.
        """
        config = self.augment_config
        crop = self.crop_config
        size = config.input_size
        if params is None:
            params = sample_augmentation(seed, config)
        image = tf.convert_to_tensor(image)
        image.shape.assert_has_rank(3)
        keypoints = tf.convert_to_tensor(keypoints, tf.float32)
        person_index = tf.cast(person_index, tf.int32)
        person = tf.gather(keypoints, person_index)  # (K, 3)

        input_from_image = augmented_crop_affine(
            keypoint_box(person), params, size, min_side=crop.min_side, margin=crop.margin
        )
        augmented = self.augmenter.apply(image, person[None], ignore_mask, input_from_image, params)
        warped, moved, ignore = augmented["image"], augmented["keypoints"], augmented["ignore_mask"]
        output_size = config.output_size
        flip = augmented["flip"]
        targets = self.encoder.encode(moved, ignore)
        mask = targets["mask"]
        if crop.ignore_other_people:
            mask = mask * (1.0 - self._other_people_region(
                keypoints, person_index, input_from_image, targets["heatmaps"]
            ))
        return {
            "image": tf.ensure_shape(warped, [size, size, 3]),
            "heatmaps": targets["heatmaps"],
            "mask": tf.ensure_shape(mask, [output_size, output_size]),
            "keypoints": targets["keypoints"],
            "input_from_image": input_from_image,
            "flip": flip,
        }

    def _other_people_region(
        self,
        keypoints: tf.Tensor,
        person_index: tf.Tensor,
        input_from_image: tf.Tensor,
        own_heatmaps: tf.Tensor,
    ) -> tf.Tensor:
        """(h, w) float32, 1 inside other people's joint windows and off the person's own."""
        others = tf.boolean_mask(keypoints, tf.range(tf.shape(keypoints)[0]) != person_index)
        moved = transform_keypoints(others, input_from_image, self.crop_size)
        other_maps = self.encoder.encode(moved)["heatmaps"]
        near_others = tf.reduce_max(other_maps, axis=-1) > 0
        on_own = tf.reduce_max(own_heatmaps, axis=-1) > 0
        return tf.cast(near_others & ~on_own, tf.float32)


# --------------------------------------------------------------------------------------------
# Datasets.


def labelled_joint_counts(record: PoseRecord) -> np.ndarray:
    """(P,) int, labelled joints (v > 0) of each person of a record."""
    return (record.keypoints[..., 2] > 0).sum(axis=-1)


def count_people(records: Sequence[PoseRecord], min_joints: int = 1) -> int:
    """Number of people with at least `min_joints` labelled joints (training examples)."""
    return int(sum(int((labelled_joint_counts(r) >= min_joints).sum()) for r in records))


def build_person_dataset(
    records: Sequence[PoseRecord],
    *,
    training: bool,
    batch_size: int,
    keypoint_info: KeypointInfo,
    augment_config: AugmentConfig,
    crop_config: PersonCropConfig | None = None,
    sigma: float | None = None,
    subpixel_targets: bool = False,
    seed: int | None = None,
    deterministic: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    shuffle_buffer_size: int = 1024,
    num_epochs: int | None = None,
    drop_remainder: bool | None = None,
    include_metadata: bool = False,
    num_parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """Batches of single-person crops (module docstring).

    Args:
        records: training images (PoseRecords; people with fewer than
            ``crop_config.min_joints`` labelled joints are skipped).
        training: True: shuffle, repeat, random augmentation. False: one pass in record order,
            no augmentation (the crop rule alone), targets still encoded.
        batch_size: *global* batch size; with `input_context` each pipeline batches
            ``input_context.get_per_replica_batch_size(batch_size)``.
        keypoint_info: K and the flip index.
        augment_config: ranges; ``input_size`` is the crop side (must be a multiple of 64 for
            the 4-level hourglass).
        crop_config: the crop rule (default ``PersonCropConfig()``).
        sigma: heatmap σ (default output size / 64).
        subpixel_targets: ``KeypointEncoder(subpixel=True)`` targets.
        seed: shuffling and augmentation seed; None draws one.
        deterministic: fixed element order (with `seed`: identical batches in every run).
        input_context: per-host sharding (by image) for tf.distribute.
        shuffle_buffer_size: images in the image shuffle buffer, and people in the person one.
        num_epochs: passes (training default None = forever, otherwise 1).
        drop_remainder: default True for training, False otherwise.
        include_metadata: also 'keypoints' and 'input_from_image'.
        num_parallel_calls: parallelism of the map.

    Raises:
        ValueError: when no record has a person with enough labelled joints, or on bad sizes.
    """
    plan = PipelinePlan.resolve(
        batch_size=batch_size, seed=seed, training=training, num_epochs=num_epochs,
        input_context=input_context,
    )
    crop_config = crop_config or PersonCropConfig()
    min_joints = int(crop_config.min_joints)
    records = [r for r in records if np.any(labelled_joint_counts(r) >= min_joints)]
    if not records:
        raise ValueError(
            f"build_person_dataset: no person with >= {min_joints} labelled joints in the records"
        )
    if not training:
        # The crop rule alone, with training's mask rules (person crops ignore the placement).
        augment_config = augment_config.without_randomness()
    cropper = PersonCropper(
        augment_config, keypoint_info.flip_index, crop_config,
        sigma=sigma, subpixel_targets=subpixel_targets,
    )

    dataset = tfrecord.records_to_dataset(
        records, num_joints=keypoint_info.num_joints, show_progress=False
    )
    dataset = shard(dataset, input_context)
    dataset = shuffle_and_repeat(
        dataset, plan, training=training,
        shuffle_buffer_size=min(shuffle_buffer_size, len(records)),
    )

    @tf.autograph.experimental.do_not_convert
    def people_of(example: dict[str, tf.Tensor]) -> tf.data.Dataset:
        counts = tf.reduce_sum(tf.cast(example["keypoints"][..., 2] > 0, tf.int32), axis=-1)
        indices = tf.cast(tf.where(counts >= min_joints)[:, 0], tf.int32)
        return tf.data.Dataset.from_tensor_slices(indices).map(
            lambda index: {**example, "person_index": index}
        )

    dataset = dataset.flat_map(people_of)
    if training:
        dataset = dataset.shuffle(
            shuffle_buffer_size, seed=plan.seed + 1, reshuffle_each_iteration=True
        )

    @tf.autograph.experimental.do_not_convert
    def load(example: dict[str, tf.Tensor], example_seed: tf.Tensor) -> dict[str, tf.Tensor]:
        image, ignore_mask = decode_raw_example(example)
        crop = cropper(
            image, example["keypoints"], example["person_index"], ignore_mask, example_seed
        )
        batch = {
            "image": crop["image"],
            "heatmaps": crop["heatmaps"],
            "mask": crop["mask"],
            "image_id": example["image_id"],
            "person_index": example["person_index"],
        }
        if include_metadata:
            batch["keypoints"] = crop["keypoints"]
            batch["input_from_image"] = crop["input_from_image"]
        return batch

    return load_and_batch(
        dataset, load, plan, training=training, num_parallel_calls=num_parallel_calls,
        deterministic=deterministic, drop_remainder=drop_remainder,
    )

