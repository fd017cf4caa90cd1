"""COCO-style keypoint evaluation (AP/AR over OKS) with pycocotools, for any number of joints.

The evaluator follows the detectron2 protocol: ``reset()``, then ``process(...)`` once per batch,
then ``evaluate()`` which returns a metrics dict and (optionally) writes files:

    <output_dir>/keypoint_results.json   COCO results format, accepted by ``COCO.loadRes``:
                                         [{"image_id", "category_id", "keypoints": [x, y, v]*K,
                                           "score"}, ...]
    <output_dir>/metrics.json            {"AP", "AP50", "AP75", "APM", "APL",
                                          "AR", "AR50", "AR75", "ARM", "ARL",
                                          "num_images", "num_detections"}

Conventions:
    * Predictions are poses (P, K, 3) as (x, y, score) in original-image pixel-centre coordinates
      (see ``associative_embedding.core.record``), with person scores (P,). COCO keypoint
      coordinates are continuous positions on the same grid (OKS only uses differences, so the
      half-pixel offset between "centre" and "corner" conventions cancels between GT and results).
    * Present joints are clipped into their image (``data.image_bounds``; the size comes from
      the record, else the ground truth's image entry) before they are written: a very
      elongated image otherwise gets every decoded joint outside it.
    * A joint is *present* when its score is > 0 and its coordinates are finite. The third value
      written per joint is the joint's score (as HigherHRNet and mmpose write it; COCOeval ignores
      it). People with no present joint are not written (as the official code does).
    * ``fill_missing_joints=True`` reproduces the official pose-ae-train writer: absent joints are
      written at the mean of the person's present joints, and every joint gets v = 1. It changes
      nothing for matched people (OKS ignores joints that are unlabelled in the ground truth) but
      keeps the detection's box (hence its COCO area range) from stretching to (0, 0).
    * The set of images evaluated is exactly the set passed to ``process`` (images without any
      detection count: their ground-truth people become misses).
    * OKS sigmas come from the dataset's ``KeypointInfo`` (COCO 17, CrowdPose 14, ...) and are set
      on ``COCOeval.params.kpt_oks_sigmas``. CrowdPose's official crowdposetools reports AP by
      crowd index; this evaluator reports the COCO-style AP/AR on CrowdPose's annotation file.
    * pycocotools reports -1 for a metric with no ground truth in its area range; kept as is.
    * The ground truth is the cleaned copy of the annotation file made by the readers' shared
      check (``data.annotation_checks``): ``load_coco`` builds it from a path, and
      ``predictor.build_evaluator`` hands over the copy its reader made. pycocotools never sees
      an annotation the reader rejected (a keypoint list of the wrong length made it crash),
      duplicate ids are gone (they silently lowered AP) and ``num_keypoints`` is recomputed
      from the visibility flags (so the evaluator ignores exactly the people that training
      masks). A ``COCO`` object passed in is used as it is.
    * No detections at all: the results file is ``[]``, which ``COCO.loadRes`` rejects (it
      reads the first entry); ``load_results`` and ``evaluate`` turn it into an empty result
      set, so every AP is 0 (-1 without ground truth), with a warning saying why.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from associative_embedding.core.keypoint_info import KeypointInfo, keypoint_info_for_num_joints
from associative_embedding.data import annotation_checks, image_bounds

METRIC_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
RESULTS_FILE_NAME = "keypoint_results.json"
#: Written next to an empty results file, saying why it is empty and how to read it.
EMPTY_RESULTS_NOTE_NAME = "keypoint_results_note.txt"
METRICS_FILE_NAME = "metrics.json"

_logger = logging.getLogger(__name__)


def coco_from_dataset(dataset: Mapping[str, Any]) -> COCO:
    """A ``COCO`` object of an in-memory dataset dict, built quietly (pycocotools prints)."""
    coco = COCO()
    coco.dataset = dict(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_coco(annotation_file: str | os.PathLike, *, strict: bool = False) -> COCO:
    """Loads a COCO annotation file through the readers' check, as its cleaned copy.

    The check's report is logged (WARNING when something was skipped or fixed); see the
    module docstring for why the evaluator never reads the raw file.

    Args:
        annotation_file: a COCO-format JSON file.
        strict: raise instead of skipping annotations (``data.annotation_checks``).

    Raises:
        FileNotFoundError: naming the file when it does not exist.
        ValueError: naming the file when it is not valid COCO-format JSON;
            ``annotation_checks.AnnotationError`` with `strict`.
    """
    path = os.fspath(annotation_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    checked = annotation_checks.load_coco_annotations(path, strict=strict)
    return coco_from_dataset(checked.dataset)


def load_results(coco_gt: COCO, results: str | os.PathLike | list[dict[str, Any]]) -> COCO:
    """``coco_gt.loadRes`` that also accepts no detections, and names the culprit otherwise.

    Args:
        coco_gt: the ground truth.
        results: a COCO results JSON file or the list itself.

    Returns:
        The results as a ``COCO`` object (empty for ``[]``).

    Raises:
        ValueError: naming the file (or 'results') when an entry lacks a field loadRes needs
            or names an image outside the ground truth.
    """
    source = os.fspath(results) if not isinstance(results, list) else "results"
    entries = (annotation_checks.load_annotation_json(source) if not isinstance(results, list)
               else results)
    if not isinstance(entries, list):
        raise ValueError(f"{source}: COCO results must be a JSON list, got "
                         f"{type(entries).__name__}.")
    if not entries:
        return empty_results(coco_gt)
    for index, entry in enumerate(entries):
        missing = [key for key in ("image_id", "category_id", "score")
                   if not isinstance(entry, Mapping) or key not in entry]
        if missing:
            raise ValueError(f"{source}: result {index} lacks {missing}: {entry!r:.200}")
    unknown = sorted({entry["image_id"] for entry in entries} - set(coco_gt.imgs))
    if unknown:
        raise ValueError(
            f"{source}: {len(unknown)} result image ids are not in the ground truth, e.g. "
            f"{unknown[:5]}."
        )
    if isinstance(results, list):
        # loadRes adds 'id', 'area' and 'bbox' to each entry and changes nothing else: copies
        # of the entries keep the caller's list as it was (a deep copy costs ~0.3 s per
        # 5000 people). Entries read from the file here are nobody else's.
        entries = [dict(entry) for entry in entries]
    with contextlib.redirect_stdout(io.StringIO()):
        return coco_gt.loadRes(entries)


def poses_to_coco_results(
    image_id: int,
    poses: np.ndarray,
    scores: np.ndarray,
    *,
    category_id: int = 1,
    fill_missing_joints: bool = False,
) -> list[dict[str, Any]]:
    """Converts one image's poses to COCO keypoint results.

    Args:
        image_id: the COCO image id.
        poses: (P, K, 3) float, (x, y, score) in image pixels.
        scores: (P,) float person scores.
        category_id: the category of the results (the person category of the ground truth).
        fill_missing_joints: official writer: absent joints at the mean of present joints and
            v = 1 for every joint (see the module docstring).

    Returns:
        One dict per person with at least one present joint, in input order.

    Raises:
        ValueError: when shapes disagree.
    """
    poses = np.asarray(poses, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if poses.size == 0:
        return []
    if poses.ndim != 3 or poses.shape[-1] != 3:
        raise ValueError(f"image {image_id}: poses must be (P, K, 3), got {poses.shape}.")
    if scores.shape[0] != poses.shape[0]:
        raise ValueError(
            f"image {image_id}: {poses.shape[0]} poses but {scores.shape[0]} person scores."
        )
    present = (poses[..., 2] > 0) & np.all(np.isfinite(poses[..., :2]), axis=-1)
    results = []
    for person, person_present, person_score in zip(poses, present, scores, strict=True):
        if not person_present.any():
            continue
        keypoints = person.copy()
        if fill_missing_joints:
            keypoints[~person_present, :2] = keypoints[person_present, :2].mean(axis=0)
            keypoints[:, 2] = 1.0
        else:
            # Absent joints: a finite placeholder (COCO JSON has no NaN), score 0.
            keypoints[~person_present] = 0.0
        results.append(
            {
                "image_id": int(image_id),
                "category_id": int(category_id),
                "keypoints": [float(value) for value in keypoints.reshape(-1)],
                "score": float(person_score),
            }
        )
    return results


def _keypoint_category(coco_gt: COCO, category_id: int | None) -> dict[str, Any]:
    """Returns the ground-truth category that carries keypoints (the person category)."""
    categories = coco_gt.dataset.get("categories", [])
    if category_id is not None:
        matches = [category for category in categories if category["id"] == category_id]
        if not matches:
            raise ValueError(f"category_id {category_id} is not in the ground truth.")
        return matches[0]
    with_keypoints = [category for category in categories if category.get("keypoints")]
    if len(with_keypoints) != 1:
        raise ValueError(
            "cannot infer the keypoint category: the ground truth has "
            f"{len(with_keypoints)} categories with a 'keypoints' list; pass category_id."
        )
    return with_keypoints[0]


def _ensure_areas(coco_gt: COCO) -> COCO:
    """COCOeval needs 'area' on every annotation; some datasets (CrowdPose) omit it.

    Missing areas are filled with the box area w * h on a copy, leaving the caller's object
    untouched.
    """
    annotations = coco_gt.dataset.get("annotations", [])
    if all("area" in annotation for annotation in annotations):
        return coco_gt
    dataset = copy.deepcopy(coco_gt.dataset)
    for annotation in dataset["annotations"]:
        if "area" not in annotation:
            _, _, box_width, box_height = annotation.get("bbox", (0.0, 0.0, 0.0, 0.0))
            annotation["area"] = float(box_width) * float(box_height)
    patched = COCO()
    patched.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        patched.createIndex()
    return patched


def empty_results(coco_gt: COCO) -> COCO:
    """A results object with no detections (``COCO.loadRes`` fails on an empty list).

    Args:
        coco_gt: the ground truth, whose images and categories the results object copies.
    """
    results = COCO()
    results.dataset["images"] = list(coco_gt.dataset["images"])
    results.dataset["categories"] = copy.deepcopy(coco_gt.dataset["categories"])
    results.dataset["annotations"] = []
    with contextlib.redirect_stdout(io.StringIO()):
        results.createIndex()
    return results


def write_json_file(
    output_dir: str | os.PathLike | None, file_name: str, value: Any, *, indent: int | None = None
) -> str | None:
    """Writes `value` as JSON to ``output_dir/file_name``, creating the folder.

    The evaluators write their results and metrics files this way.

    Returns:
        The file's path, or None (nothing written) when `output_dir` is None.
    """
    if output_dir is None:
        return None
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, file_name)
    # json.dumps, not json.dump: only the one-shot form uses the C encoder (same text, twice
    # as fast on a results file of thousands of people).
    text = json.dumps(value, indent=indent)
    with open(path, "w") as handle:
        handle.write(text)
    return path


def run_cocoeval(coco_eval: COCOeval) -> str:
    """Runs ``evaluate``, ``accumulate`` and ``summarize`` and returns what they print.

    pycocotools prints its progress and the summary table; both are captured, so the caller
    decides what to log.
    """
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return printed.getvalue()


def empty_results_note(results_name: str, num_images: int) -> str:
    """The note written next to a results file without detections."""
    return (
        f"No person was detected in the {num_images} images, so {results_name} is an empty "
        "list ([]).\npycocotools' COCO.loadRes cannot load an empty list (it reads the first "
        "result); there is nothing to score: every AP is 0.\n"
        "associative_embedding.evaluation.coco_keypoints.load_results(coco_gt, path) loads it "
        "as an empty result set.\n"
    )


def _image_id_of(item: Any) -> int:
    """Image id from an int, a record with ``image_id`` or a dict with 'image_id'."""
    if isinstance(item, Mapping):
        return int(item["image_id"])
    if hasattr(item, "image_id"):
        return int(item.image_id)
    return int(item)


def _image_size(item: Any, entry: Mapping[str, Any]) -> tuple[int, int] | None:
    """(height, width) of a record or dict item, else of the ground truth's image entry."""
    for source in (item, entry):
        if isinstance(source, Mapping):
            height, width = source.get("height"), source.get("width")
        else:
            height, width = getattr(source, "height", None), getattr(source, "width", None)
        if isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer)) and (
                height > 0 and width > 0):
            return int(height), int(width)
    return None


