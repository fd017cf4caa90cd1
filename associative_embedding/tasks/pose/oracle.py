"""The paper's diagnostics (Sec. 4.1): substitute ground truth for the network's outputs.

Two oracles, usable alone or together, replace maps *before decoding*:

    gt_heatmaps  ground-truth detection heatmaps at the output resolution, rendered by the
                 training encoder (``codec.encode``: Gaussian with peak 1 at each labelled
                 joint's integer output pixel, people combined by per-pixel maximum). With
                 predicted tags this is the paper's "ground-truth detections" experiment
                 (59.2 -> 94.0 AP on 500 held-out train images).
    gt_tags      perfectly separated ground-truth tags (h, w, K, 1): in joint channel k every
                 pixel takes the tag of the person whose joint k is nearest (Euclidean distance
                 between output pixels, i.e. the person whose Gaussian for joint k responds
                 most there); the tag of person n (row n of the record) is n * tag_spacing, with
                 a default spacing of 3, well beyond the decoder's tag threshold of 1, so any
                 detection near a person's joint groups with that person. Channels where no
                 person has a valid joint k fall back to the nearest valid joint of any type.

With both oracles no network is needed: the decoded poses measure the ceiling set by the output
resolution and the decoder (quantisation, NMS, adjust). Only joints that the encoder would draw
are used (labelled, v > 0, and inside the output map), so both maps agree on which joints exist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf
from scipy import ndimage

from associative_embedding.codec.encode import (
    default_sigma,
    keypoint_output_pixels,
    output_coordinates,
    render_heatmaps,
)

GT_HEATMAPS = "gt_heatmaps"
GT_TAGS = "gt_tags"
ORACLES = (GT_HEATMAPS, GT_TAGS)
DEFAULT_TAG_SPACING = 3.0


def parse_oracles(spec: str | Iterable[str] | None) -> frozenset[str]:
    """Parses '--oracle' values: 'gt_heatmaps', 'gt_tags', 'gt_heatmaps,gt_tags' or a list.

    Raises:
        ValueError: naming an unknown oracle.
    """
    if spec is None:
        return frozenset()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = frozenset(item.strip() for item in items if item.strip())
    unknown = sorted(names - set(ORACLES))
    if unknown:
        raise ValueError(f"unknown oracle(s) {unknown}; choose from {list(ORACLES)}.")
    return names


def _output_pixels(
    keypoints: np.ndarray, output_hw: Sequence[int], stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer output pixels (P, K) and validity of input-pixel keypoints, as the encoder has."""
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
        raise ValueError(f"keypoints must be (P, K, 3), got {keypoints.shape}.")
    ix, iy, valid = keypoint_output_pixels(keypoints, tuple(output_hw), stride)
    return ix.numpy(), iy.numpy(), valid.numpy()


