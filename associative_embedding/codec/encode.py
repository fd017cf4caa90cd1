"""Training-target encoding (the codec's encode side): keypoints → heatmaps, joint indices, mask.

Everything here is TensorFlow ops with no Python loop over people or joints, so it runs the same
eagerly and inside ``tf.data.Dataset.map`` / ``tf.function`` (the results are bit-identical: the
per-pixel maximum is order independent and the Gaussian patch is a precomputed constant; the
sub-pixel option evaluates exp() per pixel and agrees to float32 rounding).

Contract (pixel-centre coordinates as in ``core.record``; the batch layout of
``data.pipeline``):

Inputs
    keypoints:    (P, K, 3) float32 (x, y, v) in **network-input** pixel-centre coordinates
                  (pixel column j has centre x = j), as produced by the augmentation. P may be 0.
                  v > 0 means labelled (1 occluded, 2 visible); v == 0 means absent.
    ignore_mask:  optional (h, w) float32/bool/uint8 at **output** resolution, 1 = the heatmap
                  loss is ignored there (crowds, unlabelled people, outside the image).

Geometry
    Output coordinate: x_out = (x_in + 0.5) / stride - 0.5 (half-pixel-centre resampling).
    Integer output pixel of a joint: ix = floor(x_out + 0.5) (= floor(x_in / 4) of the official
    code for integer x_in). A joint is *valid* iff v > 0 and 0 <= ix < w and 0 <= iy < h.

Outputs (``KeypointEncoder.encode`` returns a dict)
    'heatmaps':            (h, w, K) float32. For each valid joint, exp(-d² / (2σ²)) where d is
                           the distance in output pixels to its integer pixel (peak exactly 1),
                           evaluated in the official (6σ+3)-pixel square window (|dx|, |dy| <=
                           floor(3σ + 1)); people are combined by per-pixel maximum. σ defaults
                           to max(h, w) / 64 (2 at 128, as in the official code). All people are
                           drawn, including those dropped from 'keypoints' below (as officially).
    'keypoints':           (max_people, K, 3) float32 (ix, iy, valid): integer output-pixel
                           indices stored as float, valid in {0, 1}; invalid joints are (0, 0, 0).
                           Rows are the people with at least one valid joint, in input order;
                           people beyond ``max_people`` (30 officially) are dropped.
    'mask':                (h, w) float32, 1 = supervised, 0 = ignored (1 - ignore_mask; all
                           ones when no ignore mask is given).
    'num_dropped_people':  () int32, people with >= 1 valid joint that did not fit in
                           ``max_people``.

Difference from the official code, on purpose: the official ``KeypointsRef`` gives every
annotated person a slot (even one with no joint left inside the crop) and silently truncates;
here only people with a valid joint take a slot, and truncation is counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

DEFAULT_MAX_PEOPLE = 30


def default_sigma(output_size: int | Sequence[int]) -> float:
    """Official Gaussian width: σ = output_size / 64 (2 at 128); max(h, w) for (h, w) sizes."""
    height, width = _as_hw(output_size)
    return max(height, width) / 64.0


def gaussian_window_radius(sigma: float) -> int:
    """Half-width R of the official (6σ+3)-pixel window: pixels with |dx|, |dy| <= R are drawn."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return int(math.floor(3.0 * sigma + 1.0))


def gaussian_patch(sigma: float) -> np.ndarray:
    """The (2R+1, 2R+1) float32 patch exp(-(dx² + dy²) / (2σ²)), computed in float64 like the
    official NumPy code and rounded once to float32. Centre value is exactly 1."""
    radius = gaussian_window_radius(sigma)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    return np.exp(-squared / (2.0 * sigma**2)).astype(np.float32)


