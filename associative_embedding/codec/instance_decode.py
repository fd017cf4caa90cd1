"""Instance decoder: detection maps + associative-embedding tags -> instance masks.

Paper Sec. 3.4 / Figure 5: "we first threshold on the detection channel heatmap to produce a
binary mask. Then, we look at the distribution of tags within this mask. We calculate a
histogram of the tags and perform non-maximum suppression to determine a set of values to use
as identifiers for each object instance. Each pixel from the detection mask is then assigned
to the object with the closest tag value." Multi-scale (Sec. 4.2): "we generate instance
proposals at each scale and do non-maximum suppression to remove overlapping proposals across
scales" (``merge_scales``).

The maps must already be at the resolution the masks are wanted at: bring the network's
(h, w) maps to the image with ``resize_instance_maps`` (bilinear, half-pixel centres, the
package's convention, see ``codec.fusion.resize_maps``) before decoding, so the mask
boundaries are interpolated, not blocky.

For every category c (channel c of the detection maps), independently:

1. **Foreground.** Pixels with ``detection[..., c] > detection_threshold`` (strictly, like the
   pose decoder); their N tags ``t_i`` (D-vectors) are the only ones looked at.
2. **Identifiers** (one per instance), in tag units, with ``bandwidth`` = b. The *density* at
   a tag value x is sum_i max(0, 1 - ||t_i - x|| / (b / 2)), a triangular kernel of radius
   b / 2 (peaked: with a flat box kernel a single tag value would give a plateau b wide and
   the NMS would seed at its edge, b / 2 off); the *mass* at x is the number of tags within
   b / 2 of x. An identifier seed must (a) be a local maximum of the density within b (no
   tag value closer than b has a larger density; this is what keeps a strong peak's tail
   from seeding a spurious instance), (b) be farther than b from every stronger seed
   (greedy non-maximum suppression, densest first; this also resolves plateaus) and
   (c) have a mass of at least ``max(min_peak_pixels, min_peak_fraction * N)``. The
   identifier is the mean of the foreground tags within b / 2 of its seed (one mean-shift
   step, so it sits at the centre of its cluster, not on a histogram bin or a sample). At most
   ``max_instances`` identifiers per category are kept, the densest first.

   * ``method='histogram'`` (D = 1 only; the paper's decoder): the tags are binned with
     ``bin_width`` (default b / 8; bins are anchored at multiples of the bin width, so the
     result does not depend on the tag range); the density is the histogram smoothed with
     the triangular kernel, the mass its box sum over the bins within b / 2, and the seeds
     are bin centres. The NMS window, b on each side, is ``round(b / bin_width)`` bins.
     Cost O(N + range / bin_width).
   * ``method='density'`` (any D; the default for D > 1): the same rules on tag vectors, a
     discrete mean-shift / greedy NMS. Density and mass are evaluated at the foreground tags
     themselves; with more than ``density_samples`` (M) foreground pixels they are computed
     on a deterministic subsample (evenly spaced pixels in raster order; no randomness) and
     scaled by N / M, while the identifier means and the mass test (c) then use all N tags
     exactly. Cost O(M^2 + N * S * D) for S identifiers.
   * ``method='auto'``: 'histogram' for D = 1, 'density' for D > 1.

3. **Assignment.** Each foreground pixel goes to the nearest identifier (Euclidean; ties to
   the densest identifier). With ``max_tag_distance`` set, pixels farther than that from every
   identifier stay unassigned.
4. **Filter.** Instances with fewer than ``min_instance_pixels`` pixels are dropped.
5. **Score** (``DecodedInstance.score``) = mean detection value over the instance's mask,
   times (with ``compactness_score=True``, the default) the fraction of its pixels whose tag
   lies within b / 2 of its identifier. The first factor is the pose decoder's choice (mean
   detection score of the grouped parts) and ranks confident objects first; the second is
   1 for a well-grouped instance and small for "instances" made of pixels whose tags are
   spread out (boundary pixels with interpolated tags, pixels of several objects whose tags
   were not separated), which otherwise would rank as high as real objects because their
   detection values are as high. Both factors are in [0, 1] for detection maps in [0, 1].

Outputs are ``DecodedInstance``s sorted by score, descending (stable: category, then
identifier density order), so decoding is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils
from scipy.ndimage import convolve1d, maximum_filter1d

from associative_embedding.codec.fusion import resize_maps
from associative_embedding.codec.map_checks import validate_maps

__all__ = [
    "DecodedInstance",
    "DECODE_METHODS",
    "decode_instances",
    "merge_scales",
    "resize_instance_maps",
]

DECODE_METHODS = ("auto", "histogram", "density")

# A histogram never gets more bins than this: with wider tag ranges (a diverged network) the
# bin width grows to range / _MAX_HISTOGRAM_BINS instead of allocating gigabytes.
_MAX_HISTOGRAM_BINS = 1 << 20


@dataclasses.dataclass(frozen=True, eq=False)
class DecodedInstance:
    """One decoded object instance.

    Attributes:
        category_index: 0-based category (detection channel) index.
        mask: (H, W) bool mask at the resolution of the decoded maps.
        score: confidence in [0, 1] for detection maps in [0, 1] (see the module docstring:
            mean detection value in the mask, times the tag-compactness fraction by default).
    """

    category_index: int
    mask: np.ndarray
    score: float

    @property
    def area(self) -> int:
        """Number of mask pixels."""
        return int(np.count_nonzero(self.mask))


# ----------------------------------------------------------------------------- validation


def _check_positive(name: str, value: float | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")


# ----------------------------------------------------------------------------- identifiers


def _histogram_seeds(
    values: np.ndarray, bandwidth: float, bin_width: float, max_seeds: int, min_mass: float
) -> np.ndarray:
    """Identifier seeds of 1-D tags by NMS on the box-smoothed histogram.

    Args:
        values: (N,) float64 foreground tags.

    Returns:
        (S,) float64 seed tag values (bin centres), densest first; only seeds whose smoothed
        count is >= min_mass (the exact test on the raw tags comes later).
    """
    low, high = float(values.min()), float(values.max())
    if (high - low) / bin_width >= _MAX_HISTOGRAM_BINS - 1:
        bin_width = (high - low) / (_MAX_HISTOGRAM_BINS - 2)
    bins = np.floor(values / bin_width).astype(np.int64)
    first_bin = int(bins.min())
    counts = np.bincount(bins - first_bin).astype(np.float64)
    half_bins = 0.5 * bandwidth / bin_width  # b / 2 in bins
    window = max(1, int(round(bandwidth / bin_width)))  # NMS window: +-b
    # Peak mass: the tags in the bins within +-b/2 (box sum by cumulative sums).
    reach = int(round(half_bins))
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    index = np.arange(len(counts))
    mass = cumulative[np.minimum(index + reach + 1, len(counts))] - cumulative[
        np.maximum(index - reach, 0)
    ]
    density = _smooth_triangular(counts, half_bins)
    local_max = maximum_filter1d(density, size=2 * window + 1, mode="constant", cval=0.0)
    candidates = np.flatnonzero((density >= local_max) & (density > 0) & (mass >= min_mass))
    # Densest first, then lowest bin (stable), greedy suppression within the window.
    candidates = candidates[np.argsort(-density[candidates], kind="stable")]
    accepted: list[int] = []
    for candidate in candidates:
        if all(abs(candidate - kept) > window for kept in accepted):
            accepted.append(int(candidate))
            if len(accepted) >= max_seeds:
                break
    return (np.asarray(accepted, np.float64) + first_bin + 0.5) * bin_width


def _smooth_triangular(counts: np.ndarray, half_bins: float) -> np.ndarray:
    """Histogram smoothed with the triangular kernel max(0, 1 - |k| / half_bins) over bins k.

    A box kernel would give a single tag value a flat plateau b wide, whose first bin (not the
    value) would win the NMS; the triangle peaks at the value.
    """
    reach = int(np.floor(half_bins))
    offsets = np.arange(-reach, reach + 1)
    kernel = np.maximum(1.0 - np.abs(offsets) / max(half_bins, 1e-12), 0.0)
    if reach == 0:
        return counts.copy()
    return convolve1d(counts, kernel, mode="constant", cval=0.0)


def _density_seeds(
    vectors: np.ndarray,
    bandwidth: float,
    max_seeds: int,
    min_mass: float,
    density_samples: int,
) -> np.ndarray:
    """Identifier seeds of D-dimensional tags by greedy NMS on the sample density.

    Args:
        vectors: (N, D) float64 foreground tags.

    Returns:
        (S, D) float64 seeds (tags of sampled pixels), densest first.
    """
    num_pixels = len(vectors)
    if num_pixels > density_samples:
        # Evenly spaced pixels in raster order: deterministic and spatially uniform.
        sample_index = np.linspace(0, num_pixels - 1, density_samples).round().astype(np.int64)
        samples = vectors[sample_index]
        scale = num_pixels / density_samples
        # The subsampled density is an estimate: keep seeds down to half the minimum mass
        # and let the exact count on all tags decide.
        threshold = 0.5 * min_mass
    else:
        samples, scale, threshold = vectors, 1.0, min_mass
    # float32 pairwise squared distances (M x M) via |a|^2 + |b|^2 - 2ab: the M^2 work
    # dominates this decoder's cost, and float32 halves it. Centring first keeps the
    # cancellation error relative to the tags' spread, not to their magnitude.
    samples32 = (samples - samples.mean(axis=0)).astype(np.float32)
    squared = np.sum(samples32 * samples32, axis=1)
    work = samples32 @ samples32.T  # M x M, reused in place below to bound memory traffic
    work *= np.float32(-2.0)
    work += squared[:, None]
    work += squared[None, :]
    np.maximum(work, np.float32(0.0), out=work)  # squared distances
    half = np.float32(0.5 * bandwidth)
    mass = np.count_nonzero(work <= half * half, axis=1) * scale
    within_window = work <= np.float32(bandwidth**2)
    # Triangular kernel max(0, 1 - d / (b/2)): peaked, so a tight cluster's densest sample is
    # its centre (the box count is flat there).
    np.sqrt(work, out=work)
    work *= -1.0 / half
    work += np.float32(1.0)
    np.maximum(work, np.float32(0.0), out=work)
    density = work.sum(axis=1)
    # Densities are > 0 (a sample counts itself with weight 1), so zeroing the ones outside
    # the window leaves the window maximum.
    np.multiply(within_window, density[None, :], out=work)
    local_max = work.max(axis=1)
    candidates = np.flatnonzero((density >= local_max) & (mass >= threshold))
    candidates = candidates[np.argsort(-density[candidates], kind="stable")]
    accepted: list[int] = []
    for candidate in candidates:
        if not accepted or not within_window[candidate, accepted].any():
            accepted.append(int(candidate))
            if len(accepted) >= max_seeds:
                break
    return samples[accepted]


def _refine_seeds(
    vectors: np.ndarray, seeds: np.ndarray, bandwidth: float, min_mass: float
) -> np.ndarray:
    """Mean of the tags within b/2 of each seed; seeds holding < min_mass tags are dropped.

    Args:
        vectors: (N, D) float64 foreground tags. seeds: (S, D) float64.

    Returns:
        (S', D) float64 identifiers, in seed order.
    """
    identifiers = []
    radius2 = (0.5 * bandwidth) ** 2
    for seed in seeds:
        near = np.sum((vectors - seed) ** 2, axis=1) <= radius2
        if np.count_nonzero(near) >= min_mass:  # min_mass >= 1: the mean is defined
            identifiers.append(vectors[near].mean(axis=0))
    return np.asarray(identifiers, np.float64).reshape(-1, vectors.shape[1])


def _nearest_identifier(vectors: np.ndarray, identifiers: np.ndarray) -> tuple[np.ndarray, ...]:
    """(N,) index of the nearest identifier (first on ties) and (N,) squared distance."""
    best = np.zeros(len(vectors), np.int64)
    best_distance2 = np.full(len(vectors), np.inf)
    for index, identifier in enumerate(identifiers):
        distance2 = np.sum((vectors - identifier) ** 2, axis=1)
        closer = distance2 < best_distance2
        best[closer] = index
        best_distance2[closer] = distance2[closer]
    return best, best_distance2


# ----------------------------------------------------------------------------- decoder


def decode_instances(
    detection: np.ndarray,
    tags: np.ndarray,
    *,
    detection_threshold: float = 0.5,
    bandwidth: float = 0.5,
    method: str = "auto",
    bin_width: float | None = None,
    min_peak_pixels: int = 10,
    min_peak_fraction: float = 0.02,
    min_instance_pixels: int = 10,
    max_instances: int = 30,
    max_tag_distance: float | None = None,
    density_samples: int = 1024,
    compactness_score: bool = True,
) -> list[DecodedInstance]:
    """Decodes one image's detection and tag maps into instance masks (see the module docstring).

    Args:
        detection: (H, W, C) per-category foreground maps (any float dtype).
        tags: (H, W, C, D) tags, or (H, W, C) for D = 1, at the same resolution.
        detection_threshold: a pixel is foreground of category c if its detection value is
            strictly above this. 0.5 is the natural cut for the 0/1 MSE target.
        bandwidth: b, in tag units. Identifiers closer than b are merged (NMS window +-b) and
            the density / identifier means use the tags within b / 2. The pose decoder accepts
            a joint within tag distance 1.0 of a person, and the push term exp(-d^2 / 2)
            separates instances by about 1 or more, so b = 0.5 keeps instances 0.5 apart
            distinct while a within-instance spread up to about +-0.25 still forms one peak.
        method: "auto" (histogram for D = 1, density for D > 1), "histogram" (D = 1 only) or
            "density" (any D).
        bin_width: histogram bin width in tag units (histogram method); None = b / 8, so the
            smoothing window and the NMS window are 4 and 8 bins on each side.
        min_peak_pixels: an identifier needs at least this many tags within b / 2 ...
        min_peak_fraction: ... and at least this fraction of the category's foreground
            pixels. The local-maximum rule already keeps a real peak's tail (and, in the
            tests, the interpolated tags along touching instances' shared boundary) from
            seeding instances; these two thresholds guard against small clusters of stray
            tags farther than b from every real peak: with the defaults a cluster needs
            10 pixels and 2 % of the category's foreground to become an instance, otherwise
            its pixels join the nearest identifier (or stay unassigned, see
            max_tag_distance).
        min_instance_pixels: instances with fewer pixels after assignment are dropped.
        max_instances: at most this many identifiers per category (densest first).
        max_tag_distance: pixels farther than this (Euclidean, tag units) from every
            identifier are left unassigned; None assigns every foreground pixel.
        density_samples: the density method evaluates the density on at most this many
            foreground tags (evenly spaced in raster order); cost grows with its square.
        compactness_score: multiply the mean detection score by the fraction of the
            instance's tags within b / 2 of its identifier.

    Returns:
        List of ``DecodedInstance`` (masks (H, W) bool), sorted by score descending.

    Raises:
        ValueError: on inconsistent shapes, non-finite values or invalid options.
    """
    detection, tags = validate_maps(detection, tags, name="detection", axes="H, W, C")
    height, width, num_categories = detection.shape
    tag_dim = tags.shape[3]
    if method not in DECODE_METHODS:
        raise ValueError(f"method must be one of {DECODE_METHODS}, got {method!r}.")
    if method == "auto":
        method = "histogram" if tag_dim == 1 else "density"
    if method == "histogram" and tag_dim != 1:
        raise ValueError(
            f"method='histogram' needs 1-D tags, got D = {tag_dim}; use method='density'."
        )
    _check_positive("bandwidth", bandwidth)
    _check_positive("bin_width", bin_width, allow_none=True)
    _check_positive("max_tag_distance", max_tag_distance, allow_none=True)
    if not 0.0 <= min_peak_fraction <= 1.0:
        raise ValueError(f"min_peak_fraction must be in [0, 1], got {min_peak_fraction}.")
    for name, value, minimum in (
        ("min_peak_pixels", min_peak_pixels, 1),
        ("min_instance_pixels", min_instance_pixels, 1),
        ("max_instances", max_instances, 1),
        ("density_samples", density_samples, 2),
    ):
        if int(value) != value or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    bin_width = bandwidth / 8.0 if bin_width is None else float(bin_width)

    foreground = detection > detection_threshold  # (H, W, C)
    flat_detection = detection.reshape(height * width, num_categories)
    flat_tags = tags.reshape(height * width, num_categories, tag_dim)
    results: list[tuple[float, int, int, DecodedInstance]] = []
    for category in np.flatnonzero(foreground.reshape(-1, num_categories).any(axis=0)):
        pixels = np.flatnonzero(foreground[:, :, category])
        vectors = flat_tags[pixels, category, :].astype(np.float64)
        min_mass = max(float(min_peak_pixels), min_peak_fraction * len(pixels))
        if method == "histogram":
            seeds = _histogram_seeds(
                vectors[:, 0], bandwidth, bin_width, max_instances, min_mass
            )[:, None]
        else:
            seeds = _density_seeds(vectors, bandwidth, max_instances, min_mass, density_samples)
        identifiers = _refine_seeds(vectors, seeds, bandwidth, min_mass)[:max_instances]
        if len(identifiers) == 0:
            continue
        owner, distance2 = _nearest_identifier(vectors, identifiers)
        if max_tag_distance is not None:
            owner = np.where(distance2 <= max_tag_distance**2, owner, -1)
        assigned = owner >= 0
        sizes = np.bincount(owner[assigned], minlength=len(identifiers))
        detection_sums = np.bincount(
            owner[assigned], weights=flat_detection[pixels[assigned], category],
            minlength=len(identifiers),
        )
        compact = assigned & (distance2 <= (0.5 * bandwidth) ** 2)
        compact_counts = np.bincount(owner[compact], minlength=len(identifiers))
        for identifier_index in np.flatnonzero(sizes >= min_instance_pixels):
            mask = np.zeros(height * width, bool)
            mask[pixels[owner == identifier_index]] = True
            size = sizes[identifier_index]
            score = detection_sums[identifier_index] / size
            if compactness_score:
                score *= compact_counts[identifier_index] / size
            instance = DecodedInstance(
                category_index=int(category),
                mask=mask.reshape(height, width),
                score=float(score),
            )
            results.append((-float(score), int(category), int(identifier_index), instance))
    results.sort(key=lambda item: item[:3])
    return [item[3] for item in results]


# ----------------------------------------------------------------------------- multi-scale


def resize_instance_maps(
    detection: np.ndarray, tags: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear resize of detection and tag maps to (H, W), half-pixel centres.

    Output pixel x samples the input at ``(x + 0.5) * w / W - 0.5`` (the package's pixel-centre
    convention, as ``tf.image.resize`` and ``cv2.INTER_LINEAR``; borders replicate), via
    ``codec.fusion.resize_maps``. Bring the network's stride-4 maps of a test scale to the
    image size with it (after undoing any padding / affine), then call ``decode_instances``
    so every scale's proposals live at one resolution for ``merge_scales``.

    Args:
        detection: (h, w, C) float maps.
        tags: (h, w, C, D) or (h, w, C) float tags.
        size: (H, W) target size.

    Returns:
        detection (H, W, C) float32 and tags (H, W, C, D) float32 (a 3-D tags input gets D = 1).
    """
    detection, tags = validate_maps(detection, tags, name="detection", axes="H, W, C")
    return resize_maps(detection, size), resize_maps(tags, size)


def _mask_iou_matrix(masks: Sequence[np.ndarray]) -> np.ndarray:
    """(n, n) mask IoU of n (H, W) bool masks via pycocotools RLEs."""
    rles = [mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))) for mask in masks]
    return np.asarray(mask_utils.iou(rles, rles, [0] * len(rles)), np.float64).reshape(
        len(rles), len(rles)
    )


