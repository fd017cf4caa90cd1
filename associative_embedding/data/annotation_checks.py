"""One validation pass over a COCO-format annotation file, before any work is done with it.

Every reader of COCO-format JSON (person keypoints: `coco.read_coco_keypoints`; instances:
`coco_instances.read_coco_instances_with_report`) and the keypoint evaluator's ground truth
(`evaluation.coco_keypoints.load_coco`) go through `check_coco_annotations`. It returns a cleaned
copy of the dataset and an `AnnotationCheckReport`; training reads its targets from the cleaned
copy and the evaluator scores against the same copy (`predictor.Split.ground_truth`), so
pycocotools never sees an annotation the reader rejected and both agree on who counts.

Structural problems raise `AnnotationError` (a ValueError) naming the file and the entry: not a
JSON object, a missing ``images``/``annotations``/``categories`` list, an image without an
integer ``id`` or a ``file_name``, a category without an integer ``id``, a category id listed
twice.

Per-entry rules, each counted under its name with example ids. **Skipped** issues drop data
(an image, an annotation, or a person's joints); with ``strict=True`` any of them raises
`AnnotationError` naming the file and the annotation ids instead. **Fixed** issues are repaired
in the cleaned copy and only counted.

Skipped:
    * 'image_id_duplicate': several different ``images`` entries share an id. Which one an
      annotation belongs to is unknowable, so all of them and their annotations
      ('annotation_of_dropped_image') are dropped.
    * 'annotation_malformed': an annotation that is not a JSON object.
    * 'annotation_id_invalid': an annotation without an integer ``id``.
    * 'annotation_duplicate': an exact copy (same id, same content) of an earlier annotation.
    * 'annotation_unknown_image': ``image_id`` not listed in ``images``.
    * 'category_unknown': ``category_id`` not listed in ``categories``.
    * 'keypoints_malformed': an annotation of a keypoint category (one whose ``keypoints`` list
      names K joints) whose ``keypoints`` is missing or not 3 K values. Its joints are dropped
      (all zero, ``num_keypoints`` 0): the person stays an unlabelled person, masked in
      training and ignored by the evaluator, as pycocotools ignores people without joints.
    * 'region_dropped_invalid_box': a person (or crowd) whose ``bbox`` is not 4 finite numbers
      with a non-negative width and height, and that has neither labelled joints nor a usable
      segmentation to rebuild it from: nothing is left to locate it.

Fixed:
    * 'image_duplicate': an exact copy of an earlier ``images`` entry (dropped, nothing lost).
    * 'annotation_id_duplicate_renumbered': a different annotation reusing an id (pycocotools
      keeps only the last annotation of an id and counts it twice, which lowers AP) gets a new
      id after the largest one in the file.
    * 'keypoint_not_finite': a joint with a non-numeric or non-finite value becomes (0, 0, 0).
    * 'visibility_invalid': a visibility flag outside 0..2 is clipped to that range.
    * 'num_keypoints_zero_mismatch': ``num_keypoints`` says 0 while joints have v > 0, or more
      than 0 while none has: recomputed from v > 0. This decides whether pycocotools counts the
      person, so it is a warning.
    * 'num_keypoints_mismatch' (informational; CrowdPose counts 12 of its 14 joints),
      'num_keypoints_missing' (informational): recomputed from v > 0 as well. The readers
      never use ``num_keypoints``; the evaluator sees the recomputed value.
    * 'keypoint_outside_image' and 'person_all_keypoints_outside': when the image's size is
      listed, a non-crowd person whose labelled joints all lie outside the image (outside
      [-0.5, W - 0.5) x [-0.5, H - 0.5), the pixel-centre convention of record.py) loses them:
      training cannot supervise any of them, so the evaluator does not count the person either.
      Single joints outside the image of a person with others inside are left to the evaluator
      as the file has them (the official evaluation scores them; training drops them).
    * 'box_repaired_from_keypoints' / 'box_repaired_from_segmentation': an invalid ``bbox`` of a
      keypoint-category annotation (missing, not 4 finite numbers, negative width or height) is
      rebuilt from the pixel extent of its labelled joints, else from its segmentation. Boxes of
      other categories are used by no reader (the instance reader computes them from the masks)
      and are left as they are.
    * 'area_missing': ``area`` missing, not finite or <= 0: the segmentation's mask area (when
      the image size is listed), else the box area, else 0.
    * 'crowd_keypoints_filled' (informational): a crowd region of a keypoint category without a
      valid ``keypoints`` list gets K zero joints (pycocotools reads them).

Everything else (segmentation details, image files) is checked by the readers, which know the
image sizes and decode the masks.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from absl import logging
from pycocotools import mask as mask_utils

from associative_embedding.data.annotation_fields import (
    as_int,
    is_number,
    keypoint_array,
    keypoint_box,
    segmentation_box,
    segmentation_rle,
    valid_box,
)

__all__ = [
    "FIXED_ISSUES",
    "INFORMATIONAL_ISSUES",
    "SKIPPED_ISSUES",
    "AnnotationCheckReport",
    "AnnotationError",
    "CheckedAnnotations",
    "check_coco_annotations",
    "load_annotation_json",
    "load_coco_annotations",
    "raise_for_skipped",
    "require_coco_format",
]

SKIPPED_ISSUES = frozenset({
    "image_id_duplicate", "annotation_of_dropped_image", "annotation_malformed",
    "annotation_id_invalid", "annotation_duplicate", "annotation_unknown_image",
    "category_unknown", "keypoints_malformed", "region_dropped_invalid_box",
})
FIXED_ISSUES = frozenset({
    "image_duplicate", "annotation_id_duplicate_renumbered", "keypoint_not_finite",
    "visibility_invalid", "num_keypoints_zero_mismatch", "num_keypoints_mismatch",
    "num_keypoints_missing", "keypoint_outside_image", "person_all_keypoints_outside",
    "box_repaired_from_keypoints", "box_repaired_from_segmentation", "area_missing",
    "crowd_keypoints_filled",
})
#: Counted for the record but normal in real data: logged at INFO, not WARNING.
INFORMATIONAL_ISSUES = frozenset({
    "num_keypoints_mismatch", "num_keypoints_missing", "crowd_keypoints_filled",
})

_MAX_EXAMPLES = 5


class AnnotationError(ValueError):
    """An annotation file that cannot be used as it is; the message names the file and ids."""


def load_annotation_json(path: str | os.PathLike) -> Any:
    """Loads a JSON annotation file with errors that name it.

    Raises:
        FileNotFoundError: the file does not exist (message names the path).
        ValueError: the file is not valid JSON (message names the path, line and column).
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: invalid JSON: {error}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 JSON file: {error}") from None


