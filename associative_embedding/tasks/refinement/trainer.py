"""Training the paper's single-person refinement network on the shared training loop.

    python tools/train.py --config=experiments/coco_refine_hg.py --workdir=runs/refine ...

`RefinementTrainer` is a task of `training.trainer.Trainer` (`config.task == 'refinement'`,
routed by `tasks.registry.make_trainer`): the same stacked hourglass with `tag_dim = 0` (K
heatmap channels, no tags), optimizer, distributed step, checkpointing and summaries. It
supplies:

* data: the pose task's `tasks.pose.inputs.prepare_data` (COCO-format files, MPII, or the
  synthetic people generated into the work dir), turned into single-person crops by
  `tasks.refinement.data.build_person_dataset` (crop rule, augmentation and targets documented
  there);
* loss ('heatmap'): per example, the mean over all stacks of `losses.heatmap_loss` (masked MSE
  with the config's `loss.heatmap_foreground_weight`), times `loss.heatmap_weight`;
* evaluation (`best_metric` 'AP'): every ground-truth person of the first `eval.max_images`
  validation images is cropped with the crop rule around its *ground-truth* keypoint box (the
  refinement stage's input when the grouping is right) and goes through the inference path of
  `tasks.refinement.refine.PoseRefiner` (`crop_heatmaps`: cv2 crop at `refine.crop_size`, with
  `eval.flip` the flip-averaged heatmaps); each joint is the argmax of its heatmap with the
  package's sub-pixel adjust (`codec.adjust`: official quarter pixel, symmetric, Taylor or none;
  `refine.locate_peaks`) mapped back to the image, its score the heatmap maximum and the
  person's score the mean of its K joint scores. Each ground-truth person is therefore exactly
  one detection, and the dataset's evaluator scores them: COCO-format data with pycocotools OKS
  ('AP', 'AP50', ...), MPII-format data with the multi-person mAP of
  `evaluation.mpii_multi_person` ('AP'). Also reported: 'mean_oks' (mean OKS of each person's
  prediction against that person, people with a positive area) and, when the records carry
  head boxes (MPII), 'PCKh' (fraction of labelled joints within 0.5 of the head size).
  The training crops (TF bilinear warp, `tasks.refinement.data`) and these cv2 crops are the same
  pixels (float32 bilinear, tested to 1e-6).

`refinement_base_config()` is the schema: `base_config()` with `task='refinement'`,
`model.tag_dim=0` and a `refine` section (crop rule: min_side 60, margin 1.3 as the official
demo; crop size; minimum labelled joints of a training person; evaluation batch size).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from associative_embedding import losses
from associative_embedding.core.keypoint_info import KeypointInfo, get_keypoint_info
from associative_embedding.core.record import PoseRecord
from associative_embedding.core.visualization import draw_poses
from associative_embedding.data import image_io, readers
from associative_embedding.data.augment import AugmentConfig
from associative_embedding.evaluation.mpii_multi_person import head_sizes
from associative_embedding.modeling import loading
from associative_embedding.modeling.outputs import split_outputs
from associative_embedding.tasks.pose import estimator as predictor_lib
from associative_embedding.tasks.pose import inputs
from associative_embedding.tasks.pose.config import base_config
from associative_embedding.tasks.refinement import crops
from associative_embedding.tasks.refinement import data as refine_data
from associative_embedding.tasks.refinement.refine import PoseRefiner, locate_peaks
from associative_embedding.training import config as config_lib
from associative_embedding.training.trainer import Trainer

REFINEMENT_LOSS_PARTS = ("heatmap",)


def refinement_base_config() -> ml_collections.ConfigDict:
    """`tasks.pose.config.base_config()` for the single-person refinement network.

    Changes: `task='refinement'`, `model.tag_dim=0`, `codec.input_size` 256 (64 x 64
    heatmaps, σ = 1 as the single-person hourglass [40]), a smaller translation jitter (0.1 of
    the crop side: the crop is already centred on the person), and the `refine` section:

        min_side, margin   crop side = max(w, h, min_side) * margin of the keypoint box (60, 1.3,
                           the official demo's rule; the same at inference)
        crop_size          network input side of the crops in training and evaluation;
                           0 = codec.input_size
        min_joints         training people need at least this many labelled joints
        ignore_other_people  ignore (instead of treating as background) other people's joints
        eval_batch_size    crops per forward pass during evaluation

    The targets use `codec.sigma` and `codec.subpixel_targets`, the evaluation
    `codec.adjust` and `eval.every_steps`, `max_images`, `flip` and `num_drawn_images`; the
    multi-person decoder's fields (`eval.scales`, `fusion`, the codec's thresholds and
    `codec.refine` -- the decoder's fill-in of missing joints, not this section) and the
    grouping loss weights are not used by this task.
    """
    config = base_config()
    config.task = "refinement"
    config.model.tag_dim = 0
    config.codec.input_size = 256
    config.input.max_translation = 0.1
    config.loss.pull_weight = 0.0
    config.loss.push_weight = 0.0
    config.eval.gt_detection_diagnostic = False
    config.refine = ml_collections.ConfigDict(
        dict(
            min_side=refine_data.DEFAULT_MIN_SIDE,
            margin=refine_data.DEFAULT_MARGIN,
            crop_size=0,
            min_joints=1,
            ignore_other_people=False,
            eval_batch_size=16,
        )
    )
    return config


def crop_size_of(config: ml_collections.ConfigDict) -> int:
    """The crop (network input) side: `refine.crop_size`, or `codec.input_size` when 0."""
    return int(config.refine.crop_size or config.codec.input_size)


def crop_config_of(config: ml_collections.ConfigDict) -> refine_data.PersonCropConfig:
    refine = config.refine
    return refine_data.PersonCropConfig(
        min_side=float(refine.min_side),
        margin=float(refine.margin),
        min_joints=int(refine.min_joints),
        ignore_other_people=bool(refine.ignore_other_people),
    )


def refinement_loss(
    outputs: tf.Tensor,
    batch: dict[str, tf.Tensor],
    *,
    num_joints: int,
    heatmap_weight: float = 1.0,
    foreground_weight: float = 0.0,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Per-example heatmap loss of a heatmap-only stacked hourglass.

    Args:
        outputs: (B, S, h, w, K) network outputs (tag_dim 0).
        batch: 'heatmaps' (B, h, w, K) and 'mask' (B, h, w).
        num_joints: K.
        heatmap_weight: weight of the heatmap term.
        foreground_weight: `losses.heatmap_loss`'s foreground weight (0 = plain MSE).

    Returns:
        loss (B,) = heatmap_weight * heatmap; parts {'heatmap': (B,)}, the mean over stacks of
        `losses.heatmap_loss`.
    """
    outputs = tf.convert_to_tensor(outputs)
    if outputs.shape.rank != 5 or outputs.shape[1] is None:
        raise ValueError(f"refinement_loss: outputs must be (B, S, h, w, K), got {outputs.shape}")
    heatmaps, _ = split_outputs(outputs, num_joints, 0)
    num_stacks = outputs.shape[1]
    per_stack = [
        losses.heatmap_loss(heatmaps[:, stack], batch["heatmaps"], batch["mask"],
                            foreground_weight)
        for stack in range(num_stacks)
    ]
    heatmap = tf.add_n(per_stack) / float(num_stacks)
    return heatmap_weight * heatmap, {"heatmap": heatmap}


# --------------------------------------------------------------------------------------------
# Evaluation.


@dataclasses.dataclass
class PersonPredictions:
    """Single-person predictions of one image's people.

    Attributes:
        poses: (P, K, 3) (x, y, score) image pixels; score = the joint's heatmap maximum.
        scores: (P,) person scores, the mean of the K joint scores.
        crop_poses: (P, K, 3) the same joints in crop pixels.
        crop_from_image: (P, 3, 3) float64 crop affines.
    """

    poses: np.ndarray
    scores: np.ndarray
    crop_poses: np.ndarray
    crop_from_image: np.ndarray


def predict_people(
    refiner: PoseRefiner, image: np.ndarray, keypoints: np.ndarray, *, adjust: str = "official"
) -> PersonPredictions:
    """Single-person poses of people given by their (ground-truth or grouped) keypoints.

    Exactly the inference path of `tasks.refinement.refine.PoseRefiner` up to its peaks: crop around
    the box of each person's joints with v (or score) > 0 (`crops.keypoint_box`), network on
    the crop at the refiner's crop sizes (and flip), per-joint maximum with `adjust`
    (`refine.locate_peaks`), back to the image (`crops.uncrop_points`).

    Args:
        refiner: holds the network, crop sizes, flip and the crop rule.
        image: (H, W, 3) uint8 RGB.
        keypoints: (P, K, 3) (x, y, v); every person needs a joint with v > 0.
        adjust: sub-pixel rule ('official', 'symmetric', 'taylor', 'none').
    """
    num_joints = refiner.num_joints
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, num_joints, 3)
    if len(keypoints) == 0:
        empty = np.zeros((0, num_joints, 3), np.float32)
        return PersonPredictions(empty, np.zeros(0, np.float32), empty, np.zeros((0, 3, 3)))
    boxes = np.stack([crops.keypoint_box(person) for person in keypoints])
    heatmaps, crop_from_image, stride = refiner.crop_heatmaps(image, boxes)
    peaks = locate_peaks(heatmaps, adjust)  # (P, K, 3) heatmap corner coordinates
    crop_poses = peaks.copy()
    crop_poses[..., :2] = stride * peaks[..., :2] - 0.5  # crop pixel centres
    poses = np.stack([
        crops.uncrop_points(pose, affine)
        for pose, affine in zip(crop_poses, crop_from_image, strict=True)
    ]).astype(np.float32)
    scores = peaks[..., 2].mean(axis=-1).astype(np.float32)
    return PersonPredictions(poses, scores, crop_poses, crop_from_image)


