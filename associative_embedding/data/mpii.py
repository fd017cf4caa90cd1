"""MPII Human Pose readers: the official .mat release and the common JSON conversion.

Both give one `PoseRecord` per image with the 16 MPII joints (order of
`keypoint_info.MPII`: r ankle, r knee, r hip, l hip, l knee, l ankle, pelvis, thorax, upper
neck, head top, r wrist, r elbow, r shoulder, l shoulder, l elbow, l wrist), all annotated people
of an image together (a multi-person group is never split), and ``head_boxes`` (x1, y1, x2, y2)
for PCKh. Both sources store 1-based MATLAB pixel coordinates; the readers subtract 1 to reach
the package's 0-based pixel-centre convention (record.py).

1. Official release ``mpii_human_pose_v1_u12_1.mat``: `data.mpii_mat.read_mpii_mat` (the
   release's structure and MATLAB quirks are described there); it shares this module's
   record building, so both readers give the same records.

2. JSON conversion (`read_mpii_json`; mmpose/HRNet ``mpii_{train,val}.json``, a list of
   per-person entries {image, joints[16][2], joints_vis[16], center[2], scale}). Entries are
   grouped by ``image`` into one record. The joint values equal the .mat's (1-based; HRNet and
   mmpose 0.x subtract 1 on loading), so ``one_based=True`` (default) subtracts 1;
   ``joints_vis`` only says "labelled", so labelled joints get v = 2. ``annotation_ids`` = the
   entry's index in the JSON list. The JSON has no head box: it is estimated from the upper neck
   (8) and head top (9), which MPII places on the head rectangle's axis (their midpoint is the
   rectangle's centre): a box centred on the midpoint, as high as the neck-top distance L and
   0.8 L wide (the mean head aspect), counted as 'head_box_estimated'; without both joints the
   head box is NaN ('head_box_unavailable'; PCKh then counts that person's joints as misses).

People: a person with at least one labelled joint inside the image is a target; boxes are the
pixel extent of its labelled joints and head box (MPII has no person boxes or segmentation),
areas their box area. A person without joints but with objpos/center and scale (MPII's
unannotated people) is an "unlabelled" person: with ``ignore='crowd_and_unlabelled'``
(default) the square of side 200 * scale centred on objpos is masked (MPII has no crowd regions).
Joints outside the image get v = 0 and are counted, as in the COCO reader (coco.py). Image sizes
are read from the image headers (MPII annotations have none), so image files must exist; a
missing one raises FileNotFoundError naming it, or is skipped and counted with
``skip_bad_images=True``.

Every annotation is checked while it is parsed, before any image is opened. Entries whose data
is dropped are counted under `SKIPPED_ISSUES` ('keypoints_malformed': joints of the wrong shape;
'person_without_joints_or_position'; 'annotation_duplicate': a JSON entry repeated verbatim;
'image_duplicate': an image listed twice in the .mat, the first entry kept; 'image_without_name';
'point_malformed' / 'point_duplicate': a .mat point without a valid joint id and position, or a
joint given twice, the later kept); with ``strict=True`` any of them raises
`annotation_checks.AnnotationError` naming the file and the entries instead. A .mat head
rectangle that is not finite or has no positive size ('head_box_invalid') is estimated from the
joints instead, like the JSON's.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from collections.abc import Iterable
from typing import Literal

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from associative_embedding.core.keypoint_info import MPII
from associative_embedding.core.record import PoseRecord, merge_rles
from associative_embedding.data import image_io
from associative_embedding.data.annotation_checks import load_annotation_json, raise_for_skipped
from associative_embedding.data.coco import IgnoreMode, ReadReport, SplitRole

__all__ = [
    "estimate_head_box",
    "read_mpii_json",
]

NUM_JOINTS = MPII.num_joints  # 16
UPPER_NECK, HEAD_TOP = 8, 9
HEAD_WIDTH_RATIO = 0.8  # head box width / height used by `estimate_head_box`
MPII_PIXEL_STD = 200.0  # MPII `scale` is the person height in units of 200 px

Subset = Literal["multi_person", "all"]

#: Issues that drop annotated data; ``strict=True`` turns them into an error.
SKIPPED_ISSUES = frozenset({
    "keypoints_malformed", "person_without_joints_or_position", "annotation_duplicate",
    "image_duplicate", "image_without_name", "point_malformed", "point_duplicate",
})


# ----------------------------------------------------------------------------------------------
# MATLAB value helpers (scipy.io.loadmat with struct_as_record=False, squeeze_me=True).


# ----------------------------------------------------------------------------------------------
# Shared geometry.


def estimate_head_box(upper_neck: np.ndarray, head_top: np.ndarray) -> np.ndarray:
    """Head box (x1, y1, x2, y2) estimated from the upper neck and head top joints.

    MPII computes these two joints on the axis of the annotated head rectangle (their midpoint
    is its centre), so the box is centred on the midpoint with height L = |head_top - neck| and
    width 0.8 L. On MPII's own example (image 008734041, head rectangle [353, 97, 391, 145])
    the estimate's PCKh head size is within 3% of the annotated one.

    Args:
        upper_neck: (2,) x, y.
        head_top: (2,) x, y.

    Returns:
        (4,) float32 box (x1, y1, x2, y2).
    """
    upper_neck = np.asarray(upper_neck, np.float64)
    head_top = np.asarray(head_top, np.float64)
    centre = (upper_neck + head_top) / 2.0
    length = float(np.linalg.norm(head_top - upper_neck))
    half = np.array([HEAD_WIDTH_RATIO * length, length]) / 2.0
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


def _people_box(keypoints: np.ndarray, head_box: np.ndarray | None) -> np.ndarray:
    """(x, y, w, h): pixel extent of the labelled joints, grown to contain the head box."""
    labelled = keypoints[keypoints[:, 2] > 0, :2]
    low = labelled.min(axis=0) - 0.5
    high = labelled.max(axis=0) + 0.5
    if head_box is not None and np.all(np.isfinite(head_box)):
        low = np.minimum(low, head_box[:2])
        high = np.maximum(high, head_box[2:])
    return np.array([low[0], low[1], high[0] - low[0], high[1] - low[1]], np.float32)


def _unlabelled_region(
    centre: np.ndarray | None, scale: float | None, height: int, width: int
) -> dict | None:
    """RLE of the 200*scale square around an unannotated person's centre, or None."""
    if centre is None or scale is None or scale <= 0 or not np.all(np.isfinite(centre)):
        return None
    side = MPII_PIXEL_STD * scale
    box = np.array([[centre[0] - side / 2, centre[1] - side / 2, side, side]], np.float64)
    return mask_utils.frPyObjects(box, height, width)[0]


