"""Synthetic multi-person pose data: articulated stick figures written as a real COCO dataset.

Nothing here needs a download: ``generate_synthetic_dataset`` writes images plus a
``person_keypoints_<split>.json`` that pycocotools, the COCO reader and COCO evaluation read
exactly like the real thing, so the whole training and evaluation stack can run on a laptop or
in CI.

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

Annotation fields: ``bbox`` is the box of the person's own (amodal, clipped to the image) mask,
``[x, y, w, h]`` with pixel j spanning [j, j+1); ``segmentation`` is the outer contour of that
mask (one polygon; more only in the rare case that truncation at the image border splits the
mask into pieces, one polygon per piece) in COCO polygon coordinates (pixel centres at
j + 0.5); ``area`` is the pycocotools area of that polygon; ``num_keypoints`` is the count of
v > 0; ``iscrowd`` is 0.
"""

from __future__ import annotations

import colorsys
import dataclasses
import json
import math
import os
import pathlib
import zlib
from collections.abc import Iterable

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from associative_embedding.data.keypoint_info import COCO

NUM_JOINTS = COCO.num_joints
_JOINT = {name: index for index, name in enumerate(COCO.joint_names)}

# Minimum cosine between the head-surface normal and the direction towards the camera for a
# face keypoint to count as labelled (see the module docstring).
FACE_LABEL_MIN_COSINE = {"nose": -0.3, "eye": 0.05, "ear": -0.35}

