"""Detection loss: the masked mean squared error between predicted and target heatmaps.

Normalisation follows the official code (pose-ae-train): per image, the mean over (h, w, K) of
mask * (pred - gt)^2. Masked pixels contribute zero but stay in the denominator h * w * K.
The same squared-error mean serves the instance-segmentation detection term, whose weight map
is per category instead of per pixel.
"""

from __future__ import annotations

import tensorflow as tf


def compute_dtype(dtype: tf.DType) -> tf.DType:
    """The dtype a loss is computed in for inputs of `dtype`.

    Low-precision inputs (fp16 / bf16) are upcast so that the means over whole maps do not lose
    the small per-pixel errors; float64 stays float64 for gradient checks.
    """
    return tf.float64 if dtype == tf.float64 else tf.float32


def squared_error_mean(
    pred: tf.Tensor, target: tf.Tensor, weight: tf.Tensor, foreground_weight: float = 0.0
) -> tf.Tensor:
    """Weighted squared error, averaged over the last three axes.

    Args:
        pred: (..., h, w, K) predictions.
        target: (..., h, w, K) targets, broadcastable against `pred`.
        weight: per-pixel weight broadcastable against `pred`, e.g. a (..., h, w, 1) mask or a
            (..., h, w, K) per-channel weight map.
        foreground_weight: each pixel's error is also scaled by 1 + foreground_weight * target
            (0 = plain weighted MSE).

    Returns:
        (...,) mean over (h, w, K) of weight * (1 + foreground_weight * target) *
        (pred - target)^2.
    """
    squared_error = tf.square(pred - target) * weight
    if foreground_weight:
        squared_error *= 1.0 + foreground_weight * target
    return tf.reduce_mean(squared_error, axis=[-3, -2, -1])


def heatmap_loss(
    pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor, foreground_weight: float = 0.0
) -> tf.Tensor:
    """Masked mean squared error of detection heatmaps, one value per image.

    Args:
        pred: (B, h, w, K) predicted heatmaps.
        target: (B, h, w, K) ground-truth heatmaps.
        mask: (B, h, w), 1 = supervised, 0 = ignored (crowd / unlabelled people). Ignored pixels
            contribute zero but stay in the denominator (official normalisation).
        foreground_weight: a named deviation (0 = official): each pixel's squared error is
            weighted by 1 + foreground_weight * target, so the few pixels on the Gaussians are
            not outvoted by the ~98 % background (the plain MSE's easy optimum is a flat,
            low map; with a weight of ~10 peaks rise within hundreds of steps).

    Returns:
        (B,) per-image mean over (h, w, K) of mask * (1 + foreground_weight * target) *
        (pred - target)^2, in float32 (float64 if `pred` is float64).
    """
    pred = tf.convert_to_tensor(pred)
    dtype = compute_dtype(pred.dtype)
    pred = tf.cast(pred, dtype)
    target = tf.cast(target, dtype)
    mask = tf.cast(mask, dtype)
    if pred.shape.rank is not None and pred.shape.rank != 4:
        raise ValueError(f"heatmap_loss: pred must be (B, h, w, K), got shape {pred.shape}.")
    if mask.shape.rank is not None and mask.shape.rank != 3:
        raise ValueError(f"heatmap_loss: mask must be (B, h, w), got shape {mask.shape}.")
    return squared_error_mean(pred, target, mask[..., None], foreground_weight)