def ground_truth_heatmaps(
    keypoints: np.ndarray,
    output_hw: Sequence[int],
    *,
    stride: int,
    sigma: float | None = None,
    subpixel: bool = False,
) -> np.ndarray:
    """Ground-truth heatmaps, exactly the training targets of the encoder.

    Args:
        keypoints: (P, K, 3) (x, y, v) in network-input pixel-centre coordinates.
        output_hw: (h, w) of the output maps.
        stride: input pixels per output pixel.
        sigma: Gaussian σ in output pixels; default max(h, w) / 64 (the encoder's).
        subpixel: Gaussians at the exact sub-pixel position (``KeypointEncoder(subpixel=True)``).

    Returns:
        (h, w, K) float32.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
        raise ValueError(f"keypoints must be (P, K, 3), got {keypoints.shape}.")
    output_hw = tuple(int(size) for size in output_hw)
    sigma = default_sigma(output_hw) if sigma is None else float(sigma)
    return _heatmap_renderer(output_hw, int(stride), sigma, bool(subpixel))(keypoints).numpy()


@functools.cache
def _heatmap_renderer(
    output_hw: tuple[int, int], stride: int, sigma: float, subpixel: bool
) -> Callable[[np.ndarray], tf.Tensor]:
    """The encoder's heatmap rendering as a tf.function of (P, K, 3) keypoints.

    Traced, as the training pipeline runs it inside tf.data, for two reasons: the values are
    then bit-identical to the training targets (eagerly, the squares of the sub-pixel
    Gaussian go through TF's approximate Pow kernel and differ by an ulp; traced, Grappler
    turns them into exact squares as in tf.data), and one call costs ~1 ms instead of the
    ~10 ms of ~40 eager ops.
    """

    def render(keypoints: tf.Tensor) -> tf.Tensor:
        ix, iy, valid = keypoint_output_pixels(keypoints, output_hw, stride)
        centres = output_coordinates(keypoints, stride) if subpixel else None
        return render_heatmaps(ix, iy, valid, output_hw, sigma, centres)

    # No autograph: the encoder branches only on Python values, and converting its functions
    # would take seconds of the ~0.2 s trace.
    return tf.function(
        render, input_signature=[tf.TensorSpec([None, None, 3], tf.float32)], autograph=False
    )


def ground_truth_tags(
    keypoints: np.ndarray,
    output_hw: Sequence[int],
    *,
    stride: int,
    tag_spacing: float = DEFAULT_TAG_SPACING,
) -> np.ndarray:
    """Perfectly separated tag maps (module docstring).

    Args:
        keypoints: (P, K, 3) (x, y, v) in network-input pixel-centre coordinates.
        output_hw: (h, w) of the output maps.
        stride: input pixels per output pixel.
        tag_spacing: tag distance between consecutive people (> the decoder's tag threshold).

    Returns:
        (h, w, K, 1) float32; person n's tag is n * tag_spacing; all zeros without valid joints.
    """
    height, width = (int(size) for size in output_hw)
    ix, iy, valid = _output_pixels(keypoints, output_hw, stride)
    num_people, num_joints = valid.shape
    tags = np.zeros((height, width, num_joints, 1), dtype=np.float32)
    if not valid.any():
        return tags
    person_tags = np.arange(num_people, dtype=np.float32) * np.float32(tag_spacing)
    any_valid = np.nonzero(valid)
    fallback = _nearest_seed_labels(
        iy[any_valid], ix[any_valid], any_valid[0], (height, width)
    )
    for joint in range(num_joints):
        people = np.flatnonzero(valid[:, joint])
        if people.size:
            labels = _nearest_seed_labels(
                iy[people, joint], ix[people, joint], people, (height, width)
            )
        else:
            labels = fallback
        tags[..., joint, 0] = person_tags[labels]
    return tags


def _nearest_seed_labels(
    rows: np.ndarray, columns: np.ndarray, labels: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """(h, w) int map: the label of the nearest seed pixel (exact Euclidean distance transform).

    Seeds sharing a pixel keep the last label written (deterministic).
    """
    seed_labels = np.full(shape, -1, dtype=np.int64)
    seed_labels[rows, columns] = labels
    # distance_transform_edt measures the distance to the nearest zero and returns its index.
    _, (nearest_rows, nearest_columns) = ndimage.distance_transform_edt(
        seed_labels < 0, return_distances=True, return_indices=True
    )
    return seed_labels[nearest_rows, nearest_columns]


def apply_oracles(
    heatmaps: np.ndarray | None,
    tags: np.ndarray | None,
    keypoints: np.ndarray,
    *,
    oracles: Iterable[str],
    output_hw: Sequence[int],
    stride: int,
    sigma: float | None = None,
    subpixel: bool = False,
    tag_spacing: float = DEFAULT_TAG_SPACING,
) -> tuple[np.ndarray, np.ndarray]:
    """Replaces the network's maps by ground truth where an oracle asks for it.

    Args:
        heatmaps: (h, w, K) predicted heatmaps, or None when ``gt_heatmaps`` is on.
        tags: (h, w, K, D) predicted tags, or None when ``gt_tags`` is on.
        keypoints: (P, K, 3) ground truth (x, y, v) in network-input pixel coordinates.
        oracles: a subset of ``ORACLES``.
        output_hw: (h, w) of the maps.
        stride: input pixels per output pixel.
        sigma: heatmap σ (default: the encoder's).
        subpixel: sub-pixel Gaussian centres (``ground_truth_heatmaps``).
        tag_spacing: tag distance between people.

    Returns:
        (heatmaps (h, w, K), tags (h, w, K, D)); D = 1 where ``gt_tags`` replaced the tags.

    Raises:
        ValueError: when a map is needed but neither predicted nor replaced, or on a shape
            mismatch.
    """
    oracles = parse_oracles(oracles)
    output_hw = tuple(int(size) for size in output_hw)
    if GT_HEATMAPS in oracles:
        heatmaps = ground_truth_heatmaps(
            keypoints, output_hw, stride=stride, sigma=sigma, subpixel=subpixel
        )
    if GT_TAGS in oracles:
        tags = ground_truth_tags(keypoints, output_hw, stride=stride, tag_spacing=tag_spacing)
    if heatmaps is None or tags is None:
        missing = "heatmaps" if heatmaps is None else "tags"
        raise ValueError(
            f"no {missing}: pass the network's {missing} or use the "
            f"{GT_HEATMAPS if heatmaps is None else GT_TAGS} oracle."
        )
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    tags = np.asarray(tags, dtype=np.float32)
    if heatmaps.shape[:2] != output_hw or tags.shape[:3] != heatmaps.shape:
        raise ValueError(
            f"map shapes disagree: heatmaps {heatmaps.shape}, tags {tags.shape}, "
            f"output size {output_hw}."
        )
    return heatmaps, tags
