"""Test-time fusion (flip, multi-scale) of network outputs and back-projection of poses.

All functions work on NumPy maps of one image: heatmaps (h, w, K) and tags (h, w, K, D), in the
package's pixel-centre convention (see ``associative_embedding.core.record``):

* Flip test. The maps predicted for the horizontally flipped image are flipped back
  (column j <-> w - 1 - j, exact because the input width is a multiple of the stride) and their
  joints re-indexed with the dataset's flip index; heatmaps are averaged with the unflipped
  prediction and tags concatenated along D (official).
* Multi-scale. Every scale's maps are resampled onto one reference grid and the heatmaps
  averaged (over scales, and over flips when the inputs are flip-fused); tags either come from
  the scale nearest 1 only (``mode='official'``, the official test code: with flip this gives
  2-D tags) or are concatenated over all scales (``mode='paper'``, Sec. 3.2 of the paper).
  Resampling is bilinear with half-pixel centres (``cv2.resize`` / ``cv2.warpAffine`` with
  ``INTER_LINEAR``, which sample at ``(x + 0.5) / s - 0.5``), the convention of
  ``transforms.scale_matrix``.
* Padding. ``image_region_mask`` marks the map pixels that overlap the image; test-time
  inference zeroes the heatmaps elsewhere (the padded input that training never supervised).
* Back-projection. ``group_poses`` returns heatmap *corner* coordinates (pixel j spans
  [j, j + 1)), so a pose goes to network-input pixel centres by ``x_in = stride * x - 0.5`` and
  to image pixels by the inverse of the preprocessing affine ``input_from_image``.

Official behaviours not reproduced: the official test code clips the fused heatmaps at 1 and
drops a scale whose heatmaps exceed 10; neither changes well-behaved outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from associative_embedding.core import keypoint_info, transforms

FUSION_MODES = ("official", "paper")

# The installed OpenCV (5.0) accepts at most 128 channels per image (measured), so wider
# maps are processed in chunks.
_MAX_CV_CHANNELS = 128


def default_flip_index(num_joints: int) -> tuple[int, ...]:
    """Flip index of the registered dataset with K joints (COCO for 17, CrowdPose for 14...)."""
    return keypoint_info.keypoint_info_for_num_joints(num_joints).flip_index


def _check_flip_index(flip_index: Sequence[int] | None, num_joints: int) -> np.ndarray:
    if flip_index is None:
        flip_index = default_flip_index(num_joints)
    index = np.asarray(flip_index, dtype=np.int64)
    if index.shape != (num_joints,) or sorted(index.tolist()) != list(range(num_joints)):
        raise ValueError(
            f"flip_index must be a permutation of 0..{num_joints - 1}, got {list(flip_index)}."
        )
    return index


def _as_tags(tags: np.ndarray, heatmaps_shape: tuple[int, ...], name: str) -> np.ndarray:
    tags = np.asarray(tags, dtype=np.float32)
    if tags.ndim == 3:
        tags = tags[..., None]
    if tags.ndim != 4 or tags.shape[:3] != tuple(heatmaps_shape):
        raise ValueError(
            f"{name} must be (h, w, K, D) or (h, w, K) matching heatmaps {heatmaps_shape}, "
            f"got {tags.shape}."
        )
    return tags


def _as_heatmaps(heatmaps: np.ndarray, name: str) -> np.ndarray:
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 3:
        raise ValueError(f"{name} must be (h, w, K), got {heatmaps.shape}.")
    return heatmaps


# ----------------------------------------------------------------------------- flip


def unflip_maps(
    heatmaps: np.ndarray, tags: np.ndarray, flip_index: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Maps predicted for a horizontally flipped image, expressed in the original image.

    Args:
        heatmaps: (h, w, K) heatmaps of the flipped image.
        tags: (h, w, K, D) (or (h, w, K)) tags of the flipped image.
        flip_index: (K,) joint that joint k becomes under a flip; None = the registered dataset
            with K joints (``keypoint_info``).

    Returns:
        heatmaps (h, w, K) and tags (h, w, K, D): column j of the result is column w - 1 - j of
        the input, and joint k is the input's joint flip_index[k].
    """
    heatmaps = _as_heatmaps(heatmaps, "flipped heatmaps")
    tags = _as_tags(tags, heatmaps.shape, "flipped tags")
    index = _check_flip_index(flip_index, heatmaps.shape[2])
    return heatmaps[:, ::-1, index], tags[:, ::-1, index, :]


