"""The distribution of the synthetic people scenes and the default splits."""

from __future__ import annotations

import dataclasses

import numpy as np

from associative_embedding.data.synthetic.pose import NUM_JOINTS
from associative_embedding.data.synthetic.writer import SyntheticSplit


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Distribution of synthetic scenes (sizes are relative to the image height).

    Attributes:
        people_count_weights: relative probability of 0, 1, 2, ... people per image.
        min_height_fraction: smallest standing person height, fraction of the image height.
        max_height_fraction: largest standing person height with one or two people; with n > 2
            people it shrinks as ``max / (n / 2) ** crowd_shrink``.
        group_probability: probability that a person (after the first) is placed next to an
            already placed one at a similar scale, so their boxes overlap.
        min_visible_fraction: a placement is rejected if it leaves an earlier person with less
            than this fraction of their pixels visible.
        min_labelled_joints: a placement is rejected if fewer joints of the new person are
            labelled (inside the image, face rule applied).
        max_placement_attempts: placements tried per person before the person is dropped.
        clutter_count_range: inclusive range of background clutter shapes.
        noise_amplitude: maximum of the uniform per-pixel sensor noise (grey levels).
        blur_probability: probability of a 3x3 Gaussian blur of the finished image.
        jpeg_quality: JPEG quality of the written images.
        height_distribution: 'uniform' (default) or 'log_uniform' sampling of person heights
            between the two fractions.
        crowd_shrink: exponent of the crowd shrink of ``max_height_fraction`` (0 = none).
        label_min_height_fraction: COCO's rule for small people. A person whose mask box is
            less tall than this fraction of the image height is drawn (with its box and
            segmentation) but not annotated: keypoints all (0, 0, 0), ``num_keypoints = 0``,
            so COCO evaluation ignores it and training masks its pixels as unlabelled. 0
            annotates everybody.
        background_people_range: inclusive range of extra small "background crowd" people
            drawn behind everybody else, with standing heights uniform in
            ``background_height_range`` (fractions of the image height). They are usually
            below ``label_min_height_fraction`` and so unannotated, like the unannotated
            small people of COCO's crowded photos.
        background_height_range: (low, high) standing heights of the background people.
    """

    people_count_weights: tuple[float, ...] = (0.02, 0.13, 0.22, 0.22, 0.16, 0.11, 0.07, 0.04, 0.03)
    min_height_fraction: float = 0.4
    max_height_fraction: float = 0.95
    group_probability: float = 0.4
    min_visible_fraction: float = 0.35
    min_labelled_joints: int = 3
    max_placement_attempts: int = 12
    clutter_count_range: tuple[int, int] = (4, 18)
    noise_amplitude: int = 6
    blur_probability: float = 0.3
    jpeg_quality: int = 95
    height_distribution: str = "uniform"
    crowd_shrink: float = 0.0
    label_min_height_fraction: float = 0.3125
    background_people_range: tuple[int, int] = (0, 3)
    background_height_range: tuple[float, float] = (0.1, 0.28)

    def __post_init__(self) -> None:
        weights = np.asarray(self.people_count_weights, dtype=np.float64)
        if weights.ndim != 1 or weights.size == 0 or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(
                f"people_count_weights must be non-negative with a positive sum, got "
                f"{self.people_count_weights}."
            )
        if len(self.people_count_weights) > 21:
            # COCOeval keeps at most 20 detections per image.
            raise ValueError("people_count_weights allows more than 20 people per image.")
        if not 0 < self.min_height_fraction <= self.max_height_fraction:
            raise ValueError(
                f"need 0 < min_height_fraction <= max_height_fraction, got "
                f"{self.min_height_fraction}, {self.max_height_fraction}."
            )
        for name in ("group_probability", "min_visible_fraction", "blur_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}.")
        if not 0 <= self.min_labelled_joints <= NUM_JOINTS:
            raise ValueError(f"min_labelled_joints must lie in [0, {NUM_JOINTS}].")
        if self.max_placement_attempts < 1:
            raise ValueError("max_placement_attempts must be >= 1.")
        low, high = self.clutter_count_range
        if not 0 <= low <= high:
            raise ValueError(f"clutter_count_range must be 0 <= low <= high, got {low, high}.")
        if self.height_distribution not in ("uniform", "log_uniform"):
            raise ValueError(
                f"height_distribution must be 'uniform' or 'log_uniform', got "
                f"{self.height_distribution!r}."
            )
        if self.crowd_shrink < 0:
            raise ValueError(f"crowd_shrink must be >= 0, got {self.crowd_shrink}.")
        if not 0.0 <= self.label_min_height_fraction <= 1.0:
            raise ValueError(
                f"label_min_height_fraction must lie in [0, 1], got "
                f"{self.label_min_height_fraction}."
            )
        low, high = self.background_people_range
        if not 0 <= low <= high:
            raise ValueError(
                f"background_people_range must be 0 <= low <= high, got {low, high}."
            )
        low, high = self.background_height_range
        if not 0 < low <= high:
            raise ValueError(
                f"background_height_range must be 0 < low <= high, got {low, high}."
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must lie in [1, 100], got {self.jpeg_quality}.")


# to generate both on one busy CPU core). The val split's grouping statistics are asserted in
# tests/data/test_synthetic.py. At 256x256 the silhouettes stay below COCO's 'large' area range
# (96^2), so COCO evaluation reports AP_L = -1 on this data.
DEFAULT_SPLITS: dict[str, SyntheticSplit] = {
    "train": SyntheticSplit(num_images=5000, seed=0),
    "val": SyntheticSplit(num_images=500, seed=1),
}
DEFAULT_IMAGE_SIZE = 256
