"""The distribution of the synthetic shapes scenes, their categories and the default splits."""

from __future__ import annotations

import dataclasses

from associative_embedding.data.instances import InstanceCategories
from associative_embedding.data.synthetic.writer import SyntheticSplit

SHAPES_CATEGORIES = InstanceCategories(names=("disc", "square", "triangle"), ids=(1, 2, 3))

DEFAULT_IMAGE_SIZE = 128
# Train / val sizes for the embedded CPU experiment (~2 s per 100 images to generate).
DEFAULT_SPLITS: dict[str, SyntheticSplit] = {
    "train": SyntheticSplit(num_images=2000, seed=0),
    "val": SyntheticSplit(num_images=300, seed=1),
}


@dataclasses.dataclass(frozen=True)
class ShapesConfig:
    """Distribution of the synthetic shape scenes (``shapes_scene`` describes the model).

    Attributes:
        instance_count_range: inclusive range of the instances attempted per image (2-6).
        size_range: shape size (ellipse major axis, rectangle long side, triangle longest side)
            as a fraction of the image side, uniform (0.18-0.45).
        disc_aspect_range: minor / major axis of the ellipses (0.6-1).
        square_aspect_range: short / long side of the rectangles (0.75-1).
        triangle_angle_jitter: degrees by which each triangle vertex's polar angle deviates
            from the equilateral one (20: no needle-thin triangles).
        touch_probability: probability that an instance after the first touches a placed
            instance of its own category (0.35).
        occlusion_probability: probability that it is placed overlapping a placed instance of
            any category (0.2).
        touch_size_ratio_range: size of a touching instance relative to its partner (0.8-1.25).
        occlusion_distance_range: centre distance of an occluding placement, as a fraction of
            the sum of the two circumradii (0.35-0.85).
        similar_colour_probability: probability that an image gives instances of a category
            already present a colour similar to one of them (0.5).
        similar_colour_distance_range: distance of such a colour from its model (30-55).
        min_instance_contrast: least colour distance between instances that touch or overlap
            (30; with ``noise_std`` 3 the boundary stays visible).
        min_background_contrast: least colour distance from the background under the shape
            (70).
        min_visible_fraction: least visible fraction of an instance's full area after
            occlusion and truncation (0.25).
        min_inside_fraction: least fraction of a new instance's area inside the image (0.6).
        min_visible_area_fraction: least visible area as a fraction of the image area (0.004,
            ~66 pixels at 128x128: about 4 pixels of the 32x32 output map).
        shading_strength: relative brightness change from the centre to the edge of a shape
            along its shading direction (0.12).
        background_gradient: largest per-channel difference between the two ends of the
            background gradient (30).
        background_blob_amplitude: amplitude of the low-frequency background blotches (8).
        noise_std: standard deviation of the per-pixel Gaussian noise in grey levels (3).
        max_placement_attempts: attempts per instance before it is left out (30).
    """

    instance_count_range: tuple[int, int] = (2, 6)
    size_range: tuple[float, float] = (0.18, 0.45)
    disc_aspect_range: tuple[float, float] = (0.6, 1.0)
    square_aspect_range: tuple[float, float] = (0.75, 1.0)
    triangle_angle_jitter: float = 20.0
    touch_probability: float = 0.35
    occlusion_probability: float = 0.2
    touch_size_ratio_range: tuple[float, float] = (0.8, 1.25)
    occlusion_distance_range: tuple[float, float] = (0.35, 0.85)
    similar_colour_probability: float = 0.5
    similar_colour_distance_range: tuple[float, float] = (30.0, 55.0)
    min_instance_contrast: float = 30.0
    min_background_contrast: float = 70.0
    min_visible_fraction: float = 0.25
    min_inside_fraction: float = 0.6
    min_visible_area_fraction: float = 0.004
    shading_strength: float = 0.12
    background_gradient: float = 30.0
    background_blob_amplitude: float = 8.0
    noise_std: float = 3.0
    max_placement_attempts: int = 30

    def __post_init__(self) -> None:
        def check_range(name: str, low_limit: float, high_limit: float) -> None:
            low, high = getattr(self, name)
            if not low_limit <= low <= high <= high_limit:
                raise ValueError(
                    f"{name} must satisfy {low_limit} <= low <= high <= {high_limit}, got "
                    f"{getattr(self, name)}."
                )

        low, high = self.instance_count_range
        if not 1 <= low <= high <= 20:  # COCO evaluation keeps at most 20 detections an image
            raise ValueError(
                f"instance_count_range must satisfy 1 <= low <= high <= 20, got {low, high}."
            )
        check_range("size_range", 1e-3, 1.0)
        check_range("disc_aspect_range", 0.1, 1.0)
        check_range("square_aspect_range", 0.1, 1.0)
        check_range("touch_size_ratio_range", 0.1, 10.0)
        check_range("occlusion_distance_range", 0.0, 2.0)
        check_range("similar_colour_distance_range", 0.0, 442.0)
        for name in ("touch_probability", "occlusion_probability", "similar_colour_probability",
                     "min_visible_fraction", "min_inside_fraction",
                     "min_visible_area_fraction", "shading_strength"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}.")
        if self.touch_probability + self.occlusion_probability > 1.0:
            raise ValueError("touch_probability + occlusion_probability must be <= 1.")
        if not 0.0 <= self.triangle_angle_jitter < 60.0:
            raise ValueError("triangle_angle_jitter must lie in [0, 60) degrees.")
        for name in ("min_instance_contrast", "min_background_contrast", "background_gradient",
                     "background_blob_amplitude", "noise_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.max_placement_attempts < 1:
            raise ValueError("max_placement_attempts must be >= 1.")
