"""Single-person refinement of grouped poses at test time (paper Sec. 4.1, Table 4).

The paper refines every person found by the multi-person network with a separately trained
single-person hourglass (Table 4: COCO test-dev AP 0.566 -> 0.628 single-scale, 0.630 -> 0.655
multi-scale). The official training code does not have this step; the official TF1 demo
(pose-ae-demo ``main.py``, ``refinement``) does, and ``PoseRefiner`` follows it:

1. **Crop.** Box of the person's detected joints (score > ``missing_score``, the demo: > 0),
   square of side ``max(w, h, 60) * 1.3`` around its centre (``crops.person_crop_affine``).
2. **Network.** The single-person network on the crop at every size of ``crop_sizes`` (demo:
   512, 400, 300) and, with ``flip``, on its mirror image; the mirrored heatmaps are flipped
   back and re-indexed with the dataset's flip index and averaged with the plain ones. The
   crops of all people of the image go through the network in one batch per crop size (the
   mirrors in the same batch).
3. **Fusion.** Each size's heatmaps are resized (bilinear, half-pixel centres; exact, since all
   sizes cover the same square) to the output grid of the largest size and averaged.
4. **Peaks.** Per joint the maximum of the fused map (first in row-major order on ties), the
   sub-pixel ``adjust`` of ``codec.group_poses`` ('official': a quarter pixel towards the larger
   neighbour, -0.25 on ties, neighbours clamped to the map, then +0.5, as the demo's
   ``adjustKeypoint``), back to crop pixels (``x = stride * x_corner - 0.5``) and to the image
   (``crops.uncrop_points``). With the pixel-centre convention this is exactly the demo's
   ``kpt_affine(adjust * 4, inv(get_transform))``.
5. **Replacement** (demo): a joint takes the refined (x, y, value) when it was missing (score
   <= ``missing_score``; the demo: score == 0) or when the refined value exceeds ``threshold``
   (0.15); otherwise it keeps its position and score.
6. **Agreement check** (demo): a detected joint *agrees* when its refined position (whether
   or not the joint is replaced) lies within ``agree_radius`` image pixels of the original
   (the demo: squared distance < 100, i.e. 10 px). When fewer than ``min_agree_fraction``
   (0.2) of the person's detected joints agree, the refinement is rejected and the person keeps
   its original pose entirely (missing joints stay missing). That is, the original pose is
   kept when more than 80 % of its joints move implausibly far. ``agree_radius_scale`` (default
   0, off) makes the radius ``max(agree_radius, agree_radius_scale * crop side)``, so that it
   grows with the person instead of being fixed in pixels.
7. **Person score** (``person_score``): 'keep' (the demo: the decoder's score, the mean joint
   score before any refinement, unchanged) or 'mean' (mean over the K refined joint scores;
   people are then re-sorted by score, descending).

Deviations from the demo:

* Heatmap values. The demo resizes the heatmaps with ``scipy.misc.imresize``, which min-max
  normalises every channel to [0, 1] (and quantises it to 1/255) before resizing, so its
  refined "value" is close to 1 at almost every peak and the 0.15 threshold almost never
  rejects a joint. The default here (``heatmap_normalization='none'``) uses the network's
  averaged heatmap values, which is what the threshold was meant to test;
  ``heatmap_normalization='minmax'`` reproduces the demo (per person, joint and crop size,
  after flip averaging, before the size average; maps whose maximum is <= 0 become 0).
* Crop sizes must be multiples of the network's input multiple (64 for a 4-level hourglass),
  so the demo's 400 and 300 are not possible; default one size, 256 (``load_refiner`` takes
  the training run's crop size, crop rule, ``eval.flip`` and ``codec.adjust`` instead);
  ``(512, 384, 320)`` is a close multi-size set.
* Crops are one bilinear warp (``crops.crop_image``), not the demo's integer cut + imresize.
* People without any detected joint are returned unchanged (the demo never sees them: it
  drops them before refinement).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

import numpy as np
from absl import logging

from associative_embedding.codec import resize_maps
from associative_embedding.codec.decode import to_corner_coordinates
from associative_embedding.core.keypoint_info import KeypointInfo
from associative_embedding.core.run_dir import (
    config_task,
    num_detection_channels,
    read_training_config,
)
from associative_embedding.modeling.loading import Predictor, load_predictor
from associative_embedding.tasks.refinement import crops
from associative_embedding.tasks.refinement.export import read_refinement_export_options

__all__ = [
    "ADJUST_MODES",
    "DEFAULT_AGREE_RADIUS",
    "DEFAULT_CROP_SIZES",
    "DEFAULT_MIN_AGREE_FRACTION",
    "DEFAULT_THRESHOLD",
    "HEATMAP_NORMALIZATIONS",
    "PERSON_SCORES",
    "PoseRefiner",
    "RefinementStats",
    "load_refiner",
    "locate_peaks",
    "parse_crop_sizes",
    "training_refiner_options",
]

ADJUST_MODES = ("official", "symmetric", "taylor", "none")
HEATMAP_NORMALIZATIONS = ("none", "minmax")
PERSON_SCORES = ("keep", "mean")

DEFAULT_CROP_SIZES = (256,)
DEFAULT_THRESHOLD = 0.15  # demo: `val > 0.15`
DEFAULT_AGREE_RADIUS = 10.0  # demo: squared distance < 100 image pixels
DEFAULT_MIN_AGREE_FRACTION = 0.2  # demo: `np.mean(match_keypoint) < 0.2` -> keep the original


@dataclasses.dataclass
class RefinementStats:
    """Counts accumulated over ``PoseRefiner.refine`` calls.

    Attributes:
        images: calls.
        people: people cropped and refined (people without a detected joint are not).
        reverted: of those, people whose refinement the agreement check rejected.
        joints_replaced: detected joints moved to the refined position (value > threshold).
        joints_filled: missing joints filled from the refinement heatmaps.
    """

    images: int = 0
    people: int = 0
    reverted: int = 0
    joints_replaced: int = 0
    joints_filled: int = 0

    def describe(self) -> str:
        """One line for logs."""
        return (
            f"refined {self.people} people in {self.images} images: {self.reverted} kept their "
            f"original pose (agreement check), {self.joints_replaced} detected joints replaced, "
            f"{self.joints_filled} missing joints filled"
        )


def parse_crop_sizes(values: Iterable[str | int] | str) -> tuple[int, ...]:
    """'192,256,320' or ['256'] -> (192, 256, 320) / (256,).

    Raises:
        ValueError: on an empty list or a size that is not a positive integer.
    """
    if isinstance(values, str):
        values = values.split(",")
    texts = [str(value).strip() for value in values if str(value).strip()]
    try:
        sizes = tuple(int(text) for text in texts)
    except ValueError:
        raise ValueError(f"crop sizes must be positive integers, got {texts!r}.") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"crop sizes must be positive integers, got {texts!r}.")
    return sizes


def locate_peaks(heatmaps: np.ndarray, adjust: str = "official") -> np.ndarray:
    """Per-joint maximum of heatmaps with a sub-pixel adjust.

    Args:
        heatmaps: (N, h, w, K) maps.
        adjust: 'official' (a quarter pixel towards the strictly larger neighbour on each axis,
            -0.25 on ties, as ``codec.group_poses`` and the demo's ``adjustKeypoint``),
            'symmetric' (no move on ties), 'taylor' (log-heatmap Taylor offset, DARK, for
            sub-pixel-trained models) or 'none'. Neighbours are clamped to the map.

    Returns:
        (N, K, 3) float32 (x, y, value): x, y in heatmap *corner* coordinates (integer peak +
        adjust + 0.5, pixel j spans [j, j + 1)) like the decoder's, value the map's maximum.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be (N, h, w, K), got shape {heatmaps.shape}.")
    if adjust not in ADJUST_MODES:
        raise ValueError(f"adjust must be one of {ADJUST_MODES}, got {adjust!r}.")
    count, height, width, num_joints = heatmaps.shape
    flat = heatmaps.reshape(count, height * width, num_joints)
    best = np.argmax(flat, axis=1)  # (N, K): first maximum in row-major order
    values = np.take_along_axis(flat, best[:, None, :], axis=1)[:, 0]
    ys, xs = np.divmod(best, width)
    # The decoder's adjust on the N * K maps side by side (channel n * K + k).
    maps = heatmaps.transpose(1, 2, 0, 3).reshape(height, width, count * num_joints)
    x, y = to_corner_coordinates(
        maps, ys.reshape(-1), xs.reshape(-1), np.arange(count * num_joints),
        False if adjust == "none" else adjust,
    )
    return np.stack(
        [x.reshape(count, num_joints), y.reshape(count, num_joints), values.astype(np.float32)],
        axis=-1,
    )


def _as_float_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> float32 in [0, 1]; float images are taken as already in [0, 1]."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}.")
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    return image.astype(np.float32, copy=False)


