"""Synthetic "shapes" instance segmentation data, written as a real COCO instances dataset.

Three categories - 'disc' (an ellipse), 'square' (a rotated, nearly square rectangle) and
'triangle' - drawn as solid, mildly shaded shapes on a smooth background. The data is made so
that a small hourglass learns it on a CPU in minutes, yet *grouping matters*: instances of one
category often touch (shared boundary, no gap) or occlude each other, so a per-category
foreground map alone cannot separate them, and instances of one category often have similar
colours, so colour alone cannot either.

Layout (``generate_synthetic_shapes``): ``root/{split}/{image_id:012d}.png`` (RGB PNG),
``root/annotations/instances_{split}.json`` (COCO instances: one compressed-RLE segmentation
per instance, its *visible* mask after occlusion; ``iscrowd`` 0; category ids 1 disc,
2 square, 3 triangle) and ``root/annotations/instances_{split}_statistics.json``. The JSON is
read by pycocotools, `coco_instances.read_coco_instances` and COCO ``segm`` evaluation.

Scene model (all randomness of an image comes from one generator seeded by
``(seed, crc32(split), image_index)`` (`synthetic.image_rng`), so the output depends only on the
arguments and any image can be regenerated alone):

* **Background**: a linear gradient between two colours that differ by at most
  ``background_gradient`` per channel around a random mid-grey-ish base, plus low-frequency
  blotches (a bicubically upsampled 4x4 random field, ``background_blob_amplitude``).
* **Instances**: a count uniform in ``instance_count_range``; categories uniform; size (the
  ellipse's major axis, the rectangle's long side, the triangle's longest side) uniform in
  ``size_range`` of the image side. Placed one after the other, each later one in front:
  - *touch* (probability ``touch_probability``): a new instance of the same category as a random
    placed one ("partner"), scaled by ``touch_size_ratio_range``, slid along a random direction
    until it touches the partner's visible pixels (binary search on the distance; when
    rasterisation leaves a gap it is moved back by < 1/16 pixel and overlaps a sliver instead).
  - *occlude* (``occlusion_probability``): a random-category instance centred
    ``occlusion_distance_range`` x (sum of the two circumradii) away from a placed one.
  - *free* otherwise (and after ``max_placement_attempts`` // 2 failed attempts): a uniform
    position not touching any placed instance (so contact and occlusion come at the rates
    set by the two probabilities above, and clutter stays learnable).
  A placement is rejected (and retried, at most ``max_placement_attempts`` times, else the image
  gets fewer instances) when the new instance has less than ``min_inside_fraction`` of its area
  inside the image, or when it leaves any instance (itself included) with a visible area below
  ``min_visible_fraction`` of its full area or below ``min_visible_area_fraction`` of the image.
  So no drawn instance is ever dropped from the annotations.
* **Colours**: uniform RGB at least ``min_background_contrast`` (Euclidean, 0-255 units) from
  the background under the shape and ``min_instance_contrast`` from every instance it touches
  or overlaps (so every boundary is visible). With probability ``similar_colour_probability``
  an image is "similar-coloured": an instance of a category already present takes the colour of
  one such instance (its partner when touching) moved by ``similar_colour_distance_range``.
* **Shading and noise**: each instance's colour is scaled by ``1 +- shading_strength`` along a
  random direction across it; Gaussian noise of ``noise_std`` is added to the whole image.
Shapes are rasterised without anti-aliasing (pixel centres inside the polygon), so the
annotated masks are exactly the pixels drawn in the instance's colour.

Statistics (`ShapesStatistics`, also written as JSON) count, per split, the images, the
instances per category and per image, the touching same-category pairs (visible masks that are
4-adjacent) and the images that contain one, occluded instances and the visible fraction.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import pathlib
import time
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from associative_embedding.data.coco_instances import write_coco_instances
from associative_embedding.data.instances import (
    InstanceCategories,
    InstanceRecord,
    InstanceSegment,
)
from associative_embedding.data.synthetic import SyntheticSplit, image_rng

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "DEFAULT_SPLITS",
    "SHAPES_CATEGORIES",
    "ShapeInstance",
    "ShapesConfig",
    "ShapesDataset",
    "ShapesScene",
    "ShapesStatistics",
    "generate_synthetic_shapes",
    "render_shapes_scene",
    "shapes_annotation_path",
    "shapes_statistics_path",
    "touching_pairs",
]

SHAPES_CATEGORIES = InstanceCategories(names=("disc", "square", "triangle"), ids=(1, 2, 3))
_DISC, _SQUARE, _TRIANGLE = range(3)

DEFAULT_IMAGE_SIZE = 128
# Train / val sizes for the embedded CPU experiment (~2 s per 100 images to generate).
DEFAULT_SPLITS: dict[str, SyntheticSplit] = {
    "train": SyntheticSplit(num_images=2000, seed=0),
    "val": SyntheticSplit(num_images=300, seed=1),
}

# Fixed-point bits of the polygon vertices given to cv2.fillPoly (1/16 pixel).
_SUBPIXEL_BITS = 4
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)


@dataclasses.dataclass(frozen=True)
class ShapesConfig:
    """Distribution of the synthetic shape scenes (see the module docstring for the model).

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


