"""Warping images and ignore masks by a 3x3 affine in TensorFlow ops.

Warps use ``tf.raw_ops.ImageProjectiveTransformV3`` with the inverse map (output pixel -> source
pixel), bilinear, constant fill 0. The ignore mask is warped from full image resolution directly
to the output (heatmap) resolution (bilinear + threshold 0.5, as the official code; or
nearest). By default the region outside the source image is *ignored* (the official code warps
the supervised mask with fill 0); ``ignore_outside_image=False`` supervises it.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from associative_embedding.data.augmentation.affine import invert_affine


def warp_image(
    image: tf.Tensor,
    output_from_image: tf.Tensor,
    output_hw: Sequence[int] | tf.Tensor,
    *,
    interpolation: str = "bilinear",
    fill_value: float = 0.0,
) -> tf.Tensor:
    """Resamples `image` so that output pixel p shows image point invert(output_from_image) p.

    Args:
        image: (H, W, C) or (H, W) tensor (uint8 or float).
        output_from_image: (3, 3) affine from image to output pixel-centre coordinates.
        output_hw: (height, width) of the result.
        interpolation: 'bilinear' or 'nearest'.
        fill_value: value of output pixels whose source lies outside the image.

    Returns:
        (height, width, C) or (height, width) tensor, dtype of `image`.
    """
    image = tf.convert_to_tensor(image)
    squeeze = image.shape.rank == 2
    if squeeze:
        image = image[..., None]
    image_from_output = invert_affine(output_from_image)
    # ImageProjectiveTransformV3 maps output (x, y) to input via [a0 a1 a2 b0 b1 b2 c0 c1];
    # with the pixel-centre convention of contract 1 (integer coordinate = pixel centre).
    transform = tf.cast(tf.reshape(image_from_output, [9])[:8], tf.float32)
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.cast(tf.convert_to_tensor(output_hw), tf.int32),
        fill_value=tf.constant(fill_value, tf.float32),
        interpolation=interpolation.upper(),
        fill_mode="CONSTANT",
    )[0]
    return warped[..., 0] if squeeze else warped


def warp_ignore_mask(
    ignore_mask: tf.Tensor,
    output_from_image: tf.Tensor,
    output_hw: Sequence[int] | tf.Tensor,
    *,
    ignore_outside_image: bool = True,
    interpolation: str = "bilinear",
) -> tf.Tensor:
    """Warps a full-resolution ignore mask straight to the output (heatmap) resolution.

    Args:
        ignore_mask: (H, W) uint8/bool/float, 1 = ignored.
        output_from_image: (3, 3) affine from image to output-map pixel coordinates.
        output_hw: (h, w) of the output map.
        ignore_outside_image: whether pixels whose source lies outside the image are ignored.
        interpolation: 'bilinear' (then >= 0.5 is ignored, the official threshold) or 'nearest'.

    Returns:
        (h, w) float32 in {0, 1}, 1 = ignored.
    """
    mask = tf.cast(tf.cast(ignore_mask, tf.bool), tf.float32)
    warped = warp_image(
        mask,
        output_from_image,
        output_hw,
        interpolation=interpolation,
        fill_value=1.0 if ignore_outside_image else 0.0,
    )
    return tf.cast(warped >= 0.5, tf.float32)
