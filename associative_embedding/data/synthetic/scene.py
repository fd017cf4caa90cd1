"""One synthetic people image: background, people placed in crowds, and their keypoint labels.

Scene model (all randomness comes from one ``numpy.random.Generator`` per image, seeded by
``(seed, crc32(split), image_index)``, so any image can be regenerated on its own):

* **Background**: a linear gradient between two random colours, low-frequency colour blotches
  and 4-18 clutter shapes (rectangles, circles, ellipses, triangles, straight lines and thick
  jointed polylines in the same colour families as the limbs), all drawn *behind* the people.
* **People** (0-8 per image): a 3-D skeleton with the 17 COCO joints, seen by an orthographic
  camera. Limb lengths are proportions of the standing body height (thigh 0.24, shin 0.235,
  upper arm 0.17, forearm 0.15, hip-to-shoulder 0.29, head radius 0.063, each jittered by
  +-8 %; widths jittered by build). A pose template (standing, walking, arms raised,
  sitting-ish, leaning, or unconstrained within joint limits) sets shoulder/hip swing and
  abduction, elbow/knee flexion, torso lean/twist and head turn; the body yaw is frontal-ish
  half of the time and uniform otherwise (profile and back views occur). The standing height
  is uniform in [40 %, 95 %] of the image height (options: log-uniform, and an upper limit
  shrinking with the number of people). Limbs are anti-aliased capsules, the torso a convex
  polygon with chest depth, the head a filled ellipse with hair, a face patch, eyes, nose and
  ears; body parts are painted far-to-near so profile views occlude correctly.
* **Left / right**: the person's left limbs use a warm hue family (red-yellow), the right limbs
  a cool one (cyan-blue), each jittered per person and per segment; torso, skin and hair
  colours are random. (A horizontal flip with joint swap reverses this colour cue; the facing
  cues - face features, hair, nose direction - survive it.)
* **Background crowd**: 0-3 small people (standing height 10-28 % of the image) are drawn
  first, behind everybody else.
* **Grouping matters**: with probability ``group_probability`` a new person is placed next to
  an existing one at a similar scale (boxes typically overlapping with IoU >= 0.3). A
  placement is rejected (and retried) when it would leave an earlier person with less than
  ``min_visible_fraction`` of their pixels visible or when it leaves the new person with fewer
  than ``min_labelled_joints`` joints inside the image.

Scale, following COCO's own rule for small people: COCO annotates no keypoints on people
below ~32² pixels of area (``num_keypoints = 0``; the evaluator ignores them and training masks
them). Here a person whose mask box is less tall than ``label_min_height_fraction`` (31.25 %)
of the image is drawn but unannotated in the same way. At the embedded default (256x256
images, 128 input, stride 4: 8 image pixels per output pixel) that threshold is 10 output
pixels, the height of COCO's smallest annotated people at the paper's 512 input. Box heights
of the annotated people, in output pixels (tests/data/test_synthetic.py checks the val split):

    ================================  =====  =====  =====  =====  =====  ========
    percentile                         10th   25th   50th   75th   90th   < 10 px
    ================================  =====  =====  =====  =====  =====  ========
    synthetic val, 128 input           12.9   14.6   18.0   21.8   25.1   0 %
    COCO val/train2017, 512 input      11.5   15.4   29-37  52-58  86-90  ~0 %
    ================================  =====  =====  =====  =====  =====  ========

(COCO's heights are 9 / 12 / 23-29 / 41-45 / 67-70 % of the image's longer side at those
percentiles.) The synthetic people thus span COCO's smaller half in output pixels: the 32x32
output map cannot hold COCO's large people. The default val split keeps crowds: 63 % of its
images have >= 3 annotated people, 64 % an annotated pair with box IoU >= 0.3, 3.4 annotated
and 1.6 unannotated people per image.

Labelling rules (COCO keypoint conventions, coordinates in the package's pixel-centre
convention, rounded to 0.01 px):

* A joint projecting outside ``[0, W-1] x [0, H-1]`` is unlabelled: ``(0, 0, 0)``.
* Face keypoints hidden by the person's own head are unlabelled ``(0, 0, 0)``, like a far ear
  in COCO: with ``n`` the head-surface normal at the keypoint and the camera looking along +z,
  the point is labelled iff ``-n_z`` exceeds ``FACE_LABEL_MIN_COSINE`` (nose -0.3, eyes 0.05,
  ears -0.35): eyes must face the camera, the nose and ears may sit on the silhouette. Only
  labelled face features are drawn.
* A labelled joint whose (rounded) pixel is covered by the mask of a person drawn later is
  occluded, ``v = 1``; otherwise ``v = 2``. Self-occlusion (a far arm behind the torso) is not
  flagged: the joint still lies on the person's own pixels.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from associative_embedding.data.synthetic.appearance import sample_appearance
from associative_embedding.data.synthetic.background import finish_image, render_background
from associative_embedding.data.synthetic.config import DEFAULT_IMAGE_SIZE, SyntheticConfig
from associative_embedding.data.synthetic.figure import Figure, build_figure
from associative_embedding.data.synthetic.pose import NUM_JOINTS, sample_pose
from associative_embedding.data.synthetic.render import draw_figure, draw_person_mask


@dataclasses.dataclass
class SyntheticPerson:
    """One rendered person.

    Attributes:
        keypoints: (17, 3) float64 (x, y, v) in image pixels (pixel-centre convention);
            unlabelled joints are (0, 0, 0), and so are all joints of an unannotated person.
        mask: (H, W) bool, the person's own drawn pixels (amodal, clipped to the image).
        height_px: standing body height in pixels.
        pose_template: name of the pose template the person was sampled from.
        annotated: False for a person below ``label_min_height_fraction`` (drawn, with box and
            segmentation, but no keypoints: COCO's ``num_keypoints = 0``).
    """

    keypoints: np.ndarray
    mask: np.ndarray
    height_px: float
    pose_template: str
    annotated: bool = True


@dataclasses.dataclass
class SyntheticScene:
    """One rendered image.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        people: the people in draw order (later ones are in front).
    """

    image: np.ndarray
    people: list[SyntheticPerson]


@dataclasses.dataclass
class _Placed:
    figure: Figure
    scale: float
    offset: np.ndarray
    mask: np.ndarray  # (H, W) bool
    cover: np.ndarray  # (H, W) bool, union of the masks of people drawn later
    box: np.ndarray  # (4,) x0, y0, x1, y1 of the figure extent in pixels


def _placement(
    rng: np.random.Generator,
    figure: Figure,
    scale: float,
    size: int,
    anchor: _Placed | None,
) -> np.ndarray:
    """Pelvis position (2,) such that at most ~20 % of the figure extent leaves the image."""
    extent = figure.extent * scale
    width, height = extent[2] - extent[0], extent[3] - extent[1]
    if anchor is None:
        top_left = np.array(
            [
                rng.uniform(*sorted((-0.2 * width, size - 0.8 * width))),
                rng.uniform(*sorted((-0.2 * height, size - 0.8 * height))),
            ]
        )
    else:
        anchor_centre = (anchor.box[:2] + anchor.box[2:]) / 2
        anchor_width = anchor.box[2] - anchor.box[0]
        anchor_height = anchor.box[3] - anchor.box[1]
        shift = np.array(
            [
                rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.5) * max(width, anchor_width),
                rng.uniform(-0.12, 0.12) * anchor_height,
            ]
        )
        top_left = anchor_centre + shift - np.array([width, height]) / 2
        # Keep it mostly inside the image, like independent placements.
        for axis, length in ((0, width), (1, height)):
            low, high = sorted((-0.2 * length, size - 0.8 * length))
            top_left[axis] = np.clip(top_left[axis], low, high)
    return top_left - extent[:2]


def render_scene(
    rng: np.random.Generator,
    image_size: int = DEFAULT_IMAGE_SIZE,
    config: SyntheticConfig | None = None,
) -> SyntheticScene:
    """Renders one synthetic image with its people.

    Args:
        rng: the random generator (the only source of randomness).
        image_size: side of the square image in pixels (>= 32).
        config: scene distribution; defaults to ``SyntheticConfig()``.

    Returns:
        The image (H, W, 3) uint8 RGB and the people in draw order with keypoints (17, 3)
        labelled as described in the module docstring.
    """
    config = config or SyntheticConfig()
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}.")
    size = int(image_size)
    canvas = render_background(rng, size, config)

    weights = np.asarray(config.people_count_weights, dtype=np.float64)
    count = int(rng.choice(len(weights), p=weights / weights.sum()))
    max_fraction = config.max_height_fraction / max(1.0, count / 2.0) ** config.crowd_shrink
    max_fraction = max(max_fraction, config.min_height_fraction)
    if config.height_distribution == "log_uniform":
        heights = np.exp(
            rng.uniform(math.log(config.min_height_fraction), math.log(max_fraction), size=count)
        )
    else:
        heights = rng.uniform(config.min_height_fraction, max_fraction, size=count)
    heights = heights * size
    # Smaller (farther) people tend to be drawn first, with some randomness.
    heights = heights[np.argsort(heights * rng.uniform(0.85, 1.15, size=count))]
    # The background crowd is drawn first, behind everybody.
    low, high = config.background_people_range
    background_heights = (
        rng.uniform(*config.background_height_range, size=int(rng.integers(low, high + 1))) * size
    )

    placed: list[_Placed] = []
    main_people: list[_Placed] = []  # the people sampled at the main scale (group anchors)
    for index, sampled_height in enumerate(np.concatenate([background_heights, heights])):
        in_background = index < len(background_heights)
        figure = build_figure(sample_pose(rng), rng, sample_appearance(rng))
        accepted = None
        for _ in range(config.max_placement_attempts):
            anchor = None
            scale = float(sampled_height)
            if not in_background and main_people and rng.random() < config.group_probability:
                anchor = main_people[int(rng.integers(len(main_people)))]
                scale = anchor.scale * rng.uniform(0.85, 1.15)
                scale = min(max(scale, config.min_height_fraction * size), max_fraction * size)
            offset = _placement(rng, figure, scale, size, anchor)
            joints = offset + scale * figure.joints
            inside = np.all((joints >= 0) & (joints <= size - 1), axis=1)
            if np.count_nonzero(inside & figure.labelled) < config.min_labelled_joints:
                continue
            mask = draw_person_mask(figure, scale, offset, size)
            if not mask.any():
                continue
            enough_visible = all(
                np.count_nonzero(other.mask & ~(other.cover | mask))
                >= config.min_visible_fraction * np.count_nonzero(other.mask)
                for other in placed
            )
            if enough_visible:
                accepted = (scale, offset, mask)
                break
        if accepted is None:
            continue  # the image simply has one person fewer
        scale, offset, mask = accepted
        for other in placed:
            other.cover |= mask
        draw_figure(canvas, figure, scale, offset)
        placed.append(
            _Placed(
                figure,
                scale,
                offset,
                mask,
                np.zeros_like(mask),
                np.concatenate([offset, offset]) + scale * figure.extent,
            )
        )
        if not in_background:
            main_people.append(placed[-1])

    image = finish_image(rng, canvas, config)
    people = []
    for person in placed:
        joints = person.offset + person.scale * person.figure.joints
        joints = np.round(joints, 2)
        inside = np.all((joints >= 0) & (joints <= size - 1), axis=1)
        rows = np.flatnonzero(person.mask.any(axis=1))
        annotated = rows[-1] + 1 - rows[0] >= config.label_min_height_fraction * size
        labelled = inside & person.figure.labelled & annotated
        keypoints = np.zeros((NUM_JOINTS, 3), dtype=np.float64)
        pixels = np.clip(np.round(joints).astype(np.int64), 0, size - 1)
        covered = person.cover[pixels[:, 1], pixels[:, 0]]
        keypoints[labelled, :2] = joints[labelled]
        keypoints[labelled, 2] = np.where(covered[labelled], 1.0, 2.0)
        people.append(
            SyntheticPerson(
                keypoints, person.mask, person.scale, person.figure.pose_template, bool(annotated)
            )
        )
    return SyntheticScene(image=image, people=people)
