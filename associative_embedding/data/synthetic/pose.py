"""The pose of one synthetic person: joint angles of a 3-D skeleton, sampled from templates.

A pose template (standing, walking, arms raised, sitting-ish, leaning, or unconstrained within
joint limits) sets shoulder/hip swing and abduction, elbow/knee flexion, torso lean/twist and
head turn; the body yaw is frontal-ish half of the time and uniform otherwise (profile and back
views occur). ``figure.build_figure`` turns a pose into drawable parts.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from associative_embedding.core.keypoint_info import COCO

NUM_JOINTS = COCO.num_joints

_POSE_TEMPLATES = ("standing", "walking", "arms_raised", "sitting", "leaning", "unconstrained")
_POSE_TEMPLATE_WEIGHTS = (0.25, 0.22, 0.15, 0.12, 0.11, 0.15)


@dataclasses.dataclass
class LimbAngles:
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
class Pose:
    """Angles (radians) of a whole person: body orientation, torso, head and the four limbs."""

    template: str
    yaw: float  # body rotation about the vertical axis; 0 = facing the camera
    torso_pitch: float  # forward lean of the upper body
    torso_roll: float  # sideways lean of the upper body
    torso_twist: float  # shoulders turned relative to the hips
    head_pitch: float
    head_yaw: float
    image_roll: float  # in-plane rotation of the whole figure
    arms: tuple[LimbAngles, LimbAngles]  # (left, right)
    legs: tuple[LimbAngles, LimbAngles]  # (left, right)


def _deg(rng: np.random.Generator, low: float, high: float) -> float:
    return math.radians(rng.uniform(low, high))


def _normal_deg(rng: np.random.Generator, std: float, limit: float) -> float:
    return math.radians(min(max(rng.normal(0.0, std), -limit), limit))


def _hanging_arm(rng: np.random.Generator, swing_offset: float = 0.0) -> LimbAngles:
    return LimbAngles(
        swing=swing_offset + _normal_deg(rng, 12, 30),
        abduction=_deg(rng, 3, 20),
        bend=_deg(rng, 0, 35),
        bend_roll=_deg(rng, -30, 30),
    )


def _standing_leg(rng: np.random.Generator) -> LimbAngles:
    return LimbAngles(
        swing=_normal_deg(rng, 6, 15), abduction=_deg(rng, 0, 10), bend=_deg(rng, 0, 12)
    )


def sample_pose(rng: np.random.Generator) -> Pose:
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
            LimbAngles(
                swing=sign * leg_amplitude * math.sin(phase),
                abduction=_deg(rng, 0, 8),
                bend=_deg(rng, 5, 45),
            )
            for sign in (1.0, -1.0)
        )
        arms = tuple(
            LimbAngles(
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
                    LimbAngles(swing, abduction, _deg(rng, 0, 100), _deg(rng, -60, 60))
                )
            else:
                arm_list.append(_hanging_arm(rng))
        arms = tuple(arm_list)
        legs = tuple(
            LimbAngles(_normal_deg(rng, 6, 15), _deg(rng, 0, 25), _deg(rng, 0, 15))
            for _ in range(2)
        )
    elif template == "sitting":
        legs = tuple(
            LimbAngles(_deg(rng, 55, 100), _deg(rng, 0, 20), _deg(rng, 50, 110)) for _ in range(2)
        )
        arms = tuple(
            LimbAngles(_deg(rng, 0, 60), _deg(rng, 3, 25), _deg(rng, 20, 100), _deg(rng, -30, 30))
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
            LimbAngles(
                _deg(rng, -50, 180), _deg(rng, 0, 150), _deg(rng, 0, 145), _deg(rng, -60, 60)
            )
            for _ in range(2)
        )
        legs = tuple(
            LimbAngles(_deg(rng, -30, 110), _deg(rng, 0, 45), _deg(rng, 0, 140)) for _ in range(2)
        )
        torso_pitch = _deg(rng, -20, 45)
        torso_roll = _deg(rng, -25, 25)
    # Half the people face the camera roughly; the others are seen from any side.
    frontal = rng.random() < 0.5
    yaw = _normal_deg(rng, 30, 80) if frontal else rng.uniform(-math.pi, math.pi)
    return Pose(
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