def fuse_flip(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    flipped_heatmaps: np.ndarray,
    flipped_tags: np.ndarray,
    flip_index: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip test: averages heatmaps and concatenates tags of an image and its flip.

    Args:
        heatmaps: (h, w, K) predicted for the image.
        tags: (h, w, K, D) (or (h, w, K)) predicted for the image.
        flipped_heatmaps: (h, w, K) predicted for the horizontally flipped image.
        flipped_tags: (h, w, K, D) (or (h, w, K)) predicted for the flipped image.
        flip_index: see ``unflip_maps``.

    Returns:
        heatmaps: (h, w, K) float32, mean of the prediction and the un-flipped one.
        tags: (h, w, K, 2D) float32, the prediction's D dims then the un-flipped ones.
    """
    heatmaps = _as_heatmaps(heatmaps, "heatmaps")
    tags = _as_tags(tags, heatmaps.shape, "tags")
    back_heatmaps, back_tags = unflip_maps(flipped_heatmaps, flipped_tags, flip_index)
    if back_heatmaps.shape != heatmaps.shape or back_tags.shape != tags.shape:
        raise ValueError(
            f"flipped maps {back_heatmaps.shape}/{back_tags.shape} do not match "
            f"{heatmaps.shape}/{tags.shape}."
        )
    fused_heatmaps = (heatmaps + back_heatmaps) * np.float32(0.5)
    return fused_heatmaps, np.concatenate([tags, back_tags], axis=3)


# ----------------------------------------------------------------------------- resampling


def _per_channel_chunks(maps: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    """Applies a 2-D OpenCV resampler to (h, w, ...) maps, <= 128 channels at a time."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim < 2:
        raise ValueError(f"maps must be (h, w, ...), got shape {maps.shape}.")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {size}.")
    trailing = maps.shape[2:]
    flat = maps.reshape(maps.shape[0], maps.shape[1], -1)
    out = np.empty((height, width, flat.shape[2]), np.float32)
    for start in range(0, flat.shape[2], _MAX_CV_CHANNELS):
        chunk = np.ascontiguousarray(flat[:, :, start : start + _MAX_CV_CHANNELS])
        out[:, :, start : start + chunk.shape[2]] = resample(chunk, (width, height)).reshape(
            height, width, chunk.shape[2]
        )
    return out.reshape((height, width) + trailing)


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (h, w, ...) maps to (H, W, ...) with half-pixel centres.

    Output pixel x samples the input at ``(x + 0.5) * w / W - 0.5`` (``cv2.INTER_LINEAR``),
    i.e. the resampling ``transforms.scale_matrix(W / w, H / h)``; borders replicate.

    Args:
        maps: (h, w, ...) float array (heatmaps (h, w, K) or tags (h, w, K, D)).
        size: (H, W) target size.

    Returns:
        (H, W, ...) float32.
    """
    return _per_channel_chunks(
        maps, size, lambda chunk, dsize: cv2.resize(chunk, dsize, interpolation=cv2.INTER_LINEAR)
    )


def warp_maps(
    maps: np.ndarray,
    source_from_target: np.ndarray,
    size: tuple[int, int],
    border: str = "constant",
) -> np.ndarray:
    """Bilinear resampling of (h, w, ...) maps onto a (H, W) grid through an affine.

    Args:
        maps: (h, w, ...) float array.
        source_from_target: (3, 3) affine from target pixel-centre coordinates to source ones.
        size: (H, W) target size.
        border: "constant" (0 outside the source map) or "replicate".

    Returns:
        (H, W, ...) float32: target pixel (x, y) = maps sampled at source_from_target (x, y).
    """
    matrix = np.asarray(source_from_target, dtype=np.float64)
    if matrix.shape != (3, 3):
        raise ValueError(f"source_from_target must be (3, 3), got {matrix.shape}.")
    border_modes = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}
    if border not in border_modes:
        raise ValueError(f"border must be one of {sorted(border_modes)}, got {border!r}.")

    def resample(chunk: np.ndarray, dsize: tuple[int, int]) -> np.ndarray:
        return cv2.warpAffine(
            chunk,
            matrix[:2],
            dsize,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=border_modes[border],
            borderValue=0.0,
        )

    return _per_channel_chunks(maps, size, resample)


def image_region_mask(
    map_from_image: np.ndarray, image_hw: Sequence[int], map_hw: Sequence[int]
) -> np.ndarray:
    """Which map pixels overlap the image, as opposed to the padding around it.

    Test-time inputs are padded (``eval_resize_affine`` pads right/bottom to multiples of 64).
    Training ignores the loss outside the source image (``AugmentConfig.ignore_outside_image``),
    so the network's heatmaps there are unconstrained; peaks in the padding would decode to
    joints outside the image and, being grouped like any other candidate, can take a person's
    joint slot from its true detection.

    Args:
        map_from_image: (3, 3) axis-aligned affine from image pixels to map pixel centres
            (``map_from_image(input_from_image, stride)``).
        image_hw: (H, W) of the original image.
        map_hw: (h, w) of the maps.

    Returns:
        (h, w) bool, True where the map pixel (j spans [j - 0.5, j + 0.5)) overlaps the image
        (which spans [-0.5, W - 0.5) in pixel-centre coordinates).

    Raises:
        ValueError: for an affine with rotation or shear (test-time affines have none).
    """
    matrix = np.asarray(map_from_image, np.float64)
    if matrix.shape != (3, 3) or matrix[0, 1] != 0 or matrix[1, 0] != 0:
        raise ValueError(f"map_from_image must be an axis-aligned (3, 3) affine, got {matrix}.")
    height, width = (int(size) for size in image_hw)
    corners = transforms.transform_points(
        np.array([[-0.5, -0.5], [width - 0.5, height - 0.5]]), matrix
    )
    low, high = corners.min(axis=0), corners.max(axis=0)
    # A small tolerance keeps a pixel that only touches the image edge (exact multiples of
    # the stride put the edge on a pixel border) out despite float rounding.
    tolerance = 1e-6
    columns = np.arange(int(map_hw[1]), dtype=np.float64)
    rows = np.arange(int(map_hw[0]), dtype=np.float64)
    inside_x = (columns - 0.5 < high[0] - tolerance) & (columns + 0.5 > low[0] + tolerance)
    inside_y = (rows - 0.5 < high[1] - tolerance) & (rows + 0.5 > low[1] + tolerance)
    return inside_y[:, None] & inside_x[None, :]


def map_from_image(input_from_image: np.ndarray, stride: int = 4) -> np.ndarray:
    """(3, 3) affine from image pixels to output-map pixel centres: x_out = (x_in + 0.5)/s - 0.5."""
    return transforms.output_from_input(stride) @ np.asarray(input_from_image, np.float64)


# ----------------------------------------------------------------------------- multi-scale


def fuse_scales(
    heatmaps: Sequence[np.ndarray],
    tags: Sequence[np.ndarray],
    scales: Sequence[float],
    *,
    mode: str = "official",
    maps_from_image: Sequence[np.ndarray] | None = None,
    reference_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fuses per-scale maps (already flip-fused or not) onto one grid.

    The result lives on the grid of scale ``reference_index`` (default: the largest map, as the
    official code resizes everything to its first, largest scale), so poses decoded from it go
    back to the image with that scale's ``input_from_image`` (``poses_to_image``).

    Args:
        heatmaps: per scale, (h_s, w_s, K).
        tags: per scale, (h_s, w_s, K, D_s) (or (h_s, w_s, K)).
        scales: per scale, the input scale factor (1.0 = the base input size); "official" mode
            takes tags from the scale nearest 1.
        mode: "official" (tags of the scale nearest 1) or "paper" (tags of all scales
            concatenated along D, in the given order).
        maps_from_image: optional per-scale (3, 3) affines from image pixels to that scale's
            map pixels (``map_from_image(input_from_image, stride)``). With them every map is
            warped exactly onto the reference grid, which is right when the inputs were padded
            by different fractions (``eval_resize_affine`` pads to multiples of 64); without
            them maps are resized to the reference size, which assumes every map covers the
            image in the same proportion (the official square warp).
        reference_index: index of the scale whose grid the result uses.

    Returns:
        heatmaps: (H, W, K) float32, mean over scales.
        tags: (H, W, K, D') float32, D' = D of the scale nearest 1 ("official") or the sum of
            all D_s ("paper").

    Raises:
        ValueError: on mismatched lengths, joint counts or an unknown mode.
    """
    num_scales = len(heatmaps)
    if num_scales == 0 or len(tags) != num_scales or len(scales) != num_scales:
        raise ValueError(
            f"need one heatmap, tag map and scale per scale, got {num_scales}, {len(tags)} and "
            f"{len(scales)}."
        )
    if mode not in FUSION_MODES:
        raise ValueError(f"mode must be one of {FUSION_MODES}, got {mode!r}.")
    if maps_from_image is not None and len(maps_from_image) != num_scales:
        raise ValueError(
            f"maps_from_image has {len(maps_from_image)} entries for {num_scales} scales."
        )
    heatmaps = [_as_heatmaps(h, f"heatmaps[{i}]") for i, h in enumerate(heatmaps)]
    tags = [
        _as_tags(t, h.shape, f"tags[{i}]")
        for i, (t, h) in enumerate(zip(tags, heatmaps, strict=True))
    ]
    if len({h.shape[2] for h in heatmaps}) != 1:
        raise ValueError(f"all scales need the same K, got {[h.shape for h in heatmaps]}.")
    if reference_index is None:
        areas = [h.shape[0] * h.shape[1] for h in heatmaps]
        reference_index = int(np.argmax(areas))  # first of the largest
    if not 0 <= reference_index < num_scales:
        raise ValueError(f"reference_index {reference_index} out of range [0, {num_scales}).")
    size = heatmaps[reference_index].shape[:2]

    def to_reference(maps: np.ndarray, index: int, border: str) -> np.ndarray:
        if index == reference_index:
            return maps
        if maps_from_image is None:
            return resize_maps(maps, size)
        source_from_target = np.asarray(maps_from_image[index], np.float64) @ np.linalg.inv(
            np.asarray(maps_from_image[reference_index], np.float64)
        )
        return warp_maps(maps, source_from_target, size, border=border)

    fused_heatmaps = np.zeros(size + heatmaps[0].shape[2:], np.float64)
    for index, scale_heatmaps in enumerate(heatmaps):
        fused_heatmaps += to_reference(scale_heatmaps, index, "constant")
    fused_heatmaps = (fused_heatmaps / num_scales).astype(np.float32)

    if mode == "official":
        tag_indices = [int(np.argmin([abs(float(s) - 1.0) for s in scales]))]
    else:
        tag_indices = list(range(num_scales))
    fused_tags = np.concatenate(
        [to_reference(tags[i], i, "replicate") for i in tag_indices], axis=3
    )
    return fused_heatmaps, fused_tags


def fuse_outputs(
    heatmaps: Sequence[np.ndarray],
    tags: Sequence[np.ndarray],
    scales: Sequence[float] = (1.0,),
    *,
    flipped_heatmaps: Sequence[np.ndarray] | None = None,
    flipped_tags: Sequence[np.ndarray] | None = None,
    flip_index: Sequence[int] | None = None,
    mode: str = "official",
    maps_from_image: Sequence[np.ndarray] | None = None,
    reference_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip fusion per scale (when flipped outputs are given), then ``fuse_scales``.

    Heatmaps end up averaged over scales and flips with equal weights (official); see
    ``fuse_flip`` and ``fuse_scales`` for the arguments.

    Returns:
        heatmaps (H, W, K) and tags (H, W, K, D') float32 on the reference scale's grid.
    """
    if (flipped_heatmaps is None) != (flipped_tags is None):
        raise ValueError("give both flipped_heatmaps and flipped_tags, or neither.")
    if flipped_heatmaps is not None:
        if len(flipped_heatmaps) != len(heatmaps) or len(flipped_tags) != len(heatmaps):
            raise ValueError("need one flipped heatmap and tag map per scale.")
        fused = [
            fuse_flip(h, t, fh, ft, flip_index)
            for h, t, fh, ft in zip(heatmaps, tags, flipped_heatmaps, flipped_tags, strict=True)
        ]
        heatmaps = [h for h, _ in fused]
        tags = [t for _, t in fused]
    return fuse_scales(
        heatmaps, tags, scales, mode=mode, maps_from_image=maps_from_image,
        reference_index=reference_index,
    )


# ----------------------------------------------------------------------------- back-projection


def poses_to_image(
    poses: np.ndarray, input_from_image: np.ndarray, stride: int = 4
) -> np.ndarray:
    """Maps decoded poses from heatmap corner coordinates to original image pixels.

    ``x_in = stride * x - 0.5`` gives network-input pixel centres (the inverse of
    ``x_out = (x_in + 0.5) / stride - 0.5`` plus the decoder's +0.5), then the inverse of
    ``input_from_image`` gives image pixel-centre coordinates.

    Args:
        poses: (..., K, 3) (x, y, score) from ``group_poses``.
        input_from_image: (3, 3) preprocessing affine (e.g. from
            ``transforms.eval_resize_affine``) of the map's scale.
        stride: network output stride (1 when the maps have the input's resolution).

    Returns:
        (..., K, 3) float32 with x, y in image pixels and the scores unchanged. Every joint is
        mapped, so missing joints (score 0) carry meaningless positions, as before.
    """
    poses = np.asarray(poses, dtype=np.float32)
    if poses.ndim < 2 or poses.shape[-1] != 3:
        raise ValueError(f"poses must be (..., K, 3), got {poses.shape}.")
    input_xy = poses.astype(np.float64)
    input_xy[..., :2] = stride * input_xy[..., :2] - 0.5
    image_from_input = transforms.invert(np.asarray(input_from_image, np.float64))
    return transforms.transform_points(input_xy, image_from_input).astype(np.float32)
