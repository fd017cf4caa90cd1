"""3x3 affine matrices in TensorFlow (float64) and the augmentation's image -> input affine.

The matrices mirror the NumPy ones of ``core/transforms.py`` (pixel-centre convention of
``core/record.py``: integer coordinates are pixel centres). One affine ``input_from_image``
moves the image, the ignore mask and the keypoints together:

    input_from_image = [flip] @ T((S-1)/2, (S-1)/2) @ R(θ) @ Z(S / crop) @ T(-centre)

with S the square input size, crop = long_side · crop_scale the side of the square image region
that fills the input, centre = image centre ((W-1)/2, (H-1)/2) + (tx, ty) · crop (``placement=
'centre'``, official; ``'top_left'`` puts the crop's top-left corner at the image's instead, see
``AugmentConfig.placement``), and R(θ) the rotation of ``transforms.rotation_matrix``
(counter-clockwise on screen for θ > 0); the flip is x → S - 1 - x (the official ``W - x`` is
off by one). Keypoints leaving the input image (x or y outside [-0.5, S - 0.5)) get v = 0; with
stride s this is exactly the set whose integer output pixel leaves the output map.
"""

from __future__ import annotations

import math

import tensorflow as tf

from associative_embedding.data.augmentation.params import PLACEMENTS


def scale_matrix(scale_x: tf.Tensor, scale_y: tf.Tensor | None = None) -> tf.Tensor:
    """Half-pixel-centre resampling x → s (x + 0.5) - 0.5 (transforms.scale_matrix)."""
    scale_x = tf.cast(scale_x, tf.float64)
    scale_y = scale_x if scale_y is None else tf.cast(scale_y, tf.float64)
    zero, one = tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)
    return tf.stack(
        [
            tf.stack([scale_x, zero, 0.5 * scale_x - 0.5]),
            tf.stack([zero, scale_y, 0.5 * scale_y - 0.5]),
            tf.stack([zero, zero, one]),
        ]
    )


def translation_matrix(dx: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    """x → x + dx, y → y + dy (transforms.translation_matrix)."""
    dx, dy = tf.cast(dx, tf.float64), tf.cast(dy, tf.float64)
    zero, one = tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)
    return tf.stack(
        [tf.stack([one, zero, dx]), tf.stack([zero, one, dy]), tf.stack([zero, zero, one])]
    )


def rotation_matrix(degrees: tf.Tensor, center_x: tf.Tensor, center_y: tf.Tensor) -> tf.Tensor:
    """Rotation about (center_x, center_y), counter-clockwise on screen (as transforms.py)."""
    theta = tf.cast(degrees, tf.float64) * (math.pi / 180.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    zero, one = tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)
    # y points down on screen: a visual counter-clockwise turn is [[cos, sin], [-sin, cos]].
    rotate = tf.stack(
        [tf.stack([cos, sin, zero]), tf.stack([-sin, cos, zero]), tf.stack([zero, zero, one])]
    )
    return (
        translation_matrix(center_x, center_y)
        @ rotate
        @ translation_matrix(-tf.cast(center_x, tf.float64), -tf.cast(center_y, tf.float64))
    )


def flip_matrix(width: tf.Tensor) -> tf.Tensor:
    """Horizontal flip x → width - 1 - x (transforms.flip_matrix)."""
    width = tf.cast(width, tf.float64)
    zero, one = tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)
    return tf.stack(
        [tf.stack([-one, zero, width - 1.0]), tf.stack([zero, one, zero]),
         tf.stack([zero, zero, one])]
    )


def invert_affine(matrix: tf.Tensor) -> tf.Tensor:
    """Exact inverse of a 3x3 affine [[A, t], [0, 1]] → [[A⁻¹, -A⁻¹ t], [0, 1]] (float64)."""
    matrix = tf.cast(matrix, tf.float64)
    linear = matrix[:2, :2]
    inverse_linear = tf.linalg.inv(linear)
    offset = -tf.linalg.matvec(inverse_linear, matrix[:2, 2])
    top = tf.concat([inverse_linear, offset[:, None]], axis=1)
    return tf.concat([top, tf.constant([[0.0, 0.0, 1.0]], tf.float64)], axis=0)