# Face keypoints as directions in the head frame (left, down, forward), normalised below, and
# their distance from the head centre in head radii (the nose and ears sit on the surface).
_FACE_JOINTS = np.array(
    [_JOINT[name] for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
)
_FACE_DIRECTIONS = np.array(
    [
        [0.0, 0.15, 1.0],
        [0.42, -0.18, 0.8],
        [-0.42, -0.18, 0.8],
        [1.0, -0.02, -0.12],
        [-1.0, -0.02, -0.12],
    ]
)
_FACE_DIRECTIONS /= np.linalg.norm(_FACE_DIRECTIONS, axis=1, keepdims=True)
_FACE_RADII = np.array([1.0, 0.95, 0.95, 0.98, 0.98])
_FACE_MIN_COSINES = np.array(
    [FACE_LABEL_MIN_COSINE[kind] for kind in ("nose", "eye", "eye", "ear", "ear")]
)

# Sub-pixel precision of OpenCV drawing: coordinates are passed as fixed point with 4 bits.
_SHIFT = 4
_SHIFT_SCALE = float(1 << _SHIFT)

# Body proportions in units of the standing height (jittered per person).
_PROPORTIONS = {
    "hip_half_width": 0.085,
    "shoulder_half_width": 0.115,
    "torso_length": 0.29,
    "neck_length": 0.12,
    "head_radius": 0.063,
    "upper_arm": 0.17,
    "forearm": 0.15,
    "hand_radius": 0.024,
    "thigh": 0.24,
    "shin": 0.235,
    "foot": 0.07,
    "chest_half_depth": 0.055,
}
# Capsule diameters in units of the standing height (scaled by the person's build).
_THICKNESS = {
    "upper_arm": 0.048,
    "forearm": 0.04,
    "thigh": 0.07,
    "shin": 0.055,
    "neck": 0.045,
    "foot": 0.032,
}

_POSE_TEMPLATES = ("standing", "walking", "arms_raised", "sitting", "leaning", "unconstrained")
_POSE_TEMPLATE_WEIGHTS = (0.25, 0.22, 0.15, 0.12, 0.11, 0.15)


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


@dataclasses.dataclass(frozen=True)
class SyntheticSplit:
    """Default size and seed of one split."""

    num_images: int
    seed: int


# Defaults sized for CPU training at 256x256 (~110 MB of JPEGs + 22 MB of JSON; about a minute
# to generate both on one busy CPU core). The val split's grouping statistics are asserted in
# tests/data/test_synthetic.py. At 256x256 the silhouettes stay below COCO's 'large' area range
# (96^2), so COCO evaluation reports AP_L = -1 on this data.
DEFAULT_SPLITS: dict[str, SyntheticSplit] = {
    "train": SyntheticSplit(num_images=5000, seed=0),
    "val": SyntheticSplit(num_images=500, seed=1),
}
DEFAULT_IMAGE_SIZE = 256


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


@dataclasses.dataclass(frozen=True)
class SyntheticStatistics:
    """Grouping-relevant statistics of a COCO-format keypoint dataset.

    Only annotated people count (non-crowd, a labelled joint): COCO evaluation ignores
    the others, so they make no grouping problem to score.

    Attributes:
        num_images: images listed.
        num_people: annotated people.
        mean_people_per_image: num_people / num_images.
        fraction_three_or_more: fraction of images with >= 3 annotated people.
        fraction_overlapping_pair: fraction of images with two annotated people whose boxes
            have IoU >= ``iou_threshold``.
        occluded_joint_fraction: labelled joints with v == 1 over all labelled joints.
        iou_threshold: the box IoU threshold used above.
    """

    num_images: int
    num_people: int
    mean_people_per_image: float
    fraction_three_or_more: float
    fraction_overlapping_pair: float
    occluded_joint_fraction: float
    iou_threshold: float


# --------------------------------------------------------------------------------------------
# Pose and appearance sampling.


@dataclasses.dataclass
class _LimbAngles:
    """Angles (radians) of one limb relative to its body frame.

    swing: rotation of the proximal segment from hanging down towards the front.
    abduction: rotation away from the body midline (sideways).
    bend: elbow / knee flexion (>= 0).
    bend_roll: rotation of the elbow's bending plane about the upper arm (arms only).
    """

    swing: float
    abduction: float
    bend: float
    bend_roll: float = 0.0


@dataclasses.dataclass
class _Pose:
    template: str
    yaw: float  # body rotation about the vertical axis; 0 = facing the camera
    torso_pitch: float  # forward lean of the upper body
    torso_roll: float  # sideways lean of the upper body
    torso_twist: float  # shoulders turned relative to the hips
    head_pitch: float
    head_yaw: float
    image_roll: float  # in-plane rotation of the whole figure
    arms: tuple[_LimbAngles, _LimbAngles]  # (left, right)
    legs: tuple[_LimbAngles, _LimbAngles]  # (left, right)


def _deg(rng: np.random.Generator, low: float, high: float) -> float:
    return math.radians(rng.uniform(low, high))


def _normal_deg(rng: np.random.Generator, std: float, limit: float) -> float:
    return math.radians(min(max(rng.normal(0.0, std), -limit), limit))


def _hanging_arm(rng: np.random.Generator, swing_offset: float = 0.0) -> _LimbAngles:
    return _LimbAngles(
        swing=swing_offset + _normal_deg(rng, 12, 30),
        abduction=_deg(rng, 3, 20),
        bend=_deg(rng, 0, 35),
        bend_roll=_deg(rng, -30, 30),
    )


def _standing_leg(rng: np.random.Generator) -> _LimbAngles:
    return _LimbAngles(
        swing=_normal_deg(rng, 6, 15), abduction=_deg(rng, 0, 10), bend=_deg(rng, 0, 12)
    )


def _sample_pose(rng: np.random.Generator) -> _Pose:
    """Samples a pose from one of the templates (angles within human joint limits)."""
    template = _POSE_TEMPLATES[rng.choice(len(_POSE_TEMPLATES), p=_POSE_TEMPLATE_WEIGHTS)]
    torso_pitch = _normal_deg(rng, 5, 12)
    torso_roll = _normal_deg(rng, 4, 10)
    if template == "standing":
        arms = (_hanging_arm(rng), _hanging_arm(rng))
        legs = (_standing_leg(rng), _standing_leg(rng))
    elif template == "walking":
        phase = rng.uniform(0.0, 2.0 * math.pi)
        leg_amplitude = _deg(rng, 12, 35)
        arm_amplitude = _deg(rng, 10, 40)
        legs = tuple(
            _LimbAngles(
                swing=sign * leg_amplitude * math.sin(phase),
                abduction=_deg(rng, 0, 8),
                bend=_deg(rng, 5, 45),
            )
            for sign in (1.0, -1.0)
        )
        arms = tuple(
            _LimbAngles(
                swing=-sign * arm_amplitude * math.sin(phase),
                abduction=_deg(rng, 3, 15),
                bend=_deg(rng, 10, 50),
                bend_roll=_deg(rng, -20, 20),
            )
            for sign in (1.0, -1.0)
        )
        torso_pitch = _deg(rng, 0, 10)
    elif template == "arms_raised":
        arm_list = []
        for _ in range(2):
            if rng.random() < 0.75:
                if rng.random() < 0.5:  # forward and up
                    swing, abduction = _deg(rng, 100, 180), _deg(rng, 0, 30)
                else:  # sideways and up
                    swing, abduction = _deg(rng, -10, 20), _deg(rng, 70, 170)
                arm_list.append(
                    _LimbAngles(swing, abduction, _deg(rng, 0, 100), _deg(rng, -60, 60))
                )
            else:
                arm_list.append(_hanging_arm(rng))
        arms = tuple(arm_list)
        legs = tuple(
            _LimbAngles(_normal_deg(rng, 6, 15), _deg(rng, 0, 25), _deg(rng, 0, 15))
            for _ in range(2)
        )
    elif template == "sitting":
        legs = tuple(
            _LimbAngles(_deg(rng, 55, 100), _deg(rng, 0, 20), _deg(rng, 50, 110)) for _ in range(2)
        )
        arms = tuple(
            _LimbAngles(_deg(rng, 0, 60), _deg(rng, 3, 25), _deg(rng, 20, 100), _deg(rng, -30, 30))
            for _ in range(2)
        )
        torso_pitch = _deg(rng, -10, 25)
    elif template == "leaning":
        if rng.random() < 0.6:
            torso_pitch = _deg(rng, 20, 60)
        else:
            torso_roll = math.copysign(_deg(rng, 12, 30), rng.uniform(-1, 1))
        # Arms hang with gravity: relative to a forward-leaning torso they swing forwards.
        arms = (_hanging_arm(rng, torso_pitch), _hanging_arm(rng, torso_pitch))
        legs = (_standing_leg(rng), _standing_leg(rng))
    else:  # unconstrained: anywhere within the joint limits
        arms = tuple(
            _LimbAngles(
                _deg(rng, -50, 180), _deg(rng, 0, 150), _deg(rng, 0, 145), _deg(rng, -60, 60)
            )
            for _ in range(2)
        )
        legs = tuple(
            _LimbAngles(_deg(rng, -30, 110), _deg(rng, 0, 45), _deg(rng, 0, 140)) for _ in range(2)
        )
        torso_pitch = _deg(rng, -20, 45)
        torso_roll = _deg(rng, -25, 25)
    # Half the people face the camera roughly; the others are seen from any side.
    frontal = rng.random() < 0.5
    yaw = _normal_deg(rng, 30, 80) if frontal else rng.uniform(-math.pi, math.pi)
    return _Pose(
        template=template,
        yaw=yaw,
        torso_pitch=torso_pitch,
        torso_roll=torso_roll,
        torso_twist=_normal_deg(rng, 10, 25),
        head_pitch=_normal_deg(rng, 12, 30),
        head_yaw=_normal_deg(rng, 25, 60),
        image_roll=_normal_deg(rng, 6, 20),
        arms=arms,  # type: ignore[arg-type]
        legs=legs,  # type: ignore[arg-type]
    )


def _hsv(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return (255.0 * red, 255.0 * green, 255.0 * blue)


def _scaled(colour: tuple[float, float, float], factor: float) -> tuple[float, float, float]:
    return tuple(min(255.0, channel * factor) for channel in colour)  # type: ignore[return-value]


@dataclasses.dataclass
class _Appearance:
    """RGB colours (0-255 floats) of one person."""

    upper_arm: tuple  # (left, right)
    forearm: tuple
    thigh: tuple
    shin: tuple
    torso: tuple[float, float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    shoes: tuple[float, float, float]


def _sample_appearance(rng: np.random.Generator) -> _Appearance:
    """Left limbs warm (hue 0-45 deg), right limbs cool (190-245 deg), jittered per person."""
    side_hues = (rng.uniform(0.0, 45.0) / 360.0, rng.uniform(190.0, 245.0) / 360.0)
    upper_arm, forearm, thigh, shin = [], [], [], []
    for hue in side_hues:
        saturation = rng.uniform(0.55, 1.0)
        value = rng.uniform(0.6, 1.0)
        upper_arm.append(_hsv(hue, saturation, value))
        forearm.append(_hsv(hue + rng.uniform(-0.02, 0.02), saturation, value * 0.82))
        leg_hue = hue + rng.uniform(-0.03, 0.03)
        leg_value = value * rng.uniform(0.6, 0.9)
        thigh.append(_hsv(leg_hue, saturation, leg_value))
        shin.append(_hsv(leg_hue, saturation * 0.9, leg_value * 0.85))
    return _Appearance(
        upper_arm=tuple(upper_arm),
        forearm=tuple(forearm),
        thigh=tuple(thigh),
        shin=tuple(shin),
        torso=_hsv(rng.uniform(), rng.uniform(0.1, 0.8), rng.uniform(0.25, 0.95)),
        skin=_hsv(rng.uniform(0.03, 0.09), rng.uniform(0.2, 0.6), rng.uniform(0.35, 0.95)),
        hair=_hsv(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.45)),
        shoes=_hsv(rng.uniform(), rng.uniform(0.0, 0.5), rng.uniform(0.05, 0.35)),
    )


# --------------------------------------------------------------------------------------------
# 3-D skeleton and its 2-D figure.


@dataclasses.dataclass
class _Part:
    """One drawable primitive; `indices` point into the figure's 2-D point array.

    kind: 'capsule' (2 indices, width = diameter), 'polygon' (convex, N indices), 'disc'
    (1 index, width = radius) or 'head' (1 index, the head centre; see _Head).
    """

    kind: str
    indices: tuple[int, ...]
    width: float
    colour: tuple[float, float, float]
    depth: float
    head: _Head | None = None


@dataclasses.dataclass
class _Head:
    radius: float
    angle_deg: float  # in-plane angle of the head's long axis
    hair: tuple[float, float, float]
    face_index: int | None  # point index of the face patch centre, None when facing away
    features: list[tuple[int, float, tuple[float, float, float]]]  # (point index, radius, rgb)


@dataclasses.dataclass
class _Figure:
    """A posed person in figure units (standing height 1, pelvis at the origin, image axes).

    points: (N, 2) every drawn point; the first 17 rows are the COCO joints.
    labelled: (17,) bool, False for face keypoints hidden by the person's own head.
    parts: drawing primitives, far to near.
    extent: (4,) x0, y0, x1, y1 of everything drawn.
    """

    points: np.ndarray
    labelled: np.ndarray
    parts: list[_Part]
    extent: np.ndarray
    pose_template: str

    @property
    def joints(self) -> np.ndarray:
        return self.points[:NUM_JOINTS]


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / math.sqrt(float(vector @ vector))


def _norm(vector: np.ndarray) -> float:
    return math.sqrt(float(vector @ vector))


def _cross(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    # np.cross costs ~20x more than this for single 3-vectors.
    return np.array(
        [
            first[1] * second[2] - first[2] * second[1],
            first[2] * second[0] - first[0] * second[2],
            first[0] * second[1] - first[1] * second[0],
        ]
    )


def _perpendicular(vector: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Component of `vector` perpendicular to the unit `axis` (not normalised)."""
    return vector - float(vector @ axis) * axis


def _build_figure(pose: _Pose, rng: np.random.Generator, looks: _Appearance) -> _Figure:
    """Poses the 3-D skeleton and turns it into 2-D parts (camera: x right, y down, z away).

    Body frames are 3x3 matrices whose rows are the (left, down, forward) unit vectors in
    camera coordinates, so a direction given in a frame is ``coefficients @ frame``.
    """
    jitter = rng.uniform(0.92, 1.08, size=len(_PROPORTIONS))
    size = {
        name: value * factor
        for (name, value), factor in zip(_PROPORTIONS.items(), jitter, strict=True)
    }
    build = rng.uniform(0.8, 1.3)
    width = {name: value * build for name, value in _THICKNESS.items()}
    size["hip_half_width"] *= math.sqrt(build)
    size["shoulder_half_width"] *= math.sqrt(build)

    # Pelvis frame. A person facing the camera has their left on the image right, forward = -z.
    cos_yaw, sin_yaw = math.cos(pose.yaw), math.sin(pose.yaw)
    left = np.array([cos_yaw, 0.0, -sin_yaw])
    down = np.array([0.0, 1.0, 0.0])
    forward = np.array([-sin_yaw, 0.0, -cos_yaw])
    pelvis_frame = np.stack([left, down, forward])

    # Upper-body frame: lean forward (pitch), sideways (roll), shoulders twisted.
    up_torso = math.cos(pose.torso_pitch) * -down + math.sin(pose.torso_pitch) * forward
    up_torso = _unit(math.cos(pose.torso_roll) * up_torso + math.sin(pose.torso_roll) * left)
    left_torso = math.cos(pose.torso_twist) * left + math.sin(pose.torso_twist) * forward
    left_torso = _unit(_perpendicular(left_torso, up_torso))
    forward_torso = _unit(_perpendicular(_perpendicular(forward, up_torso), left_torso))
    down_torso = -up_torso
    torso_frame = np.stack([left_torso, down_torso, forward_torso])

    # Head frame: nod (pitch) then turn (yaw) relative to the torso.
    up_head = _unit(
        math.cos(pose.head_pitch) * up_torso + math.sin(pose.head_pitch) * forward_torso
    )
    forward_head = _unit(_perpendicular(forward_torso, up_head))
    left_head = _unit(_perpendicular(_perpendicular(left_torso, up_head), forward_head))
    forward_head, left_head = (
        math.cos(pose.head_yaw) * forward_head + math.sin(pose.head_yaw) * left_head,
        math.cos(pose.head_yaw) * left_head - math.sin(pose.head_yaw) * forward_head,
    )
    head_frame = np.stack([left_head, -up_head, forward_head])

    # All 3-D points; rows 0-16 are the COCO joints, further rows are drawing helpers.
    points3d = np.zeros((NUM_JOINTS, 3))
    helpers: list[np.ndarray] = []

    def helper(point: np.ndarray) -> int:
        helpers.append(point)
        return NUM_JOINTS + len(helpers) - 1

    points3d[_JOINT["left_hip"]] = size["hip_half_width"] * left + 0.02 * down
    points3d[_JOINT["right_hip"]] = -size["hip_half_width"] * left + 0.02 * down
    shoulder_centre = size["torso_length"] * up_torso
    points3d[_JOINT["left_shoulder"]] = shoulder_centre + size["shoulder_half_width"] * left_torso
    points3d[_JOINT["right_shoulder"]] = shoulder_centre - size["shoulder_half_width"] * left_torso
    head_centre = shoulder_centre + size["neck_length"] * up_head
    head_radius = size["head_radius"]

    hand_index, toe_index = {}, {}
    for side_index, (side, sign) in enumerate((("left", 1.0), ("right", -1.0))):
        arm = pose.arms[side_index]
        cos_abduction = math.cos(arm.abduction)
        upper = (
            np.array(
                [
                    sign * math.sin(arm.abduction),
                    cos_abduction * math.cos(arm.swing),
                    cos_abduction * math.sin(arm.swing),
                ]
            )
            @ torso_frame
        )
        # The elbow bends towards the front (and up when the arm already points forward).
        bend_direction = _perpendicular(_unit(forward_torso - 0.3 * down_torso), upper)
        if _norm(bend_direction) < 0.1:
            bend_direction = _perpendicular(sign * left_torso, upper)
        bend_direction = _unit(bend_direction)
        bend_direction = math.cos(arm.bend_roll) * bend_direction + math.sin(
            arm.bend_roll
        ) * _cross(upper, bend_direction)
        lower = math.cos(arm.bend) * upper + math.sin(arm.bend) * bend_direction
        elbow = points3d[_JOINT[f"{side}_shoulder"]] + size["upper_arm"] * upper
        wrist = elbow + size["forearm"] * lower
        points3d[_JOINT[f"{side}_elbow"]] = elbow
        points3d[_JOINT[f"{side}_wrist"]] = wrist
        hand_index[side] = helper(wrist + 0.8 * size["hand_radius"] * lower)

        # The knee bends backwards within the leg's swing plane.
        leg = pose.legs[side_index]
        cos_abduction, sin_abduction = math.cos(leg.abduction), sign * math.sin(leg.abduction)
        thigh, shin = (
            np.array(
                [
                    [
                        sin_abduction,
                        cos_abduction * math.cos(swing),
                        cos_abduction * math.sin(swing),
                    ]
                    for swing in (leg.swing, leg.swing - leg.bend)
                ]
            )
            @ pelvis_frame
        )
        knee = points3d[_JOINT[f"{side}_hip"]] + size["thigh"] * thigh
        ankle = knee + size["shin"] * shin
        points3d[_JOINT[f"{side}_knee"]] = knee
        points3d[_JOINT[f"{side}_ankle"]] = ankle
        foot_direction = _perpendicular(forward, shin)
        foot_direction = _unit(foot_direction if _norm(foot_direction) > 0.1 else forward)
        toe_index[side] = helper(ankle + size["foot"] * foot_direction + 0.02 * shin)

    # Face keypoints on the head sphere; labelled only where the surface faces the camera.
    face_directions = _FACE_DIRECTIONS @ head_frame
    points3d[_FACE_JOINTS] = head_centre + head_radius * _FACE_RADII[:, None] * face_directions
    labelled = np.ones(NUM_JOINTS, dtype=bool)
    labelled[_FACE_JOINTS] = -face_directions[:, 2] > _FACE_MIN_COSINES

    neck_index = helper(shoulder_centre)
    head_index = helper(head_centre)
    face_index = None
    if -forward_head[2] > -0.3:  # some of the face is towards the camera
        face_index = helper(head_centre + head_radius * (0.25 * forward_head - 0.12 * up_head))
    head_up_index = helper(head_centre + up_head)

    # Torso: convex hull of shoulders and hips widened sideways and given chest depth.
    sides = np.array([[1.0], [-1.0]])
    depth_offsets = size["chest_half_depth"] * sides[:, None]  # (2, 1, 1): front, back
    shoulders = points3d[[_JOINT["left_shoulder"], _JOINT["right_shoulder"]]]
    hips = points3d[[_JOINT["left_hip"], _JOINT["right_hip"]]]
    torso_points = np.concatenate(
        [
            (shoulders + 0.025 * sides * left_torso) + depth_offsets * forward_torso,
            (hips + 0.03 * sides * left) + depth_offsets * forward,
        ]
    ).reshape(-1, 3)
    torso_indices = [helper(point) for point in torso_points]

    all3d = np.concatenate([points3d, np.stack(helpers)])
    depth = all3d[:, 2]
    # In-plane roll of the whole figure, then orthographic projection (z kept as depth).
    cos_roll, sin_roll = math.cos(pose.image_roll), math.sin(pose.image_roll)
    points = all3d[:, :2] @ np.array([[cos_roll, sin_roll], [-sin_roll, cos_roll]])

    parts: list[_Part] = []

    def capsule(start: int, end: int, diameter: float, colour, depth_bias: float = 0.0) -> None:
        parts.append(
            _Part(
                "capsule",
                (start, end),
                diameter,
                colour,
                (depth[start] + depth[end]) / 2 + depth_bias,
            )
        )

    for side_index, side in enumerate(("left", "right")):
        shoulder, elbow, wrist = (
            _JOINT[f"{side}_{joint}"] for joint in ("shoulder", "elbow", "wrist")
        )
        hip, knee, ankle = (_JOINT[f"{side}_{joint}"] for joint in ("hip", "knee", "ankle"))
        capsule(shoulder, elbow, width["upper_arm"], looks.upper_arm[side_index])
        capsule(elbow, wrist, width["forearm"], looks.forearm[side_index])
        parts.append(
            _Part(
                "disc",
                (hand_index[side],),
                size["hand_radius"],
                looks.skin,
                depth[hand_index[side]],
            )
        )
        capsule(hip, knee, width["thigh"], looks.thigh[side_index])
        capsule(knee, ankle, width["shin"], looks.shin[side_index])
        capsule(ankle, toe_index[side], width["foot"], looks.shoes)

    hull = cv2.convexHull(points[torso_indices].astype(np.float32), returnPoints=False)
    hull_indices = tuple(torso_indices[int(i)] for i in hull.ravel())
    parts.append(
        _Part("polygon", hull_indices, 0.0, looks.torso, float(np.mean(depth[torso_indices])))
    )
    # Neck slightly behind torso and head so the head always connects to the body.
    capsule(neck_index, head_index, width["neck"], looks.skin, depth_bias=0.05)

    # Head: hair-coloured ellipse, skin face patch shifted towards the facing direction,
    # then the labelled face features.
    feature_style = (
        ("left_ear", 0.22, _scaled(looks.skin, 0.85)),
        ("right_ear", 0.22, _scaled(looks.skin, 0.85)),
        ("left_eye", 0.13, (25.0, 25.0, 30.0)),
        ("right_eye", 0.13, (25.0, 25.0, 30.0)),
        ("nose", 0.2, _scaled(looks.skin, 0.75)),
    )
    features = [
        (_JOINT[name], radius_factor * head_radius, colour)
        for name, radius_factor, colour in feature_style
        if labelled[_JOINT[name]]
    ]
    up_head2d = points[head_up_index] - points[head_index]
    head_angle = math.degrees(math.atan2(up_head2d[1], up_head2d[0])) + 90.0
    parts.append(
        _Part(
            "head",
            (head_index,),
            head_radius,
            looks.skin,
            depth[head_index] - 0.05,
            head=_Head(head_radius, head_angle, looks.hair, face_index, features),
        )
    )
    parts.sort(key=lambda part: -part.depth)  # far (large z) first

    # Extent: every drawn point grown by its primitive's radius.
    radii = np.zeros(len(points))
    for part in parts:
        radius = {"capsule": part.width / 2, "disc": part.width, "polygon": 0.0}.get(
            part.kind, part.width * 1.15
        )
        for index in part.indices:
            radii[index] = max(radii[index], radius)
    for index, radius, _ in features:
        radii[index] = max(radii[index], radius)
    radii[head_up_index] = -np.inf  # a direction helper, not drawn
    drawn = np.isfinite(radii)
    extent = np.concatenate(
        [
            np.min(points[drawn] - radii[drawn, None], axis=0),
            np.max(points[drawn] + radii[drawn, None], axis=0),
        ]
    )
    return _Figure(points, labelled, parts, extent, pose.template)


# --------------------------------------------------------------------------------------------
# Drawing.


def _fixed(points: np.ndarray) -> np.ndarray:
    """Pixel-centre float coordinates to OpenCV fixed point (shift bits)."""
    return np.rint(np.asarray(points) * _SHIFT_SCALE).astype(np.int32)


def _draw_figure(
    target: np.ndarray,
    figure: _Figure,
    scale: float,
    offset: np.ndarray,
    mask_value: int | None = None,
) -> None:
    """Draws the figure into `target` at pixel position `offset + scale * figure points`.

    Args:
        target: (H, W, 3) uint8 canvas, or (H, W) uint8 mask when `mask_value` is given.
        figure: the posed person.
        scale: standing height in pixels.
        offset: (2,) pixel position of the pelvis.
        mask_value: when set, draws the person's silhouette in this value without
            anti-aliasing (face patch and eyes skipped: they lie inside the head).
    """
    is_mask = mask_value is not None
    line_type = cv2.LINE_8 if is_mask else cv2.LINE_AA
    fixed = _fixed(offset + scale * figure.points)
    fixed_points = fixed.tolist()

    def colour_of(rgb):
        return mask_value if is_mask else rgb

    def fixed_radius(radius: float) -> int:
        return max(1, int(round(scale * radius * _SHIFT_SCALE)))

    for part in figure.parts:
        if part.kind == "capsule":
            start, end = part.indices
            thickness = max(1, int(round(scale * part.width)))
            cv2.line(
                target,
                fixed_points[start],
                fixed_points[end],
                colour_of(part.colour),
                thickness,
                line_type,
                _SHIFT,
            )
        elif part.kind == "polygon":
            cv2.fillConvexPoly(
                target, fixed[list(part.indices)], colour_of(part.colour), line_type, _SHIFT
            )
        elif part.kind == "disc":
            cv2.circle(
                target,
                fixed_points[part.indices[0]],
                fixed_radius(part.width),
                colour_of(part.colour),
                -1,
                line_type,
                _SHIFT,
            )
        else:
            head = part.head
            centre = fixed_points[part.indices[0]]
            axes = (fixed_radius(head.radius), fixed_radius(head.radius * 1.12))
            cv2.ellipse(
                target,
                centre,
                axes,
                head.angle_deg,
                0,
                360,
                colour_of(head.hair),
                -1,
                line_type,
                _SHIFT,
            )
            if head.face_index is not None and not is_mask:
                face_axes = (max(1, int(axes[0] * 0.75)), max(1, int(axes[1] * 0.75)))
                cv2.ellipse(
                    target,
                    fixed_points[head.face_index],
                    face_axes,
                    head.angle_deg,
                    0,
                    360,
                    part.colour,
                    -1,
                    line_type,
                    _SHIFT,
                )
            for index, radius, colour in head.features:
                cv2.circle(
                    target,
                    fixed_points[index],
                    fixed_radius(radius),
                    colour_of(colour),
                    -1,
                    line_type,
                    _SHIFT,
                )


def _draw_person_mask(figure: _Figure, scale: float, offset: np.ndarray, size: int) -> np.ndarray:
    """The person's own pixels, (size, size) bool, including the ear and nose bumps."""
    mask = np.zeros((size, size), dtype=np.uint8)
    _draw_figure(mask, figure, scale, offset, mask_value=1)
    return mask.view(bool)


# The smooth background layers are computed on this coarse grid and upsampled (bilinear), which
# is exact for the linear gradient and ~10x cheaper than full-resolution float arithmetic.
_BACKGROUND_GRID = 32
_GRID_COORDINATES = (np.arange(_BACKGROUND_GRID, dtype=np.float32) + 0.5) / _BACKGROUND_GRID


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    if rng.random() < 0.4:  # the limb colour families, so colour alone does not mean "person"
        hue = rng.uniform(0.0, 45.0) if rng.random() < 0.5 else rng.uniform(190.0, 245.0)
        return _hsv(hue / 360.0, rng.uniform(0.5, 1.0), rng.uniform(0.4, 1.0))
    return _hsv(rng.uniform(), rng.uniform(0.0, 1.0), rng.uniform(0.1, 1.0))


def _render_background(rng: np.random.Generator, size: int, config: SyntheticConfig) -> np.ndarray:
    """Gradient + low-frequency blotches + clutter shapes, (size, size, 3) uint8 RGB."""
    angle = rng.uniform(0.0, 2.0 * math.pi)
    ramp = (
        math.cos(angle) * _GRID_COORDINATES[None, :] + math.sin(angle) * _GRID_COORDINATES[:, None]
    )[..., None]
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    start = np.array(_random_colour(rng), dtype=np.float32)
    end = np.array(_random_colour(rng), dtype=np.float32)
    coarse = start + (end - start) * ramp
    cells = int(rng.integers(3, 9))
    blotches = rng.uniform(-40.0, 40.0, size=(cells, cells, 3)).astype(np.float32)
    coarse += cv2.resize(
        blotches, (_BACKGROUND_GRID, _BACKGROUND_GRID), interpolation=cv2.INTER_CUBIC
    )
    coarse = np.clip(coarse, 0, 255).astype(np.uint8)
    canvas = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)

    low, high = config.clutter_count_range
    for _ in range(int(rng.integers(low, high + 1))):
        colour = _random_colour(rng)
        kind = int(rng.integers(0, 6))
        centre = rng.uniform(-0.1, 1.1, size=2) * size
        extent = rng.uniform(0.03, 0.35) * size
        thickness = -1 if rng.random() < 0.6 else int(rng.integers(1, max(2, size // 40)))
        if kind == 0:  # rectangle
            corner = centre + rng.uniform(-1, 1, size=2) * extent
            cv2.rectangle(
                canvas,
                tuple(_fixed(centre)),
                tuple(_fixed(corner)),
                colour,
                thickness,
                cv2.LINE_AA,
                _SHIFT,
            )
        elif kind == 1:  # circle
            cv2.circle(
                canvas,
                tuple(_fixed(centre)),
                int(extent * _SHIFT_SCALE / 2),
                colour,
                thickness,
                cv2.LINE_AA,
                _SHIFT,
            )
        elif kind == 2:  # ellipse
            axes = (
                int(extent * _SHIFT_SCALE / 2),
                int(rng.uniform(0.1, 0.5) * extent * _SHIFT_SCALE),
            )
            cv2.ellipse(
                canvas,
                tuple(_fixed(centre)),
                axes,
                rng.uniform(0, 180),
                0,
                360,
                colour,
                thickness,
                cv2.LINE_AA,
                _SHIFT,
            )
        elif kind == 3:  # triangle
            corners = centre + rng.uniform(-1, 1, size=(3, 2)) * extent
            cv2.fillConvexPoly(canvas, _fixed(corners), colour, cv2.LINE_AA, _SHIFT)
        elif kind == 4:  # straight line
            end_point = centre + rng.uniform(-1, 1, size=2) * extent * 2
            cv2.line(
                canvas,
                tuple(_fixed(centre)),
                tuple(_fixed(end_point)),
                colour,
                int(rng.integers(1, max(2, size // 25))),
                cv2.LINE_AA,
                _SHIFT,
            )
        else:  # thick jointed polyline: limb-like but not a person
            num_points = int(rng.integers(3, 7))
            steps = rng.uniform(-1, 1, size=(num_points - 1, 2)) * extent
            polyline = centre + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
            cv2.polylines(
                canvas,
                [_fixed(polyline)],
                False,
                colour,
                int(rng.integers(2, max(3, size // 20))),
                cv2.LINE_AA,
                _SHIFT,
            )
    return canvas


_NOISE_FIELDS: dict[int, np.ndarray] = {}


def _noise_field(amplitude: int, size: int) -> np.ndarray:
    """A fixed (2 size, 2 size, 3) int16 field of uniform noise in [-amplitude, amplitude].

    Images take random windows of it: drawing fresh per-pixel noise for every image would cost
    more than everything else in the image together. The field is seeded, so reproducible.
    """
    key = amplitude * 100_003 + size
    if key not in _NOISE_FIELDS:
        field_rng = np.random.default_rng([20170428, amplitude, size])
        _NOISE_FIELDS[key] = field_rng.integers(
            -amplitude, amplitude + 1, size=(2 * size, 2 * size, 3), dtype=np.int16
        )
    return _NOISE_FIELDS[key]


def _finish_image(
    rng: np.random.Generator, canvas: np.ndarray, config: SyntheticConfig
) -> np.ndarray:
    """Sensor noise and optional blur so figures are not perfectly crisp."""
    if config.blur_probability > 0 and rng.random() < config.blur_probability:
        canvas = cv2.GaussianBlur(canvas, (3, 3), 0)
    if config.noise_amplitude > 0:
        amplitude = int(rng.integers(0, config.noise_amplitude + 1))
        if amplitude:
            height, width = canvas.shape[:2]
            field = _noise_field(amplitude, max(height, width))
            row, column = (int(value) for value in rng.integers(0, max(height, width) + 1, size=2))
            noise = field[row : row + height, column : column + width]
            canvas = cv2.add(canvas, noise, dtype=cv2.CV_8U)  # saturating
    return canvas


# --------------------------------------------------------------------------------------------
# Scenes.


@dataclasses.dataclass
class _Placed:
    figure: _Figure
    scale: float
    offset: np.ndarray
    mask: np.ndarray  # (H, W) bool
    cover: np.ndarray  # (H, W) bool, union of the masks of people drawn later
    box: np.ndarray  # (4,) x0, y0, x1, y1 of the figure extent in pixels


def _placement(
    rng: np.random.Generator,
    figure: _Figure,
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
    canvas = _render_background(rng, size, config)

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
        figure = _build_figure(_sample_pose(rng), rng, _sample_appearance(rng))
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
            mask = _draw_person_mask(figure, scale, offset, size)
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
        _draw_figure(canvas, figure, scale, offset)
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

    image = _finish_image(rng, canvas, config)
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


# --------------------------------------------------------------------------------------------
# COCO output.


def coco_person_category() -> dict:
    """The COCO 'person' category with the 17 keypoint names and the 1-based skeleton."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO.joint_names),
        "skeleton": [[first + 1, second + 1] for first, second in COCO.skeleton],
    }


def _mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a bool mask as COCO polygons (pixel centres at j + 0.5)."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    polygons = []
    for contour in sorted(contours, key=lambda c: -cv2.contourArea(c)):
        # Within half a pixel of the outline; keeps the JSON ~3x smaller than the raw chain.
        contour = cv2.approxPolyDP(contour, 0.5, True)
        points = contour.reshape(-1, 2).astype(np.float64) + 0.5
        if len(points) < 3:  # a 1-2 pixel sliver: widen it into a tiny square around it
            low, high = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
            points = np.array(
                [[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]]
            )
        polygons.append(points.ravel().tolist())
    return polygons


def scene_annotations(scene: SyntheticScene, image_id: int, first_annotation_id: int) -> list[dict]:
    """COCO keypoint annotations of a scene's people (ids consecutive from the given one)."""
    height, width = scene.image.shape[:2]
    annotations = []
    for index, person in enumerate(scene.people):
        polygons = _mask_polygons(person.mask)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        rows = np.flatnonzero(person.mask.any(axis=1))
        columns = np.flatnonzero(person.mask.any(axis=0))
        x0, y0 = int(columns[0]), int(rows[0])
        box = [float(x0), float(y0), float(columns[-1] + 1 - x0), float(rows[-1] + 1 - y0)]
        keypoints = np.round(person.keypoints, 2).tolist()
        keypoints = [value for x, y, v in keypoints for value in (x, y, int(v))]
        annotations.append(
            {
                "id": first_annotation_id + index,
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": box,
                "area": float(mask_utils.area(rle)),
                "segmentation": polygons,
                "num_keypoints": int(np.count_nonzero(person.keypoints[:, 2] > 0)),
                "keypoints": keypoints,
            }
        )
    return annotations


def image_rng(seed: int, split: str, image_index: int) -> np.random.Generator:
    """The generator of one image: independent of every other image and split."""
    if seed < 0 or image_index < 0:
        raise ValueError(f"seed and image_index must be >= 0, got {seed}, {image_index}.")
    return np.random.default_rng([seed, zlib.crc32(split.encode("utf-8")), image_index])


def annotation_path(out_dir: str | os.PathLike, split: str) -> pathlib.Path:
    """``out_dir/annotations/person_keypoints_<split>.json``."""
    return pathlib.Path(out_dir) / "annotations" / f"person_keypoints_{split}.json"


def generate_synthetic_dataset(
    out_dir: str | os.PathLike,
    *,
    split: str,
    num_images: int,
    seed: int,
    image_size: int = DEFAULT_IMAGE_SIZE,
    config: SyntheticConfig | None = None,
    show_progress: bool = False,
) -> pathlib.Path:
    """Writes a COCO-format person-keypoint dataset of synthetic people.

    Layout: ``out_dir/<split>/<image_id:012d>.jpg`` and
    ``out_dir/annotations/person_keypoints_<split>.json`` (image ids 1..num_images, annotation
    ids consecutive from 1). The output depends only on (split, num_images, seed, image_size,
    config): the same arguments give byte-identical files.

    Args:
        out_dir: dataset root (created if needed; existing files of the split are overwritten).
        split: split name, e.g. 'train' or 'val' (also mixed into the random seed).
        num_images: number of images (>= 1).
        seed: non-negative base seed.
        image_size: side of the square images in pixels.
        config: scene distribution; defaults to ``SyntheticConfig()``.
        show_progress: show a tqdm progress bar.

    Returns:
        The path of the annotation JSON.
    """
    if not split or any(character in split for character in "/\\"):
        raise ValueError(f"split must be a plain name, got {split!r}.")
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}.")
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}.")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}.")
    config = config or SyntheticConfig()
    image_dir = pathlib.Path(out_dir) / split
    image_dir.mkdir(parents=True, exist_ok=True)
    json_path = annotation_path(out_dir, split)
    json_path.parent.mkdir(parents=True, exist_ok=True)

    indices: Iterable[int] = range(num_images)
    if show_progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"synthetic {split}", unit="img")
    images, annotations = [], []
    for index in indices:
        scene = render_scene(image_rng(seed, split, index), image_size, config)
        image_id = index + 1
        file_name = f"{image_id:012d}.jpg"
        ok, encoded = cv2.imencode(
            ".jpg", scene.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]
        )
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for synthetic image {image_id}.")
        (image_dir / file_name).write_bytes(encoded.tobytes())
        images.append(
            {"id": image_id, "file_name": file_name, "height": image_size, "width": image_size}
        )
        annotations.extend(scene_annotations(scene, image_id, len(annotations) + 1))

    dataset = {
        "info": {
            "description": "Synthetic articulated stick-figure people "
            "(associative_embedding.data.synthetic)",
            "split": split,
            "seed": seed,
            "image_size": image_size,
            "config": dataclasses.asdict(config),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [coco_person_category()],
    }
    temporary = json_path.with_suffix(".json.tmp")
    with open(temporary, "w") as handle:
        # json.dumps uses the C encoder; json.dump to a stream would not.
        handle.write(json.dumps(dataset, separators=(",", ":")))
    os.replace(temporary, json_path)
    return json_path


# --------------------------------------------------------------------------------------------
# Statistics.


def compute_statistics(
    dataset: dict | str | os.PathLike, iou_threshold: float = 0.3
) -> SyntheticStatistics:
    """Grouping statistics of a COCO keypoint dataset (a loaded dict or a JSON path).

    Args:
        dataset: the COCO dict or the path of its JSON file.
        iou_threshold: box IoU at which two people count as overlapping.

    Returns:
        The statistics; fractions are over all listed images.
    """
    if not isinstance(dataset, dict):
        with open(dataset) as handle:
            dataset = json.load(handle)
    boxes_by_image: dict[int, list[list[float]]] = {image["id"]: [] for image in dataset["images"]}
    labelled = occluded = 0
    num_people = 0
    for annotation in dataset["annotations"]:
        visibility = np.asarray(annotation["keypoints"], dtype=np.float64)[2::3]
        if annotation.get("iscrowd", 0) or not np.any(visibility > 0):
            continue
        num_people += 1
        boxes_by_image.setdefault(annotation["image_id"], []).append(annotation["bbox"])
        labelled += int(np.count_nonzero(visibility > 0))
        occluded += int(np.count_nonzero(visibility == 1))
    num_images = len(boxes_by_image)
    three_or_more = overlapping = 0
    for boxes in boxes_by_image.values():
        three_or_more += len(boxes) >= 3
        if len(boxes) >= 2:
            ious = mask_utils.iou(boxes, boxes, [0] * len(boxes))
            np.fill_diagonal(ious, 0.0)
            overlapping += bool(np.any(ious >= iou_threshold))
    denominator = max(num_images, 1)
    return SyntheticStatistics(
        num_images=num_images,
        num_people=num_people,
        mean_people_per_image=num_people / denominator,
        fraction_three_or_more=three_or_more / denominator,
        fraction_overlapping_pair=overlapping / denominator,
        occluded_joint_fraction=occluded / max(labelled, 1),
        iou_threshold=iou_threshold,
    )


def annotated_heights(
    dataset: dict | str | os.PathLike, image_pixels_per_output_pixel: float = 1.0
) -> np.ndarray:
    """Box heights of the annotated people (non-crowd, ``num_keypoints > 0``), (N,) float64.

    Args:
        dataset: the COCO dict or the path of its JSON file.
        image_pixels_per_output_pixel: divides the heights, e.g. ``image_size / input_size *
            output_stride`` for heights in the network's output pixels (8 for 256x256 images at
            128 input and stride 4).
    """
    if not isinstance(dataset, dict):
        with open(dataset) as handle:
            dataset = json.load(handle)
    heights = [
        annotation["bbox"][3]
        for annotation in dataset["annotations"]
        if not annotation.get("iscrowd", 0) and annotation.get("num_keypoints", 0)
    ]
    return np.asarray(heights, dtype=np.float64) / float(image_pixels_per_output_pixel)
