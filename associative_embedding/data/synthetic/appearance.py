"""The colours of one synthetic person (and the HSV helpers the background shares).

The person's left limbs use a warm hue family (red-yellow), the right limbs a cool one
(cyan-blue), each jittered per person and per segment; torso, skin and hair colours are random.
(A horizontal flip with joint swap reverses this colour cue; the facing cues - face features,
hair, nose direction - survive it.)
"""

from __future__ import annotations

import colorsys
import dataclasses

import numpy as np


def hsv(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    """RGB in 0-255 floats of an HSV colour (components in [0, 1], the hue wrapping)."""
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return (255.0 * red, 255.0 * green, 255.0 * blue)


def scaled(colour: tuple[float, float, float], factor: float) -> tuple[float, float, float]:
    """The colour brightened or darkened by `factor`, saturating at 255."""
    return tuple(min(255.0, channel * factor) for channel in colour)  # type: ignore[return-value]


@dataclasses.dataclass
class Appearance:
    """RGB colours (0-255 floats) of one person."""

    upper_arm: tuple  # (left, right)
    forearm: tuple
    thigh: tuple
    shin: tuple
    torso: tuple[float, float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    shoes: tuple[float, float, float]


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Left limbs warm (hue 0-45 deg), right limbs cool (190-245 deg), jittered per person."""
    side_hues = (rng.uniform(0.0, 45.0) / 360.0, rng.uniform(190.0, 245.0) / 360.0)
    upper_arm, forearm, thigh, shin = [], [], [], []
    for hue in side_hues:
        saturation = rng.uniform(0.55, 1.0)
        value = rng.uniform(0.6, 1.0)
        upper_arm.append(hsv(hue, saturation, value))
        forearm.append(hsv(hue + rng.uniform(-0.02, 0.02), saturation, value * 0.82))
        leg_hue = hue + rng.uniform(-0.03, 0.03)
        leg_value = value * rng.uniform(0.6, 0.9)
        thigh.append(hsv(leg_hue, saturation, leg_value))
        shin.append(hsv(leg_hue, saturation * 0.9, leg_value * 0.85))
    return Appearance(
        upper_arm=tuple(upper_arm),
        forearm=tuple(forearm),
        thigh=tuple(thigh),
        shin=tuple(shin),
        torso=hsv(rng.uniform(), rng.uniform(0.1, 0.8), rng.uniform(0.25, 0.95)),
        skin=hsv(rng.uniform(0.03, 0.09), rng.uniform(0.2, 0.6), rng.uniform(0.35, 0.95)),
        hair=hsv(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.45)),
        shoes=hsv(rng.uniform(), rng.uniform(0.0, 0.5), rng.uniform(0.05, 0.35)),
    )
