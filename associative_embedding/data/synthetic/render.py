"""Rasterising a posed figure with OpenCV: in colour (anti-aliased) or as a silhouette mask."""

from __future__ import annotations

import cv2
import numpy as np

from associative_embedding.data.synthetic.figure import Figure

# Sub-pixel precision of OpenCV drawing: coordinates are passed as fixed point with 4 bits.
SHIFT = 4
SHIFT_SCALE = float(1 << SHIFT)


def to_fixed_point(points: np.ndarray) -> np.ndarray:
    """Pixel-centre float coordinates to OpenCV fixed point (shift bits)."""
    return np.rint(np.asarray(points) * SHIFT_SCALE).astype(np.int32)


def draw_figure(
    target: np.ndarray,
    figure: Figure,
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
    fixed = to_fixed_point(offset + scale * figure.points)
    fixed_points = fixed.tolist()

    def colour_of(rgb: tuple[float, float, float]) -> tuple[float, float, float] | int:
        return mask_value if is_mask else rgb

    def fixed_radius(radius: float) -> int:
        return max(1, int(round(scale * radius * SHIFT_SCALE)))

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
                SHIFT,
            )
        elif part.kind == "polygon":
            cv2.fillConvexPoly(
                target, fixed[list(part.indices)], colour_of(part.colour), line_type, SHIFT
            )
        elif part.kind == "disc":
            cv2.circle(
                target,
                fixed_points[part.indices[0]],
                fixed_radius(part.width),
                colour_of(part.colour),
                -1,
                line_type,
                SHIFT,
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
                SHIFT,
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
                    SHIFT,
                )
            for index, radius, colour in head.features:
                cv2.circle(
                    target,
                    fixed_points[index],
                    fixed_radius(radius),
                    colour_of(colour),
                    -1,
                    line_type,
                    SHIFT,
                )


def draw_person_mask(figure: Figure, scale: float, offset: np.ndarray, size: int) -> np.ndarray:
    """The person's own pixels, (size, size) bool, including the ear and nose bumps."""
    mask = np.zeros((size, size), dtype=np.uint8)
    draw_figure(mask, figure, scale, offset, mask_value=1)
    return mask.view(bool)
