"""Training augmentation and eval-time preprocessing in TensorFlow ops (graph compatible).

One 3x3 affine ``input_from_image`` (pixel-centre convention, see ``data/record.py``; the NumPy
reference matrices are in ``data/transforms.py`` and are mirrored here in TF) moves the image,
the ignore mask and the keypoints together:

    input_from_image = [flip] @ T((S-1)/2, (S-1)/2) @ R(θ) @ Z(S / crop) @ T(-centre)

with S the square input size, crop = long_side · crop_scale the side of the square image region
that fills the input, centre = image centre ((W-1)/2, (H-1)/2) + (tx, ty) · crop (``placement=
'centre'``, official; ``'top_left'`` puts the crop's top-left corner at the image's instead, see
``AugmentConfig.placement``), and R(θ) the
rotation of ``transforms.rotation_matrix`` (counter-clockwise on screen for θ > 0). The official
pose-ae-train ranges are the defaults: θ ~ U(-30°, 30°); crop_scale ~ U(0.75, 1.25) (its ``scale
*= aug_scale`` with the long side mapped to the input); tx, ty ~ U(-0.2, 0.2) of the crop side
(its ±40·scale pixels with a 200·scale-pixel crop, i.e. ±102.4 input pixels at 512); horizontal
flip with p = 0.5 (x → S - 1 - x, the official ``W - x`` is off by one) with the joints swapped by
the dataset's flip index; colour jitter as the official ``preprocess``: hue shift U(-0.2, 0.2) of
the colour circle, saturation ×U(0.5, 1.5), brightness +U(-0.3, 0.3), contrast ×U(0.5, 1.5),
applied to the warped [0, 1] image in that order and clipped to [0, 1] once at the end.

Contrast: the official code scales each pixel's deviation from *its own channel mean* (which is
really a second saturation change). ``contrast_mode='image'`` (default) uses the standard image
contrast of ``tf.image.adjust_contrast`` (deviation from the per-channel image mean);
``contrast_mode='pixel'`` reproduces the official operation.

Sampling is stateless: every random number comes from ``tf.random.stateless_uniform`` with a
per-example seed (shape (2,) int32/int64, e.g. derived from a global seed and the example index),
so the same seed gives the same augmentation eagerly, in ``tf.function`` and in
``Dataset.map``, on any host.

Warps use ``tf.raw_ops.ImageProjectiveTransformV3`` with the inverse map (output pixel → source
pixel), bilinear, constant fill 0. The ignore mask is warped from full image resolution directly
to the output (heatmap) resolution with ``output_from_image = output_from_input(stride) @
input_from_image`` (bilinear + threshold 0.5, as the official code; or nearest). By default the
region outside the source image is *ignored* (the official code warps the supervised mask with
fill 0); ``ignore_outside_image=False`` supervises it. Keypoints leaving the input image
(x or y outside [-0.5, S - 0.5)) get v = 0; with stride s this is exactly the set whose integer
output pixel leaves the output map, so the two conditions agree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

_CONTRAST_MODES = ("image", "pixel")
_MASK_INTERPOLATIONS = ("bilinear", "nearest")
_COLOR_SPACES = ("hsv", "yiq")
PLACEMENTS = ("centre", "top_left")
_NUM_RANDOM_VALUES = 9  # rotation, scale, tx, ty, flip, hue, saturation, brightness, contrast


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation settings (official pose-ae-train ranges by default).

    Attributes:
        input_size: S, side of the square network input (512).
        output_stride: input pixels per output pixel (4): the mask is produced at S / stride.
        max_rotation_degrees: θ ~ U(-max, max).
        scale_range: crop_scale ~ U(lo, hi); the square of side long_side · crop_scale fills the
            input, so crop_scale > 1 shows the person smaller.
        max_translation: tx, ty ~ U(-max, max), as a fraction of the crop side.
        flip_probability: probability of a horizontal flip (with joint swap).
        max_hue_delta: hue shift ~ U(-max, max), in fractions of the colour circle.
        saturation_range: saturation factor ~ U(lo, hi).
        max_brightness_delta: additive brightness ~ U(-max, max) on [0, 1] pixels.
        contrast_range: contrast factor ~ U(lo, hi).
        contrast_mode: 'image' (standard, per-channel image mean) or 'pixel' (official).
        color_space: 'hsv' (exact HSV hue/saturation, official) or 'yiq' (linear, faster); see
            ``color_jitter``.
        ignore_outside_image: whether output pixels outside the source image are ignored.
        mask_interpolation: 'bilinear' (then threshold 0.5, official) or 'nearest'.
        placement: where the image sits in the input before rotation and translation.
            'centre' (official): the crop is centred on the image, so a non-square photo has
            black bands on both sides. 'top_left': the crop's top-left corner is the image's,
            as at test time (``eval_preprocess`` resizes the long side and pads right/bottom);
            with crop_scale 1 and no rotation or translation the affine is exactly
            ``eval_resize_affine``'s. A network that memorises a few photos (an overfit check)
            only sees them where evaluation puts them with this placement; translations of
            the crop side then jitter around that position.
    """

    input_size: int = 512
    output_stride: int = 4
    max_rotation_degrees: float = 30.0
    scale_range: tuple[float, float] = (0.75, 1.25)
    max_translation: float = 0.2
    flip_probability: float = 0.5
    max_hue_delta: float = 0.2
    saturation_range: tuple[float, float] = (0.5, 1.5)
    max_brightness_delta: float = 0.3
    contrast_range: tuple[float, float] = (0.5, 1.5)
    contrast_mode: str = "image"
    color_space: str = "hsv"
    ignore_outside_image: bool = True
    mask_interpolation: str = "bilinear"
    placement: str = "centre"

    def __post_init__(self) -> None:
        if self.input_size <= 0 or self.output_stride <= 0:
            raise ValueError(
                f"input_size and output_stride must be positive, got {self.input_size}, "
                f"{self.output_stride}."
            )
        if self.input_size % self.output_stride:
            raise ValueError(
                f"input_size {self.input_size} is not a multiple of output_stride "
                f"{self.output_stride}."
            )
        for name in ("scale_range", "saturation_range", "contrast_range"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must satisfy 0 <= low <= high, got {(low, high)}.")
        if self.scale_range[0] <= 0:
            raise ValueError(f"scale_range must be positive, got {self.scale_range}.")
        for name in ("max_rotation_degrees", "max_translation", "max_hue_delta",
                     "max_brightness_delta"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not 0 <= self.flip_probability <= 1:
            raise ValueError(f"flip_probability must be in [0, 1], got {self.flip_probability}.")
        if self.max_hue_delta > 0.5:
            raise ValueError(f"max_hue_delta must be <= 0.5, got {self.max_hue_delta}.")
        if self.contrast_mode not in _CONTRAST_MODES:
            raise ValueError(f"contrast_mode must be one of {_CONTRAST_MODES}.")
        if self.color_space not in _COLOR_SPACES:
            raise ValueError(f"color_space must be one of {_COLOR_SPACES}.")
        if self.mask_interpolation not in _MASK_INTERPOLATIONS:
            raise ValueError(f"mask_interpolation must be one of {_MASK_INTERPOLATIONS}.")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}.")

    @property
    def output_size(self) -> int:
        return self.input_size // self.output_stride

    @classmethod
    def identity(cls, input_size: int = 512, output_stride: int = 4, **overrides) -> AugmentConfig:
        """No geometric or colour change: the long side is fitted to the input, centred."""
        values = dict(
            max_rotation_degrees=0.0, scale_range=(1.0, 1.0), max_translation=0.0,
            flip_probability=0.0, max_hue_delta=0.0, saturation_range=(1.0, 1.0),
            max_brightness_delta=0.0, contrast_range=(1.0, 1.0),
        )
        values.update(overrides)
        return cls(input_size=input_size, output_stride=output_stride, **values)

    @property
    def has_color_jitter(self) -> bool:
        return (
            self.max_hue_delta > 0
            or self.saturation_range != (1.0, 1.0)
            or self.max_brightness_delta > 0
            or self.contrast_range != (1.0, 1.0)
        )


# --------------------------------------------------------------------------------------------
# 3x3 affine matrices in TF (float64), mirroring data/transforms.py.


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


# --------------------------------------------------------------------------------------------
# Warping.


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


# --------------------------------------------------------------------------------------------
# Random parameters, affine and colour.


def sample_augmentation(seed: tf.Tensor, config: AugmentConfig) -> dict[str, tf.Tensor]:
    """Draws one example's augmentation parameters from a stateless seed.

    Args:
        seed: (2,) int32/int64 stateless seed.
        config: ranges.

    Returns:
        Dict of scalars: 'rotation' (degrees, float64), 'crop_scale' (float64), 'translate_x',
        'translate_y' (fractions of the crop side, float64), 'flip' (bool), 'hue', 'saturation',
        'brightness', 'contrast' (float32).
    """
    uniform = tf.random.stateless_uniform(
        [_NUM_RANDOM_VALUES], seed=tf.cast(seed, tf.int64), dtype=tf.float64
    )

    def symmetric(value: tf.Tensor, limit: float) -> tf.Tensor:
        return (2.0 * value - 1.0) * limit

    def between(value: tf.Tensor, limits: tuple[float, float]) -> tf.Tensor:
        return limits[0] + value * (limits[1] - limits[0])

    return {
        "rotation": symmetric(uniform[0], config.max_rotation_degrees),
        "crop_scale": between(uniform[1], config.scale_range),
        "translate_x": symmetric(uniform[2], config.max_translation),
        "translate_y": symmetric(uniform[3], config.max_translation),
        "flip": uniform[4] < config.flip_probability,
        "hue": tf.cast(symmetric(uniform[5], config.max_hue_delta), tf.float32),
        "saturation": tf.cast(between(uniform[6], config.saturation_range), tf.float32),
        "brightness": tf.cast(symmetric(uniform[7], config.max_brightness_delta), tf.float32),
        "contrast": tf.cast(between(uniform[8], config.contrast_range), tf.float32),
    }


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
    if contrast_mode not in _CONTRAST_MODES:
        raise ValueError(f"contrast_mode must be one of {_CONTRAST_MODES}, got {contrast_mode!r}")
    if color_space not in _COLOR_SPACES:
        raise ValueError(f"color_space must be one of {_COLOR_SPACES}, got {color_space!r}")
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
        (`refinement.data.PersonCropper`) with a crop around one person. Arguments and
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

        output_from_image = _output_from_input(config.output_stride) @ input_from_image
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


def _output_from_input(stride: int) -> tf.Tensor:
    return scale_matrix(tf.constant(1.0 / stride, tf.float64))


# --------------------------------------------------------------------------------------------
# Eval-time preprocessing.


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
