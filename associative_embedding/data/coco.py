"""COCO-format person-keypoint reader: annotation JSON + image folder -> `PoseRecord`s.

Reads any COCO-format keypoint file (COCO, CrowdPose, OCHuman, PoseTrack18, the synthetic set)
with any number of joints K, taken from the person category's `keypoints` list. Masks use
pycocotools (`pycocotools.mask`); the JSON is read directly so that every malformed item can be
handled and counted instead of crashing inside `COCO.annToRLE`.

The file is first checked once by `annotation_checks.check_coco_annotations` (duplicate ids,
references, keypoint lengths, boxes, visibility vs ``num_keypoints``; rules and issue names in
that module), and everything below reads its cleaned copy, which the report keeps
(`ReadReport.checked`) so that the evaluator scores against exactly what was read. With
``strict=True`` anything that check would skip raises `annotation_checks.AnnotationError`
naming the file and the annotation ids, before any image is touched.

What becomes what (per image):
    * usable person (``iscrowd`` false and at least one labelled joint inside the image) -> a row
      of ``keypoints``/``boxes``/``areas``/``annotation_ids``.
    * crowd annotation -> its region goes into the ignore mask.
    * person with no labelled joint ("unlabelled") -> its region goes into the ignore mask with
      ``ignore='crowd_and_unlabelled'`` (default, as HigherHRNet/mmpose), nowhere with
      ``ignore='crowd'`` (the official Associative Embedding code).
    * PoseTrack-style image-level ``ignore_regions_x``/``ignore_regions_y`` polygons -> ignore mask.
    A region is the annotation's segmentation (polygons, compressed or uncompressed RLE); when it
    has none usable (no ``segmentation`` key, an empty list, only polygons of fewer than 6
    numbers) its ``bbox`` is rasterised instead, and counted.

Quirks handled (each counted in `ReadReport.issues` under the name given, together with the
check's issues, and logged once):
    * labelled flag from ``v > 0`` of each joint, never from ``num_keypoints``; the check
      recomputes a disagreeing ``num_keypoints`` ('num_keypoints_mismatch', informational:
      CrowdPose counts 12 of 14; 'num_keypoints_zero_mismatch', a warning, when it decides
      whether the evaluator counts the person).
    * labelled joints outside the image, i.e. outside [-0.5, W - 0.5) x [-0.5, H - 0.5) in the
      pixel-centre convention of record.py (negative coordinates included), or not finite, get
      v = 0 and x = y = 0 ('keypoint_outside_image'); a person left with none becomes unlabelled
      ('person_all_keypoints_outside').
    * visibility values other than 0, 1, 2 are clipped to that range ('visibility_invalid').
    * a keypoint list of the wrong length, or none, makes the person unlabelled
      ('keypoints_malformed'; the evaluator then ignores the person too).
    * polygons with fewer than 6 numbers (pycocotools reads 4 numbers as a box and fails on
      fewer) are dropped ('polygon_too_short'), odd-length/non-numeric ones too
      ('polygon_malformed'); RLE whose size differs from the image's ('rle_size_mismatch') and
      missing or empty segmentation ('segmentation_missing') fall back to the bbox.
    * a usable person's bbox with w or h <= 0 (or missing) is replaced by the pixel extent of
      its labelled joints ('box_repaired_from_keypoints'); a masked region whose bbox is invalid
      and that has no segmentation is dropped ('region_dropped_invalid_box').
    * missing ``area``: the segmentation area, else the box area ('area_missing', by the check).
    * annotations of an image id not listed in ``images`` ('annotation_unknown_image', by the
      check); images without ``height``/``width``: read from the file header
      ('image_size_missing').

Images with no usable person are skipped with ``split_role='train'`` (nothing to learn,
'image_without_people') and kept with ``split_role='eval'`` (they count for false positives).
Missing or undecodable images raise an error naming the path, or with ``skip_bad_images=True``
are skipped and counted ('image_missing', 'image_unreadable', 'image_size_mismatch').
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from absl import logging
from pycocotools import mask as mask_utils
from tqdm import tqdm

from associative_embedding.core.record import PoseRecord, merge_rles, rle_bytes
from associative_embedding.data import annotation_checks, image_io
from associative_embedding.data.annotation_checks import (
    CheckedAnnotations,
    load_annotation_json,
    require_coco_format,
)

__all__ = [
    "ImageEntry",
    "ReadReport",
    "check_image",
    "image_entries",
    "load_annotation_json",
    "read_coco_keypoints",
    "region_rle",
    "segmentation_rle",
    "skip_or_raise",
]

SplitRole = Literal["train", "eval"]
IgnoreMode = Literal["crowd_and_unlabelled", "crowd"]

_MAX_EXAMPLES = 5


@dataclasses.dataclass
class ReadReport:
    """What a reader read, kept, repaired and skipped. Logged once by `log()`.

    Attributes:
        source: the annotation file.
        category_name: the person category used.
        keypoint_names: its K joint names.
        num_images_listed: images in the file.
        num_images_kept: records returned.
        num_people: usable people in the file (non-crowd, >= 1 labelled joint in the image).
        num_people_kept: usable people in the returned records.
        num_crowd: crowd annotations of the person category.
        num_unlabelled: non-crowd people with no labelled joint in the image.
        num_other_category: annotations of other categories (ignored).
        issues: issue name -> count (names in the module docstring and in
            `annotation_checks`).
        examples: issue name -> up to 5 example ids, to find the culprits.
        checked: the annotation check of a COCO-format file: its cleaned dataset (the
            evaluator's ground truth) and its own report (None for other formats).
    """

    source: str
    category_name: str = ""
    keypoint_names: tuple[str, ...] = ()
    num_images_listed: int = 0
    num_images_kept: int = 0
    num_people: int = 0
    num_people_kept: int = 0
    num_crowd: int = 0
    num_unlabelled: int = 0
    num_other_category: int = 0
    issues: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: dict[str, list] = dataclasses.field(default_factory=dict)
    checked: CheckedAnnotations | None = dataclasses.field(default=None, repr=False)

    def count(self, issue: str, example: Any = None, amount: int = 1) -> None:
        """Adds `amount` to `issue`, remembering the first few examples."""
        if amount <= 0:
            return
        self.issues[issue] += amount
        if example is not None:
            found = self.examples.setdefault(issue, [])
            if len(found) < _MAX_EXAMPLES:
                found.append(example)

    def add_checks(self, checked: CheckedAnnotations) -> None:
        """Takes over the annotation check's counts and examples (logged with this report)."""
        self.checked = checked
        for issue, amount in checked.report.issues.items():
            self.issues[issue] += amount
            found = self.examples.setdefault(issue, [])
            for example in checked.report.examples.get(issue, []):
                if len(found) < _MAX_EXAMPLES:
                    found.append(example)

    def headline(self) -> str:
        """The first sentence of `summary`: what was kept out of what."""
        return (
            f"{self.source}: kept {self.num_images_kept}/{self.num_images_listed} images, "
            f"{self.num_people_kept} people (file: {self.num_people} usable people, "
            f"{self.num_crowd} crowd regions, {self.num_unlabelled} people without labelled "
            f"joints, {self.num_other_category} other-category annotations)."
        )

    def summary(self) -> str:
        """One human-readable paragraph (used by `log`): the headline, then the issues."""
        text = self.headline()
        if self.issues:
            details = ", ".join(
                f"{name}={count}"
                + (f" (e.g. {self.examples[name]})" if self.examples.get(name) else "")
                for name, count in sorted(self.issues.items())
            )
            text += f" Skipped/repaired: {details}."
        return text

    #: Issues counted for the record but normal in real data: INFO, not WARNING.
    informational_issues = frozenset({
        "image_without_people", "image_ignore_regions",
        # MPII (mpii.py): selection and documented estimates, not defects.
        "image_not_train", "image_not_multi_person", "head_box_estimated", "visibility_missing",
    }) | annotation_checks.INFORMATIONAL_ISSUES

    @property
    def has_problems(self) -> bool:
        """Whether anything beyond the informational issues was repaired or skipped."""
        return any(name not in self.informational_issues for name in self.issues)

    def log(self) -> None:
        """Logs the summary once: WARNING when anything was repaired or skipped, else INFO."""
        (logging.warning if self.has_problems else logging.info)("%s", self.summary())


def _select_category(
    categories: Sequence[dict], category: str | None, source: str
) -> tuple[int, str, tuple[str, ...]]:
    """Picks the keypoint category: `category` by name, else 'person', else the only one."""
    with_keypoints = [c for c in categories if isinstance(c, dict) and c.get("keypoints")]
    if category is not None:
        chosen = [c for c in with_keypoints if c.get("name") == category]
    else:
        chosen = [c for c in with_keypoints if c.get("name") == "person"]
        if not chosen and len(with_keypoints) == 1:
            chosen = with_keypoints
    if len(chosen) != 1:
        available = [(c.get("id"), c.get("name"), len(c.get("keypoints") or ())) for c in
                     categories if isinstance(c, dict)]
        raise ValueError(
            f"{source}: cannot choose the keypoint category (asked for "
            f"{category or 'person or the single category with keypoints'}); categories "
            f"(id, name, number of keypoints): {available}."
        )
    return int(chosen[0]["id"]), str(chosen[0].get("name", "")), tuple(chosen[0]["keypoints"])


def _finite_numbers(values: Any, length: int | None = None) -> np.ndarray | None:
    """`values` as float64 if it is a flat list of finite numbers (of `length`), else None."""
    if not isinstance(values, (list, tuple)) or (length is not None and len(values) != length):
        return None
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        return None
    return array


def _valid_box(bbox: Any) -> np.ndarray | None:
    box = _finite_numbers(bbox, 4)
    if box is None or box[2] <= 0 or box[3] <= 0:
        return None
    return box


def segmentation_rle(
    annotation: dict, height: int, width: int, report: ReadReport
) -> tuple[dict | None, list[str]]:
    """The annotation's segmentation as one compressed RLE (bytes counts), without fallback.

    Accepts compressed and uncompressed RLE (of the image's size) and polygons of >= 6 numbers.

    Returns:
        (rle, or None when no usable segmentation is left; the names of the problems found).
        Every problem is also counted in `report` under the annotation id.
    """
    annotation_id = annotation.get("id")
    problems: list[str] = []

    def problem(name: str) -> None:
        problems.append(name)
        report.count(name, annotation_id)

    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict) and "counts" in segmentation:
        size = segmentation.get("size")
        if not isinstance(size, (list, tuple)) or [int(s) for s in size] != [height, width]:
            problem("rle_size_mismatch")
        elif isinstance(segmentation["counts"], list):  # uncompressed RLE (COCO crowds)
            return mask_utils.frPyObjects(segmentation, height, width), problems
        else:
            return rle_bytes(segmentation), problems
    elif isinstance(segmentation, list) and segmentation:
        polygons = []
        for polygon in segmentation:
            numbers = _finite_numbers(polygon)
            if isinstance(polygon, (list, tuple)) and len(polygon) < 6:
                problem("polygon_too_short")
            elif numbers is None or len(numbers) % 2:
                problem("polygon_malformed")
            else:
                polygons.append(numbers.tolist())
        if polygons:
            return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)), problems
        problem("segmentation_missing")
    else:
        problem("segmentation_missing")
    return None, problems