@dataclasses.dataclass
class AnnotationCheckReport:
    """What the validation pass of one annotation file skipped and fixed.

    Attributes:
        source: the annotation file.
        num_images: ``images`` entries in the file.
        num_annotations: ``annotations`` entries in the file.
        issues: issue name -> count (names in the module docstring).
        examples: issue name -> up to 5 example ids (annotation ids, else image ids).
        details: issue name -> up to 5 sentences naming the entry and what was wrong.
    """

    source: str
    num_images: int = 0
    num_annotations: int = 0
    issues: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: dict[str, list] = dataclasses.field(default_factory=dict)
    details: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def count(self, issue: str, example: Any = None, detail: str | None = None,
              amount: int = 1) -> None:
        """Adds `amount` to `issue`, remembering the first few examples and details."""
        if amount <= 0:
            return
        self.issues[issue] += amount
        if example is not None and len(self.examples.setdefault(issue, [])) < _MAX_EXAMPLES:
            self.examples[issue].append(example)
        if detail is not None and len(self.details.setdefault(issue, [])) < _MAX_EXAMPLES:
            self.details[issue].append(detail)

    @property
    def skipped(self) -> dict[str, int]:
        """Issue -> count of the issues that dropped data."""
        return {name: n for name, n in sorted(self.issues.items()) if name in SKIPPED_ISSUES}

    @property
    def fixed(self) -> dict[str, int]:
        """Issue -> count of the issues that were repaired."""
        return {name: n for name, n in sorted(self.issues.items()) if name not in SKIPPED_ISSUES}

    def summary(self) -> str:
        """One paragraph: what was checked, skipped (with example ids) and fixed."""
        def listing(counts: Mapping[str, int]) -> str:
            return ", ".join(
                f"{name}={count}"
                + (f" (e.g. {self.examples[name]})" if self.examples.get(name) else "")
                for name, count in counts.items()
            )

        text = (f"{self.source}: checked {self.num_images} images and "
                f"{self.num_annotations} annotations.")
        if self.skipped:
            text += f" Skipped: {listing(self.skipped)}."
        if self.fixed:
            text += f" Fixed: {listing(self.fixed)}."
        return text

    def log(self) -> None:
        """Logs the summary: WARNING when anything beyond the informational issues was found."""
        problems = set(self.issues) - INFORMATIONAL_ISSUES
        (logging.warning if problems else logging.info)("%s", self.summary())

    def raise_if_skipped(self) -> None:
        """Raises `AnnotationError` naming the file and ids when anything was skipped."""
        raise_for_skipped(self.source, self.issues, self.examples, SKIPPED_ISSUES, self.details)