@dataclasses.dataclass
class ShapeInstance:
    """One drawn instance.

    Attributes:
        category_index: channel of `SHAPES_CATEGORIES` (0 disc, 1 square, 2 triangle).
        mask: (H, W) bool, the visible pixels (after occlusion by later instances) - the
            annotation.
        full_mask: (H, W) bool, all its pixels inside the image (before occlusion).
        full_area: area of the whole shape in pixels (polygon area, also outside the image).
        colour: (3,) float64 RGB before shading.
        size: the shape size in pixels (see `ShapesConfig.size_range`).
        center: (2,) float64 (x, y) in the pixel-centre convention.
        polygon: (N, 2) float64 vertices (x, y) of the whole shape (pixel-centre convention).
        placement: 'free', 'touch' or 'occlude'.
        partner: index of the instance it was placed against (-1 for 'free').
    """

    category_index: int
    mask: np.ndarray
    full_mask: np.ndarray
    full_area: float
    colour: np.ndarray
    size: float
    center: np.ndarray
    polygon: np.ndarray
    placement: str
    partner: int = -1


@dataclasses.dataclass
class ShapesScene:
    """One rendered image.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        instances: in draw order (later ones in front).
        similar_colours: whether the image is a "similar-coloured" one.
    """

    image: np.ndarray
    instances: list[ShapeInstance]
    similar_colours: bool = False


@dataclasses.dataclass(frozen=True)
class ShapesStatistics:
    """Statistics of one generated split.

    Attributes:
        split, seed, image_size: what was generated.
        num_images: images written.
        num_instances: annotations written.
        instances_per_category: category name -> instances.
        instances_per_image: instance count -> images with that many.
        placements: 'free' / 'touch' / 'occlude' -> instances placed that way.
        touching_same_category_pairs: pairs of same-category instances whose visible masks
            are 4-adjacent (shared boundary, no gap).
        images_with_touching_same_category_pair: images with at least one such pair.
        fraction_images_touching_same_category: the above over num_images.
        touching_pairs_any_category: 4-adjacent pairs of any categories.
        occluded_instances: instances with visible area below 99 % of their in-image area.
        mean_visible_fraction: mean visible area / full area.
        similar_colour_images: images drawn in the "similar-coloured" mode.
        seconds: generation time.
    """

    split: str
    seed: int
    image_size: int
    num_images: int
    num_instances: int
    instances_per_category: dict[str, int]
    instances_per_image: dict[int, int]
    placements: dict[str, int]
    touching_same_category_pairs: int
    images_with_touching_same_category_pair: int
    fraction_images_touching_same_category: float
    touching_pairs_any_category: int
    occluded_instances: int
    mean_visible_fraction: float
    similar_colour_images: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class ShapesDataset:
    """What `generate_synthetic_shapes` wrote."""

    annotation_file: pathlib.Path
    image_dir: pathlib.Path
    statistics_file: pathlib.Path
    statistics: ShapesStatistics


# --------------------------------------------------------------------------------------------
# Geometry.


