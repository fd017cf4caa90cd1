"""Photometric augmentation: colour jitter of [0, 1] RGB images, in TensorFlow ops.

As the official ``preprocess``: hue shift U(-0.2, 0.2) of the colour circle, saturation
×U(0.5, 1.5), brightness +U(-0.3, 0.3), contrast ×U(0.5, 1.5), applied to the warped [0, 1]
image in that order and clipped to [0, 1] once at the end (ranges in ``AugmentConfig``).

Contrast: the official code scales each pixel's deviation from *its own channel mean* (which is
really a second saturation change). ``contrast_mode='image'`` (default) uses the standard image
contrast of ``tf.image.adjust_contrast`` (deviation from the per-channel image mean);
``contrast_mode='pixel'`` reproduces the official operation.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from associative_embedding.data.augmentation.params import COLOR_SPACES, CONTRAST_MODES

# RGB → YIQ (NTSC); hue is the angle and saturation the radius in the (I, Q) plane.
_RGB_TO_YIQ = np.array(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=np.float64,
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def yiq_color_matrix(hue: tf.Tensor, saturation: tf.Tensor) -> tf.Tensor:
    """(3, 3) float32 M with rgb_out = M @ rgb: hue rotation and saturation scaling in YIQ.

    The rotation direction matches ``tf.image.adjust_hue`` (a positive hue turns red towards
    green); luma (Y) is unchanged.
    """
    theta = -2.0 * math.pi * tf.cast(hue, tf.float64)
    saturation = tf.cast(saturation, tf.float64)
    cos, sin = tf.cos(theta) * saturation, tf.sin(theta) * saturation
    zero, one = tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)
    rotate = tf.stack(
        [tf.stack([one, zero, zero]), tf.stack([zero, cos, -sin]), tf.stack([zero, sin, cos])]
    )
    return tf.cast(_YIQ_TO_RGB @ rotate @ _RGB_TO_YIQ, tf.float32)


def color_jitter(
    image: tf.Tensor,
    params: dict[str, tf.Tensor],
    contrast_mode: str = "image",
    color_space: str = "hsv",
) -> tf.Tensor:
    """Hue, saturation, brightness, contrast (official order), then clip to [0, 1].

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        params: 'hue' (fraction of the circle), 'saturation' (factor), 'brightness' (offset),
            'contrast' (factor), float32 scalars.
        contrast_mode: 'image' (tf.image.adjust_contrast) or 'pixel' (official: deviation from
            each pixel's channel mean).
        color_space: 'hsv' (exact HSV hue shift and saturation scaling, as the official code,
            via tf.image.adjust_hue/adjust_saturation) or 'yiq' (hue rotation and chroma
            scaling in YIQ: linear, so the four steps fold into one 3x3 matrix and an offset,
            about 4x cheaper; hue and saturation differ slightly from HSV's hexcone).

    Returns:
        (H, W, 3) float32 in [0, 1].
    """
    if contrast_mode not in CONTRAST_MODES:
        raise ValueError(f"contrast_mode must be one of {CONTRAST_MODES}, got {contrast_mode!r}")
    if color_space not in COLOR_SPACES:
        raise ValueError(f"color_space must be one of {COLOR_SPACES}, got {color_space!r}")
    brightness = tf.cast(params["brightness"], tf.float32)
    contrast = tf.cast(params["contrast"], tf.float32)
    if color_space == "yiq":
        # Every step is affine in the pixel value: out = contrast_step(M rgb + brightness).
        matrix = yiq_color_matrix(params["hue"], params["saturation"])
        if contrast_mode == "image":
            # (v - mean(v)) c + mean(v) with v = M x + b and mean(v) = M mean(x) + b.
            mean = tf.linalg.matvec(matrix, tf.reduce_mean(image, axis=[0, 1]))
            offset = contrast * brightness + (1.0 - contrast) * (mean + brightness)
            matrix = contrast * matrix
        else:
            # Per-pixel channel mean: v → c v + (1 - c) J v / 3 (J = ones), still linear.
            mixing = contrast * tf.eye(3) + (1.0 - contrast) / 3.0 * tf.ones([3, 3])
            matrix = mixing @ matrix
            offset = tf.fill([3], brightness)
        shape = tf.shape(image)
        pixels = tf.reshape(image, [-1, 3])
        out = tf.reshape(tf.matmul(pixels, matrix, transpose_b=True) + offset, shape)
        return tf.clip_by_value(out, 0.0, 1.0)
    image = tf.image.adjust_hue(image, params["hue"])
    image = tf.image.adjust_saturation(image, params["saturation"])
    image = image + brightness
    if contrast_mode == "image":
        image = tf.image.adjust_contrast(image, contrast)
    else:
        mean = tf.reduce_mean(image, axis=-1, keepdims=True)
        image = (image - mean) * contrast + mean
    return tf.clip_by_value(image, 0.0, 1.0)


def to_float_image(image: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] → float32 [0, 1]; float input is returned as float32 unchanged."""
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.uint8:
        return tf.cast(image, tf.float32) * (1.0 / 255.0)
    return tf.cast(image, tf.float32)