def object_keypoint_similarity(
    predicted: np.ndarray, ground_truth: np.ndarray, area: float, sigmas: np.ndarray
) -> float:
    """COCO OKS of one prediction against one ground-truth person (pycocotools' formula).

    Args:
        predicted: (K, >=2) predicted x, y.
        ground_truth: (K, 3) (x, y, v); joints with v > 0 count.
        area: the person's area (COCO 'area').
        sigmas: (K,) OKS sigmas.

    Returns:
        mean over labelled joints of exp(-d² / (2 area (2σ)²)); NaN without labelled joints.
    """
    labelled = ground_truth[:, 2] > 0
    if not labelled.any():
        return float("nan")
    squared = np.sum((predicted[:, :2] - ground_truth[:, :2]) ** 2, axis=-1)
    variances = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    error = squared / variances / (area + np.spacing(1)) / 2.0
    return float(np.mean(np.exp(-error[labelled])))


def pckh_hits(
    predicted: np.ndarray, record: PoseRecord, threshold: float = 0.5
) -> tuple[int, int]:
    """(hits, labelled joints) of a record's predicted people against themselves (PCKh)."""
    if record.head_boxes is None or record.num_people == 0:
        return 0, 0
    sizes = head_sizes(record.head_boxes)
    labelled = record.keypoints[..., 2] > 0
    usable = labelled & (np.isfinite(sizes) & (sizes > 0))[:, None]
    distance = np.linalg.norm(predicted[..., :2] - record.keypoints[..., :2], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hits = usable & (distance / sizes[:, None] <= threshold)
    return int(hits.sum()), int(usable.sum())


def evaluate_people(
    refiner: PoseRefiner,
    split: readers.Split,
    records: Sequence[PoseRecord],
    *,
    adjust: str = "official",
    output_dir: str | None = None,
    num_kept: int = 0,
    progress: bool = False,
) -> tuple[dict[str, float], list[tuple[PoseRecord, np.ndarray, PersonPredictions]]]:
    """Scores single-person predictions of the ground-truth people of `records`.

    Every ground-truth person is cropped around its ground-truth keypoint box and becomes
    exactly one detection (`predict_people`); the split's evaluator scores them.

    Args:
        refiner: the network, crop size(s), flip and crop rule.
        split: the validation split (its format picks COCO OKS AP or MPII mAP).
        records: the images evaluated (e.g. a prefix of ``split.records``).
        adjust: see `predict_people`.
        output_dir: where the evaluator writes its results/metrics files (None: nowhere).
        num_kept: keep (record, image, predictions) of the first this many images with people.
        progress: tqdm bar.

    Returns:
        (metrics, kept): the evaluator's metrics plus 'mean_oks' (people with a positive
        area), 'PCKh' (when head boxes exist) and 'num_people'.
    """
    from tqdm import tqdm

    evaluator = predictor_lib.build_evaluator(split, output_dir)
    evaluator.reset()
    sigmas = split.keypoint_info.sigmas_array
    similarities: list[float] = []
    hits = labelled = people = 0
    kept: list[tuple[PoseRecord, np.ndarray, PersonPredictions]] = []
    for record in tqdm(records, desc="evaluate people", unit="img", disable=not progress):
        if record.num_people:
            image = image_io.decode_image(record.read_image_bytes(), source=record.file_name)
            prediction = predict_people(refiner, image, record.keypoints, adjust=adjust)
            if len(kept) < num_kept:
                kept.append((record, image, prediction))
        else:
            prediction = predict_people(refiner, np.zeros((1, 1, 3), np.uint8), record.keypoints)
        evaluator.process([record], [{"poses": prediction.poses, "scores": prediction.scores}])
        people += record.num_people
        for person, truth, area in zip(prediction.poses, record.keypoints, record.areas,
                                       strict=True):
            if area > 0:
                similarities.append(object_keypoint_similarity(person, truth, area, sigmas))
        record_hits, record_labelled = pckh_hits(prediction.poses, record)
        hits += record_hits
        labelled += record_labelled
    metrics = dict(evaluator.evaluate())
    finite = [value for value in similarities if np.isfinite(value)]
    metrics["mean_oks"] = float(np.mean(finite)) if finite else float("nan")
    if labelled:
        metrics["PCKh"] = hits / labelled
    metrics["num_people"] = people
    return metrics, kept


# --------------------------------------------------------------------------------------------
# The trainer.


class RefinementTrainer(Trainer):
    """The single-person refinement network: heatmap MSE on person crops; person-level AP."""

    loss_parts = REFINEMENT_LOSS_PARTS
    best_metric = "AP"

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str,
        strategy: tf.distribute.Strategy | None = None,
        data: Any | None = None,
    ) -> None:
        if int(config.model.tag_dim) != 0:
            raise ValueError(
                f"the refinement network predicts heatmaps only: config.model.tag_dim must be "
                f"0, got {config.model.tag_dim}"
            )
        if "refine" not in config:
            raise ValueError(
                "config has no 'refine' section: start refinement experiments from "
                "tasks.refinement.trainer.refinement_base_config()"
            )
        self.keypoint_info: KeypointInfo = get_keypoint_info(config.dataset.keypoints)
        self.crop_config = crop_config_of(config)
        self.crop_size = crop_size_of(config)
        super().__init__(config, workdir, strategy, data)
        multiple = int(self.model.input_multiple)
        if self.crop_size % multiple:
            raise ValueError(
                f"crop size {self.crop_size} (refine.crop_size or codec.input_size) must be a "
                f"multiple of the network's input multiple {multiple}"
            )

    def prepare_data(self) -> Any:
        data = inputs.prepare_data(
            self.config, self.workdir, is_chief=self.is_chief, worker_index=self.worker_index
        )
        num_people = refine_data.count_people(data.train_records, self.crop_config.min_joints)
        if num_people == 0:
            raise ValueError(
                f"no training person has >= {self.crop_config.min_joints} labelled joints "
                "(config.refine.min_joints)"
            )
        logging.info(
            "refinement: %d training people with >= %d labelled joints in %d images",
            num_people, self.crop_config.min_joints, len(data.train_records),
        )
        return data

    def augment_config(self) -> AugmentConfig:
        # Called through the module: inside AutoGraph-converted code this method's own name
        # would shadow a bare `augment_config` function.
        return dataclasses.replace(
            config_lib.augment_config(self.config), input_size=self.crop_size
        )

    def build_replica_dataset(
        self, input_context: tf.distribute.InputContext, seed: int
    ) -> tf.data.Dataset:
        config = self.config
        return refine_data.build_person_dataset(
            self.data.train_records,
            training=True,
            batch_size=self.global_batch_size,
            keypoint_info=self.keypoint_info,
            augment_config=self.augment_config(),
            crop_config=self.crop_config,
            sigma=config.codec.sigma or None,
            subpixel_targets=bool(config.codec.subpixel_targets),
            seed=seed,
            deterministic=bool(config.train.deterministic),
            input_context=input_context,
            shuffle_buffer_size=config.input.shuffle_buffer_size,
        )

    def build_losses(
        self, outputs: tf.Tensor, batch: dict[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        loss = self.config.loss
        return refinement_loss(
            outputs,
            batch,
            num_joints=self.keypoint_info.num_joints,
            heatmap_weight=loss.heatmap_weight,
            foreground_weight=loss.heatmap_foreground_weight,
        )

    def refiner(self) -> PoseRefiner:
        """A `PoseRefiner` over the model being trained: the crop rule, `refine.crop_size`,
        `eval.flip` and `refine.eval_batch_size` crops per forward pass."""
        return PoseRefiner(
            loading.model_predictor(self.inference_model()),
            self.keypoint_info,
            crop_sizes=(self.crop_size,),
            flip=bool(self.config.eval.flip),
            min_side=self.crop_config.min_side,
            margin=self.crop_config.margin,
            adjust=self.adjust(),
            max_batch=int(self.config.refine.eval_batch_size),
        )

    def adjust(self) -> str:
        adjust = self.config.codec.adjust
        return "official" if adjust is True else "none" if adjust is False else str(adjust)

    def evaluate(self, step: int) -> dict[str, float]:
        """Person-level AP on the validation people (module docstring); chief only.

        Writes WORKDIR/eval/step_<N>/ (the evaluator's files, drawn crops) and the drawn crops
        to TensorBoard ('eval/crops').
        """
        eval_config = self.config.eval
        output_dir = self.evaluation_dir(step)
        metrics, kept = evaluate_people(
            self.refiner(), self.data.val_split, self.evaluation_records(), adjust=self.adjust(),
            output_dir=output_dir, num_kept=int(eval_config.num_drawn_images),
        )
        self._write_drawings(kept, output_dir, step)
        return metrics

    def evaluation_summary(self, metrics: dict[str, Any]) -> str:
        return " ".join(
            f"{key}={metrics[key]:.4f}" for key in ("AP", "AP50", "mean_oks", "PCKh")
            if isinstance(metrics.get(key), float | int) and np.isfinite(metrics[key])
        )

    def _write_drawings(
        self, kept: list[tuple[PoseRecord, np.ndarray, PersonPredictions]], output_dir: str,
        step: int,
    ) -> None:
        """The first crops with their predicted skeletons (JPEGs and TensorBoard)."""
        import cv2

        pictures = []
        limit = int(self.config.eval.num_drawn_images)
        folder = os.path.join(output_dir, "drawings")
        for record, image, prediction in kept:
            for index, (affine, pose) in enumerate(
                zip(prediction.crop_from_image, prediction.crop_poses, strict=True)
            ):
                if len(pictures) >= limit:
                    break
                crop = crops.crop_image(image, affine, self.crop_size)
                picture = draw_poses(crop, pose[None], self.keypoint_info.skeleton)
                pictures.append(picture)
                os.makedirs(folder, exist_ok=True)
                cv2.imwrite(os.path.join(folder, f"{record.image_id}_{index}.jpg"),
                            picture[..., ::-1])
        if not pictures or not self.is_chief:
            return
        writer = tf.summary.create_file_writer(os.path.join(self.workdir, "tensorboard"))
        with writer.as_default(step=step):
            tf.summary.image("eval/crops", np.stack(pictures), max_outputs=len(pictures))
        writer.flush()