def region_rle(
    annotation: dict, height: int, width: int, report: ReadReport
) -> dict | None:
    """The annotation's region as one compressed RLE (bytes counts), or None if it has none.

    Segmentation first (`segmentation_rle`), then the bbox.
    """
    rle, _ = segmentation_rle(annotation, height, width, report)
    if rle is not None:
        return rle
    box = _valid_box(annotation.get("bbox"))
    if box is None:
        report.count("region_dropped_invalid_box", annotation.get("id"))
        return None
    # An (N, 4) float64 array is read by pycocotools as boxes (x, y, w, h).
    return mask_utils.frPyObjects(box[np.newaxis].astype(np.float64), height, width)[0]


def _image_ignore_regions(image: dict, height: int, width: int, report: ReadReport) -> list:
    """PoseTrack's per-image ignore polygons (`ignore_regions_x`, `ignore_regions_y`) as RLEs."""
    xs_list, ys_list = image.get("ignore_regions_x"), image.get("ignore_regions_y")
    if not xs_list or not ys_list:
        return []
    polygons = []
    for xs, ys in zip(xs_list, ys_list, strict=False):
        x, y = _finite_numbers(xs), _finite_numbers(ys)
        if x is None or y is None or len(x) != len(y) or len(x) < 3:
            report.count("polygon_too_short", image.get("id"))
            continue
        polygons.append(np.stack([x, y], axis=1).reshape(-1).tolist())
    report.count("image_ignore_regions", image.get("id"), len(polygons))
    return mask_utils.frPyObjects(polygons, height, width) if polygons else []