class PoseRefiner:
    """Refines grouped poses with a single-person network (see the module docstring).

    Example:
        >>> refiner = load_refiner("runs/coco_refine", COCO, crop_sizes=(256,), flip=True)
        >>> poses, scores = refiner(image, poses, scores)  # image (H, W, 3) uint8 RGB
    """

    def __init__(
        self,
        predictor: Predictor,
        keypoint_info: KeypointInfo,
        *,
        crop_sizes: Sequence[int] = DEFAULT_CROP_SIZES,
        flip: bool = True,
        threshold: float = DEFAULT_THRESHOLD,
        min_side: float = crops.DEFAULT_MIN_SIDE,
        margin: float = crops.DEFAULT_MARGIN,
        missing_score: float = 0.0,
        agree_radius: float = DEFAULT_AGREE_RADIUS,
        agree_radius_scale: float = 0.0,
        min_agree_fraction: float = DEFAULT_MIN_AGREE_FRACTION,
        adjust: str = "official",
        heatmap_normalization: str = "none",
        person_score: str = "keep",
        max_batch: int | None = None,
    ) -> None:
        """Creates the refiner.

        Args:
            predictor: the single-person network (``modeling.loading.load_predictor`` of a
                refinement run): crops (B, S, S, 3) in [0, 1] -> (B, S / stride, S / stride, K)
                heatmaps. A network with more channels (K * (1 + D), a multi-person model) has
                its first K (the heatmaps) used, with a warning.
            keypoint_info: the dataset (K, flip index).
            crop_sizes: crop sides S in pixels; each a multiple of ``predictor.input_multiple``.
                Several sizes are averaged on the grid of the largest.
            flip: also run the mirrored crops and average (flip test).
            threshold: a detected joint takes the refined position when the refined heatmap
                value exceeds this (demo: 0.15).
            min_side, margin: crop side = max(w, h, min_side) * margin (demo: 60, 1.3).
            missing_score: joints scoring <= this are missing: they are always replaced and
                they do not shape the box or the agreement check (demo: 0).
            agree_radius: image pixels within which a refined joint agrees with the original
                (demo: 10).
            agree_radius_scale: if > 0, the radius is at least this times the crop side.
            min_agree_fraction: the refinement of a person is rejected when fewer than this
                fraction of its detected joints agree (demo: 0.2); 0 disables the check.
            adjust: sub-pixel rule of ``locate_peaks``.
            heatmap_normalization: 'none' (network values) or 'minmax' (the demo's per-channel
                normalisation, see the module docstring).
            person_score: 'keep' (demo) or 'mean' (mean refined joint score; re-sorts people).
            max_batch: at most this many crops per network call (None: all people of an image,
                and their mirrors, in one call per crop size).

        Raises:
            ValueError: on invalid options.
        """
        self.crop_sizes = tuple(int(size) for size in crop_sizes)
        if not self.crop_sizes or min(self.crop_sizes) < 1:
            raise ValueError(f"crop_sizes must be positive integers, got {crop_sizes!r}.")
        multiple = int(getattr(predictor, "input_multiple", 1))
        unusable = [size for size in self.crop_sizes if size % multiple]
        if unusable:
            raise ValueError(
                f"crop sizes {unusable} are not multiples of {multiple}, the input multiple of "
                f"{getattr(predictor, 'source', 'the refinement network')}."
            )
        if adjust not in ADJUST_MODES:
            raise ValueError(f"adjust must be one of {ADJUST_MODES}, got {adjust!r}.")
        if heatmap_normalization not in HEATMAP_NORMALIZATIONS:
            raise ValueError(
                f"heatmap_normalization must be one of {HEATMAP_NORMALIZATIONS}, got "
                f"{heatmap_normalization!r}."
            )
        if person_score not in PERSON_SCORES:
            raise ValueError(f"person_score must be one of {PERSON_SCORES}, got {person_score!r}.")
        if min_side < 0 or margin <= 0:
            raise ValueError(f"need min_side >= 0 and margin > 0, got {min_side}, {margin}.")
        if agree_radius < 0 or agree_radius_scale < 0 or not 0 <= min_agree_fraction <= 1:
            raise ValueError(
                "need agree_radius >= 0, agree_radius_scale >= 0 and 0 <= min_agree_fraction "
                f"<= 1, got {agree_radius}, {agree_radius_scale}, {min_agree_fraction}."
            )
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1 or None, got {max_batch}.")
        self.predictor = predictor
        self.keypoint_info = keypoint_info
        self.flip = bool(flip)
        self.threshold = float(threshold)
        self.min_side = float(min_side)
        self.margin = float(margin)
        self.missing_score = float(missing_score)
        self.agree_radius = float(agree_radius)
        self.agree_radius_scale = float(agree_radius_scale)
        self.min_agree_fraction = float(min_agree_fraction)
        self.adjust = adjust
        self.heatmap_normalization = heatmap_normalization
        self.person_score = person_score
        self.max_batch = max_batch
        self.stats = RefinementStats()
        self._flip_index = np.asarray(keypoint_info.flip_index, dtype=np.int64)
        self._warned_channels = False

    @property
    def num_joints(self) -> int:
        return self.keypoint_info.num_joints

    @property
    def _source(self) -> str:
        return str(getattr(self.predictor, "source", "the refinement network"))

    # ------------------------------------------------------------------ network on crops

    def crop_heatmaps(
        self, image: np.ndarray, boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Fused single-person heatmaps of person crops (steps 1-3 of the module docstring).

        Args:
            image: (H, W, 3) uint8 RGB, or float in [0, 1].
            boxes: (N, 4) (x, y, w, h) person boxes in image pixels, N >= 1.

        Returns:
            heatmaps: (N, R, R, K) float32 on the output grid of the largest crop size,
                averaged over crop sizes (and flips).
            crop_from_image: (N, 3, 3) float64 affines of the largest crop size.
            stride: crop pixels per heatmap pixel.
        """
        image = _as_float_image(image)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        count = boxes.shape[0]
        reference_size = max(self.crop_sizes)
        fused, stride, reference_affines = None, None, None
        for crop_size in self.crop_sizes:
            affines = np.stack([
                crops.person_crop_affine(
                    box, crop_size, min_side=self.min_side, margin=self.margin
                )
                for box in boxes
            ])
            batch = np.stack([crops.crop_image(image, affine, crop_size) for affine in affines])
            if self.flip:
                batch = np.concatenate([batch, batch[:, :, ::-1]], axis=0)
            heatmaps, size_stride = self._run(batch, crop_size)
            if self.flip:
                # Columns back (exact: S is a multiple of the stride), joints re-indexed.
                mirrored = heatmaps[count:, :, ::-1][..., self._flip_index]
                heatmaps = (heatmaps[:count] + mirrored) * np.float32(0.5)
            if self.heatmap_normalization == "minmax":
                heatmaps = _minmax_normalize(heatmaps)
            if stride is not None and size_stride != stride:
                raise ValueError(
                    f"{self._source}: output stride {size_stride} at crop size "
                    f"{crop_size} differs from {stride} at the other sizes."
                )
            stride = size_stride
            if crop_size == reference_size:
                reference_affines = affines
            if fused is None:
                reference_hw = reference_size // size_stride
                fused = np.zeros((count, reference_hw, reference_hw, self.num_joints), np.float64)
            if heatmaps.shape[1] != fused.shape[1]:
                # (N, h, w, K) -> (h, w, N, K): one resize for all people.
                heatmaps = resize_maps(heatmaps.transpose(1, 2, 0, 3), fused.shape[1:3])
                heatmaps = heatmaps.transpose(2, 0, 1, 3)
            fused += heatmaps
        fused = (fused / len(self.crop_sizes)).astype(np.float32)
        return fused, reference_affines, stride

    def _run(self, batch: np.ndarray, crop_size: int) -> tuple[np.ndarray, int]:
        """The network on (B, S, S, 3) crops -> (B, h, w, K) heatmaps and the stride."""
        step = self.max_batch or batch.shape[0]
        outputs = np.concatenate(
            [self.predictor(batch[start : start + step]) for start in range(0, len(batch), step)]
        )
        source = self._source
        if outputs.ndim != 4 or outputs.shape[1] != outputs.shape[2]:
            raise ValueError(
                f"{source}: square crops {batch.shape[1:3]} gave outputs {outputs.shape}; "
                "expected (B, h, h, K)."
            )
        stride = crop_size // outputs.shape[1]
        if stride * outputs.shape[1] != crop_size:
            raise ValueError(
                f"{source}: crop size {crop_size} is not a multiple of its output size "
                f"{outputs.shape[1]}."
            )
        channels = outputs.shape[-1]
        if channels % self.num_joints:
            raise ValueError(
                f"{source}: {channels} output channels do not fit K = {self.num_joints} joints."
            )
        if channels != self.num_joints and not self._warned_channels:
            logging.warning(
                "%s has %d output channels, not K = %d: not a heatmap-only refinement network; "
                "its first %d channels (the heatmaps) are used.",
                source, channels, self.num_joints, self.num_joints,
            )
            self._warned_channels = True
        return outputs[..., : self.num_joints].astype(np.float32, copy=False), stride

    # ------------------------------------------------------------------ refinement

    def refine(
        self, image: np.ndarray, poses: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Refines one image's people (steps 4-7 of the module docstring).

        Args:
            image: (H, W, 3) uint8 RGB, or float in [0, 1].
            poses: (P, K, 3) (x, y, score) in image pixels (e.g. ``PoseEstimator``'s).
            scores: (P,) person scores.

        Returns:
            poses (P, K, 3) and scores (P,) float32; with ``person_score='mean'`` re-sorted by
            score, descending (stable).

        Raises:
            ValueError: on malformed inputs or network outputs.
        """
        poses = np.asarray(poses, dtype=np.float32)
        scores = np.asarray(scores, dtype=np.float32)
        if poses.ndim != 3 or poses.shape[1:] != (self.num_joints, 3):
            raise ValueError(
                f"poses must be (P, {self.num_joints}, 3) for {self.keypoint_info.name}, got "
                f"{poses.shape}."
            )
        if scores.shape != poses.shape[:1]:
            raise ValueError(f"scores must be ({poses.shape[0]},), got {scores.shape}.")
        refined, refined_scores = poses.copy(), scores.copy()
        self.stats.images += 1
        detected = (poses[:, :, 2] > self.missing_score) & np.isfinite(poses[:, :, :2]).all(-1)
        people = np.flatnonzero(detected.any(axis=1))
        if len(people):
            boxes = np.stack([crops.keypoint_box(poses[p], self.missing_score) for p in people])
            heatmaps, crop_from_images, stride = self.crop_heatmaps(image, boxes)
            peaks = locate_peaks(heatmaps, self.adjust)  # (N, K, 3), heatmap corners
            for index, person in enumerate(people):
                crop_xy = stride * peaks[index, :, :2].astype(np.float64) - 0.5
                image_xy = crops.uncrop_points(crop_xy, crop_from_images[index])
                side = crops.crop_side(boxes[index], min_side=self.min_side, margin=self.margin)
                self._update_person(
                    refined[person], detected[person], image_xy, peaks[index, :, 2], side
                )
        if self.person_score == "mean":
            refined_scores = refined[:, :, 2].mean(axis=1, dtype=np.float64).astype(np.float32)
            ranking = np.argsort(-refined_scores, kind="stable")
            refined, refined_scores = refined[ranking], refined_scores[ranking]
        return refined, refined_scores

    __call__ = refine

    def _update_person(
        self,
        pose: np.ndarray,
        detected: np.ndarray,
        refined_xy: np.ndarray,
        refined_values: np.ndarray,
        side: float,
    ) -> None:
        """Steps 5 and 6 for one person, in place on ``pose`` (K, 3)."""
        self.stats.people += 1
        radius = max(self.agree_radius, self.agree_radius_scale * side)
        distances = np.hypot(*(refined_xy - pose[:, :2].astype(np.float64)).T)
        agree = distances[detected] < radius
        if agree.size and agree.mean() < self.min_agree_fraction:
            self.stats.reverted += 1
            return
        replace = ~detected | (refined_values > self.threshold)
        pose[replace, :2] = refined_xy[replace]
        pose[replace, 2] = refined_values[replace]
        self.stats.joints_filled += int((~detected & (refined_values > self.missing_score)).sum())
        self.stats.joints_replaced += int((replace & detected).sum())


def _minmax_normalize(heatmaps: np.ndarray) -> np.ndarray:
    """(N, h, w, K) -> each (person, joint) map scaled to [0, 1] by its min and max; maps whose
    maximum is <= 0 become 0 (the demo's ``scipy.misc.imresize`` behaviour, without the 8-bit
    quantisation)."""
    low = heatmaps.min(axis=(1, 2), keepdims=True)
    high = heatmaps.max(axis=(1, 2), keepdims=True)
    span = high - low
    scaled = np.where(span > 0, (heatmaps - low) / np.where(span > 0, span, 1.0), 1.0)
    return np.where(high > 0, scaled, 0.0).astype(np.float32)


def load_refiner(
    path: str | os.PathLike, keypoint_info: KeypointInfo, **options
) -> PoseRefiner:
    """A ``PoseRefiner`` over a saved single-person network.

    For a refinement training run (a work dir or checkpoint prefix), the refiner's defaults
    come from its config (``training_refiner_options``): the training crop size, crop rule,
    ``eval.flip`` and ``codec.adjust``; ``options`` override them.

    Args:
        path: a refinement training work dir (its best checkpoint), a checkpoint prefix
            (WORKDIR/checkpoints/ckpt-N), a '.keras' file or a SavedModel directory
            (``modeling.loading.load_predictor``).
        keypoint_info: the dataset of the poses to refine.
        **options: ``PoseRefiner`` keyword arguments.

    Raises:
        FileNotFoundError: naming the path when it does not exist.
        ValueError: when the model or the options are unusable, or when a training run's
            config is a segmentation run or has another joint set.
    """
    path = os.fspath(path)
    defaults = training_refiner_options(path, keypoint_info)
    return PoseRefiner(load_predictor(path), keypoint_info, **{**defaults, **options})


def training_refiner_options(path: str | os.PathLike, keypoint_info: KeypointInfo) -> dict:
    """``PoseRefiner`` defaults of a training run, checked against the poses' joints.

    Args:
        path: a training work dir or checkpoint prefix (anything else gives {}).
        keypoint_info: the dataset of the poses to refine.

    Returns:
        For a refinement run: crop_sizes ((refine.crop_size or codec.input_size,)),
        min_side, margin (refine.*), flip (eval.flip) and adjust (codec.adjust); for a pose run
        (its heatmaps used for refinement, with a warning): flip and adjust only.

    Raises:
        ValueError: for a segmentation run or a run on another joint set.
    """
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        # A refinement export (tasks/refinement/export.py) stores its refiner options.
        options = read_refinement_export_options(path) or {}
        num_joints = options.pop("_num_joints", keypoint_info.num_joints)
        if num_joints != keypoint_info.num_joints:
            raise ValueError(
                f"{path}: the exported refinement network has {num_joints} joints, the poses "
                f"have {keypoint_info.num_joints} ({keypoint_info.name})."
            )
        return options
    if path.endswith(".keras"):
        return {}
    try:
        config = read_training_config(path)
    except FileNotFoundError:
        return {}  # load_predictor names the missing model
    task = config_task(config)
    if task == "segmentation":
        raise ValueError(f"{path}: a segmentation run, not a pose refinement network.")
    num_joints = num_detection_channels(config)
    if num_joints != keypoint_info.num_joints:
        raise ValueError(
            f"{path}: the refinement network has {num_joints} joints, the poses have "
            f"{keypoint_info.num_joints} ({keypoint_info.name})."
        )
    options = {}
    evaluation, codec = config.get("eval", {}), config.get("codec", {})
    if "flip" in evaluation:
        options["flip"] = bool(evaluation["flip"])
    if codec.get("adjust") in ADJUST_MODES:
        options["adjust"] = str(codec["adjust"])
    if task != "refinement":
        logging.warning(
            "%s: config.task is %r, not 'refinement'; its heatmaps are used for refinement.",
            path, task,
        )
        return options
    refine = config.get("refine", {})
    crop_size = int(refine.get("crop_size", 0) or config.codec.input_size)
    options["crop_sizes"] = (crop_size,)
    if "min_side" in refine:
        options["min_side"] = float(refine["min_side"])
    if "margin" in refine:
        options["margin"] = float(refine["margin"])
    return options
