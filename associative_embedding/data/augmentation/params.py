"""Training augmentation settings and the stateless draw of one example's parameters.

``AugmentConfig`` holds the ranges (official pose-ae-train ranges by default) and the warp and
colour options; ``sample_augmentation`` draws every random number of one example from a
per-example stateless seed (``tf.random.stateless_uniform``), so the same seed gives the same
augmentation eagerly, in ``tf.function`` and in ``Dataset.map``, on any host.

The official ranges: θ ~ U(-30°, 30°); crop_scale ~ U(0.75, 1.25) (its ``scale *= aug_scale``
with the long side mapped to the input); tx, ty ~ U(-0.2, 0.2) of the crop side (its
±40·scale pixels with a 200·scale-pixel crop, i.e. ±102.4 input pixels at 512); horizontal flip
with p = 0.5; hue ±0.2, saturation and contrast ×U(0.5, 1.5), brightness ±0.3.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

CONTRAST_MODES = ("image", "pixel")
MASK_INTERPOLATIONS = ("bilinear", "nearest")
COLOR_SPACES = ("hsv", "yiq")
PLACEMENTS = ("centre", "top_left")
_NUM_RANDOM_VALUES = 9  # rotation, scale, tx, ty, flip, hue, saturation, brightness, contrast
# The ranges of an augmentation that changes nothing: every random draw is then the identity.
_IDENTITY_RANGES = dict(
    max_rotation_degrees=0.0, scale_range=(1.0, 1.0), max_translation=0.0,
    flip_probability=0.0, max_hue_delta=0.0, saturation_range=(1.0, 1.0),
    max_brightness_delta=0.0, contrast_range=(1.0, 1.0),
)


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
        if self.contrast_mode not in CONTRAST_MODES:
            raise ValueError(f"contrast_mode must be one of {CONTRAST_MODES}.")
        if self.color_space not in COLOR_SPACES:
            raise ValueError(f"color_space must be one of {COLOR_SPACES}.")
        if self.mask_interpolation not in MASK_INTERPOLATIONS:
            raise ValueError(f"mask_interpolation must be one of {MASK_INTERPOLATIONS}.")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}.")

    @property
    def output_size(self) -> int:
        return self.input_size // self.output_stride

    @classmethod
    def identity(cls, input_size: int = 512, output_stride: int = 4, **overrides) -> AugmentConfig:
        """No geometric or colour change: the long side is fitted to the input, centred."""
        values = {**_IDENTITY_RANGES, **overrides}
        return cls(input_size=input_size, output_stride=output_stride, **values)

    def without_randomness(self) -> AugmentConfig:
        """This config with every random range closed (as ``identity``).

        The sizes and the colour, mask and placement options stay, so validation targets are
        made with the geometry and mask rules of training.
        """
        return dataclasses.replace(self, **_IDENTITY_RANGES)

    @property
    def has_color_jitter(self) -> bool:
        return (
            self.max_hue_delta > 0
            or self.saturation_range != (1.0, 1.0)
            or self.max_brightness_delta > 0
            or self.contrast_range != (1.0, 1.0)
        )


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