def _parse_keypoints(
    annotation: dict, num_joints: int, height: int, width: int, report: ReadReport
) -> tuple[np.ndarray | None, int]:
    """Returns ((K, 3) float32 (x, y, v) with out-of-image joints zeroed, or None when
    malformed; the number of joints labelled in the file)."""
    annotation_id = annotation.get("id")
    values = _finite_numbers(annotation.get("keypoints"), 3 * num_joints)
    if values is None:
        raw = annotation.get("keypoints")
        if isinstance(raw, (list, tuple)) and len(raw) == 3 * num_joints:
            # Right length but NaN/None inside: keep the finite joints, drop the rest.
            values = np.asarray(
                [v if isinstance(v, (int, float)) else np.nan for v in raw], dtype=np.float64
            )
        else:
            report.count("keypoints_malformed", annotation_id)
            return None, 0
    keypoints = values.reshape(num_joints, 3)
    visibility = keypoints[:, 2]
    invalid_flag = np.isfinite(visibility) & ((visibility < 0) | (visibility > 2))
    report.count("visibility_invalid", annotation_id, int(invalid_flag.sum()))
    visibility = np.clip(np.nan_to_num(visibility, nan=0.0), 0, 2)
    labelled = visibility > 0
    stated = annotation.get("num_keypoints")
    if stated is not None and stated != int(labelled.sum()):
        report.count("num_keypoints_mismatch", annotation_id)
    x, y = keypoints[:, 0], keypoints[:, 1]
    with np.errstate(invalid="ignore"):
        inside = (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)
    outside = labelled & ~inside
    report.count("keypoint_outside_image", annotation_id, int(outside.sum()))
    keep = labelled & inside
    result = np.zeros((num_joints, 3), dtype=np.float32)
    result[keep, 0] = x[keep]
    result[keep, 1] = y[keep]
    result[keep, 2] = visibility[keep]
    return result, int(labelled.sum())