def merge_scales(
    per_scale: Sequence[Sequence[DecodedInstance]], iou_threshold: float = 0.5
) -> list[DecodedInstance]:
    """Merges the proposals of several test scales by mask-IoU NMS within each category.

    Paper Sec. 4.2: proposals are generated at each scale (x0.5, x1, x1.5) and overlapping ones
    removed by non-maximum suppression. Proposals are visited by score, highest first (ties:
    earlier scale, then earlier in its list); one is kept unless its mask IoU with a kept
    proposal of the same category is > ``iou_threshold``. Masks of different categories never
    suppress each other. Works equally for one list (NMS within a single scale).

    Args:
        per_scale: one sequence of ``DecodedInstance`` per scale, all masks (H, W) at the same
            resolution (resize each scale's maps with ``resize_instance_maps`` first).
        iou_threshold: proposals overlapping a kept one by more than this are removed.

    Returns:
        The kept instances, sorted by score descending.

    Raises:
        ValueError: when masks differ in shape or iou_threshold is outside [0, 1].
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}.")
    proposals = [instance for scale in per_scale for instance in scale]
    shapes = {np.shape(instance.mask) for instance in proposals}
    if len(shapes) > 1:
        raise ValueError(
            f"all masks must have one shape (resize every scale to the image first), got "
            f"{sorted(shapes)}."
        )
    order = sorted(range(len(proposals)), key=lambda index: -proposals[index].score)
    kept: list[int] = []
    for category in sorted({instance.category_index for instance in proposals}):
        members = [index for index in order if proposals[index].category_index == category]
        iou = _mask_iou_matrix([np.asarray(proposals[index].mask, bool) for index in members])
        survivors: list[int] = []
        for position in range(len(members)):
            if not survivors or iou[position, survivors].max() <= iou_threshold:
                survivors.append(position)
        kept.extend(members[position] for position in survivors)
    kept.sort(key=lambda index: (-proposals[index].score, index))
    return [proposals[index] for index in kept]
