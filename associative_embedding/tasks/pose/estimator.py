"""Model loading, per-image pose inference and the evaluation loop behind ``tools/evaluate.py``.

Pieces (each usable alone):

``load_predictor(path)``
    A ``Predictor``: images (B, H, W, 3) float32 RGB in [0, 1] -> the last stack's outputs
    (B, h, w, K * (1 + D)) as NumPy. Accepts a Keras 3 ``.keras`` file (loaded with
    ``safe_mode=True``; the package's layers are registered on import) or a TensorFlow
    SavedModel directory (its ``serving_default`` signature, else the restored object's
    ``__call__``). Training checkpoints plug in here when they exist.

``PoseEstimator``
    One image -> poses in original-image pixels: eval preprocessing per scale
    (``data.augment.eval_preprocess``: long side to ``input_size * scale``, right/bottom padding
    to the network's multiple), the network on the image and, with ``flip``, its mirror (one
    batch), flip and multi-scale fusion (``codec.fusion.fuse_outputs``, 'official' or 'paper'
    tags) onto the largest scale's grid, heatmaps zeroed on the padding (``mask_padding``),
    the paper's oracles (``tasks.pose.oracle``) on that
    grid, grouping (``codec.group_poses``) and back-projection (``codec.fusion.poses_to_image``),
    then, with a ``refiner`` (``tasks.refinement.refine.PoseRefiner``, the paper's single-person
    refinement), each person refined on the image. With both oracles and no refiner no network
    (and no image file) is needed. A very elongated image, whose decoded joints land outside
    it, is named in a warning (``data.image_bounds``); the writers of results (the COCO
    evaluator, the predict tool) clip joints into the image.

``read_split`` / ``build_evaluator`` / ``evaluate_records``
    Read a COCO-format (COCO, CrowdPose, ...) or MPII (.mat release or JSON conversion) split in
    eval mode (images without people kept), create the matching evaluator (COCO OKS AP or MPII
    multi-person mAP) and run the loop with a tqdm progress bar. The COCO evaluator scores
    against the cleaned annotations its reader made (``Split.ground_truth``), never the raw
    file, so evaluation counts exactly the people training supervises.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
from absl import logging
from tqdm import tqdm

from associative_embedding.codec import (
    fuse_outputs,
    group_poses,
    image_region_mask,
    map_from_image,
    poses_to_image,
)
from associative_embedding.core import transforms
from associative_embedding.core.keypoint_info import (
    KeypointInfo,
)
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import augment, image_bounds, image_io
from associative_embedding.data.readers import FORMAT_COCO, Split
from associative_embedding.evaluation.coco_keypoints import CocoKeypointEvaluator
from associative_embedding.evaluation.mpii_multi_person import MpiiMultiPersonEvaluator
from associative_embedding.modeling.loading import DEFAULT_INPUT_MULTIPLE, Predictor
from associative_embedding.tasks.pose import oracle as oracle_lib

DEFAULT_OUTPUT_STRIDE = 4


class PoseRefiner(Protocol):
    """What refines the decoded people of one image (``tasks.refinement.refine.PoseRefiner``,
    the paper's single-person network); a protocol, so that the pose task does not depend on
    the refinement task that is built on it."""

    def __call__(
        self, image: np.ndarray, poses: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


# ------------------------------------------------------------------------------ predictor


# ------------------------------------------------------------------------------ estimator


@dataclasses.dataclass
class InferenceConfig:
    """Test-time settings.

    Attributes:
        input_size: long side of the scale-1 network input (0 keeps the original resolution).
        output_stride: input pixels per map pixel; the network's (4) when one is used, free
            (e.g. 1 for full-resolution oracle maps) with both oracles.
        scales: input scale factors (official multi-scale: (2, 1, 0.5)).
        flip: add the horizontally flipped image (flip test).
        fusion: 'official' (tags of the scale nearest 1) or 'paper' (tags of all scales).
        oracles: subset of ``oracle.ORACLES``.
        oracle_sigma: σ of the gt_heatmaps oracle in map pixels (None: the encoder's default).
        oracle_subpixel: gt_heatmaps oracle Gaussians at the exact sub-pixel joint position
            (as ``KeypointEncoder(subpixel=True)``; default: the official integer pixel).
        oracle_tag_spacing: tag distance between people of the gt_tags oracle.
        decoder: keyword arguments of ``codec.group_poses`` (thresholds, refine, ...).
        mask_padding: zero the fused heatmaps outside the image (``codec.image_region_mask``):
            the right/bottom padding of the network input was never supervised in training
            (the loss ignores pixels outside the source image), so peaks there are noise that
            would otherwise be decoded as joints outside the image. False keeps them.
    """

    input_size: int = 512
    output_stride: int = DEFAULT_OUTPUT_STRIDE
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    fusion: str = "official"
    oracles: frozenset[str] = frozenset()
    oracle_sigma: float | None = None
    oracle_subpixel: bool = False
    oracle_tag_spacing: float = oracle_lib.DEFAULT_TAG_SPACING
    decoder: dict[str, Any] = dataclasses.field(default_factory=dict)
    mask_padding: bool = True

    def __post_init__(self) -> None:
        self.oracles = oracle_lib.parse_oracles(self.oracles)
        self.scales = tuple(float(scale) for scale in self.scales)
        if self.input_size < 0:
            raise ValueError(f"input_size must be >= 0, got {self.input_size}.")
        if self.output_stride < 1:
            raise ValueError(f"output_stride must be >= 1, got {self.output_stride}.")
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be positive, got {self.scales}.")

    @property
    def needs_network(self) -> bool:
        return not {oracle_lib.GT_HEATMAPS, oracle_lib.GT_TAGS} <= self.oracles


class PoseEstimator:
    """Estimates the poses of one image (see the module docstring for the steps)."""

    def __init__(
        self,
        predictor: Predictor | None,
        keypoint_info: KeypointInfo,
        config: InferenceConfig,
        refiner: PoseRefiner | None = None,
    ) -> None:
        """Creates the estimator.

        Args:
            predictor: the multi-person network (None with both oracles).
            keypoint_info: the dataset's metadata.
            config: test-time settings.
            refiner: optional single-person refinement applied to every image's decoded
                poses (``tasks.refinement.refine.PoseRefiner``; any callable
                (image, poses, scores) -> (poses, scores) works).

        Raises:
            ValueError: when the configuration needs a network and none is given.
        """
        if config.needs_network and predictor is None:
            raise ValueError(
                "a model is needed unless both oracles (gt_heatmaps, gt_tags) are used."
            )
        if not config.needs_network and (config.flip or config.scales != (1.0,)):
            logging.warning("Both oracles replace the network: flip and scales are ignored.")
        self.predictor = predictor if config.needs_network else None
        self.keypoint_info = keypoint_info
        self.config = config
        self.refiner = refiner
        self._decoder_kwargs = {"grouping_order": keypoint_info.grouping_order, **config.decoder}
        self._elongated_images: set[int] = set()

    def estimate(self, record: PoseRecord) -> dict[str, np.ndarray]:
        """Returns {'poses': (P, K, 3) (x, y, score) in image pixels, 'scores': (P,)}.

        The record's ground truth is read only by the oracles.
        """
        image = None
        if self.predictor is None:
            heatmaps, tags, input_from_image = self._oracle_maps(record)
        else:
            image = self._read_image(record)
            heatmaps, tags, input_from_image = self.image_maps(image, record)
        poses, scores = group_poses(heatmaps, tags, **self._decoder_kwargs)
        poses = poses_to_image(poses, input_from_image, self.config.output_stride)
        if self.refiner is not None:
            image = self._read_image(record) if image is None else image
            poses, scores = self.refiner(image, poses, scores)
        problem = image_bounds.elongation_problem(
            record.file_name or f"image {record.image_id}", record.height, record.width,
            input_size=self.config.input_size or max(record.height, record.width),
            output_stride=self.config.output_stride,
        )
        if problem is not None and record.image_id not in self._elongated_images:
            self._elongated_images.add(record.image_id)  # once per image, not per evaluation
            logging.warning("%s", problem)
        return {"poses": poses, "scores": scores}

    __call__ = estimate

    def _oracle_maps(self, record: PoseRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both oracles: the maps of the scale-1 input geometry, no image needed."""
        stride = self.config.output_stride
        input_from_image, _, padded_hw = transforms.eval_resize_affine(
            record.height, record.width, self.config.input_size, DEFAULT_INPUT_MULTIPLE
        )
        if padded_hw[0] % stride or padded_hw[1] % stride:
            raise ValueError(
                f"output_stride {stride} does not divide the padded input size {padded_hw}."
            )
        output_hw = (padded_hw[0] // stride, padded_hw[1] // stride)
        heatmaps, tags = self._apply_oracles(None, None, record, input_from_image, output_hw)
        return heatmaps, tags, input_from_image

    def _apply_oracles(self, heatmaps, tags, record, input_from_image, output_hw):
        if not self.config.oracles:
            return heatmaps, tags
        keypoints = transforms.transform_points(record.keypoints, input_from_image)
        return oracle_lib.apply_oracles(
            heatmaps,
            tags,
            keypoints,
            oracles=self.config.oracles,
            output_hw=output_hw,
            stride=self.config.output_stride,
            sigma=self.config.oracle_sigma,
            subpixel=self.config.oracle_subpixel,
            tag_spacing=self.config.oracle_tag_spacing,
        )

    def _read_image(self, record: PoseRecord) -> np.ndarray:
        """The record's decoded (H, W, 3) uint8 RGB image, checked against its size."""
        source = record.file_name or f"image {record.image_id}"
        image = image_io.decode_image(record.read_image_bytes(), source=source)
        if image.shape[:2] != (record.height, record.width):
            raise ValueError(
                f"image {record.image_id}: {source} is {image.shape[0]}x{image.shape[1]}, "
                f"annotated as {record.height}x{record.width}."
            )
        return image

    def image_maps(
        self, image: np.ndarray, record: PoseRecord | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network maps of one decoded image, fused over flip and scales.

        Args:
            image: (H, W, 3) uint8 RGB (or float32 in [0, 1]).
            record: the image's ground truth, needed only by the oracles (None: no oracle).

        Returns:
            heatmaps (h, w, K), tags (h, w, K, D') on the grid of the largest scale, and that
            scale's (3, 3) ``input_from_image`` affine.
        """
        config = self.config
        base_size = config.input_size or max(image.shape[0], image.shape[1])
        num_joints = self.keypoint_info.num_joints
        heatmaps, tags, flipped_heatmaps, flipped_tags = [], [], [], []
        input_from_images, maps_from_images = [], []
        for scale in config.scales:
            inputs = augment.eval_preprocess(
                image, max(1, int(round(base_size * scale))), self.predictor.input_multiple
            )
            network_input = inputs["image"]
            batch = [network_input, network_input[:, ::-1]] if config.flip else [network_input]
            outputs = self.predictor(tf.stack(batch))
            stride = network_input.shape[0] / outputs.shape[1]
            if stride != config.output_stride:
                raise ValueError(
                    f"{self.predictor.source}: output stride {stride:g} (input "
                    f"{tuple(network_input.shape[:2])}, output {outputs.shape[1:3]}) differs "
                    f"from output_stride={config.output_stride}."
                )
            heatmap, tag = _split(outputs, num_joints, self.predictor.source)
            heatmaps.append(heatmap[0])
            tags.append(tag[0])
            if config.flip:
                flipped_heatmaps.append(heatmap[1])
                flipped_tags.append(tag[1])
            input_from_image = inputs["input_from_image"].numpy()
            input_from_images.append(input_from_image)
            maps_from_images.append(map_from_image(input_from_image, config.output_stride))
        # The fused maps live on the grid of the largest map (fuse_scales' default reference).
        reference = int(np.argmax([h.shape[0] * h.shape[1] for h in heatmaps]))
        fused_heatmaps, fused_tags = fuse_outputs(
            heatmaps,
            tags,
            config.scales,
            flipped_heatmaps=flipped_heatmaps if config.flip else None,
            flipped_tags=flipped_tags if config.flip else None,
            flip_index=self.keypoint_info.flip_index,
            mode=config.fusion,
            maps_from_image=maps_from_images,
            reference_index=reference,
        )
        if config.mask_padding:
            # Every scale's padding lands outside the image on the reference grid, so one
            # mask of the reference scale covers them all.
            inside = image_region_mask(
                maps_from_images[reference], image.shape[:2], fused_heatmaps.shape[:2]
            )
            fused_heatmaps = np.where(inside[..., None], fused_heatmaps, np.float32(0.0))
        if record is not None:
            fused_heatmaps, fused_tags = self._apply_oracles(
                fused_heatmaps,
                fused_tags,
                record,
                input_from_images[reference],
                fused_heatmaps.shape[:2],
            )
        return fused_heatmaps, fused_tags, input_from_images[reference]


def _split(outputs: np.ndarray, num_joints: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(B, h, w, K(1+D)) -> heatmaps (B, h, w, K), tags (B, h, w, K, D) (outputs.py layout)."""
    channels = outputs.shape[-1]
    if channels % num_joints or channels // num_joints < 2:
        raise ValueError(
            f"{source}: {channels} output channels do not fit K = {num_joints} joints "
            "(expected K * (1 + D))."
        )
    tag_dim = channels // num_joints - 1
    heatmaps = outputs[..., :num_joints]
    tags = outputs[..., num_joints:].reshape(*outputs.shape[:-1], num_joints, tag_dim)
    return heatmaps, tags


# ------------------------------------------------------------------------------ datasets


def build_evaluator(
    split: Split, output_dir: str | os.PathLike | None = None
) -> CocoKeypointEvaluator | MpiiMultiPersonEvaluator:
    """COCO OKS evaluator for COCO-format splits (on the split's cleaned ground truth when it
    has one), MPII multi-person mAP for MPII ones."""
    if split.annotation_format == FORMAT_COCO:
        ground_truth = split.ground_truth if split.ground_truth is not None else (
            split.annotation_file)
        return CocoKeypointEvaluator(
            ground_truth, keypoint_info=split.keypoint_info, output_dir=output_dir
        )
    return MpiiMultiPersonEvaluator(keypoint_info=split.keypoint_info, output_dir=output_dir)


def evaluate_records(
    records: Sequence[PoseRecord],
    estimator: Callable[[PoseRecord], Mapping[str, np.ndarray]],
    evaluator: CocoKeypointEvaluator | MpiiMultiPersonEvaluator,
    *,
    max_images: int | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Runs ``estimator`` on each record, feeds the evaluator and returns its metrics.

    Args:
        records: ground-truth records (images in eval mode).
        estimator: record -> {'poses', 'scores'} (e.g. a ``PoseEstimator``).
        evaluator: reset here, then filled.
        max_images: evaluate only the first this many records (None or <= 0: all).
        progress: show a tqdm bar.
    """
    if max_images is not None and max_images > 0:
        records = records[:max_images]
    evaluator.reset()
    for record in tqdm(records, desc="evaluate", unit="img", disable=not progress):
        evaluator.process([record], [estimator(record)])
    return evaluator.evaluate()


def parse_scales(values: Iterable[str | float] | str) -> tuple[float, ...]:
    """'2,1,0.5' or ['2', '1', '0.5'] -> (2.0, 1.0, 0.5)."""
    if isinstance(values, str):
        values = values.split(",")
    scales = tuple(float(value) for value in values if str(value).strip())
    if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
        raise ValueError(f"scales must be positive numbers, got {values!r}.")
    return scales