def _box_from_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """(x, y, w, h) pixel extent of the labelled joints (pixel-centre convention)."""
    labelled = keypoints[keypoints[:, 2] > 0, :2]
    low = labelled.min(axis=0) - 0.5
    high = labelled.max(axis=0) + 0.5
    return np.array([low[0], low[1], high[0] - low[0], high[1] - low[1]], dtype=np.float64)


@dataclasses.dataclass
class ImageEntry:
    image_id: int
    file_name: str
    height: int
    width: int
    source: dict = dataclasses.field(default_factory=dict)  # the JSON `images` entry
    people: list = dataclasses.field(default_factory=list)  # (keypoints, box, area, ann id)
    regions: list = dataclasses.field(default_factory=list)  # compressed RLEs to ignore
    num_crowd: int = 0
    num_unlabelled: int = 0


def image_entries(
    images: list, annotation_file: str, image_dir: str, report: ReadReport
) -> dict[int, ImageEntry]:
    entries: dict[int, ImageEntry] = {}
    for index, image in enumerate(images):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise ValueError(
                f"{annotation_file}: images[{index}] lacks 'id' or 'file_name': {image!r:.200}"
            )
        image_id = int(image["id"])
        if image_id in entries:
            raise ValueError(f"{annotation_file}: duplicate image id {image_id}.")
        path = os.path.abspath(os.path.join(image_dir, str(image["file_name"])))
        height, width = image.get("height"), image.get("width")
        if not height or not width or height <= 0 or width <= 0:
            report.count("image_size_missing", image_id)
            height, width = (0, 0) if not os.path.isfile(path) else image_io.read_image_size(path)
        entries[image_id] = ImageEntry(image_id, path, int(height), int(width), image)
    return entries


