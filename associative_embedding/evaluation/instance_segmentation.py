"""Instance segmentation evaluation: SDS / VOC mAP^r and COCO ``segm`` AP.

The evaluator follows the detectron2 protocol: ``reset()``, then ``process(record, predictions)``
once per image, then ``evaluate()``, which returns a flat metrics dict and (optionally) writes:

    <output_dir>/segm_results.json   COCO results, accepted by ``COCO.loadRes``:
                                     [{"image_id", "category_id", "segmentation": compressed RLE
                                       (counts str), "score"}, ...]
    <output_dir>/metrics.json        the dict ``evaluate()`` returns.

Metrics (keys of ``evaluate()``):
    'mAPr@0.5', 'mAPr@0.7'       mean over categories of AP^r at that mask-IoU threshold (one key
                                 per entry of ``iou_thresholds``, formatted with ``:g``).
    'APr@0.5/<name>', ...        the per-category AP^r.
    'segm_AP', 'segm_AP50', 'segm_AP75', 'segm_APs', 'segm_APm', 'segm_APl'
                                 pycocotools COCOeval(iouType='segm') (with ``coco_segm=True``),
                                 and 'segm_AP/<name>' per category (AP@[.5:.95], all areas).
    'num_images', 'num_predictions'.

AP^r protocol (Hariharan et al., "Simultaneous Detection and Segmentation", ECCV 2014; the
metric of the paper's Table 5), per category c:
    1. Ground truth: the instances of category c (``record.segments``) of every processed image;
       the number of positives G_c counts all of them (VOC "difficult" does not exist for masks).
    2. Matching, per image (it only involves one image's instances), predictions of category c in
       descending score order: ``matching='sds'`` (default, the SDS benchmark code
       ``evaluation/generalized_det_eval.m`` > ``overlaps_to_labels`` in bharath272/sds_eccv2014):
       a prediction takes the *not yet matched* ground-truth instance of category c with the
       highest mask IoU; it is a true positive when that IoU >= threshold (the instance becomes
       matched), otherwise a false positive. Duplicates of a matched instance are therefore false
       positives unless they overlap another free instance enough. ``matching='voc'`` is the
       PASCAL detection rule used by MNC / FCIS ``voc_eval_sds`` and chainercv
       ``eval_instance_segmentation_voc``: the prediction's best instance over *all* instances;
       a false positive when that one is already matched.
       Threshold comparison is ``>=`` as in SDS's Python evaluation, MNC, FCIS and chainercv (the
       MATLAB SDS code uses ``>``; this only matters for exact ties).
    3. All predictions of category c over the dataset are ranked by score (ties keep processing
       order: images in ``process`` order, then prediction order); precision and recall
       (TP / G_c) after each rank.
    4. AP = area under the precision/recall curve. ``ap_method='all_points'`` (default): the
       VOC2010+ devkit ``VOCap`` that SDS's ``get_ap.m`` calls (precision made monotone from the
       right, summed over recall steps). ``ap_method='11_point'``: the VOC2007 11-point average,
       which MNC and FCIS's ``voc_eval_sds`` use (``voc_ap(rec, prec, True)``); the numbers those
       papers report in Table 5's comparison were computed that way.
    5. mAP^r = mean of AP^r over the categories with at least one ground-truth instance in the
       evaluated images; categories without ground truth have no AP (their predictions are all
       false positives, but there is no recall to integrate) and are left out of the mean and of
       the per-category keys. A category with ground truth but no prediction has AP 0.
    ``matching='voc', ap_method='11_point'`` reproduces MNC / FCIS's VOC instance evaluation.

Void / ignore pixels (``record.ignore_mask()``: VOC boundary and void pixels, COCO crowd
regions): with ``exclude_void=False`` (default) the IoU is that of the full predicted mask and
the instance mask, as every published SDS-line scorer computes it (SDS ``get_gt_overlaps.m`` on
SBD, whose instance maps have no void label; MNC / FCIS ``mask_overlap``, which keep predicted
pixels on VOC's 255 border in the union; chainercv ``mask_iou``). With ``exclude_void=True``
void pixels are removed from both masks before the IoU, the convention of the VOC segmentation
scorer (VOCdevkit ``VOCevalseg.m``: ``locs = gtim < 255``), so a prediction that spills onto
VOC's uncertain boundary band is not penalised. Neither setting changes the COCO metrics.

COCO metrics: the ground truth is built in memory from the processed records (one image per
record, one non-crowd annotation per segment, compressed RLE, category ids from
``InstanceCategories.ids``); it has no crowd regions, so a detection on a COCO crowd counts as a
false positive. Pass ``coco_annotations`` (the official instances JSON or a ``COCO`` object) to
score against it instead, with its crowd handling; a file is read through the readers' shared
annotation check (``coco_keypoints.load_coco``), so pycocotools scores the cleaned copy the
instance reader reads (no duplicate or dangling ids, every area present). No prediction at all
gives AP 0 with a warning (``COCO.loadRes`` rejects an empty results list). pycocotools reports
-1 for a metric with no ground truth (e.g. 'segm_APl' on small images); kept as is.

Predictions are kept compactly: ``process`` stores each prediction's compressed RLE (for the COCO
results) and the per-image prediction x instance IoU matrices (for AP^r), never full masks.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from associative_embedding.core.record import rle_bytes, rle_str
from associative_embedding.data.instances import InstanceCategories, InstanceRecord
from associative_embedding.evaluation.coco_keypoints import (
    empty_results,
    load_coco,
    run_cocoeval,
    write_json_file,
)

__all__ = [
    "AP_METHODS",
    "COCO_METRIC_NAMES",
    "MATCHING_RULES",
    "METRICS_FILE_NAME",
    "RESULTS_FILE_NAME",
    "InstanceSegmentationEvaluator",
    "average_precision",
    "match_predictions",
    "records_to_coco",
]

RESULTS_FILE_NAME = "segm_results.json"
METRICS_FILE_NAME = "metrics.json"
COCO_METRIC_NAMES = ("segm_AP", "segm_AP50", "segm_AP75", "segm_APs", "segm_APm", "segm_APl")
MATCHING_RULES = ("sds", "voc")
AP_METHODS = ("all_points", "11_point")

_logger = logging.getLogger(__name__)


def match_predictions(
    ious: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    matching: str = "sds",
) -> np.ndarray:
    """Labels one image's predictions of one category true / false positive.

    Args:
        ious: (N, G) mask IoU of each prediction with each ground-truth instance of the category.
        scores: (N,) prediction scores; predictions are matched in descending score order
            (stable: ties in input order).
        iou_threshold: a match needs IoU >= this.
        matching: 'sds' (best still-unmatched instance) or 'voc' (best instance overall; a
            duplicate when it is already matched). See the module docstring.

    Returns:
        (N,) bool, True for the true positives, in input order.

    Raises:
        ValueError: on an unknown matching rule or inconsistent shapes.
    """
    if matching not in MATCHING_RULES:
        raise ValueError(f"matching must be one of {MATCHING_RULES}, got {matching!r}")
    scores = np.asarray(scores, np.float64).reshape(-1)
    ious = np.asarray(ious, np.float64).reshape(scores.shape[0], -1)
    true_positive = np.zeros(scores.shape[0], bool)
    if ious.shape[1] == 0:
        return true_positive
    matched = np.zeros(ious.shape[1], bool)
    for index in np.argsort(-scores, kind="stable"):
        if matching == "sds":
            if matched.all():
                break
            candidate_ious = np.where(matched, -np.inf, ious[index])
            best = int(np.argmax(candidate_ious))
            is_match = candidate_ious[best] >= iou_threshold
        else:
            best = int(np.argmax(ious[index]))
            is_match = ious[index, best] >= iou_threshold and not matched[best]
        if is_match:
            matched[best] = True
            true_positive[index] = True
    return true_positive


def average_precision(
    scores: np.ndarray,
    true_positive: np.ndarray,
    num_ground_truth: int,
    method: str = "all_points",
) -> float:
    """Area under the precision/recall curve of ranked detections (PASCAL VOC).

    Args:
        scores: (N,) detection scores; ranked in descending order (stable).
        true_positive: (N,) bool, whether each detection is a true positive.
        num_ground_truth: the number of positives (recall denominator).
        method: 'all_points' (VOC2010+ ``VOCap``: precision envelope summed over every recall
            step) or '11_point' (VOC2007: mean of the envelope at recall 0, 0.1, ..., 1, the
            recall levels compared exactly).

    Returns:
        AP in [0, 1]; NaN when ``num_ground_truth`` is 0 (undefined).

    Raises:
        ValueError: on an unknown method or mismatched lengths.
    """
    if method not in AP_METHODS:
        raise ValueError(f"method must be one of {AP_METHODS}, got {method!r}")
    scores = np.asarray(scores, np.float64).reshape(-1)
    true_positive = np.asarray(true_positive, bool).reshape(-1)
    if scores.shape != true_positive.shape:
        raise ValueError(f"{scores.shape[0]} scores but {true_positive.shape[0]} labels")
    if num_ground_truth <= 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tp_cumulative = np.cumsum(true_positive[order])
    fp_cumulative = np.cumsum(~true_positive[order])
    recall = tp_cumulative / float(num_ground_truth)
    precision = tp_cumulative / np.maximum(tp_cumulative + fp_cumulative, 1)
    if method == "11_point":
        # recall >= k / 10 tested exactly as 10 TP >= k G: np.arange(0, 1.1, 0.1) in the Python
        # ports drops a recall of exactly 0.3, 0.6 or 0.7 through float error.
        points = []
        for step in range(11):
            reached = 10 * tp_cumulative >= step * num_ground_truth
            points.append(precision[reached].max() if reached.any() else 0.0)
        return float(np.mean(points))
    padded_recall = np.concatenate(([0.0], recall, [1.0]))
    padded_precision = np.concatenate(([0.0], precision, [0.0]))
    # Envelope: the best precision reachable at this recall or beyond (VOCap).
    envelope = np.maximum.accumulate(padded_precision[::-1])[::-1]
    steps = np.flatnonzero(padded_recall[1:] != padded_recall[:-1])
    return float(np.sum((padded_recall[steps + 1] - padded_recall[steps]) * envelope[steps + 1]))


def records_to_coco(
    records: Sequence[InstanceRecord], categories: InstanceCategories
) -> dict[str, Any]:
    """COCO instances dataset (dict) of records: non-crowd RLE annotations, ids 1..N.

    Raises:
        ValueError: naming the record when a segment's category index is out of range.
    """
    images, annotations = [], []
    for record in records:
        images.append(
            {
                "id": int(record.image_id),
                "height": int(record.height),
                "width": int(record.width),
                "file_name": os.path.basename(record.file_name),
            }
        )
        for segment in record.segments:
            _check_category(segment.category_index, categories, record)
            rle = rle_bytes(segment.rle)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": int(record.image_id),
                    "category_id": int(categories.ids[segment.category_index]),
                    "segmentation": rle_str(rle),
                    "area": float(mask_utils.area(rle)),
                    "bbox": [float(value) for value in mask_utils.toBbox(rle)],
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": annotations, "categories": categories.to_coco()}


def _check_category(category_index: int, categories: InstanceCategories, record: Any) -> None:
    if not 0 <= int(category_index) < categories.num_categories:
        raise ValueError(
            f"{getattr(record, 'source', '') or getattr(record, 'file_name', '')}: image "
            f"{record.image_id}: category index {category_index} is outside "
            f"[0, {categories.num_categories})"
        )


def _prediction_fields(prediction: Any) -> tuple[int, Any, float]:
    """(category_index, mask, score) from a DecodedInstance-like object or a mapping."""
    if isinstance(prediction, Mapping):
        return (
            int(prediction["category_index"]),
            prediction["mask"],
            float(prediction["score"]),
        )
    return int(prediction.category_index), prediction.mask, float(prediction.score)


def _pairwise_iou(predicted: list[dict], ground_truth: list[dict]) -> np.ndarray:
    """(N, G) float64 mask IoU of compressed RLEs (pycocotools, never decoded)."""
    if not predicted or not ground_truth:
        return np.zeros((len(predicted), len(ground_truth)), np.float64)
    ious = mask_utils.iou(predicted, ground_truth, [0] * len(ground_truth))
    return np.asarray(ious, np.float64).reshape(len(predicted), len(ground_truth))


class InstanceSegmentationEvaluator:
    """Collects instance predictions per image and computes mAP^r and COCO ``segm`` AP.

    Example:
        evaluator = InstanceSegmentationEvaluator(categories, output_dir="work/eval")
        for record in records:
            evaluator.process(record, decode_instances(detection, tags))
        metrics = evaluator.evaluate()   # {'mAPr@0.5': ..., 'mAPr@0.7': ..., 'segm_AP': ...}
    """

    def __init__(
        self,
        categories: InstanceCategories,
        iou_thresholds: Sequence[float] = (0.5, 0.7),
        coco_segm: bool = True,
        output_dir: str | os.PathLike | None = None,
        *,
        matching: str = "sds",
        ap_method: str = "all_points",
        exclude_void: bool = False,
        coco_annotations: str | os.PathLike | COCO | None = None,
    ) -> None:
        """Creates the evaluator.

        Args:
            categories: the dataset's categories; prediction ``category_index`` c is
                ``categories.names[c]`` and is written with COCO id ``categories.ids[c]``.
            iou_thresholds: mask-IoU thresholds of the reported mAP^r, each in (0, 1].
            coco_segm: also run pycocotools COCOeval(iouType='segm').
            output_dir: where segm_results.json and metrics.json are written (None: nothing).
            matching: 'sds' (default) or 'voc'; see the module docstring.
            ap_method: 'all_points' (default, VOC2010+) or '11_point' (VOC2007).
            exclude_void: remove ``record.ignore_mask()`` pixels from both masks before the
                AP^r IoU (VOC segmentation convention); see the module docstring.
            coco_annotations: a COCO instances file or ``COCO`` object used as the COCOeval
                ground truth instead of the records (keeps its crowd regions).

        Raises:
            ValueError: on an invalid threshold, matching rule or AP method.
        """
        thresholds = tuple(float(t) for t in iou_thresholds)
        if not thresholds or any(not 0.0 < t <= 1.0 for t in thresholds):
            raise ValueError(f"iou_thresholds must be non-empty values in (0, 1], got {thresholds}")
        if matching not in MATCHING_RULES:
            raise ValueError(f"matching must be one of {MATCHING_RULES}, got {matching!r}")
        if ap_method not in AP_METHODS:
            raise ValueError(f"ap_method must be one of {AP_METHODS}, got {ap_method!r}")
        self.categories = categories
        self.iou_thresholds = thresholds
        self.coco_segm = bool(coco_segm)
        self.output_dir = None if output_dir is None else os.fspath(output_dir)
        self.matching = matching
        self.ap_method = ap_method
        self.exclude_void = bool(exclude_void)
        if coco_annotations is None or isinstance(coco_annotations, COCO):
            self._external_coco_gt = coco_annotations
        else:
            self._external_coco_gt = load_coco(coco_annotations)
        self.coco_eval: COCOeval | None = None
        self.summary = ""
        self.reset()

    def reset(self) -> None:
        """Forgets every processed image."""
        num_categories = self.categories.num_categories
        self._records: list[InstanceRecord] = []
        self._seen: set[int] = set()
        self._results: list[dict[str, Any]] = []
        # Per category: one (scores (n,), ious (n, g)) pair per image with anything of it.
        self._scores: list[list[np.ndarray]] = [[] for _ in range(num_categories)]
        self._ious: list[list[np.ndarray]] = [[] for _ in range(num_categories)]
        self._num_ground_truth = np.zeros(num_categories, np.int64)

    def process(self, record: InstanceRecord, predictions: Sequence[Any]) -> None:
        """Adds one image's predictions.

        Args:
            record: the image's ground truth.
            predictions: objects with ``category_index`` (int), ``mask`` ((H, W) bool or
                integer 0/1 at the record's resolution) and ``score`` (float), e.g.
                ``codec.instance_decode.DecodedInstance``; mappings with those keys also work.

        Raises:
            ValueError: naming the image on a repeated image id, an id absent from
                ``coco_annotations``, a mask of the wrong shape or a float dtype, a category
                index out of range, or a non-finite score.
        """
        image_id = int(record.image_id)
        name = f"{record.source or record.file_name}: image {image_id}"
        if image_id in self._seen:
            raise ValueError(f"{name} was processed twice")
        if self._external_coco_gt is not None and image_id not in self._external_coco_gt.imgs:
            raise ValueError(f"{name} is not in the COCO ground-truth annotations")
        shape = (int(record.height), int(record.width))

        valid_rle = None
        if self.exclude_void and record.ignore_rle is not None:
            ignore = record.ignore_mask()
            if ignore.any():
                valid_rle = mask_utils.encode(np.asfortranarray((ignore == 0).astype(np.uint8)))

        def iou_rle(rle: dict) -> dict:
            if valid_rle is None:
                return rle
            return mask_utils.merge([rle, valid_rle], intersect=True)

        predicted: list[list[dict]] = [[] for _ in range(self.categories.num_categories)]
        predicted_scores: list[list[float]] = [[] for _ in range(self.categories.num_categories)]
        results = []
        for index, prediction in enumerate(predictions):
            category_index, mask, score = _prediction_fields(prediction)
            _check_category(category_index, self.categories, record)
            mask = np.asarray(mask)
            if mask.shape != shape:
                raise ValueError(
                    f"{name}: prediction {index} mask is {mask.shape}, the image is {shape}"
                )
            if not (mask.dtype == bool or np.issubdtype(mask.dtype, np.integer)):
                raise ValueError(
                    f"{name}: prediction {index} mask has dtype {mask.dtype}; binarise it "
                    "(bool or integer 0/1)"
                )
            if not math.isfinite(score):
                raise ValueError(f"{name}: prediction {index} has score {score}")
            rle = mask_utils.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
            predicted[category_index].append(iou_rle(rle))
            predicted_scores[category_index].append(score)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(self.categories.ids[category_index]),
                    "segmentation": rle_str(rle),
                    "score": score,
                }
            )

        ground_truth: list[list[dict]] = [[] for _ in range(self.categories.num_categories)]
        for segment in record.segments:
            _check_category(segment.category_index, self.categories, record)
            ground_truth[segment.category_index].append(iou_rle(rle_bytes(segment.rle)))

        for category_index in range(self.categories.num_categories):
            category_ground_truth = ground_truth[category_index]
            self._num_ground_truth[category_index] += len(category_ground_truth)
            if not predicted[category_index]:
                continue
            self._scores[category_index].append(
                np.asarray(predicted_scores[category_index], np.float64)
            )
            self._ious[category_index].append(
                _pairwise_iou(predicted[category_index], category_ground_truth)
            )
        self._seen.add(image_id)
        self._records.append(record)
        self._results.extend(results)

    @property
    def results(self) -> list[dict[str, Any]]:
        """The COCO segmentation results collected so far (a copy)."""
        return copy.deepcopy(self._results)

    def category_average_precision(self, category_index: int, iou_threshold: float) -> float:
        """AP^r of one category at one IoU threshold (NaN without ground truth)."""
        scores = self._scores[category_index]
        labels = [
            match_predictions(ious, image_scores, iou_threshold, self.matching)
            for image_scores, ious in zip(scores, self._ious[category_index], strict=True)
        ]
        return average_precision(
            np.concatenate(scores) if scores else np.zeros(0),
            np.concatenate(labels) if labels else np.zeros(0, bool),
            int(self._num_ground_truth[category_index]),
            self.ap_method,
        )

    def evaluate(self) -> dict[str, float]:
        """Computes mAP^r at every threshold and (optionally) the COCO segm metrics.

        Returns:
            The metrics listed in the module docstring (floats in [0, 1]; COCO -1 where it
            has no ground truth). Empty dict (with a warning) when no image was processed.
        """
        if not self._records:
            _logger.warning(
                "InstanceSegmentationEvaluator: no image was processed; nothing to evaluate."
            )
            return {}
        metrics: dict[str, float] = {}
        evaluated = np.flatnonzero(self._num_ground_truth > 0)
        lines = []
        for threshold in self.iou_thresholds:
            per_category = {
                int(c): self.category_average_precision(int(c), threshold) for c in evaluated
            }
            metrics[f"mAPr@{threshold:g}"] = (
                float(np.mean(list(per_category.values()))) if per_category else float("nan")
            )
            for category_index, value in per_category.items():
                name = self.categories.names[category_index]
                metrics[f"APr@{threshold:g}/{name}"] = value
            lines.append(f"mAP^r@{threshold:g} = {metrics[f'mAPr@{threshold:g}']:.4f}")
        if len(evaluated) < self.categories.num_categories:
            missing = [
                self.categories.names[c]
                for c in range(self.categories.num_categories)
                if self._num_ground_truth[c] == 0
            ]
            lines.append(f"categories without ground truth (not averaged): {missing}")

        results_path = write_json_file(self.output_dir, RESULTS_FILE_NAME, self._results)
        if self.coco_segm:
            metrics.update(self._coco_metrics(results_path))
            lines.append(self.summary)
        metrics["num_images"] = len(self._records)
        metrics["num_predictions"] = len(self._results)
        _logger.info("Instance segmentation evaluation:\n%s", "\n".join(lines))
        write_json_file(self.output_dir, METRICS_FILE_NAME, metrics, indent=2)
        return metrics

    def _coco_metrics(self, results_path: str | None) -> dict[str, float]:
        """pycocotools COCOeval 'segm' on the processed images."""
        if self._external_coco_gt is not None:
            coco_gt = self._external_coco_gt
        else:
            coco_gt = COCO()
            coco_gt.dataset = records_to_coco(self._records, self.categories)
            with contextlib.redirect_stdout(io.StringIO()):
                coco_gt.createIndex()
        if not self._results:
            _logger.warning(
                "InstanceSegmentationEvaluator: no instance was predicted in the %d evaluated "
                "images: every segm AP is 0 (%s is [], which COCO.loadRes rejects).",
                len(self._seen), results_path or "the results list",
            )
            coco_dt = empty_results(coco_gt)
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                # Loading the written file checks that the file itself is valid COCO results.
                coco_dt = coco_gt.loadRes(
                    results_path if results_path is not None else copy.deepcopy(self._results)
                )
        coco_eval = COCOeval(coco_gt, coco_dt, "segm")
        coco_eval.params.imgIds = sorted(self._seen)
        coco_eval.params.catIds = [int(i) for i in self.categories.ids]
        summary = run_cocoeval(coco_eval)
        self.coco_eval = coco_eval
        self.summary = summary
        metrics = {
            name: float(value)
            for name, value in zip(COCO_METRIC_NAMES, coco_eval.stats[:6], strict=True)
        }
        # precision: (T IoUs, R recalls, K categories, A areas, M maxDets); area 'all', 100 dets.
        # COCOeval sorts params.catIds, so look each category's id up in its order.
        precision = coco_eval.eval["precision"]
        evaluated_ids = [int(i) for i in coco_eval.params.catIds]
        for name, category_id in zip(self.categories.names, self.categories.ids, strict=True):
            values = precision[:, :, evaluated_ids.index(int(category_id)), 0, -1]
            values = values[values > -1]
            if values.size:
                metrics[f"segm_AP/{name}"] = float(values.mean())
        return metrics
