"""One synthetic shapes image: placed, touching and occluding instances with visible masks.

Scene model (all randomness of an image comes from one generator seeded by
``(seed, crc32(split), image_index)`` (``writer.image_rng``), so the output depends only on the
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

"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from associative_embedding.data.synthetic.shapes_config import (
    DEFAULT_IMAGE_SIZE,
    SHAPES_CATEGORIES,
    ShapesConfig,
)
from associative_embedding.data.synthetic.shapes_geometry import (
    SUBPIXEL_BITS,
    local_vertices,
    polygon_area,
    rasterize,
    touches,
)


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
        local = local_vertices(category, size, rng, config)
        center = rng.uniform(0.1, 0.9, 2) * (image_size - 1)
        candidate = _Candidate(category, local, center, size, mode, -1)
        mask = rasterize(local + center, image_size)
        if any(touches(mask, instance.mask) for instance in placed):
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
        local = local_vertices(category, size, rng, config)
        candidate = _Candidate(category, local, anchor.center, size, mode, partner)
        distance = rng.uniform(*config.occlusion_distance_range) * (
            anchor_radius + candidate.radius)
        candidate.center = anchor.center + distance * direction
        return candidate, rasterize(local + candidate.center, image_size)
    # 'touch': same category, slid out from the partner's centre until the masks just touch.
    low_size, high_size = np.asarray(config.size_range) * image_size
    size = float(np.clip(anchor.size * rng.uniform(*config.touch_size_ratio_range),
                         low_size, high_size))
    local = local_vertices(anchor.category_index, size, rng, config)
    candidate = _Candidate(anchor.category_index, local, anchor.center, size, mode, partner)
    target = anchor.mask

    def mask_at(distance: float) -> np.ndarray:
        return rasterize(local + anchor.center + distance * direction, image_size)

    near, far = 0.0, anchor_radius + candidate.radius + 2.0  # overlapping .. apart
    while far - near > 1.0 / (1 << SUBPIXEL_BITS):
        middle = 0.5 * (near + far)
        if np.any(mask_at(middle) & target):
            near = middle
        else:
            far = middle
    for distance in (far, near):  # just apart (touching if rasterisation allows), else a sliver
        mask = mask_at(distance)
        if touches(mask, target):
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
    """Draws one scene (see the docstring above).

    Args:
        rng: the image's random generator (e.g. ``writer.image_rng(seed, split, index)``).
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
            full_area = polygon_area(candidate.local)
            if _acceptable(mask, full_area, placed, image_size, config):
                accepted = candidate, mask, full_area
                break
        if accepted is None:
            continue
        candidate, mask, full_area = accepted
        for instance in placed:
            instance.mask = instance.mask & ~mask
        neighbours = [instance.colour for instance in placed if touches(mask, instance.full_mask)]
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