def raise_for_skipped(
    source: str,
    issues: Mapping[str, int],
    examples: Mapping[str, list],
    skipped_issues: Iterable[str],
    details: Mapping[str, list[str]] | None = None,
    describe: Callable[[Any], str] = "annotation {}".format,
) -> None:
    """The strict mode of every reader: an error listing each skip reason with examples.

    Args:
        source: the annotation file (first words of the message).
        issues: issue name -> count.
        examples: issue name -> example ids.
        skipped_issues: the names that mean data was dropped.
        details: issue name -> sentences naming the entries (used instead of the bare ids).
        describe: how an example id is named when an issue has no details.

    Raises:
        AnnotationError: when any issue of `skipped_issues` was counted.
    """
    skipped_issues = frozenset(skipped_issues)
    found = {name: n for name, n in sorted(issues.items()) if name in skipped_issues and n > 0}
    if not found:
        return
    lines = []
    for name, count in found.items():
        described = (details or {}).get(name) or [
            describe(example) for example in examples.get(name, [])
        ]
        lines.append(f"  {name} ({count}): " + "; ".join(described))
    raise AnnotationError(
        f"{source}: {sum(found.values())} annotation entries would be skipped, and strict "
        "checking is on (config.dataset.strict_annotations / --strict); fix the file, or turn "
        "strict off to skip and count them:\n" + "\n".join(lines)
    )


@dataclasses.dataclass
class CheckedAnnotations:
    """A validated COCO-format dataset.

    Attributes:
        dataset: the cleaned copy (same keys as the file; ``images`` and ``annotations``
            cleaned as the module docstring says; unmodified entries are shared with the
            original, not copied).
        report: what was skipped and fixed.
    """

    dataset: dict
    report: AnnotationCheckReport

    @property
    def source(self) -> str:
        return self.report.source


def require_coco_format(data: Any, source: str) -> None:
    """Raises `AnnotationError` naming `source` unless `data` has the three COCO lists."""
    if not isinstance(data, dict):
        raise AnnotationError(f"{source}: expected a JSON object, got {type(data).__name__}.")
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise AnnotationError(f"{source}: not COCO format, missing keys {missing}.")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data[key], list):
            raise AnnotationError(
                f"{source}: '{key}' must be a list, got {type(data[key]).__name__}."
            )


def load_coco_annotations(
    path: str | os.PathLike, *, strict: bool = False, log: bool = True
) -> CheckedAnnotations:
    """Loads and checks a COCO-format file (`load_annotation_json`, `check_coco_annotations`).

    Args:
        path: the annotation JSON.
        strict: raise instead of skipping (module docstring).
        log: log the report (readers that log their own report, which includes this one,
            pass False).
    """
    path = os.fspath(path)
    checked = check_coco_annotations(load_annotation_json(path), path, strict=strict)
    if log:
        checked.report.log()
    return checked