@dataclasses.dataclass
class ParsedPerson:
    """One annotated or unannotated person before image sizes are known."""

    keypoints: np.ndarray | None  # (16, 3) 0-based, v in {0, 1, 2}; None if no joints
    head_box: np.ndarray | None  # (4,) x1, y1, x2, y2 0-based, or None
    centre: np.ndarray | None  # rough centre, 0-based
    scale: float | None
    annotation_id: int


def finish_records(
    images: Iterable[tuple[int, str, list[ParsedPerson]]],
    image_dir: str,
    *,
    split_role: SplitRole,
    ignore: IgnoreMode,
    skip_bad_images: bool,
    verify_images: bool,
    report: ReadReport,
) -> list[PoseRecord]:
    """Reads image sizes, drops out-of-image joints, builds records and masks."""
    records = []
    for image_id, image_name, people in tqdm(list(images), desc="MPII images", unit="img",
                                             leave=False, disable=None):
        path = os.path.abspath(os.path.join(image_dir, image_name))
        labelled_people = [p for p in people if p.keypoints is not None]
        if not labelled_people and split_role == "train":
            report.count("image_without_people", image_name)
            continue
        try:
            if verify_images:
                height, width = image_io.verify_image(path)
            else:
                height, width = image_io.read_image_size(path)
        except FileNotFoundError:
            if not skip_bad_images:
                raise FileNotFoundError(
                    f"image {image_name}: image file not found: {path}"
                ) from None
            report.count("image_missing", path)
            continue
        except image_io.ImageDecodeError:
            if not skip_bad_images:
                raise
            report.count("image_unreadable", path)
            continue
        keypoints_list, boxes, areas, ids, head_boxes, regions = [], [], [], [], [], []
        num_unlabelled = 0
        for person in people:
            keypoints = None
            if person.keypoints is not None:
                keypoints = person.keypoints.copy()
                x, y = keypoints[:, 0], keypoints[:, 1]
                inside = (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)
                outside = (keypoints[:, 2] > 0) & ~inside
                report.count("keypoint_outside_image", (image_name, person.annotation_id),
                             int(outside.sum()))
                keypoints[outside] = 0.0
                if not np.any(keypoints[:, 2] > 0):
                    report.count("person_all_keypoints_outside",
                                 (image_name, person.annotation_id))
                    keypoints = None
            if keypoints is None:
                num_unlabelled += 1
                report.num_unlabelled += 1
                if ignore == "crowd_and_unlabelled":
                    region = _unlabelled_region(person.centre, person.scale, height, width)
                    if region is None:
                        report.count("region_dropped_no_position",
                                     (image_name, person.annotation_id))
                    else:
                        regions.append(region)
                continue
            head_box = person.head_box
            if head_box is None:
                if keypoints[UPPER_NECK, 2] > 0 and keypoints[HEAD_TOP, 2] > 0:
                    head_box = estimate_head_box(keypoints[UPPER_NECK, :2],
                                                 keypoints[HEAD_TOP, :2])
                    report.count("head_box_estimated", (image_name, person.annotation_id))
                else:
                    head_box = np.full(4, np.nan, np.float32)
                    report.count("head_box_unavailable", (image_name, person.annotation_id))
            box = _people_box(keypoints, head_box)
            keypoints_list.append(keypoints)
            head_boxes.append(head_box)
            boxes.append(box)
            areas.append(float(box[2] * box[3]))
            ids.append(person.annotation_id)
            report.num_people += 1
        if not keypoints_list and split_role == "train":
            report.count("image_without_people", image_name)
            continue
        records.append(
            PoseRecord(
                image_id=image_id,
                file_name=path,
                height=height,
                width=width,
                keypoints=(np.stack(keypoints_list) if keypoints_list
                           else np.zeros((0, NUM_JOINTS, 3), np.float32)),
                boxes=np.array(boxes, np.float32).reshape(-1, 4),
                areas=np.array(areas, np.float32),
                annotation_ids=np.array(ids, np.int64),
                ignore_rle=merge_rles(regions, height, width),
                num_unlabelled=num_unlabelled,
                head_boxes=np.array(head_boxes, np.float32).reshape(-1, 4),
            )
        )
    report.num_images_kept = len(records)
    report.num_people_kept = sum(record.num_people for record in records)
    return records


