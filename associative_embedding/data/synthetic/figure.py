"""One posed person as drawable 2-D parts: the 3-D skeleton seen by an orthographic camera.

Limb lengths are proportions of the standing body height (thigh 0.24, shin 0.235, upper arm
0.17, forearm 0.15, hip-to-shoulder 0.29, head radius 0.063, each jittered by +-8 %; widths
jittered by build). Limbs are capsules, the torso a convex polygon with chest depth, the head a
filled ellipse with hair, a face patch, eyes, nose and ears; the parts are sorted far-to-near so
profile views occlude correctly. Figures are in figure units (standing height 1, pelvis at the
origin); ``render.draw_figure`` scales and places them.

Face keypoints hidden by the person's own head are unlabelled, like a far ear in COCO: with
``n`` the head-surface normal at the keypoint and the camera looking along +z, the point is
labelled iff ``-n_z`` exceeds ``FACE_LABEL_MIN_COSINE`` (nose -0.3, eyes 0.05, ears -0.35):
eyes must face the camera, the nose and ears may sit on the silhouette. Only labelled face
features are drawn.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from associative_embedding.core.keypoint_info import COCO
from associative_embedding.data.synthetic.appearance import Appearance, scaled
from associative_embedding.data.synthetic.pose import NUM_JOINTS, Pose

_JOINT = {name: index for index, name in enumerate(COCO.joint_names)}

# Minimum cosine between the head-surface normal and the direction towards the camera for a
# face keypoint to count as labelled (see the docstring above).
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
class Figure:
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


def build_figure(pose: Pose, rng: np.random.Generator, looks: Appearance) -> Figure:
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

    def capsule(
        start: int,
        end: int,
        diameter: float,
        colour: tuple[float, float, float],
        depth_bias: float = 0.0,
    ) -> None:
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
        ("left_ear", 0.22, scaled(looks.skin, 0.85)),
        ("right_ear", 0.22, scaled(looks.skin, 0.85)),
        ("left_eye", 0.13, (25.0, 25.0, 30.0)),
        ("right_eye", 0.13, (25.0, 25.0, 30.0)),
        ("nose", 0.2, scaled(looks.skin, 0.75)),
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
    return Figure(points, labelled, parts, extent, pose.template)