def _check_categories(categories: list, source: str) -> dict[int, int]:
    """Category id -> number of joints K (0 for a category without a keypoint list)."""
    joints: dict[int, int] = {}
    for index, category in enumerate(categories):
        category_id = as_int(category.get("id")) if isinstance(category, dict) else None
        if category_id is None:
            raise AnnotationError(
                f"{source}: categories[{index}] lacks an integer 'id': {category!r:.200}"
            )
        if category_id in joints:
            raise AnnotationError(f"{source}: duplicate category id {category_id}.")
        names = category.get("keypoints")
        joints[category_id] = len(names) if isinstance(names, list) else 0
    return joints


def _check_images(
    images: list, source: str, report: AnnotationCheckReport
) -> tuple[list, dict[int, tuple[int, int] | None], set[int]]:
    """(kept image entries, id -> (height, width) or None, ids dropped as ambiguous)."""
    by_id: dict[int, list[dict]] = collections.defaultdict(list)
    order: list[int] = []
    for index, image in enumerate(images):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise AnnotationError(
                f"{source}: images[{index}] lacks 'id' or 'file_name': {image!r:.200}"
            )
        image_id = as_int(image["id"])
        if image_id is None:
            raise AnnotationError(
                f"{source}: images[{index}] has a non-integer id {image['id']!r}."
            )
        if image_id not in by_id:
            order.append(image_id)
        by_id[image_id].append(image)
    kept, sizes, dropped = [], {}, set()
    for image_id in order:
        entries = by_id[image_id]
        first = entries[0]
        if any(entry != first for entry in entries[1:]):
            names = sorted({str(entry.get("file_name")) for entry in entries})
            report.count(
                "image_id_duplicate", image_id,
                f"image id {image_id} is listed {len(entries)} times with different entries "
                f"(file names {names}); its annotations cannot be attributed",
            )
            dropped.add(image_id)
            continue
        report.count("image_duplicate", image_id, amount=len(entries) - 1)
        kept.append(first)
        height, width = as_int(first.get("height")), as_int(first.get("width"))
        sizes[image_id] = (height, width) if height and width and height > 0 and width > 0 \
            else None
    return kept, sizes, dropped


def check_coco_annotations(
    data: Any, source: str, *, strict: bool = False
) -> CheckedAnnotations:
    """Validates a loaded COCO-format dataset once (rules in the module docstring).

    Args:
        data: the parsed JSON.
        source: the file it came from (named in messages).
        strict: raise `AnnotationError` naming the file and ids when anything is skipped.

    Returns:
        The cleaned dataset and the report (not logged here; see `load_coco_annotations`).

    Raises:
        AnnotationError: a structural problem (module docstring), or with `strict` any skip.
    """
    require_coco_format(data, source)
    report = AnnotationCheckReport(
        source=source, num_images=len(data["images"]), num_annotations=len(data["annotations"])
    )
    joints_of = _check_categories(data["categories"], source)
    images, sizes, dropped_images = _check_images(data["images"], source, report)
    annotations = _check_annotations(
        data["annotations"], joints_of, sizes, dropped_images, report
    )
    if strict:
        report.raise_if_skipped()
    return CheckedAnnotations({**data, "images": images, "annotations": annotations}, report)