def keypoint_output_pixels(
    keypoints: tf.Tensor, output_size: int | Sequence[int], stride: int = 4
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Integer output pixels of input-pixel keypoints and their validity.

    Args:
        keypoints: (P, K, 3) float (x, y, v) in network-input pixel-centre coordinates.
        output_size: h = w, or (h, w), of the output map.
        stride: network output stride (input pixels per output pixel).

    Returns:
        ix, iy: (P, K) int32 integer output pixel floor((x_in + 0.5) / stride), which equals
            floor(x_out + 0.5) with x_out = (x_in + 0.5) / stride - 0.5.
        valid: (P, K) bool, v > 0 and the pixel lies inside the (h, w) map.
    """
    height, width = _as_hw(output_size)
    keypoints = tf.convert_to_tensor(keypoints)
    # float64 so that floor() is exact for any coordinate a float32 can hold.
    xy = tf.cast(keypoints[..., :2], tf.float64)
    pixels = tf.math.floor((xy + 0.5) / float(stride))
    # Clamp before the int cast: NaN or huge coordinates must not wrap around into the map.
    pixels = tf.clip_by_value(tf.where(tf.math.is_finite(pixels), pixels, -1.0), -1.0, 1e6)
    ix = tf.cast(pixels[..., 0], tf.int32)
    iy = tf.cast(pixels[..., 1], tf.int32)
    valid = (
        (keypoints[..., 2] > 0)
        & tf.math.is_finite(xy[..., 0])
        & tf.math.is_finite(xy[..., 1])
        & (ix >= 0)
        & (ix < width)
        & (iy >= 0)
        & (iy < height)
    )
    return ix, iy, valid


def output_coordinates(keypoints: tf.Tensor, stride: int = 4) -> tf.Tensor:
    """(P, K, 2) float32 sub-pixel output coordinates x_out = (x_in + 0.5) / stride - 0.5.

    Args:
        keypoints: (P, K, 3) float (x, y, v) in network-input pixel-centre coordinates.
        stride: input pixels per output pixel.
    """
    keypoints = tf.convert_to_tensor(keypoints, tf.float32)
    return (keypoints[..., :2] + 0.5) / float(stride) - 0.5


def render_heatmaps(
    ix: tf.Tensor,
    iy: tf.Tensor,
    valid: tf.Tensor,
    output_size: int | Sequence[int],
    sigma: float,
    centres: tf.Tensor | None = None,
) -> tf.Tensor:
    """Draws the per-pixel maximum of Gaussian patches, vectorised over people and joints.

    Args:
        ix, iy: (P, K) int32 integer output pixels.
        valid: (P, K) bool; invalid joints are not drawn.
        output_size: h = w, or (h, w).
        sigma: Gaussian standard deviation in output pixels.
        centres: optional (P, K, 2) float (x_out, y_out) sub-pixel output coordinates: the
            Gaussian of each joint is centred there (window still around (ix, iy)). None: centred
            on the integer pixel with peak exactly 1 (official).

    Returns:
        (h, w, K) float32 heatmaps.
    """
    height, width = _as_hw(output_size)
    patch = gaussian_patch(sigma)
    radius = patch.shape[0] // 2
    offset_y, offset_x = np.meshgrid(
        np.arange(-radius, radius + 1), np.arange(-radius, radius + 1), indexing="ij"
    )
    offset_x = tf.constant(offset_x.reshape(-1), tf.int32)  # (W²,)
    offset_y = tf.constant(offset_y.reshape(-1), tf.int32)
    values = tf.constant(patch.reshape(-1), tf.float32)

    num_joints = tf.shape(ix)[1]
    # (P, K, W²) candidate pixel of every window cell of every joint.
    pixel_x = ix[..., None] + offset_x
    pixel_y = iy[..., None] + offset_y
    joint = tf.broadcast_to(tf.range(num_joints)[None, :, None], tf.shape(pixel_x))
    keep = (
        valid[..., None]
        & (pixel_x >= 0)
        & (pixel_x < width)
        & (pixel_y >= 0)
        & (pixel_y < height)
    )
    where = tf.where(keep)  # (N, 3) indices into (P, K, W²)
    indices = tf.stack(
        [
            tf.gather_nd(pixel_y, where),
            tf.gather_nd(pixel_x, where),
            tf.gather_nd(joint, where),
        ],
        axis=-1,
    )
    if centres is None:
        updates = tf.gather(values, where[:, 2])
    else:
        centres = tf.cast(centres, tf.float32)
        delta_x = tf.cast(tf.gather_nd(pixel_x, where), tf.float32) - tf.gather_nd(
            centres[..., 0], where[:, :2]
        )
        delta_y = tf.cast(tf.gather_nd(pixel_y, where), tf.float32) - tf.gather_nd(
            centres[..., 1], where[:, :2]
        )
        updates = tf.exp(-(delta_x**2 + delta_y**2) / (2.0 * sigma**2))
    zeros = tf.zeros(tf.stack([height, width, num_joints]), tf.float32)
    # Scatter-max is the per-pixel maximum over people (and is order independent).
    return tf.tensor_scatter_nd_max(zeros, indices, updates)


def keypoint_index_targets(
    ix: tf.Tensor, iy: tf.Tensor, valid: tf.Tensor, max_people: int = DEFAULT_MAX_PEOPLE
) -> tuple[tf.Tensor, tf.Tensor]:
    """Packs the grouping-loss targets: people with a valid joint, first `max_people` of them.

    Args:
        ix, iy: (P, K) int32 integer output pixels.
        valid: (P, K) bool.
        max_people: rows of the result.

    Returns:
        keypoints: (max_people, K, 3) float32 (ix, iy, valid), zeros for invalid joints and
            unused rows.
        num_dropped: () int32, people with a valid joint beyond `max_people`.
    """
    # tf.where, not a product, so that invalid joints are +0 (a negative index times 0 is -0).
    zero = tf.zeros_like(ix)
    packed = tf.cast(
        tf.stack([tf.where(valid, ix, zero), tf.where(valid, iy, zero), tf.cast(valid, tf.int32)],
                 axis=-1),
        tf.float32,
    )  # (P, K, 3)
    has_joint = tf.reduce_any(valid, axis=1)  # (P,)
    rank = tf.cumsum(tf.cast(has_joint, tf.int32)) - 1
    selected = tf.boolean_mask(packed, has_joint & (rank < max_people))
    num_kept = tf.shape(selected)[0]
    keypoints = tf.pad(selected, [[0, max_people - num_kept], [0, 0], [0, 0]])
    num_dropped = tf.reduce_sum(tf.cast(has_joint, tf.int32)) - num_kept
    return keypoints, num_dropped


class KeypointEncoder:
    """Encodes one example's keypoints and ignore mask into training targets.

    See the module docstring for the full contract. Example::

        encoder = KeypointEncoder(output_size=128, num_joints=17)
        targets = encoder.encode(keypoints, ignore_mask)  # usable inside Dataset.map

    Args:
        output_size: h = w, or (h, w), of the output (heatmap) map.
        num_joints: K.
        sigma: Gaussian σ in output pixels; default max(h, w) / 64.
        max_people: rows of the 'keypoints' target (30 officially).
        stride: input pixels per output pixel (4).
        subpixel: centre each Gaussian at the exact output coordinate (module docstring;
            default False = official integer-pixel centres).
    """

    def __init__(
        self,
        output_size: int | Sequence[int],
        num_joints: int,
        sigma: float | None = None,
        max_people: int = DEFAULT_MAX_PEOPLE,
        stride: int = 4,
        subpixel: bool = False,
    ) -> None:
        self.output_size = _as_hw(output_size)
        if num_joints <= 0:
            raise ValueError(f"num_joints must be positive, got {num_joints}")
        if max_people <= 0:
            raise ValueError(f"max_people must be positive, got {max_people}")
        if stride <= 0:
            raise ValueError(f"stride must be positive, got {stride}")
        self.num_joints = int(num_joints)
        self.sigma = float(default_sigma(self.output_size) if sigma is None else sigma)
        gaussian_window_radius(self.sigma)  # validates sigma
        self.max_people = int(max_people)
        self.stride = int(stride)
        self.subpixel = bool(subpixel)

    def encode(
        self, keypoints: tf.Tensor, ignore_mask: tf.Tensor | None = None
    ) -> dict[str, tf.Tensor]:
        """Returns {'heatmaps', 'keypoints', 'mask', 'num_dropped_people'} (module docstring).

        Args:
            keypoints: (P, K, 3) float (x, y, v) in network-input pixels.
            ignore_mask: optional (h, w), 1 = ignored.

        Raises:
            ValueError: when the static shapes disagree with the encoder's K or output size.
        """
        keypoints = tf.convert_to_tensor(keypoints, tf.float32)
        keypoints.shape.assert_has_rank(3)
        if keypoints.shape[1] is not None and keypoints.shape[1] != self.num_joints:
            raise ValueError(
                f"keypoints have {keypoints.shape[1]} joints, encoder expects {self.num_joints}."
            )
        keypoints = tf.ensure_shape(keypoints, [None, self.num_joints, 3])
        ix, iy, valid = keypoint_output_pixels(keypoints, self.output_size, self.stride)
        centres = output_coordinates(keypoints, self.stride) if self.subpixel else None
        heatmaps = render_heatmaps(ix, iy, valid, self.output_size, self.sigma, centres)
        heatmaps = tf.ensure_shape(heatmaps, [*self.output_size, self.num_joints])
        keypoint_targets, num_dropped = keypoint_index_targets(ix, iy, valid, self.max_people)
        keypoint_targets = tf.ensure_shape(
            keypoint_targets, [self.max_people, self.num_joints, 3]
        )
        if ignore_mask is None:
            mask = tf.ones(self.output_size, tf.float32)
        else:
            ignore_mask = tf.convert_to_tensor(ignore_mask)
            if ignore_mask.shape.rank is not None and ignore_mask.shape.rank != 2:
                raise ValueError(f"ignore_mask must be (h, w), got shape {ignore_mask.shape}.")
            if ignore_mask.shape.is_fully_defined() and tuple(ignore_mask.shape) != tuple(
                self.output_size
            ):
                raise ValueError(
                    f"ignore_mask shape {tuple(ignore_mask.shape)} is not the output size "
                    f"{self.output_size}."
                )
            mask = 1.0 - tf.cast(tf.cast(ignore_mask, tf.bool), tf.float32)
            mask = tf.ensure_shape(mask, self.output_size)
        return {
            "heatmaps": heatmaps,
            "keypoints": keypoint_targets,
            "mask": mask,
            "num_dropped_people": num_dropped,
        }

    __call__ = encode

    def get_config(self) -> dict:
        return {
            "output_size": self.output_size,
            "num_joints": self.num_joints,
            "sigma": self.sigma,
            "max_people": self.max_people,
            "stride": self.stride,
            "subpixel": self.subpixel,
        }


def encode_targets(
    keypoints: tf.Tensor, ignore_mask: tf.Tensor | None = None, **encoder_options: Any
) -> dict[str, tf.Tensor]:
    """Functional form of ``KeypointEncoder(**encoder_options).encode(keypoints, ignore_mask)``.

    Args:
        keypoints: (P, K, 3) float (x, y, v) in network-input pixels.
        ignore_mask: optional (h, w), 1 = ignored.
        **encoder_options: the ``KeypointEncoder`` arguments (output_size and num_joints are
            required).

    Returns:
        {'heatmaps', 'keypoints', 'mask', 'num_dropped_people'}, as ``KeypointEncoder.encode``.
    """
    return KeypointEncoder(**encoder_options).encode(keypoints, ignore_mask)


def _as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        height = width = int(size)
    else:
        height, width = (int(value) for value in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"output size must be positive, got {size}")
    return height, width
