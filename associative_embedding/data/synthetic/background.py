"""The background of a synthetic people image and the finishing sensor noise and blur.

A linear gradient between two random colours, low-frequency colour blotches and 4-18 clutter
shapes (rectangles, circles, ellipses, triangles, straight lines and thick jointed polylines in
the same colour families as the limbs), all drawn behind the people. The finished image gets
uniform sensor noise and, sometimes, a 3x3 Gaussian blur.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from associative_embedding.data.synthetic.appearance import hsv
from associative_embedding.data.synthetic.config import SyntheticConfig
from associative_embedding.data.synthetic.render import SHIFT, SHIFT_SCALE, to_fixed_point

# The smooth background layers are computed on this coarse grid and upsampled (bilinear), which
# is exact for the linear gradient and ~10x cheaper than full-resolution float arithmetic.
_BACKGROUND_GRID = 32
_GRID_COORDINATES = (np.arange(_BACKGROUND_GRID, dtype=np.float32) + 0.5) / _BACKGROUND_GRID


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    if rng.random() < 0.4:  # the limb colour families, so colour alone does not mean "person"
        hue = rng.uniform(0.0, 45.0) if rng.random() < 0.5 else rng.uniform(190.0, 245.0)
        return hsv(hue / 360.0, rng.uniform(0.5, 1.0), rng.uniform(0.4, 1.0))
    return hsv(rng.uniform(), rng.uniform(0.0, 1.0), rng.uniform(0.1, 1.0))


def render_background(rng: np.random.Generator, size: int, config: SyntheticConfig) -> np.ndarray:
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
                tuple(to_fixed_point(centre)),
                tuple(to_fixed_point(corner)),
                colour,
                thickness,
                cv2.LINE_AA,
                SHIFT,
            )
        elif kind == 1:  # circle
            cv2.circle(
                canvas,
                tuple(to_fixed_point(centre)),
                int(extent * SHIFT_SCALE / 2),
                colour,
                thickness,
                cv2.LINE_AA,
                SHIFT,
            )
        elif kind == 2:  # ellipse
            axes = (
                int(extent * SHIFT_SCALE / 2),
                int(rng.uniform(0.1, 0.5) * extent * SHIFT_SCALE),
            )
            cv2.ellipse(
                canvas,
                tuple(to_fixed_point(centre)),
                axes,
                rng.uniform(0, 180),
                0,
                360,
                colour,
                thickness,
                cv2.LINE_AA,
                SHIFT,
            )
        elif kind == 3:  # triangle
            corners = centre + rng.uniform(-1, 1, size=(3, 2)) * extent
            cv2.fillConvexPoly(canvas, to_fixed_point(corners), colour, cv2.LINE_AA, SHIFT)
        elif kind == 4:  # straight line
            end_point = centre + rng.uniform(-1, 1, size=2) * extent * 2
            cv2.line(
                canvas,
                tuple(to_fixed_point(centre)),
                tuple(to_fixed_point(end_point)),
                colour,
                int(rng.integers(1, max(2, size // 25))),
                cv2.LINE_AA,
                SHIFT,
            )
        else:  # thick jointed polyline: limb-like but not a person
            num_points = int(rng.integers(3, 7))
            steps = rng.uniform(-1, 1, size=(num_points - 1, 2)) * extent
            polyline = centre + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
            cv2.polylines(
                canvas,
                [to_fixed_point(polyline)],
                False,
                colour,
                int(rng.integers(2, max(3, size // 20))),
                cv2.LINE_AA,
                SHIFT,
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


def finish_image(
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