def _local_vertices(
    category: int, size: float, rng: np.random.Generator, config: ShapesConfig
) -> np.ndarray:
    """(N, 2) polygon vertices of a shape around the origin (x right, y down)."""
    if category == _DISC:
        aspect = rng.uniform(*config.disc_aspect_range)
        angles = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
        points = np.stack([0.5 * size * np.cos(angles), 0.5 * size * aspect * np.sin(angles)], 1)
    elif category == _SQUARE:
        aspect = rng.uniform(*config.square_aspect_range)
        half = np.array([0.5 * size, 0.5 * size * aspect])
        points = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * half
    else:
        jitter = np.deg2rad(rng.uniform(-config.triangle_angle_jitter,
                                        config.triangle_angle_jitter, 3))
        angles = np.array([0.0, 2.0 * np.pi / 3.0, 4.0 * np.pi / 3.0]) + jitter
        points = np.stack([np.cos(angles), np.sin(angles)], 1)
        sides = np.linalg.norm(points - np.roll(points, 1, axis=0), axis=1)
        points = points * (size / sides.max())
        points -= points.mean(axis=0)  # centroid at the origin
    rotation = rng.uniform(0.0, 2.0 * np.pi)
    cos, sin = math.cos(rotation), math.sin(rotation)
    return points @ np.array([[cos, sin], [-sin, cos]])


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _rasterize(vertices: np.ndarray, image_size: int) -> np.ndarray:
    """(S, S) bool mask of the pixels whose centre lies inside the polygon."""
    canvas = np.zeros((image_size, image_size), np.uint8)
    fixed = np.round(vertices * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(canvas, [fixed], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return canvas.astype(bool)


def _touches(mask: np.ndarray, other: np.ndarray) -> bool:
    """Whether two masks are 4-adjacent or overlap."""
    return bool(np.any(cv2.dilate(mask.astype(np.uint8), _CROSS).astype(bool) & other))


def touching_pairs(masks: Sequence[np.ndarray] | np.ndarray,
                   category_indices: Sequence[int] | np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of masks that share a boundary (4-adjacent pixels or overlap).

    Args:
        masks: (N, H, W) instance masks.
        category_indices: (N,) their categories; only same-category pairs are returned. Pass
            ``[0] * N`` for pairs of any categories.

    Returns:
        The pairs, sorted.
    """
    masks = np.asarray(masks).astype(bool)
    pairs = []
    for first in range(len(masks)):
        grown = cv2.dilate(masks[first].astype(np.uint8), _CROSS).astype(bool)
        for second in range(first + 1, len(masks)):
            if (category_indices[first] == category_indices[second]
                    and np.any(grown & masks[second])):
                pairs.append((first, second))
    return pairs


# --------------------------------------------------------------------------------------------
# Scene rendering.


@dataclasses.dataclass
class _Candidate:
    category: int
    local: np.ndarray
    center: np.ndarray
    size: float
    placement: str
    partner: int

    @property
    def radius(self) -> float:
        return float(np.linalg.norm(self.local, axis=1).max())


def _random_size(rng: np.random.Generator, image_size: int, config: ShapesConfig) -> float:
    return rng.uniform(*config.size_range) * image_size


def _propose(
    mode: str,
    placed: list[ShapeInstance],
    rng: np.random.Generator,
    image_size: int,
    config: ShapesConfig,
) -> tuple[_Candidate, np.ndarray] | None:
    """A candidate of the given placement mode and its in-image mask, or None when it fails
    (a free one touching a placed instance, a touching one that cannot make contact)."""
    if mode == "free":
        category = int(rng.integers(len(SHAPES_CATEGORIES.names)))
        size = _random_size(rng, image_size, config)
        local = _local_vertices(category, size, rng, config)
        center = rng.uniform(0.1, 0.9, 2) * (image_size - 1)
        candidate = _Candidate(category, local, center, size, mode, -1)
        mask = _rasterize(local + center, image_size)
        if any(_touches(mask, instance.mask) for instance in placed):
            return None  # free instances stand apart; contact comes from the other modes
        return candidate, mask
    partner = int(rng.integers(len(placed)))
    anchor = placed[partner]
    angle = rng.uniform(0.0, 2.0 * np.pi)
    direction = np.array([math.cos(angle), math.sin(angle)])
    anchor_radius = float(np.linalg.norm(anchor.polygon - anchor.center, axis=1).max())
    if mode == "occlude":
        category = int(rng.integers(len(SHAPES_CATEGORIES.names)))
        size = _random_size(rng, image_size, config)
        local = _local_vertices(category, size, rng, config)
        candidate = _Candidate(category, local, anchor.center, size, mode, partner)
        distance = rng.uniform(*config.occlusion_distance_range) * (
            anchor_radius + candidate.radius)
        candidate.center = anchor.center + distance * direction
        return candidate, _rasterize(local + candidate.center, image_size)
    # 'touch': same category, slid out from the partner's centre until the masks just touch.
    low_size, high_size = np.asarray(config.size_range) * image_size
    size = float(np.clip(anchor.size * rng.uniform(*config.touch_size_ratio_range),
                         low_size, high_size))
    local = _local_vertices(anchor.category_index, size, rng, config)
    candidate = _Candidate(anchor.category_index, local, anchor.center, size, mode, partner)
    target = anchor.mask

    def mask_at(distance: float) -> np.ndarray:
        return _rasterize(local + anchor.center + distance * direction, image_size)

    near, far = 0.0, anchor_radius + candidate.radius + 2.0  # overlapping .. apart
    while far - near > 1.0 / (1 << _SUBPIXEL_BITS):
        middle = 0.5 * (near + far)
        if np.any(mask_at(middle) & target):
            near = middle
        else:
            far = middle
    for distance in (far, near):  # just apart (touching if rasterisation allows), else a sliver
        mask = mask_at(distance)
        if _touches(mask, target):
            candidate.center = anchor.center + distance * direction
            return candidate, mask
    return None


def _acceptable(
    mask: np.ndarray,
    full_area: float,
    placed: list[ShapeInstance],
    image_size: int,
    config: ShapesConfig,
) -> bool:
    """Whether every instance stays visible enough with `mask` drawn in front."""
    min_area = config.min_visible_area_fraction * image_size * image_size
    visible = int(mask.sum())
    if visible < max(config.min_inside_fraction * full_area, min_area):
        return False
    for instance in placed:
        remaining = np.count_nonzero(instance.mask & ~mask)
        if remaining < max(config.min_visible_fraction * instance.full_area, min_area):
            return False
    return True


def _background(rng: np.random.Generator, image_size: int, config: ShapesConfig) -> np.ndarray:
    """(S, S, 3) float64 smooth background."""
    base = rng.uniform(60.0, 200.0, 3)
    half = 0.5 * config.background_gradient
    start, end = base + rng.uniform(-half, half, 3), base + rng.uniform(-half, half, 3)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    coordinates = (np.arange(image_size) - 0.5 * (image_size - 1)) / image_size
    ramp = (math.cos(angle) * coordinates[np.newaxis, :]
            + math.sin(angle) * coordinates[:, np.newaxis]) + 0.5
    image = start + (end - start) * ramp[..., np.newaxis]
    blobs = cv2.resize(rng.normal(0.0, 1.0, (4, 4, 3)), (image_size, image_size),
                       interpolation=cv2.INTER_CUBIC)
    return image + config.background_blob_amplitude * blobs


def _pick_colour(
    background_mean: np.ndarray,
    neighbours: list[np.ndarray],
    model: np.ndarray | None,
    rng: np.random.Generator,
    config: ShapesConfig,
) -> np.ndarray:
    """A colour contrasting with the background and the neighbours (near `model` if given)."""
    best, best_score = None, -np.inf
    for _ in range(40):
        if model is None:
            colour = rng.uniform(15.0, 240.0, 3)
        else:
            offset = rng.normal(size=3)
            offset *= rng.uniform(*config.similar_colour_distance_range) / np.linalg.norm(offset)
            colour = np.clip(model + offset, 0.0, 255.0)
        score = np.linalg.norm(colour - background_mean) / max(config.min_background_contrast,
                                                               1e-6)
        for neighbour in neighbours:
            score = min(score, np.linalg.norm(colour - neighbour) / max(
                config.min_instance_contrast, 1e-6))
        if score >= 1.0:
            return colour
        if score > best_score:
            best, best_score = colour, score
    return best


def render_shapes_scene(
    rng: np.random.Generator, image_size: int = DEFAULT_IMAGE_SIZE,
    config: ShapesConfig | None = None,
) -> ShapesScene:
    """Draws one scene (see the module docstring for the model).

    Args:
        rng: the image's random generator (e.g. `synthetic.image_rng(seed, split, index)`).
        image_size: side of the square image in pixels (>= 32).
        config: scene distribution; default `ShapesConfig()`.

    Returns:
        The scene: the RGB image and its instances with visible masks, in draw order.
    """
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}.")
    config = config or ShapesConfig()
    background = _background(rng, image_size, config)
    similar = bool(rng.random() < config.similar_colour_probability)
    low, high = config.instance_count_range
    target_count = int(rng.integers(low, high + 1))
    placed: list[ShapeInstance] = []
    for _ in range(target_count):
        mode = "free"
        if placed:
            draw = rng.random()
            if draw < config.touch_probability:
                mode = "touch"
            elif draw < config.touch_probability + config.occlusion_probability:
                mode = "occlude"
        accepted = None
        for attempt in range(config.max_placement_attempts):
            if attempt == config.max_placement_attempts // 2:
                mode = "free"
            proposal = _propose(mode, placed, rng, image_size, config)
            if proposal is None:
                continue
            candidate, mask = proposal
            full_area = _polygon_area(candidate.local)
            if _acceptable(mask, full_area, placed, image_size, config):
                accepted = candidate, mask, full_area
                break
        if accepted is None:
            continue
        candidate, mask, full_area = accepted
        for instance in placed:
            instance.mask = instance.mask & ~mask
        neighbours = [instance.colour for instance in placed if _touches(mask, instance.full_mask)]
        model = None
        if similar:
            same = [index for index, instance in enumerate(placed)
                    if instance.category_index == candidate.category]
            if candidate.placement == "touch":
                model = placed[candidate.partner].colour
            elif same:
                model = placed[same[int(rng.integers(len(same)))]].colour
        colour = _pick_colour(background[mask].mean(axis=0), neighbours, model, rng, config)
        placed.append(ShapeInstance(
            category_index=candidate.category, mask=mask.copy(), full_mask=mask,
            full_area=full_area, colour=colour, size=candidate.size, center=candidate.center,
            polygon=candidate.local + candidate.center, placement=candidate.placement,
            partner=candidate.partner,
        ))

    image = background
    ys, xs = np.mgrid[0:image_size, 0:image_size].astype(np.float64)
    for instance in placed:
        angle = rng.uniform(0.0, 2.0 * np.pi)
        along = ((xs - instance.center[0]) * math.cos(angle)
                 + (ys - instance.center[1]) * math.sin(angle)) / (0.5 * instance.size)
        shade = 1.0 + config.shading_strength * np.clip(along, -1.0, 1.0)
        image[instance.full_mask] = (shade[..., np.newaxis] * instance.colour)[instance.full_mask]
    image = image + rng.normal(0.0, config.noise_std, image.shape)
    return ShapesScene(
        image=np.clip(np.round(image), 0, 255).astype(np.uint8),
        instances=placed,
        similar_colours=similar,
    )


# --------------------------------------------------------------------------------------------
# Dataset writing and statistics.


def shapes_annotation_path(root: str | os.PathLike, split: str) -> pathlib.Path:
    """``root/annotations/instances_{split}.json``."""
    return pathlib.Path(root) / "annotations" / f"instances_{split}.json"


def shapes_statistics_path(root: str | os.PathLike, split: str) -> pathlib.Path:
    """``root/annotations/instances_{split}_statistics.json``."""
    return pathlib.Path(root) / "annotations" / f"instances_{split}_statistics.json"


class _StatisticsAccumulator:
    def __init__(self) -> None:
        self.per_category: collections.Counter = collections.Counter()
        self.per_image: collections.Counter = collections.Counter()
        self.placements: collections.Counter = collections.Counter()
        self.touching_same = self.images_touching = self.touching_any = 0
        self.occluded = self.similar = 0
        self.visible_fractions: list[float] = []

    def add(self, scene: ShapesScene) -> None:
        instances = scene.instances
        masks = [instance.mask for instance in instances]
        categories = [instance.category_index for instance in instances]
        same = touching_pairs(masks, categories)
        self.touching_same += len(same)
        self.images_touching += bool(same)
        self.touching_any += len(touching_pairs(masks, [0] * len(masks)))
        self.per_image[len(instances)] += 1
        self.similar += scene.similar_colours
        for instance in instances:
            self.per_category[SHAPES_CATEGORIES.names[instance.category_index]] += 1
            self.placements[instance.placement] += 1
            visible = int(instance.mask.sum())
            self.occluded += visible < 0.99 * int(instance.full_mask.sum())
            self.visible_fractions.append(visible / max(instance.full_area, 1e-6))

    def result(self, split: str, seed: int, image_size: int, num_images: int,
               seconds: float) -> ShapesStatistics:
        return ShapesStatistics(
            split=split,
            seed=seed,
            image_size=image_size,
            num_images=num_images,
            num_instances=sum(self.per_category.values()),
            instances_per_category={name: self.per_category.get(name, 0)
                                    for name in SHAPES_CATEGORIES.names},
            instances_per_image=dict(sorted(self.per_image.items())),
            placements={name: self.placements.get(name, 0)
                        for name in ("free", "touch", "occlude")},
            touching_same_category_pairs=self.touching_same,
            images_with_touching_same_category_pair=self.images_touching,
            fraction_images_touching_same_category=self.images_touching / max(num_images, 1),
            touching_pairs_any_category=self.touching_any,
            occluded_instances=self.occluded,
            mean_visible_fraction=float(np.mean(self.visible_fractions))
            if self.visible_fractions else 0.0,
            similar_colour_images=self.similar,
            seconds=seconds,
        )


def generate_synthetic_shapes(
    root: str | os.PathLike,
    split: str,
    num_images: int,
    seed: int,
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    config: ShapesConfig | None = None,
    show_progress: bool = False,
) -> ShapesDataset:
    """Writes one split of the synthetic shapes dataset (see the module docstring).

    The output depends only on (split, num_images, seed, image_size, config): the same
    arguments give byte-identical images and annotation JSON (the statistics JSON also holds
    the generation time). Image ids are 1..num_images, annotation ids 1..N in image order.

    Args:
        root: dataset root (created if needed; existing files of the split are overwritten).
        split: split name, e.g. 'train' or 'val' (also mixed into the random seed).
        num_images: number of images (>= 1).
        seed: non-negative base seed.
        image_size: side of the square images in pixels (>= 32).
        config: scene distribution; default `ShapesConfig()`.
        show_progress: show a tqdm progress bar.

    Returns:
        The paths written and the split's statistics.
    """
    if not split or any(character in split for character in "/\\"):
        raise ValueError(f"split must be a plain name, got {split!r}.")
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}.")
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}.")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}.")
    config = config or ShapesConfig()
    start = time.perf_counter()
    image_dir = pathlib.Path(root) / split
    image_dir.mkdir(parents=True, exist_ok=True)

    indices: Iterable[int] = range(num_images)
    if show_progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"shapes {split}", unit="img")
    records = []
    statistics = _StatisticsAccumulator()
    next_annotation_id = 1
    for index in indices:
        scene = render_shapes_scene(image_rng(seed, split, index), image_size, config)
        image_id = index + 1
        path = image_dir / f"{image_id:012d}.png"
        ok, encoded = cv2.imencode(".png", scene.image[..., ::-1])
        if not ok:
            raise RuntimeError(f"PNG encoding failed for synthetic image {image_id}.")
        path.write_bytes(encoded.tobytes())
        segments = []
        for instance in scene.instances:
            segments.append(InstanceSegment.from_mask(
                instance.mask, instance.category_index, annotation_id=next_annotation_id
            ))
            next_annotation_id += 1
        records.append(InstanceRecord(
            image_id=image_id, file_name=str(path.resolve()), height=image_size,
            width=image_size, segments=segments,
        ))
        statistics.add(scene)
    info = {
        "description": "Synthetic shapes for instance segmentation "
        "(associative_embedding.data.synthetic_shapes)",
        "split": split,
        "seed": seed,
        "image_size": image_size,
        "config": dataclasses.asdict(config),
    }
    annotation_file = write_coco_instances(
        shapes_annotation_path(root, split), records, SHAPES_CATEGORIES,
        image_dir=image_dir.resolve(), info=info,
    )
    result = statistics.result(split, seed, image_size, num_images,
                               time.perf_counter() - start)
    statistics_file = shapes_statistics_path(root, split)
    statistics_file.write_text(json.dumps(dataclasses.asdict(result), indent=2) + "\n",
                               encoding="utf-8")
    return ShapesDataset(annotation_file=annotation_file, image_dir=image_dir,
                         statistics_file=statistics_file, statistics=result)
