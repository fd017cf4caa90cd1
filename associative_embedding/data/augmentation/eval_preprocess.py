"""Test-time preprocessing in TensorFlow: resize the long side, pad right and bottom.

The TF form of ``core.transforms.eval_resize_affine``: the same sizes and the same
``input_from_image`` affine, so training-time ``placement='top_left'`` and evaluation agree.
"""

from __future__ import annotations

import tensorflow as tf

from associative_embedding.data.augmentation.affine import scale_matrix
from associative_embedding.data.augmentation.color import to_float_image


def eval_preprocess(
    image: tf.Tensor, input_size: int, multiple: int = 64, *, antialias: bool = False
) -> dict[str, tf.Tensor]:
    """Test-time resize + right/bottom pad in TF, matching ``transforms.eval_resize_affine``.

    Args:
        image: (H, W, 3) uint8 or float32 in [0, 1].
        input_size: target long side (0 keeps the original resolution).
        multiple: padded height and width are multiples of this (64).
        antialias: tf.image.resize antialiasing when shrinking (off: like the official cv2
            bilinear resize; the affine is the same either way).

    Returns:
        Dict with 'image' (Hp, Wp, 3) float32 in [0, 1] (zeros in the padding);
        'input_from_image' (3, 3) float64; 'image_size', 'resized_size', 'padded_size'
        (2,) int32 (height, width).
    """
    if input_size < 0:
        raise ValueError(f"input_size must be >= 0, got {input_size}")
    if multiple <= 0:
        raise ValueError(f"multiple must be positive, got {multiple}")
    image = to_float_image(image)
    image.shape.assert_has_rank(3)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    height_f, width_f = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    if input_size == 0:
        resized_h, resized_w = height, width
        resized = image
    else:
        scale = float(input_size) / tf.maximum(height_f, width_f)
        # tf.round is round-half-to-even like Python's round() in eval_resize_affine.
        resized_h = tf.maximum(1, tf.cast(tf.round(height_f * scale), tf.int32))
        resized_w = tf.maximum(1, tf.cast(tf.round(width_f * scale), tf.int32))
        resized = tf.image.resize(
            image, tf.stack([resized_h, resized_w]), method="bilinear", antialias=antialias
        )
    matrix = scale_matrix(
        tf.cast(resized_w, tf.float64) / width_f, tf.cast(resized_h, tf.float64) / height_f
    )
    padded_h = _padded(resized_h, multiple)
    padded_w = _padded(resized_w, multiple)
    padded = tf.image.pad_to_bounding_box(resized, 0, 0, padded_h, padded_w)
    return {
        "image": tf.clip_by_value(padded, 0.0, 1.0),
        "input_from_image": matrix,
        "image_size": tf.stack([height, width]),
        "resized_size": tf.stack([resized_h, resized_w]),
        "padded_size": tf.stack([padded_h, padded_w]),
    }


def _padded(size: tf.Tensor, multiple: int) -> tf.Tensor:
    """TF form of transforms.padded_size: ceil(size / multiple) * multiple, in integers."""
    return (size + multiple - 1) // multiple * multiple