def _check_annotations(
    annotations: list,
    joints_of: dict[int, int],
    sizes: dict[int, tuple[int, int] | None],
    dropped_images: set[int],
    report: AnnotationCheckReport,
) -> list[dict]:
    """The cleaned annotations, in file order.

    Three passes keep a file of 250k annotations to a few seconds: ids and references one by
    one (plain Python), keypoints of each keypoint category as one array, boxes and areas.
    """
    largest_id = max(
        (value for value in (as_int(a.get("id")) for a in annotations if isinstance(a, dict))
         if value is not None),
        default=0,
    )
    next_id = largest_id + 1
    seen: dict[int, dict] = {}
    kept: list[tuple[dict, int, tuple[int, int] | None, str]] = []
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            report.count("annotation_malformed", f"annotations[{index}]",
                         f"annotations[{index}] is not a JSON object: {annotation!r:.100}")
            continue
        annotation_id = as_int(annotation.get("id"))
        raw_image_id = annotation.get("image_id")
        image_id = as_int(raw_image_id)
        where = f"annotation {annotation.get('id')!r} (image {raw_image_id!r})"
        if annotation_id is None:
            report.count("annotation_id_invalid", f"annotations[{index}]",
                         f"annotations[{index}] (image {raw_image_id!r}) has no integer 'id' "
                         f"(got {annotation.get('id')!r})")
            continue
        if image_id in dropped_images:
            report.count("annotation_of_dropped_image", annotation_id,
                         f"{where}: its image id is listed several times with different entries")
            continue
        if image_id not in sizes:
            report.count("annotation_unknown_image", annotation_id,
                         f"{where}: image_id {raw_image_id!r} is not listed in 'images'")
            continue
        category_id = as_int(annotation.get("category_id"))
        if category_id not in joints_of:
            report.count("category_unknown", annotation_id,
                         f"{where}: category_id {annotation.get('category_id')!r} is not in the "
                         f"file's categories {sorted(joints_of)}")
            continue
        if annotation_id in seen:
            if annotation == seen[annotation_id]:
                report.count("annotation_duplicate", annotation_id,
                             f"{where}: an exact copy of an earlier annotation")
                continue
            report.count("annotation_id_duplicate_renumbered", annotation_id,
                         f"{where}: id already used by another annotation; renumbered {next_id}")
            fixed = dict(annotation, id=next_id)
            next_id += 1
        else:
            seen[annotation_id] = annotation
            fixed = dict(annotation)
        kept.append((fixed, joints_of[category_id], sizes[image_id], where))

    for num_joints in sorted({joints for _, joints, _, _ in kept if joints}):
        _clean_keypoints([item for item in kept if item[1] == num_joints], num_joints, report)
    return [annotation for annotation, num_joints, size, where in kept
            if _clean_box_and_area(annotation, num_joints, size, where, report)]




def _clean_box_and_area(
    annotation: dict,
    num_joints: int,
    size: tuple[int, int] | None,
    where: str,
    report: AnnotationCheckReport,
) -> bool:
    """Repairs ``bbox`` (keypoint categories) and ``area`` in place; False = drop it."""
    annotation_id = annotation["id"]
    box = annotation.get("bbox")
    if num_joints and not valid_box(box):
        keypoints = np.asarray(annotation["keypoints"], np.float64).reshape(num_joints, 3)
        repaired = None if annotation.get("iscrowd") else keypoint_box(keypoints)
        issue = "box_repaired_from_keypoints"
        if repaired is None:
            repaired = segmentation_box(annotation, size)
            issue = "box_repaired_from_segmentation"
        if repaired is None:
            report.count("region_dropped_invalid_box", annotation_id,
                         f"{where}: bbox {box!r} is not 4 finite numbers with a non-negative "
                         "size, and neither labelled joints nor a usable segmentation locate "
                         "the person")
            return False
        report.count(issue, annotation_id)
        annotation["bbox"] = box = repaired
    area = annotation.get("area")
    if not is_number(area) or area <= 0:
        report.count("area_missing", annotation_id)
        rle = segmentation_rle(annotation, size)
        area = float(mask_utils.area(rle)) if rle is not None else 0.0
        if area <= 0 and valid_box(box):
            area = float(box[2] * box[3])
        annotation["area"] = area
    return True