def image_id_from_name(image_name: str, fallback: int) -> int:
    stem = os.path.splitext(os.path.basename(image_name))[0]
    return int(stem) if stem.isdigit() else fallback


def check_arguments(split_role: str, ignore: str, image_dir: str, source: str) -> None:
    if split_role not in ("train", "eval"):
        raise ValueError(f"split_role must be 'train' or 'eval', got {split_role!r}.")
    if ignore not in ("crowd_and_unlabelled", "crowd"):
        raise ValueError(f"ignore must be 'crowd_and_unlabelled' or 'crowd', got {ignore!r}.")
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"image directory not found: {image_dir} (images of {source})")


# ----------------------------------------------------------------------------------------------
# Official .mat release.


# ----------------------------------------------------------------------------------------------
# JSON conversion.


def read_mpii_json(
    json_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    split_role: SplitRole = "train",
    ignore: IgnoreMode = "crowd_and_unlabelled",
    one_based: bool = True,
    skip_bad_images: bool = False,
    verify_images: bool = False,
    strict: bool = False,
) -> tuple[list[PoseRecord], ReadReport]:
    """Reads the common MPII JSON conversion, grouping its per-person entries by image.

    Args:
        json_file: list of {image, joints (16, 2), joints_vis (16,), center (2,), scale}.
        image_dir: folder of the images named by ``image``.
        split_role, ignore, skip_bad_images, verify_images, strict: as in `read_mpii_mat`.
        one_based: the joints are MATLAB 1-based (true of the HRNet/mmpose files): subtract 1.

    Returns:
        (records, report), one record per image in order of first appearance; head boxes are
        estimated (module docstring).

    Raises:
        FileNotFoundError: naming the JSON file, the image folder or a missing image.
        ValueError: naming the JSON file and entry index for malformed entries;
            `annotation_checks.AnnotationError` with `strict` (entries named by index).
    """
    json_file, image_dir = os.fspath(json_file), os.fspath(image_dir)
    entries = load_annotation_json(json_file)
    if not isinstance(entries, list):
        raise ValueError(
            f"{json_file}: expected a list of per-person entries, got {type(entries).__name__}."
        )
    check_arguments(split_role, ignore, image_dir, json_file)
    report = ReadReport(source=json_file, category_name="person", keypoint_names=MPII.joint_names)
    offset = 1.0 if one_based else 0.0
    by_image: dict[str, list[ParsedPerson]] = collections.OrderedDict()
    seen_entries: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image" not in entry:
            raise ValueError(f"{json_file}: entry {index} has no 'image': {entry!r:.200}")
        people = by_image.setdefault(str(entry["image"]), [])
        # A verbatim copy would be one person supervised twice (and two ground-truth people).
        key = json.dumps(entry, sort_keys=True, default=str)
        if key in seen_entries:
            report.count("annotation_duplicate", index)
            continue
        seen_entries.add(key)
        try:
            joints = np.asarray(entry.get("joints", []), dtype=np.float64)
            flags = np.asarray(entry.get("joints_vis", []), dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):  # ragged lists, strings, None
            joints, flags = np.zeros(0), np.zeros(0)
        keypoints = None
        if joints.shape == (NUM_JOINTS, 2) and flags.shape == (NUM_JOINTS,):
            labelled = (flags > 0) & np.all(np.isfinite(joints), axis=1)
            if np.any(labelled):
                keypoints = np.zeros((NUM_JOINTS, 3), np.float32)
                keypoints[labelled, :2] = joints[labelled] - offset
                keypoints[labelled, 2] = 2.0
        elif "joints" in entry:
            report.count("keypoints_malformed", index)
        centre = entry.get("center")
        centre = (np.asarray(centre, np.float64) - offset
                  if isinstance(centre, (list, tuple)) and len(centre) == 2
                  and min(centre) >= 0 else None)
        scale = entry.get("scale")
        scale = float(scale) if isinstance(scale, (int, float)) else None
        if keypoints is None and centre is None:
            report.count("person_without_joints_or_position", index)
            continue
        people.append(ParsedPerson(keypoints, None, centre, scale, index))
    report.num_images_listed = len(by_image)
    if strict:
        raise_for_skipped(json_file, report.issues, report.examples, SKIPPED_ISSUES,
                          describe="entry {}".format)
    images = [
        (image_id_from_name(name, position), name, people)
        for position, (name, people) in enumerate(by_image.items())
    ]
    records = finish_records(
        images, image_dir, split_role=split_role, ignore=ignore,
        skip_bad_images=skip_bad_images, verify_images=verify_images, report=report,
    )
    report.log()
    return records, report