def transform_points(points: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """Moves the (x, y) columns of (..., >=2) points by a 3x3 affine (transforms.transform_points).

    The computation is in float64; the result has the dtype of `points`, further columns
    (visibility) unchanged.
    """
    points = tf.convert_to_tensor(points)
    matrix = tf.cast(matrix, tf.float64)
    xy = tf.cast(points[..., :2], tf.float64)
    moved = tf.linalg.matvec(matrix[:2, :2], xy) + matrix[:2, 2]
    return tf.concat([tf.cast(moved, points.dtype), points[..., 2:]], axis=-1)


def augmentation_affine(
    height: tf.Tensor,
    width: tf.Tensor,
    params: dict[str, tf.Tensor],
    input_size: int,
    placement: str = "centre",
) -> tf.Tensor:
    """input_from_image (3, 3) float64 for one example (formula in the module docstring).

    Args:
        height, width: source image size.
        params: output of ``sample_augmentation`` (or hand-made with the same keys).
        input_size: S.
        placement: 'centre' (official) or 'top_left' (``AugmentConfig.placement``).
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}.")
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    crop = tf.maximum(height, width) * tf.cast(params["crop_scale"], tf.float64)
    if placement == "top_left":
        # The square [-0.5, crop - 0.5)² starts at the image's top-left pixel corner.
        base_x = base_y = (crop - 1.0) / 2.0
    else:
        base_x, base_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    center_x = base_x + tf.cast(params["translate_x"], tf.float64) * crop
    center_y = base_y + tf.cast(params["translate_y"], tf.float64) * crop
    return square_crop_affine(center_x, center_y, crop, params, input_size)


def square_crop_affine(
    center_x: tf.Tensor,
    center_y: tf.Tensor,
    side: tf.Tensor,
    params: dict[str, tf.Tensor],
    output_size: int,
) -> tf.Tensor:
    """output_from_image (3, 3) float64 of a square crop, rotated and optionally flipped.

    The image square of side `side` centred on (center_x, center_y) fills an output of
    output_size x output_size: [flip] @ T((S-1)/2, (S-1)/2) @ R(params['rotation']) @
    Z(S / side) @ T(-centre), pixel-centre convention. Shared by the whole-image augmentation
    (`augmentation_affine`) and the person crops of the refinement network.
    """
    center_x = tf.cast(center_x, tf.float64)
    center_y = tf.cast(center_y, tf.float64)
    size = tf.constant(float(output_size), tf.float64)
    zoom = size / tf.cast(side, tf.float64)
    # Pure zoom about the origin: with both centres expressed relative to the origin, the
    # crop centre lands on the output centre (S-1)/2 (pixel-centre convention).
    zero, one = tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)
    zoom_matrix = tf.stack(
        [tf.stack([zoom, zero, zero]), tf.stack([zero, zoom, zero]), tf.stack([zero, zero, one])]
    )
    half = (size - 1.0) / 2.0
    matrix = (
        translation_matrix(half, half)
        @ rotation_matrix(params["rotation"], zero, zero)
        @ zoom_matrix
        @ translation_matrix(-center_x, -center_y)
    )
    return tf.where(tf.cast(params["flip"], tf.bool), flip_matrix(size) @ matrix, matrix)


def transform_keypoints(
    keypoints: tf.Tensor, input_from_image: tf.Tensor, input_size: int
) -> tf.Tensor:
    """Moves (P, K, 3) image keypoints into the input; v = 0 where they leave [-0.5, S - 0.5)².

    Joints are *not* re-indexed here (the caller swaps them when the affine contains a flip).
    """
    keypoints = tf.convert_to_tensor(keypoints, tf.float32)
    moved = transform_points(keypoints, input_from_image)
    x, y = moved[..., 0], moved[..., 1]
    limit = input_size - 0.5
    inside = (x >= -0.5) & (x < limit) & (y >= -0.5) & (y < limit)
    visibility = tf.where(inside, moved[..., 2], tf.zeros_like(moved[..., 2]))
    return tf.stack([x, y, visibility], axis=-1)


def output_from_input(stride: int) -> tf.Tensor:
    """(3, 3) float64 affine from input pixels to output-map pixels of a network stride."""
    return scale_matrix(tf.constant(1.0 / stride, tf.float64))