def _unpack_prediction(prediction: Any) -> tuple[np.ndarray, np.ndarray]:
    """(poses, scores) from a dict {'poses', 'scores'} or a (poses, scores) pair."""
    if isinstance(prediction, Mapping):
        return np.asarray(prediction["poses"]), np.asarray(prediction["scores"])
    poses, scores = prediction
    return np.asarray(poses), np.asarray(scores)


class CocoKeypointEvaluator:
    """Collects pose predictions and evaluates them with pycocotools' keypoint COCOeval.

    Example:
        evaluator = CocoKeypointEvaluator("person_keypoints_val2017.json", output_dir="out")
        for records, predictions in batches:
            evaluator.process(records, predictions)   # predictions: [{'poses', 'scores'}]
        metrics = evaluator.evaluate()                # {'AP': ..., 'AP50': ..., ...}
    """

    def __init__(
        self,
        annotations: str | os.PathLike | COCO | Mapping[str, Any],
        *,
        keypoint_info: KeypointInfo | None = None,
        sigmas: Sequence[float] | np.ndarray | None = None,
        category_id: int | None = None,
        output_dir: str | os.PathLike | None = None,
        fill_missing_joints: bool = False,
        log_summary: bool = True,
    ) -> None:
        """Creates the evaluator.

        Args:
            annotations: a COCO keypoint annotation file (read through ``load_coco``), a
                loaded ``COCO`` object or a dataset dict already cleaned by the readers'
                check (``predictor.Split.ground_truth``); the latter two are used as given.
            keypoint_info: the dataset's metadata; its OKS sigmas are used. Default: the
                registered dataset with the ground truth's number of joints.
            sigmas: (K,) OKS sigmas overriding ``keypoint_info``.
            category_id: the ground-truth category to evaluate; default: the one category
                that has a 'keypoints' list.
            output_dir: where the results JSON and metrics.json are written (None: nothing).
            fill_missing_joints: the official writer for absent joints (module docstring).
            log_summary: log pycocotools' summary table at each `evaluate` (INFO). Off for
                callers that print their own summary (the training evaluation, which
                evaluates twice: predictions and a diagnostic); the table stays in `summary`.

        Raises:
            ValueError: when the sigmas do not match the ground truth's joint count.
        """
        if isinstance(annotations, COCO):
            coco_gt = annotations
        elif isinstance(annotations, Mapping):
            coco_gt = coco_from_dataset(annotations)
        else:
            coco_gt = load_coco(annotations)
        self._coco_gt = _ensure_areas(coco_gt)
        category = _keypoint_category(self._coco_gt, category_id)
        self.category_id = int(category["id"])
        num_joints = len(category.get("keypoints", [])) or None
        if sigmas is None:
            if keypoint_info is None:
                if num_joints is None:
                    raise ValueError(
                        "the ground-truth category has no 'keypoints' list: pass keypoint_info "
                        "or sigmas."
                    )
                keypoint_info = keypoint_info_for_num_joints(num_joints)
            sigmas = keypoint_info.sigmas_array
        self.sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
        if num_joints is not None and self.sigmas.shape[0] != num_joints:
            raise ValueError(
                f"{self.sigmas.shape[0]} OKS sigmas for a ground truth with {num_joints} joints."
            )
        self.num_joints = int(self.sigmas.shape[0])
        self.output_dir = None if output_dir is None else os.fspath(output_dir)
        self.fill_missing_joints = fill_missing_joints
        self.log_summary = log_summary
        self.coco_eval: COCOeval | None = None
        self.summary = ""
        self.reset()

    @property
    def coco_gt(self) -> COCO:
        return self._coco_gt

    def reset(self) -> None:
        """Forgets every processed image."""
        self._image_ids: list[int] = []
        self._seen: set[int] = set()
        self._results: list[dict[str, Any]] = []

    def process(self, images: Sequence[Any], predictions: Sequence[Any]) -> None:
        """Adds a batch of predictions.

        Args:
            images: image ids, or records / dicts carrying ``image_id``; one per prediction.
            predictions: per image, a dict {'poses': (P, K, 3), 'scores': (P,)} or a
                (poses, scores) pair, poses as (x, y, score) in image pixels.

        Raises:
            ValueError: on a length mismatch, an image id absent from the ground truth, an
                image processed twice, or poses with the wrong number of joints.
        """
        if len(images) != len(predictions):
            raise ValueError(f"{len(images)} images but {len(predictions)} predictions.")
        for image, prediction in zip(images, predictions, strict=True):
            image_id = _image_id_of(image)
            if image_id not in self._coco_gt.imgs:
                raise ValueError(f"image id {image_id} is not in the ground-truth annotations.")
            if image_id in self._seen:
                raise ValueError(f"image id {image_id} was processed twice.")
            poses, scores = _unpack_prediction(prediction)
            if poses.size and (poses.ndim != 3 or poses.shape[1] != self.num_joints):
                raise ValueError(
                    f"image {image_id}: poses must be (P, {self.num_joints}, 3), "
                    f"got {poses.shape}."
                )
            size = _image_size(image, self._coco_gt.imgs[image_id])
            if size is not None and poses.size:
                poses = image_bounds.clip_poses_to_image(poses, *size)
            self._seen.add(image_id)
            self._image_ids.append(image_id)
            self._results.extend(
                poses_to_coco_results(
                    image_id,
                    poses,
                    scores,
                    category_id=self.category_id,
                    fill_missing_joints=self.fill_missing_joints,
                )
            )

    @property
    def results(self) -> list[dict[str, Any]]:
        """The COCO results collected so far (a copy)."""
        return copy.deepcopy(self._results)

    def evaluate(self) -> dict[str, float]:
        """Runs COCOeval on the processed images.

        Returns:
            {'AP', 'AP50', 'AP75', 'APM', 'APL', 'AR', 'AR50', 'AR75', 'ARM', 'ARL'} as floats
            in [0, 1] (-1 where pycocotools has no ground truth), plus 'num_images' and
            'num_detections'. Empty dict (with a warning) when no image was processed.
        """
        if not self._image_ids:
            _logger.warning("CocoKeypointEvaluator: no image was processed; nothing to evaluate.")
            return {}
        results_path = write_json_file(self.output_dir, RESULTS_FILE_NAME, self._results)
        if results_path is not None:
            note_path = os.path.join(self.output_dir, EMPTY_RESULTS_NOTE_NAME)
            if not self._results:
                with open(note_path, "w") as handle:
                    handle.write(empty_results_note(RESULTS_FILE_NAME, len(self._image_ids)))
            elif os.path.exists(note_path):
                os.remove(note_path)  # from an earlier evaluation into the same folder
        if not self._results:
            _logger.warning(
                "CocoKeypointEvaluator: no person was detected in the %d evaluated images: "
                "every AP is 0.%s", len(self._image_ids),
                f" {results_path} holds [] (COCO.loadRes rejects an empty list; "
                "coco_keypoints.load_results reads it)." if results_path else "",
            )
        # Loading the written file checks that the file itself is valid COCO results.
        coco_dt = load_results(
            self._coco_gt, results_path if results_path is not None else self._results
        )
        coco_eval = COCOeval(self._coco_gt, coco_dt, "keypoints")
        coco_eval.params.imgIds = sorted(self._image_ids)
        coco_eval.params.catIds = [self.category_id]
        coco_eval.params.kpt_oks_sigmas = self.sigmas
        summary = run_cocoeval(coco_eval)
        if self.log_summary:
            _logger.info("COCO keypoint evaluation:\n%s", summary)
        self.coco_eval = coco_eval
        self.summary = summary
        metrics: dict[str, float] = {
            name: float(value) for name, value in zip(METRIC_NAMES, coco_eval.stats, strict=True)
        }
        metrics["num_images"] = len(self._image_ids)
        metrics["num_detections"] = len(self._results)
        write_json_file(self.output_dir, METRICS_FILE_NAME, metrics, indent=2)
        return metrics
