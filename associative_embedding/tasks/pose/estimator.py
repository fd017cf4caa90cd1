"""Model loading, per-image pose inference and the evaluation loop behind ``tools/evaluate.py``.

Pieces (each usable alone):

``load_predictor(path)``
    A ``Predictor``: images (B, H, W, 3) float32 RGB in [0, 1] -> the last stack's outputs
    (B, h, w, K * (1 + D)) as NumPy. Accepts a Keras 3 ``.keras`` file (loaded with
    ``safe_mode=True``; the package's layers are registered on import) or a TensorFlow
    SavedModel directory (its ``serving_default`` signature, else the restored object's
    ``__call__``). Training checkpoints plug in here when they exist.

``PoseEstimator``
    One image (``estimate``), or several with the network on batches (``estimate_batch``: the
    same poses), -> poses in original-image pixels: eval preprocessing per scale
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
    evaluator, the predict tool) clip joints into the image. ``network_maps`` and
    ``decode_maps`` are the two halves of ``estimate_batch``, so that estimators with other
    oracles can decode the same network outputs (the training evaluation's diagnostic).

``read_split`` / ``build_evaluator`` / ``evaluate_records``
    Read a COCO-format (COCO, CrowdPose, ...) or MPII (.mat release or JSON conversion) split in
    eval mode (images without people kept), create the matching evaluator (COCO OKS AP or MPII
    multi-person mAP) and run the loop with a tqdm progress bar (through ``estimate_batch``
    where the estimator has one). The COCO evaluator scores
    against the cleaned annotations its reader made (``Split.ground_truth``), never the raw
    file, so evaluation counts exactly the people training supervises.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections import defaultdict
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
#: Records the batched path (``evaluate_records``) reads, runs and decodes together.
DEFAULT_BATCH_IMAGES = 16
#: Network input pixels per call of the batched path: 64 inputs of 128 x 128, 4 of 512 x 512,
#: 1 of 1024 x 1024, so that a batch holds no more activations than one large multi-scale
#: input does (at 128 input on 2 CPU cores a call of 16 costs ~3.5 ms an image, one image
#: ~10 ms).
DEFAULT_BATCH_PIXELS = 1 << 20


class PoseRefiner(Protocol):
    """What refines the decoded people of one image (``tasks.refinement.refine.PoseRefiner``,
    the paper's single-person network); a protocol, so that the pose task does not depend on
    the refinement task that is built on it."""

    def __call__(
        self, image: np.ndarray, poses: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


# ------------------------------------------------------------------------------ estimator


@dataclasses.dataclass(frozen=True)
class ImageMaps:
    """The network maps of one image, fused over flip and scales, before any oracle.

    Attributes:
        heatmaps: (h, w, K) float32 on the grid of the largest scale (zero outside the image
            with ``InferenceConfig.mask_padding``).
        tags: (h, w, K, D') float32 on that grid.
        input_from_image: (3, 3) affine of the largest scale's network input.
        image: (H, W, 3) the decoded image (the refiner reads it).
    """

    heatmaps: np.ndarray
    tags: np.ndarray
    input_from_image: np.ndarray
    image: np.ndarray


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
        if self.predictor is None:
            heatmaps, tags, input_from_image = self._oracle_maps(record)
            return self._decode(record, heatmaps, tags, input_from_image)
        image = self._read_image(record)
        heatmaps, tags, input_from_image = self.image_maps(image)
        return self.decode_maps(record, ImageMaps(heatmaps, tags, input_from_image, image))

    __call__ = estimate

    def estimate_batch(
        self, records: Sequence[PoseRecord], *, max_batch_pixels: int = DEFAULT_BATCH_PIXELS
    ) -> list[dict[str, np.ndarray]]:
        """``estimate`` of each record, with the network run on batches (``network_maps``).

        Args:
            records: the images' records.
            max_batch_pixels: network input pixels per network call (at least one input).

        Returns:
            Per record, what ``estimate`` returns for it: the same poses and scores (batching
            leaves each image's network outputs unchanged on CPU; an accelerator may pick
            other kernels for other batch sizes and round differently).
        """
        if self.predictor is None:
            return [self.estimate(record) for record in records]
        maps = self.network_maps(records, max_batch_pixels=max_batch_pixels)
        return [self.decode_maps(record, m) for record, m in zip(records, maps, strict=True)]

    def network_maps(
        self, records: Sequence[PoseRecord], *, max_batch_pixels: int = DEFAULT_BATCH_PIXELS
    ) -> list[ImageMaps]:
        """The fused network maps of several images (``image_maps`` without oracles).

        Network inputs of the same size (every image at one scale, when the images share a
        size, and their mirrors) go through the network together.

        Args:
            records: the images' records.
            max_batch_pixels: network input pixels per network call (at least one input).

        Returns:
            One ``ImageMaps`` per record, in order.

        Raises:
            ValueError: when the estimator has no network, or as ``estimate``.
        """
        if self.predictor is None:
            raise ValueError("both oracles replace the network: there are no network maps.")
        images = [self._read_image(record) for record in records]
        scale_inputs = [self._network_inputs(image) for image in images]
        network_inputs = [self._flip_batch(inputs) for inputs in scale_inputs]
        outputs = iter(self._predict(
            [x for image_inputs in network_inputs for x in image_inputs], max_batch_pixels
        ))
        maps = []
        for image, inputs, image_inputs in zip(images, scale_inputs, network_inputs, strict=True):
            image_outputs = [next(outputs) for _ in image_inputs]
            fused = self._fuse(image.shape[:2], inputs, image_outputs)
            maps.append(ImageMaps(*fused, image=image))
        return maps

    def decode_maps(self, record: PoseRecord, maps: ImageMaps) -> dict[str, np.ndarray]:
        """Poses of one image from its network maps: this estimator's oracles replace maps,
        then grouping, back-projection and the refiner.

        Args:
            record: the image's record (the oracles read its ground truth).
            maps: the image's maps from ``network_maps`` (of this or another estimator with
                the same network and preprocessing).

        Returns:
            {'poses': (P, K, 3) (x, y, score) in image pixels, 'scores': (P,)}, as
            ``estimate``.
        """
        heatmaps, tags = self._apply_oracles(
            maps.heatmaps, maps.tags, record, maps.input_from_image, maps.heatmaps.shape[:2]
        )
        return self._decode(record, heatmaps, tags, maps.input_from_image, maps.image)

    def _decode(
        self,
        record: PoseRecord,
        heatmaps: np.ndarray,
        tags: np.ndarray,
        input_from_image: np.ndarray,
        image: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Grouping, back-projection, the refiner and the elongation warning of one image."""
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
        inputs = self._network_inputs(image)
        # One network call per scale (the image and, with flip, its mirror).
        outputs = self._predict(self._flip_batch(inputs), max_batch_pixels=None)
        heatmaps, tags, input_from_image = self._fuse(image.shape[:2], inputs, outputs)
        if record is not None:
            heatmaps, tags = self._apply_oracles(
                heatmaps, tags, record, input_from_image, heatmaps.shape[:2]
            )
        return heatmaps, tags, input_from_image

    def _network_inputs(self, image: np.ndarray) -> list[dict[str, tf.Tensor]]:
        """``eval_preprocess`` of the image at each of ``config.scales``, in that order."""
        config = self.config
        base_size = config.input_size or max(image.shape[0], image.shape[1])
        multiple = self.predictor.input_multiple
        pixels = tf.convert_to_tensor(image)
        inputs = []
        for scale in config.scales:
            size = max(1, int(round(base_size * scale)))
            if config.input_size:
                inputs.append(_traced_eval_preprocess(size, multiple, pixels.dtype)(pixels))
            else:
                # Sizes follow each image's own: a traced function per size would retrace.
                inputs.append(augment.eval_preprocess(pixels, size, multiple))
        return inputs

    def _flip_batch(self, inputs: Sequence[dict[str, tf.Tensor]]) -> list[tf.Tensor]:
        """The network inputs of one image: per scale the input and, with flip, its mirror."""
        batch = []
        for scale_input in inputs:
            network_input = scale_input["image"]
            batch.append(network_input)
            if self.config.flip:
                batch.append(network_input[:, ::-1])
        return batch

    def _predict(
        self, inputs: Sequence[tf.Tensor], max_batch_pixels: int | None
    ) -> list[np.ndarray]:
        """The network's (h, w, C) outputs of (H, W, 3) inputs; inputs of one size are stacked
        into calls of at most `max_batch_pixels` input pixels (None: one call per size)."""
        outputs: list[np.ndarray | None] = [None] * len(inputs)
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, network_input in enumerate(inputs):
            by_size[tuple(network_input.shape[:2])].append(index)
        for (height, width), indices in by_size.items():
            per_call = len(indices) if max_batch_pixels is None else max(
                1, max_batch_pixels // (height * width))
            for start in range(0, len(indices), per_call):
                call = indices[start:start + per_call]
                batch_outputs = self.predictor(tf.stack([inputs[index] for index in call]))
                for index, output in zip(call, batch_outputs, strict=True):
                    outputs[index] = output
        return outputs

    def _fuse(
        self,
        image_hw: tuple[int, int],
        inputs: Sequence[dict[str, tf.Tensor]],
        outputs: Sequence[np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flip and multi-scale fusion of one image's outputs (``_flip_batch`` order), the
        padding masked; returns what ``image_maps`` does."""
        config = self.config
        num_joints = self.keypoint_info.num_joints
        per_scale = 2 if config.flip else 1
        heatmaps, tags, flipped_heatmaps, flipped_tags = [], [], [], []
        input_from_images, maps_from_images = [], []
        for index, scale_input in enumerate(inputs):
            network_input = scale_input["image"]
            scale_outputs = np.stack(outputs[index * per_scale:(index + 1) * per_scale])
            stride = network_input.shape[0] / scale_outputs.shape[1]
            if stride != config.output_stride:
                raise ValueError(
                    f"{self.predictor.source}: output stride {stride:g} (input "
                    f"{tuple(network_input.shape[:2])}, output {scale_outputs.shape[1:3]}) "
                    f"differs from output_stride={config.output_stride}."
                )
            heatmap, tag = _split(scale_outputs, num_joints, self.predictor.source)
            heatmaps.append(heatmap[0])
            tags.append(tag[0])
            if config.flip:
                flipped_heatmaps.append(heatmap[1])
                flipped_tags.append(tag[1])
            input_from_image = scale_input["input_from_image"].numpy()
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
                maps_from_images[reference], image_hw, fused_heatmaps.shape[:2]
            )
            fused_heatmaps = np.where(inside[..., None], fused_heatmaps, np.float32(0.0))
        return fused_heatmaps, fused_tags, input_from_images[reference]


@functools.cache
def _traced_eval_preprocess(
    input_size: int, multiple: int, dtype: tf.DType
) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """``eval_preprocess`` to one input size as a tf.function of (H, W, C) images of any size.

    Eagerly its ~20 small ops cost ~3 ms an image on a CPU, as much as a small network; traced
    once, 0.6 ms, with the same kernels and values (tested).
    """
    # No autograph: eval_preprocess branches only on Python values, and converting it would
    # cost more than tracing.
    return tf.function(
        functools.partial(augment.eval_preprocess, input_size=input_size, multiple=multiple),
        input_signature=[tf.TensorSpec([None, None, None], dtype)],
        autograph=False,
    )


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
    batch_size: int = DEFAULT_BATCH_IMAGES,
) -> dict[str, float]:
    """Runs ``estimator`` on each record, feeds the evaluator and returns its metrics.

    Args:
        records: ground-truth records (images in eval mode).
        estimator: record -> {'poses', 'scores'} (e.g. a ``PoseEstimator``); one with an
            ``estimate_batch`` (``PoseEstimator``'s) gets `batch_size` records at a time.
        evaluator: reset here, then filled.
        max_images: evaluate only the first this many records (None or <= 0: all).
        progress: show a tqdm bar.
        batch_size: records per ``estimate_batch`` call.
    """
    if max_images is not None and max_images > 0:
        records = records[:max_images]
    estimate_batch = getattr(estimator, "estimate_batch", None)
    step = max(1, batch_size) if estimate_batch is not None else 1
    evaluator.reset()
    with tqdm(total=len(records), desc="evaluate", unit="img", disable=not progress) as bar:
        for start in range(0, len(records), step):
            chunk = records[start:start + step]
            if estimate_batch is not None:
                predictions = estimate_batch(chunk)
            else:
                predictions = [estimator(record) for record in chunk]
            evaluator.process(chunk, predictions)
            bar.update(len(chunk))
    return evaluator.evaluate()


def parse_scales(values: Iterable[str | float] | str) -> tuple[float, ...]:
    """'2,1,0.5' or ['2', '1', '0.5'] -> (2.0, 1.0, 0.5)."""
    if isinstance(values, str):
        values = values.split(",")
    scales = tuple(float(value) for value in values if str(value).strip())
    if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
        raise ValueError(f"scales must be positive numbers, got {values!r}.")
    return scales