def read_coco_keypoints(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    split_role: SplitRole = "train",
    ignore: IgnoreMode = "crowd_and_unlabelled",
    category: str | None = None,
    skip_bad_images: bool = False,
    verify_images: bool = False,
    use_image_ignore_regions: bool = True,
    strict: bool = False,
    log_report: bool = True,
) -> tuple[list[PoseRecord], ReadReport]:
    """Reads a COCO-format person-keypoint file into one `PoseRecord` per image.

    Args:
        annotation_file: COCO-format JSON (images, annotations, categories).
        image_dir: folder the images' ``file_name`` entries are relative to.
        split_role: 'train' skips images without a usable person; 'eval' keeps every image.
        ignore: 'crowd_and_unlabelled' (default) masks crowd regions and people with no labelled
            joint; 'crowd' masks crowd regions only (people without joints are then neither
            targets nor masked).
        category: name of the keypoint category; default 'person', else the only category
            with keypoints.
        skip_bad_images: skip (and count) images whose file is missing, or, with
            `verify_images`, undecodable or of another size than annotated; default: raise.
        verify_images: fully decode every kept image (slow: ~5 ms per image) to catch
            truncated or corrupt files before training.
        use_image_ignore_regions: add PoseTrack-style image ``ignore_regions_x/y`` polygons to
            the ignore mask.
        strict: raise instead of skipping annotations (`annotation_checks`).
        log_report: log the report (readers that add their own issues to it and log it
            themselves pass False).

    Returns:
        (records, report): records in the file's image order, ``keypoints`` (P, K, 3) float32
        per record; the report is also logged once (unless `log_report` is False), and
        ``report.checked.dataset`` is the cleaned annotation set the evaluator should score
        against.

    Raises:
        FileNotFoundError: the annotation file, the image folder or (unless skipping) an image
            file is missing; the message names the path.
        ValueError: invalid JSON, no keypoint category, a structural problem of the file
            (message names the file); `annotation_checks.AnnotationError` with `strict` (names
            the file and the annotation ids); image_io.ImageDecodeError (a ValueError) for an
            undecodable image.
    """
    if split_role not in ("train", "eval"):
        raise ValueError(f"split_role must be 'train' or 'eval', got {split_role!r}.")
    if ignore not in ("crowd_and_unlabelled", "crowd"):
        raise ValueError(f"ignore must be 'crowd_and_unlabelled' or 'crowd', got {ignore!r}.")
    annotation_file, image_dir = os.fspath(annotation_file), os.fspath(image_dir)
    data = load_annotation_json(annotation_file)
    require_coco_format(data, annotation_file)
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(
            f"image directory not found: {image_dir} (images of {annotation_file})"
        )
    category_id, category_name, keypoint_names = _select_category(
        data["categories"], category, annotation_file
    )
    checked = annotation_checks.check_coco_annotations(data, annotation_file, strict=strict)
    data = checked.dataset
    report = ReadReport(source=annotation_file)
    report.add_checks(checked)
    report.category_name, report.keypoint_names = category_name, keypoint_names
    num_joints = len(report.keypoint_names)
    entries = image_entries(data["images"], annotation_file, image_dir, report)
    report.num_images_listed = len(entries)

    for annotation in tqdm(data["annotations"], desc="annotations", unit="ann",
                           disable=len(data["annotations"]) < 20000, leave=False):
        if annotation.get("category_id", category_id) != category_id:
            report.num_other_category += 1
            continue
        entry = entries.get(annotation.get("image_id"))
        if entry is None:
            report.count("annotation_unknown_image", annotation.get("id"))
            continue
        if entry.height <= 0:  # size unknown and file missing: reported with the image below
            continue
        annotation_id = int(annotation.get("id", -1))
        if annotation.get("iscrowd"):
            report.num_crowd += 1
            entry.num_crowd += 1
            region = region_rle(annotation, entry.height, entry.width, report)
            if region is not None:
                entry.regions.append(region)
            continue
        keypoints, num_labelled = _parse_keypoints(
            annotation, num_joints, entry.height, entry.width, report
        )
        if keypoints is not None and not np.any(keypoints[:, 2] > 0):
            if num_labelled:
                report.count("person_all_keypoints_outside", annotation_id)
            keypoints = None
        if keypoints is None:
            report.num_unlabelled += 1
            entry.num_unlabelled += 1
            if ignore == "crowd_and_unlabelled":
                region = region_rle(annotation, entry.height, entry.width, report)
                if region is not None:
                    entry.regions.append(region)
            continue
        box = _valid_box(annotation.get("bbox"))
        if box is None:
            report.count("box_repaired_from_keypoints", annotation_id)
            box = _box_from_keypoints(keypoints)
        # The check filled a missing area (segmentation area, else box area).
        area = float(annotation["area"])
        report.num_people += 1
        entry.people.append((keypoints, box, area, annotation_id))

    records = []
    kept = []
    for entry in entries.values():
        if entry.height <= 0:  # no size in the JSON and no file to read it from
            skip_or_raise(
                "image_missing",
                f"image {entry.image_id}: image file not found: {entry.file_name}",
                entry, skip_bad_images, report,
            )
            continue
        if not entry.people and split_role == "train":
            report.count("image_without_people")
            continue
        kept.append(entry)
    for entry in tqdm(kept, desc="checking images", unit="img",
                      disable=not verify_images or len(kept) < 200, leave=False):
        problem = check_image(entry, verify_images)
        if problem is not None:
            skip_or_raise(*problem, entry, skip_bad_images, report)
            continue
        rles = list(entry.regions)
        if use_image_ignore_regions:
            rles += _image_ignore_regions(entry.source, entry.height, entry.width, report)
        records.append(_to_record(entry, num_joints, rles))
    report.num_images_kept = len(records)
    report.num_people_kept = sum(record.num_people for record in records)
    if log_report:
        report.log()
    return records, report


