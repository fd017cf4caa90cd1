"""Pictures of poses and associative embeddings, drawn with OpenCV (no matplotlib).

All functions take and return RGB uint8 images (convert with ``[..., ::-1]`` before
``cv2.imwrite``) and never modify their inputs.

``draw_poses``
    Each person's skeleton (any dataset: pass its ``KeypointInfo`` or its limb pairs) in its
    own colour (``person_colours``), joints below a score threshold left out; pick the people
    worth drawing with ``people_to_draw`` (``DEFAULT_DRAW_THRESHOLD``).
``draw_tag_plot``
    The paper's Figure 4: the tag value (y) of every joint (x) of every detected person, one
    colour per person (the same colours as ``draw_poses``), with each person's mean tag as a
    line, so well-separated tags are visibly trivial to group.
``draw_tag_heatmaps``
    The paper's Figure 7: one panel per joint, the joint's tag map coloured over the image
    where its heatmap fires (tag -> hue on a common scale, heatmap -> opacity), in a grid with
    a colour bar.
``person_joint_tags``
    The tags at each person's joints, sampled from tag maps (input of ``draw_tag_plot``).
``tag_value_range``
    A robust colour range for tag maps (1st-99th percentile where joints are detected).
``draw_instances``
    Instance segmentation: each instance's mask filled in its own colour (the same colours
    as ``draw_poses``) with its outline and a "category score" label.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import cv2
import numpy as np

from associative_embedding.core.keypoint_info import KeypointInfo

RGBColour = tuple[int, int, int]

# Coordinates handed to OpenCV are clipped to this range: cv2 needs int32-representable points
# and a joint far outside the image is invisible anyway.
_MAX_DRAW_COORDINATE = 1 << 15
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BLACK = (0, 0, 0)
_GRID_GREY = (225, 225, 225)
_TEXT_GREY = (60, 60, 60)
# COLORMAP_TURBO: perceptually ordered, distinct at both ends (unlike HSV, which wraps around).
_TAG_COLORMAP = cv2.COLORMAP_TURBO

#: People whose score is below this are left out of drawings (tools/predict.py --draw_threshold,
#: config.eval.draw_threshold); results files keep everyone. A person's score is the mean of its
#: K joints' heatmap values with missing joints counting 0 (codec.group_poses), so 0.3 asks for
#: the evidence of e.g. every joint at 0.3 or a third of them at 0.9. A weak model otherwise
#: fills a photo with phantoms: people of one or two real joints that the decoder's refine step
#: completes with 1.0-score joints, so they are drawn as whole skeletons. Measured on the
#: synthetic validation split with a weak model (AP 0.07): 97-99 % of the people scoring below
#: 0.3 matched no one (OKS < 0.5), while 86 % of the correct people scored 0.3 or more.
DEFAULT_DRAW_THRESHOLD = 0.3


def person_colours(count: int) -> list[RGBColour]:
    """`count` well-separated RGB colours (golden-ratio hue steps), deterministic."""
    colours = []
    for index in range(count):
        hue = (index * 0.618033988749895) % 1.0
        red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
        colours.append((int(red * 255), int(green * 255), int(blue * 255)))
    return colours


def _skeleton_pairs(
    skeleton: KeypointInfo | Sequence[tuple[int, int]], num_joints: int
) -> list[tuple[int, int]]:
    pairs = skeleton.skeleton if isinstance(skeleton, KeypointInfo) else skeleton
    pairs = [(int(first), int(second)) for first, second in pairs]
    bad = [pair for pair in pairs if not all(0 <= joint < num_joints for joint in pair)]
    if bad:
        raise ValueError(f"skeleton limbs {bad} refer to joints outside 0..{num_joints - 1}.")
    return pairs


def _as_poses(poses: np.ndarray) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float32)
    if poses.ndim == 2 and poses.shape[0] == 0:  # an empty list of people
        poses = poses.reshape(0, 0, 3)
    if poses.ndim != 3 or poses.shape[-1] != 3:
        raise ValueError(f"poses must be (P, K, 3) (x, y, score), got {poses.shape}.")
    return poses


def _as_canvas(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}.")
    return np.ascontiguousarray(image).copy()


def people_to_draw(
    scores: np.ndarray, draw_threshold: float = DEFAULT_DRAW_THRESHOLD
) -> np.ndarray:
    """Indices of the people drawn: person score >= `draw_threshold` (in their order)."""
    return np.flatnonzero(np.asarray(scores, dtype=np.float64).reshape(-1) >= draw_threshold)


def draw_poses(
    image: np.ndarray,
    poses: np.ndarray,
    skeleton: KeypointInfo | Sequence[tuple[int, int]],
    *,
    score_threshold: float = 0.1,
    thickness: int | None = None,
    colours: Sequence[RGBColour] | None = None,
) -> np.ndarray:
    """Draws each person's limbs and joints in its own colour.

    Args:
        image: (H, W, 3) uint8 RGB; not modified.
        poses: (P, K, 3) (x, y, score) in image pixels (pixel-centre convention).
        skeleton: a dataset's ``KeypointInfo`` (its ``skeleton`` is used) or limbs as pairs
            of joint indices.
        score_threshold: joints with a lower score are not drawn (nor their limbs).
        thickness: line thickness in pixels (default scales with the image size).
        colours: one RGB colour per person (default ``person_colours(P)``).

    Returns:
        A new (H, W, 3) uint8 RGB image.

    Raises:
        ValueError: on malformed shapes, limbs naming joints outside 0..K-1, or too few colours.
    """
    canvas = _as_canvas(image)
    poses = _as_poses(poses)
    pairs = _skeleton_pairs(skeleton, poses.shape[1]) if len(poses) else []
    colours = person_colours(len(poses)) if colours is None else list(colours)
    if len(colours) < len(poses):
        raise ValueError(f"{len(colours)} colours for {len(poses)} people.")
    if thickness is None:
        thickness = max(1, int(round(max(canvas.shape[:2]) / 200)))
    radius = thickness + 1
    for colour, pose in zip(colours, poses, strict=False):
        visible = (pose[:, 2] >= score_threshold) & np.all(np.isfinite(pose), axis=1)
        points = np.clip(np.round(np.nan_to_num(pose[:, :2])), -_MAX_DRAW_COORDINATE,
                         _MAX_DRAW_COORDINATE).astype(np.int32)
        colour = tuple(int(channel) for channel in colour)
        for first, second in pairs:
            if visible[first] and visible[second]:
                cv2.line(canvas, tuple(points[first].tolist()), tuple(points[second].tolist()),
                         colour, thickness, cv2.LINE_AA)
        for joint in np.flatnonzero(visible):
            cv2.circle(canvas, tuple(points[joint].tolist()), radius, colour, -1, cv2.LINE_AA)
    return canvas


# ------------------------------------------------------------------------------ tags


def person_joint_tags(
    poses: np.ndarray, tags: np.ndarray, *, score_threshold: float = 0.0
) -> np.ndarray:
    """Samples the tag map at each person's joints.

    Args:
        poses: (P, K, 3) (x, y, score) in the tag map's pixel-centre coordinates (for decoder
            output in heatmap corner coordinates, subtract 0.5 first). The nearest map pixel
            (clamped to the map) is read.
        tags: (h, w, K, D) tag maps, or (h, w, K) for D = 1.
        score_threshold: joints with a lower score (and missing joints, score 0) get NaN,
            as ``draw_poses`` leaves them out.

    Returns:
        (P, K, D) float32 tags, NaN where the joint is not detected.
    """
    poses = _as_poses(poses)
    tags = np.asarray(tags, dtype=np.float32)
    if tags.ndim == 3:
        tags = tags[..., None]
    if tags.ndim != 4:
        raise ValueError(f"tags must be (h, w, K, D) or (h, w, K), got {tags.shape}.")
    height, width, num_joints, tag_dim = tags.shape
    if len(poses) and poses.shape[1] != num_joints:
        raise ValueError(f"poses have {poses.shape[1]} joints, tags {num_joints}.")
    result = np.full((len(poses), num_joints, tag_dim), np.nan, np.float32)
    if not len(poses):
        return result
    columns = np.clip(np.round(np.nan_to_num(poses[..., 0])), 0, width - 1).astype(np.int64)
    rows = np.clip(np.round(np.nan_to_num(poses[..., 1])), 0, height - 1).astype(np.int64)
    joints = np.broadcast_to(np.arange(num_joints), columns.shape)
    detected = (poses[..., 2] >= score_threshold) & (poses[..., 2] > 0)
    result[detected] = tags[rows[detected], columns[detected], joints[detected]]
    return result


def _nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """About `count` round tick values (steps 1, 2, 5 x 10^n) covering [low, high]."""
    span = max(high - low, 1e-9)
    raw_step = span / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    first = math.ceil(low / step) * step
    return np.arange(first, high + step * 1e-6, step)


def _format_tick(value: float) -> str:
    text = f"{value:.3g}"
    return "0" if text in ("-0", "0.0", "-0.0") else text


def _put_text(canvas: np.ndarray, text: str, origin: tuple[int, int], *, scale: float = 0.4,
              colour: RGBColour = _TEXT_GREY, anchor: str = "left") -> None:
    """cv2.putText with horizontal anchoring ('left', 'center', 'right') on the baseline."""
    (text_width, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = origin
    if anchor == "center":
        x -= text_width // 2
    elif anchor == "right":
        x -= text_width
    cv2.putText(canvas, text, (int(x), int(y)), _FONT, scale, colour, 1, cv2.LINE_AA)


def _put_vertical_text(canvas: np.ndarray, text: str, center_x: int, top: int, *,
                       scale: float = 0.4, colour: RGBColour = _TEXT_GREY) -> None:
    """Text rotated 90 degrees (reading bottom-up) whose right end is at `top`."""
    (text_width, text_height), baseline = cv2.getTextSize(text, _FONT, scale, 1)
    strip = np.full((text_height + baseline + 2, text_width + 2, 3), 255, np.uint8)
    cv2.putText(strip, text, (1, text_height + 1), _FONT, scale, colour, 1, cv2.LINE_AA)
    # Reading bottom-up like matplotlib's rotation=90; the text starts below `top`.
    rotated = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
    height, width = rotated.shape[:2]
    left = int(center_x - width // 2)
    bottom = min(top + height, canvas.shape[0])
    right = min(left + width, canvas.shape[1])
    if left < 0 or bottom <= top or right <= left:
        return
    region = canvas[top:bottom, left:right]
    patch = rotated[: bottom - top, : right - left]
    np.minimum(region, patch, out=region)  # dark text over a light background


def draw_tag_plot(
    person_tags: np.ndarray,
    joint_names: Sequence[str],
    *,
    colours: Sequence[RGBColour] | None = None,
    size: tuple[int, int] = (480, 720),
    dimension: int = 0,
    title: str | None = None,
) -> np.ndarray:
    """The paper's Figure 4: per-joint tag values of each detected person.

    x axis: joints (ticks labelled with their names); y axis: tag value. Each person's
    detected joints are dots in that person's colour, its mean tag a horizontal line of the
    same colour. Undetected joints (NaN) are left out.

    Args:
        person_tags: (P, K, D) or (P, K) tags of each person's joints (NaN = not detected),
            e.g. from ``person_joint_tags``.
        joint_names: K joint names (e.g. ``KeypointInfo.joint_names``).
        colours: one RGB colour per person (default ``person_colours(P)``, as ``draw_poses``).
        size: (height, width) of the picture in pixels.
        dimension: which tag dimension to plot when D > 1.
        title: text above the plot (default: counts of people and the plotted dimension).

    Returns:
        (height, width, 3) uint8 RGB picture.

    Raises:
        ValueError: on inconsistent shapes, a bad dimension or a picture too small to draw.
    """
    values = np.asarray(person_tags, dtype=np.float32)
    if values.ndim == 2:
        values = values[..., None]
    num_joints = len(joint_names)
    if values.ndim != 3 or (values.shape[0] and values.shape[1] != num_joints):
        raise ValueError(
            f"person_tags must be (P, K, D) or (P, K) with K = {num_joints}, got {values.shape}."
        )
    num_people = values.shape[0]
    tag_dim = values.shape[2] if num_people else 1
    if num_people and not 0 <= dimension < tag_dim:
        raise ValueError(f"dimension {dimension} out of range for D = {tag_dim}.")
    values = values[..., dimension] if num_people else np.zeros((0, num_joints), np.float32)
    colours = person_colours(num_people) if colours is None else list(colours)
    if len(colours) < num_people:
        raise ValueError(f"{len(colours)} colours for {num_people} people.")

    height, width = (int(v) for v in size)
    longest_name = max((cv2.getTextSize(n, _FONT, 0.4, 1)[0][0] for n in joint_names), default=0)
    left, right, top, bottom = 64, 16, 32, longest_name + 20
    plot_width, plot_height = width - left - right, height - top - bottom
    if plot_width < 2 * max(num_joints, 1) or plot_height < 40:
        raise ValueError(f"size {size} is too small for a tag plot of {num_joints} joints.")
    canvas = np.full((height, width, 3), 255, np.uint8)

    finite = values[np.isfinite(values)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        margin = max(0.1 * (high - low), 0.05 * max(abs(low), abs(high)), 0.05)
        low, high = low - margin, high + margin
    else:
        low, high = -1.0, 1.0

    def y_pixel(value: float) -> int:
        return int(round(top + (high - value) / (high - low) * plot_height))

    def x_pixel(joint: int) -> int:
        return int(round(left + (joint + 0.5) * plot_width / max(num_joints, 1)))

    for tick in _nice_ticks(low, high):
        y = y_pixel(tick)
        cv2.line(canvas, (left, y), (left + plot_width, y), _GRID_GREY, 1)
        cv2.line(canvas, (left - 4, y), (left, y), _BLACK, 1)
        _put_text(canvas, _format_tick(tick), (left - 7, y + 4), anchor="right")
    for joint, name in enumerate(joint_names):
        x = x_pixel(joint)
        cv2.line(canvas, (x, top), (x, top + plot_height), _GRID_GREY, 1)
        cv2.line(canvas, (x, top + plot_height), (x, top + plot_height + 4), _BLACK, 1)
        _put_vertical_text(canvas, name, x, top + plot_height + 8)
    cv2.rectangle(canvas, (left, top), (left + plot_width, top + plot_height), _BLACK, 1)
    _put_vertical_text(canvas, "tag value", 10, top + plot_height // 2 - 28)

    radius = max(3, min(6, plot_width // (4 * max(num_joints, 1))))
    for colour, person in zip(colours, values, strict=False):
        colour = tuple(int(channel) for channel in colour)
        detected = np.flatnonzero(np.isfinite(person))
        if not detected.size:
            continue
        mean_y = y_pixel(float(person[detected].mean()))
        cv2.line(canvas, (left + 1, mean_y), (left + plot_width - 1, mean_y), colour, 1,
                 cv2.LINE_AA)
        for joint in detected:
            center = (x_pixel(int(joint)), y_pixel(float(person[joint])))
            cv2.circle(canvas, center, radius, colour, -1, cv2.LINE_AA)
            cv2.circle(canvas, center, radius, _TEXT_GREY, 1, cv2.LINE_AA)

    if title is None:
        detail = f", tag dim {dimension} of {tag_dim}" if tag_dim > 1 else ""
        title = f"tags of {num_people} detected people{detail} (colours as in the drawing)"
    _put_text(canvas, title, (left, top - 12), scale=0.45, colour=_BLACK)
    if not num_people:
        _put_text(canvas, "no person detected", (left + plot_width // 2, top + plot_height // 2),
                  scale=0.6, anchor="center")
    return canvas


def _tag_colours(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """(...,) tag values -> (..., 3) uint8 RGB colours of the tag colormap over [low, high]."""
    normalised = np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0)
    indices = np.round(normalised * 255).astype(np.uint8)
    bgr = cv2.applyColorMap(indices.reshape(-1, 1), _TAG_COLORMAP).reshape(*values.shape, 3)
    return bgr[..., ::-1]


def tag_value_range(
    heatmaps: np.ndarray, tags: np.ndarray, *, detection_threshold: float = 0.1
) -> tuple[float, float]:
    """Range of the tags where any joint is detected (1st-99th percentile, robust to outliers).

    Args:
        heatmaps: (h, w, K) heatmaps.
        tags: (h, w, K) tags of one dimension.
        detection_threshold: heatmap value from which a pixel counts as detected; when no
            pixel reaches it, all pixels are used.

    Returns:
        (low, high) with high > low.
    """
    detected = heatmaps >= detection_threshold
    reference = tags[detected] if np.any(detected) else tags.reshape(-1)
    if not reference.size:
        return -1.0, 1.0
    low, high = (float(v) for v in np.percentile(reference, [1, 99]))
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    return low, high


def draw_tag_heatmaps(
    image: np.ndarray,
    heatmaps: np.ndarray,
    tags: np.ndarray,
    joint_names: Sequence[str],
    *,
    joints: Sequence[int] | None = None,
    dimension: int = 0,
    value_range: tuple[float, float] | None = None,
    detection_threshold: float = 0.1,
    panel_size: int = 256,
    columns: int | None = None,
) -> np.ndarray:
    """The paper's Figure 7: each joint's tag map over the image, masked by its heatmap.

    Every panel shows the image dimmed to grey, overlaid with the joint's tag coloured by a
    TURBO colormap on one common value range (so equal colours mean equal tags across joints)
    with opacity = the joint's heatmap (clipped to [0, 1]). A colour bar with the range ends
    is drawn below the grid.

    Args:
        image: (H, W, 3) uint8 RGB.
        heatmaps: (h, w, K) heatmaps covering exactly the image's extent (any resolution,
            e.g. network maps warped onto the image; they are resized bilinearly).
        tags: (h, w, K, D) or (h, w, K) tags on the same grid.
        joint_names: K joint names (panel titles).
        joints: the joint indices to show (default: all K).
        dimension: the tag dimension shown when D > 1.
        value_range: (low, high) of the colour scale; default ``tag_value_range`` over the
            shown joints.
        detection_threshold: heatmap value counted as a detection for the default range.
        panel_size: long side of each panel in pixels.
        columns: panels per row (default: about a square grid).

    Returns:
        (rows * panel_h + 40, columns * panel_w, 3) uint8 RGB picture.

    Raises:
        ValueError: on inconsistent shapes or joint indices.
    """
    photo = np.asarray(image)
    if photo.ndim != 3 or photo.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got {photo.shape}.")
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    tags = np.asarray(tags, dtype=np.float32)
    if tags.ndim == 3:
        tags = tags[..., None]
    if heatmaps.ndim != 3 or tags.ndim != 4 or tags.shape[:3] != heatmaps.shape:
        raise ValueError(
            f"heatmaps (h, w, K) and tags (h, w, K, D) must match, got {heatmaps.shape} and "
            f"{tags.shape}."
        )
    num_joints = heatmaps.shape[2]
    if len(joint_names) != num_joints:
        raise ValueError(f"{len(joint_names)} joint names for {num_joints} heatmap channels.")
    if not 0 <= dimension < tags.shape[3]:
        raise ValueError(f"dimension {dimension} out of range for D = {tags.shape[3]}.")
    joints = list(range(num_joints)) if joints is None else [int(j) for j in joints]
    if not joints or not all(0 <= joint < num_joints for joint in joints):
        raise ValueError(f"joints must be a non-empty subset of 0..{num_joints - 1}: {joints}.")
    tag_maps = tags[..., dimension]
    if value_range is None:
        value_range = tag_value_range(
            heatmaps[..., joints], tag_maps[..., joints], detection_threshold=detection_threshold
        )
    low, high = (float(v) for v in value_range)

    image_height, image_width = photo.shape[:2]
    scale = panel_size / max(image_height, image_width)
    panel_w = max(1, int(round(image_width * scale)))
    panel_h = max(1, int(round(image_height * scale)))
    small = cv2.resize(np.ascontiguousarray(photo, np.uint8), (panel_w, panel_h),
                       interpolation=cv2.INTER_AREA)
    # A dimmed grey photo, so that the tag colours stand out and the people stay recognisable.
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)[..., None]
    background = np.repeat(0.5 * grey, 3, axis=-1)

    columns = columns or int(math.ceil(math.sqrt(len(joints))))
    rows = int(math.ceil(len(joints) / columns))
    bar_height = 40
    picture = np.full((rows * panel_h + bar_height, columns * panel_w, 3), 255, np.uint8)
    for slot, joint in enumerate(joints):
        # Bilinear resampling of the maps onto the panel grid (cv2 half-pixel centres).
        strength = cv2.resize(heatmaps[..., joint], (panel_w, panel_h),
                              interpolation=cv2.INTER_LINEAR)
        tag = cv2.resize(tag_maps[..., joint], (panel_w, panel_h), interpolation=cv2.INTER_LINEAR)
        opacity = np.clip(strength, 0.0, 1.0)[..., None]
        panel = background * (1.0 - opacity) + _tag_colours(tag, low, high) * opacity
        panel = np.clip(np.round(panel), 0, 255).astype(np.uint8)
        _put_text(panel, joint_names[joint], (4, 14), scale=0.45, colour=(255, 255, 255))
        row, column = divmod(slot, columns)
        picture[row * panel_h:(row + 1) * panel_h, column * panel_w:(column + 1) * panel_w] = panel

    # Colour bar: the tag scale shared by every panel.
    bar_top, bar_left = rows * panel_h + 8, min(60, picture.shape[1] // 5)
    bar_width = max(1, picture.shape[1] - 2 * bar_left)
    ramp = _tag_colours(np.linspace(low, high, bar_width, dtype=np.float32), low, high)
    picture[bar_top:bar_top + 12, bar_left:bar_left + bar_width] = ramp[None]
    _put_text(picture, _format_tick(low), (bar_left - 6, bar_top + 11), anchor="right",
              colour=_BLACK)
    _put_text(picture, _format_tick(high), (bar_left + bar_width + 6, bar_top + 11),
              colour=_BLACK)
    _put_text(picture, "tag value (opacity: heatmap)", (picture.shape[1] // 2, bar_top + 28),
              anchor="center", colour=_BLACK)
    return picture


def draw_instances(
    image: np.ndarray,
    instances: Sequence,
    category_names: Sequence[str],
    *,
    score_threshold: float = 0.0,
    alpha: float = 0.5,
) -> np.ndarray:
    """Instance masks over an image, one colour per instance, best drawn last (on top).

    Args:
        image: (H, W, 3) RGB uint8.
        instances: objects with `.category_index`, `.mask` ((H, W) bool) and `.score`
            (e.g. `codec.instance_decode.DecodedInstance`).
        category_names: (C,) names for the labels.
        score_threshold: instances scoring below it are left out.
        alpha: opacity of the mask fill.

    Returns:
        (H, W, 3) RGB uint8 copy with the masks, outlines and labels.
    """
    canvas = _as_canvas(image)
    kept = [instance for instance in instances if instance.score >= score_threshold]
    kept.sort(key=lambda instance: instance.score)
    colours = person_colours(len(kept))
    for instance, colour in zip(kept, colours, strict=True):
        mask = np.asarray(instance.mask, bool)
        if mask.shape != canvas.shape[:2]:
            raise ValueError(
                f"instance mask is {mask.shape}, the image {canvas.shape[:2]}: resize first"
            )
        if not mask.any():
            continue
        fill = np.asarray(colour, np.float32)
        canvas[mask] = ((1 - alpha) * canvas[mask] + alpha * fill).astype(np.uint8)
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in colour), 1, cv2.LINE_AA)
        rows, columns = np.nonzero(mask)
        name = category_names[instance.category_index]
        label = f"{name} {instance.score:.2f}"
        origin = (int(columns.min()), max(10, int(rows.min()) - 2))
        _put_text(canvas, label, origin, colour=tuple(int(c) for c in colour))
    return canvas