def _clean_keypoints(
    items: list[tuple[dict, int, tuple[int, int] | None, str]],
    num_joints: int,
    report: AnnotationCheckReport,
) -> None:
    """Checks and repairs ``keypoints`` and ``num_keypoints`` of one keypoint category's
    annotations in place, as one (N, K, 3) array (rules in the module docstring)."""
    count = len(items)
    crowd = np.array([bool(annotation.get("iscrowd")) for annotation, *_ in items])
    keypoints = np.zeros((count, num_joints, 3), np.float64)
    malformed = np.zeros(count, bool)
    well_formed = []
    for row, (annotation, _, _, where) in enumerate(items):
        raw = annotation.get("keypoints")
        if isinstance(raw, list) and len(raw) == 3 * num_joints:
            well_formed.append(row)
            continue
        malformed[row] = True
        if crowd[row]:
            report.count("crowd_keypoints_filled", annotation["id"])
            continue
        length = f"has {len(raw)} values" if isinstance(raw, list) else (
            "is missing" if raw is None else f"is a {type(raw).__name__}")
        report.count("keypoints_malformed", annotation["id"],
                     f"{where}: 'keypoints' {length}, expected {3 * num_joints} (3 per joint "
                     f"of its category's {num_joints}); its joints are dropped and the person "
                     "is masked in training and ignored in evaluation")
    if well_formed:
        rows = [items[row][0]["keypoints"] for row in well_formed]
        try:
            values = np.array(rows, np.float64).reshape(len(rows), num_joints, 3)
        except (TypeError, ValueError):  # None or text somewhere: row by row
            values = np.stack([keypoint_array(raw, num_joints) for raw in rows])
        keypoints[well_formed] = values
    changed = malformed.copy()

    broken = ~np.all(np.isfinite(keypoints), axis=2)
    keypoints[broken] = 0.0
    visibility = keypoints[..., 2]
    out_of_range = (visibility < 0) | (visibility > 2)
    keypoints[..., 2] = np.clip(visibility, 0, 2)
    labelled = keypoints[..., 2] > 0
    # num_keypoints is compared with the file's own flags, before joints are dropped below.
    labelled_in_file = labelled.sum(axis=1)

    heights = np.array([size[0] if size else np.inf for _, _, size, _ in items], np.float64)
    widths = np.array([size[1] if size else np.inf for _, _, size, _ in items], np.float64)
    x, y = keypoints[..., 0], keypoints[..., 1]
    inside = ((x >= -0.5) & (x < widths[:, None] - 0.5)
              & (y >= -0.5) & (y < heights[:, None] - 0.5))
    all_outside = ~crowd & labelled.any(axis=1) & ~np.any(labelled & inside, axis=1)
    outside_counts = labelled_in_file.copy()
    keypoints[all_outside] = 0.0
    labelled[all_outside] = False

    flagged = broken.any(axis=1) | out_of_range.any(axis=1) | all_outside
    changed |= flagged
    for row in np.flatnonzero(flagged):
        annotation_id = items[row][0]["id"]
        report.count("keypoint_not_finite", annotation_id, amount=int(broken[row].sum()))
        report.count("visibility_invalid", annotation_id, amount=int(out_of_range[row].sum()))
        if all_outside[row]:
            report.count("keypoint_outside_image", annotation_id,
                         amount=int(outside_counts[row]))
            report.count("person_all_keypoints_outside", annotation_id)

    counts = labelled.sum(axis=1)
    for row, (annotation, _, _, where) in enumerate(items):
        if changed[row]:
            annotation["keypoints"] = [
                int(v) if v == int(v) else float(v) for v in keypoints[row].reshape(-1).tolist()
            ]
        stated = annotation.get("num_keypoints")
        in_file = int(labelled_in_file[row])
        if malformed[row]:
            pass  # already counted: the joints themselves were unusable
        elif not is_number(stated):
            report.count("num_keypoints_missing", annotation["id"])
        elif stated != in_file:
            issue = "num_keypoints_zero_mismatch" if (stated > 0) != (in_file > 0) else (
                "num_keypoints_mismatch")
            report.count(issue, annotation["id"],
                         f"{where}: num_keypoints is {stated!r} but {in_file} joints have v > 0")
        annotation["num_keypoints"] = int(counts[row])