def skip_or_raise(
    issue: str, message: str, entry: ImageEntry, skip: bool, report: ReadReport
) -> None:
    if not skip:
        raise (FileNotFoundError if issue == "image_missing" else image_io.ImageDecodeError)(
            message
        )
    report.count(issue, entry.file_name)


def check_image(entry: ImageEntry, verify: bool) -> tuple[str, str] | None:
    """(issue, message) when the image file is missing, broken or of another size."""
    if not os.path.isfile(entry.file_name):
        return "image_missing", f"image {entry.image_id}: image file not found: {entry.file_name}"
    if not verify:
        return None
    try:
        height, width = image_io.verify_image(entry.file_name)
    except image_io.ImageDecodeError as error:
        return "image_unreadable", f"image {entry.image_id}: {error}"
    if (height, width) != (entry.height, entry.width):
        return "image_size_mismatch", (
            f"image {entry.image_id}: {entry.file_name} is {height}x{width}, annotated as "
            f"{entry.height}x{entry.width}."
        )
    return None


def _to_record(entry: ImageEntry, num_joints: int, rles: list) -> PoseRecord:
    if entry.people:
        keypoints = np.stack([p[0] for p in entry.people])
        boxes = np.stack([p[1] for p in entry.people])
        areas = np.array([p[2] for p in entry.people])
        annotation_ids = np.array([p[3] for p in entry.people])
    else:
        keypoints = np.zeros((0, num_joints, 3), np.float32)
        boxes, areas, annotation_ids = np.zeros((0, 4)), np.zeros((0,)), np.zeros((0,))
    return PoseRecord(
        image_id=entry.image_id,
        file_name=entry.file_name,
        height=entry.height,
        width=entry.width,
        keypoints=keypoints,
        boxes=boxes,
        areas=areas,
        annotation_ids=annotation_ids,
        ignore_rle=merge_rles(rles, entry.height, entry.width),
        num_crowd=entry.num_crowd,
        num_unlabelled=entry.num_unlabelled,
    )
