"""Training augmentation and eval-time preprocessing in TensorFlow ops (graph compatible).

``Augmenter`` augments one training example: one 3x3 affine ``input_from_image`` (a random
rotation, scale, translation and horizontal flip; ``data.augmentation.affine``) warps the image
and, straight to the output (heatmap) resolution, the ignore mask
(``data.augmentation.warp``) and moves the keypoints, swapping the joints by the dataset's
flip index when flipped; colour jitter (``data.augmentation.color``) follows the warp. Every
random number comes from a per-example stateless seed (``data.augmentation.params``), so the
same seed gives the same augmentation eagerly, in ``tf.function`` and in ``Dataset.map``.
The official pose-ae-train ranges are the defaults of ``AugmentConfig``.

``eval_preprocess`` (``data.augmentation.eval_preprocess``) is the test-time resize and pad.

This module is the public entry point: it re-exports the names of the ``data.augmentation``
modules that the pipelines, the refinement crops, the exporters and the tests use.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from associative_embedding.data.augmentation.affine import (
    augmentation_affine,
    flip_matrix,
    invert_affine,
    output_from_input,
    rotation_matrix,
    scale_matrix,
    square_crop_affine,
    transform_keypoints,
    transform_points,
    translation_matrix,
)
from associative_embedding.data.augmentation.color import (
    color_jitter,
    to_float_image,
    yiq_color_matrix,
)
from associative_embedding.data.augmentation.eval_preprocess import eval_preprocess
from associative_embedding.data.augmentation.params import (
    PLACEMENTS,
    AugmentConfig,
    sample_augmentation,
)
from associative_embedding.data.augmentation.warp import warp_ignore_mask, warp_image

__all__ = [
    "PLACEMENTS",
    "AugmentConfig",
    "Augmenter",
    "augment",
    "augmentation_affine",
    "color_jitter",
    "eval_preprocess",
    "flip_matrix",
    "invert_affine",
    "output_from_input",
    "rotation_matrix",
    "sample_augmentation",
    "scale_matrix",
    "square_crop_affine",
    "to_float_image",
    "transform_keypoints",
    "transform_points",
    "translation_matrix",
    "warp_ignore_mask",
    "warp_image",
    "yiq_color_matrix",
]


class Augmenter:
    """Per-example training augmentation: one affine for image, ignore mask and keypoints.

    Args:
        config: ranges and sizes (``AugmentConfig``).
        flip_index: (K,) joint that joint k becomes after a horizontal flip
            (``KeypointInfo.flip_index``).
    """

    def __init__(self, config: AugmentConfig, flip_index: Sequence[int]) -> None:
        self.config = config
        self.flip_index = tuple(int(k) for k in flip_index)
        if sorted(self.flip_index) != list(range(len(self.flip_index))):
            raise ValueError(f"flip_index is not a permutation: {self.flip_index}")

    @property
    def num_joints(self) -> int:
        return len(self.flip_index)

    def __call__(
        self,
        image: tf.Tensor,
        keypoints: tf.Tensor,
        ignore_mask: tf.Tensor | None,
        seed: tf.Tensor,
        params: dict[str, tf.Tensor] | None = None,
    ) -> dict[str, tf.Tensor]:
        """Augments one example.

        Args:
            image: (H, W, 3) uint8 or float32 in [0, 1].
            keypoints: (P, K, 3) float (x, y, v) in image pixels.
            ignore_mask: (H, W) 1 = ignored, or None (nothing ignored inside the image).
            seed: (2,) int stateless seed (ignored when `params` is given).
            params: optional fixed parameters (keys of ``sample_augmentation``), for tests and
                for reproducing a particular augmentation.

        Returns:
            Dict with 'image' (S, S, 3) float32 in [0, 1]; 'keypoints' (P, K, 3) float32 in
            input pixels, joints swapped when flipped, v = 0 for joints outside the input;
            'ignore_mask' (S/stride, S/stride) float32, 1 = ignored; 'input_from_image' (3, 3)
            float64; 'flip' () bool.
        """
        config = self.config
        if params is None:
            params = sample_augmentation(seed, config)
        image = tf.convert_to_tensor(image)
        image.shape.assert_has_rank(3)
        shape = tf.shape(image)
        input_from_image = augmentation_affine(
            shape[0], shape[1], params, config.input_size, config.placement
        )
        return self.apply(image, keypoints, ignore_mask, input_from_image, params)

    def apply(
        self,
        image: tf.Tensor,
        keypoints: tf.Tensor,
        ignore_mask: tf.Tensor | None,
        input_from_image: tf.Tensor,
        params: dict[str, tf.Tensor],
    ) -> dict[str, tf.Tensor]:
        """Applies a given affine (and `params`' colour jitter and flip flag) to one example.

        `__call__` with the whole-image affine; the refinement network's person crops
        (`tasks.refinement.data.PersonCropper`) with a crop around one person. Arguments and
        result as `__call__`, with `input_from_image` (3, 3) float64 image -> input pixels
        (it must contain the flip when params['flip'] is true).
        """
        config = self.config
        image = tf.convert_to_tensor(image)
        image.shape.assert_has_rank(3)
        shape = tf.shape(image)
        height, width = shape[0], shape[1]
        size = config.input_size
        output_size = config.output_size

        # Convert before warping so that bilinear interpolation is not rounded to uint8.
        warped = warp_image(to_float_image(image), input_from_image, (size, size))
        if config.has_color_jitter:
            warped = color_jitter(warped, params, config.contrast_mode, config.color_space)
        warped = tf.ensure_shape(warped, [size, size, 3])

        output_from_image = output_from_input(config.output_stride) @ input_from_image
        if ignore_mask is None:
            ignore_mask = tf.zeros([height, width], tf.uint8)
        ignore = warp_ignore_mask(
            ignore_mask,
            output_from_image,
            (output_size, output_size),
            ignore_outside_image=config.ignore_outside_image,
            interpolation=config.mask_interpolation,
        )
        ignore = tf.ensure_shape(ignore, [output_size, output_size])

        moved = transform_keypoints(keypoints, input_from_image, size)
        flip = tf.cast(params["flip"], tf.bool)
        moved = tf.where(flip, tf.gather(moved, self.flip_index, axis=1), moved)
        return {
            "image": warped,
            "keypoints": moved,
            "ignore_mask": ignore,
            "input_from_image": input_from_image,
            "flip": flip,
        }


def augment(
    image: tf.Tensor,
    keypoints: tf.Tensor,
    ignore_mask: tf.Tensor | None,
    seed: tf.Tensor,
    *,
    flip_index: Sequence[int],
    config: AugmentConfig | None = None,
) -> dict[str, tf.Tensor]:
    """Functional form of ``Augmenter(config, flip_index)(image, keypoints, ignore_mask, seed)``."""
    return Augmenter(config or AugmentConfig(), flip_index)(image, keypoints, ignore_mask, seed)
