"""MPII Human Pose readers: the official .mat release and the common JSON conversion.

Both give one `PoseRecord` per image with the 16 MPII joints (order of
`keypoint_info.MPII`: r ankle, r knee, r hip, l hip, l knee, l ankle, pelvis, thorax, upper
neck, head top, r wrist, r elbow, r shoulder, l shoulder, l elbow, l wrist), all annotated people
of an image together (a multi-person group is never split), and ``head_boxes`` (x1, y1, x2, y2)
for PCKh. Both sources store 1-based MATLAB pixel coordinates; the readers subtract 1 to reach
the package's 0-based pixel-centre convention (record.py).

1. Official release ``mpii_human_pose_v1_u12_1.mat`` (`read_mpii_mat`), loaded with
   ``scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True)``. Structure followed
   (MATLAB names, as documented on the MPII download page; i = image, r = person, p = point)::

       RELEASE                      struct
         .annolist(i)               1 x N struct array, one per image
           .image.name              char, e.g. '015601864.jpg'
           .annorect(r)             1 x R struct array (may be 1 x 0), one per person
             .x1 .y1 .x2 .y2        head rectangle (train images only)
             .annopoints.point(p)   1 x J struct array (annopoints may be [] = no joints)
               .x .y                joint position, 1-based pixels
               .id                  joint id 0..15 (MPII order above)
               .is_visible          1 / 0, or '1' / '0' (char), or [] (no flag)
             .scale                 person height / 200 px
             .objpos.x .objpos.y    rough person centre
           .frame_sec .vididx       video frame information (unused)
         .img_train(i)              1 x N double, 1 = training image (test joints are withheld)
         .single_person{i}          N x 1 cell, column vector of 1-based r of the sufficiently
                                    separated individuals of image i (may be empty)
         .act(i) .video_list .version   (unused)

   MATLAB quirks handled: with ``squeeze_me`` a 1-element struct array arrives as the struct
   itself and an empty one as an empty array (so annorect, point and single_person are each
   either, or a list); numbers may come as 1-element arrays or strings; ``is_visible`` as int,
   '0'/'1' or an empty array (labelled without flag, read as visible, counted
   'visibility_missing'); fields absent from some structs (test images have no head box and no
   annopoints). Visibility becomes COCO-style v: is_visible 1 -> 2, 0 -> 1, absent joint -> 0.

   Multi-person subset (``subset='multi_person'``, default): the training images (img_train = 1)
   with at least one annotated person *not* listed in ``single_person``, i.e. the images holding
   the official multi-person groups (the groups the MPII multi-person benchmark evaluates are
   people standing close together; the people MPII lists as single are the well-separated
   ones). Each record keeps every annotated person of its image, group or not, so no annotated
   person is treated as background. ``subset='all'``: every training image with an annotated
   person. Ids: ``image_id`` = the numeric file name (015601864.jpg -> 15601864, else the
   0-based annolist index), ``annotation_ids`` = the 0-based annorect index r - 1.

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
from typing import Any, Literal

import numpy as np
import scipy.io
from pycocotools import mask as mask_utils
from tqdm import tqdm

from associative_embedding.core.keypoint_info import MPII
from associative_embedding.core.record import PoseRecord, merge_rles
from associative_embedding.data import image_io
from associative_embedding.data.annotation_checks import load_annotation_json, raise_for_skipped
from associative_embedding.data.coco import IgnoreMode, ReadReport, SplitRole

__all__ = [
    "estimate_head_box",
    "load_mpii_release",
    "read_mpii_json",
    "read_mpii_mat",
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


def _as_list(value: Any) -> list:
    """A MATLAB array (struct, cell or numeric) as a Python list, whatever squeezing did to it."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _number(value: Any) -> float | None:
    """A MATLAB scalar (number, 1-element array, numeric char) as float; None when empty."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.ravel()[0]
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            return None
    if isinstance(value, (bool, int, float, np.number)):
        number = float(value)
        return number if np.isfinite(number) else None
    return None


def _field(struct: Any, name: str) -> Any:
    """`struct.name`, or None when the struct lacks that field (MATLAB structs vary)."""
    return getattr(struct, name, None)


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = "".join(str(v) for v in value.ravel())
    return str(value).strip()


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
class _Person:
    """One annotated or unannotated person before image sizes are known."""

    keypoints: np.ndarray | None  # (16, 3) 0-based, v in {0, 1, 2}; None if no joints
    head_box: np.ndarray | None  # (4,) x1, y1, x2, y2 0-based, or None
    centre: np.ndarray | None  # rough centre, 0-based
    scale: float | None
    annotation_id: int


def _finish_records(
    images: Iterable[tuple[int, str, list[_Person]]],
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


def _describe_mat_example(example: Any) -> str:
    """How a strict error names a .mat example: (image name, annorect index), a name or index."""
    if isinstance(example, tuple):
        return f"image {example[0]} person (annorect index) {example[1]}"
    return f"image {example}" if isinstance(example, str) else f"annolist index {example}"


def _image_id(image_name: str, fallback: int) -> int:
    stem = os.path.splitext(os.path.basename(image_name))[0]
    return int(stem) if stem.isdigit() else fallback


def _check_arguments(split_role: str, ignore: str, image_dir: str, source: str) -> None:
    if split_role not in ("train", "eval"):
        raise ValueError(f"split_role must be 'train' or 'eval', got {split_role!r}.")
    if ignore not in ("crowd_and_unlabelled", "crowd"):
        raise ValueError(f"ignore must be 'crowd_and_unlabelled' or 'crowd', got {ignore!r}.")
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"image directory not found: {image_dir} (images of {source})")


# ----------------------------------------------------------------------------------------------
# Official .mat release.


def load_mpii_release(mat_file: str | os.PathLike) -> Any:
    """Loads the RELEASE struct of the official MPII annotation file.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: naming the path, when the file is not a MATLAB file with a RELEASE struct.
    """
    mat_file = os.fspath(mat_file)
    if not os.path.isfile(mat_file):
        raise FileNotFoundError(f"MPII annotation file not found: {mat_file}")
    try:
        contents = scipy.io.loadmat(mat_file, struct_as_record=False, squeeze_me=True)
    except Exception as error:  # scipy raises several types for corrupt files
        raise ValueError(f"{mat_file}: cannot read MATLAB file: {error}") from None
    release = contents.get("RELEASE")
    if release is None or _field(release, "annolist") is None:
        raise ValueError(
            f"{mat_file}: no RELEASE.annolist struct (variables: "
            f"{sorted(k for k in contents if not k.startswith('__'))})."
        )
    return release


def _visibility(raw: Any, report: ReadReport, example: Any) -> float:
    """COCO-style v of a labelled MPII point from its is_visible field."""
    flag = _number(raw)
    if flag is None:
        report.count("visibility_missing", example)
        return 2.0
    return 2.0 if flag > 0 else 1.0


def _parse_mat_person(
    rect: Any, rect_index: int, image_name: str, report: ReadReport
) -> _Person | None:
    """One annorect -> _Person (1-based -> 0-based), or None when it carries nothing usable."""
    example = (image_name, rect_index)
    keypoints = None
    points = []
    annopoints = _field(rect, "annopoints")
    if annopoints is not None and not isinstance(annopoints, np.ndarray):
        points = _as_list(_field(annopoints, "point"))
    if points:
        keypoints = np.zeros((NUM_JOINTS, 3), np.float32)
        for point in points:
            joint_id, x, y = (_number(_field(point, name)) for name in ("id", "x", "y"))
            if joint_id is None or x is None or y is None or not (
                0 <= joint_id < NUM_JOINTS and joint_id == int(joint_id)
            ):
                report.count("point_malformed", example)
                continue
            joint = int(joint_id)
            if keypoints[joint, 2] > 0:
                report.count("point_duplicate", example)
            keypoints[joint] = (x - 1.0, y - 1.0, _visibility(_field(point, "is_visible"),
                                                               report, example))
        if not np.any(keypoints[:, 2] > 0):
            keypoints = None
    head = [_number(_field(rect, name)) for name in ("x1", "y1", "x2", "y2")]
    head_box = None
    if all(v is not None for v in head):
        if head[2] > head[0] and head[3] > head[1]:
            head_box = np.array(head, np.float32) - 1.0
        else:
            report.count("head_box_invalid", example)
    objpos = _field(rect, "objpos")
    centre = None
    if objpos is not None and not isinstance(objpos, np.ndarray):
        cx, cy = _number(_field(objpos, "x")), _number(_field(objpos, "y"))
        if cx is not None and cy is not None:
            centre = np.array([cx - 1.0, cy - 1.0])
    scale = _number(_field(rect, "scale"))
    if keypoints is None and centre is None:
        report.count("person_without_joints_or_position", example)
        return None
    return _Person(keypoints, head_box, centre, scale, rect_index)


def read_mpii_mat(
    mat_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    subset: Subset = "multi_person",
    split_role: SplitRole = "train",
    ignore: IgnoreMode = "crowd_and_unlabelled",
    image_names: Iterable[str] | None = None,
    skip_bad_images: bool = False,
    verify_images: bool = False,
    strict: bool = False,
) -> tuple[list[PoseRecord], ReadReport]:
    """Reads the training images of the official MPII .mat release (structure: module doc).

    Args:
        mat_file: ``mpii_human_pose_v1_u12_1.mat``.
        image_dir: the folder of the MPII images.
        subset: 'multi_person' (images holding a multi-person group) or 'all'.
        split_role: 'train' skips images without a usable person; 'eval' keeps them.
        ignore: 'crowd_and_unlabelled' masks unannotated people (from objpos and scale);
            'crowd' masks nothing (MPII has no crowd regions).
        image_names: optional file names to keep (e.g. a validation list), applied after
            `subset`.
        skip_bad_images: skip and count missing/undecodable images instead of raising.
        verify_images: fully decode every image (slow) instead of reading its header.
        strict: raise instead of skipping annotations (`SKIPPED_ISSUES`), before any image is
            read.

    Returns:
        (records, report), records in annolist order, one per image, people of an image together.

    Raises:
        FileNotFoundError / ValueError: naming the file or image (see `load_mpii_release`);
            `annotation_checks.AnnotationError` with `strict`.
    """
    mat_file, image_dir = os.fspath(mat_file), os.fspath(image_dir)
    if subset not in ("multi_person", "all"):
        raise ValueError(f"subset must be 'multi_person' or 'all', got {subset!r}.")
    release = load_mpii_release(mat_file)
    _check_arguments(split_role, ignore, image_dir, mat_file)
    report = ReadReport(source=mat_file, category_name="person", keypoint_names=MPII.joint_names)
    annolist = _as_list(release.annolist)
    img_train = _as_list(_field(release, "img_train"))
    single_person = _as_list(_field(release, "single_person"))
    if len(img_train) != len(annolist):
        raise ValueError(
            f"{mat_file}: img_train has {len(img_train)} entries for {len(annolist)} images."
        )
    if single_person and len(single_person) != len(annolist):
        raise ValueError(
            f"{mat_file}: single_person has {len(single_person)} entries for {len(annolist)} "
            "images."
        )
    wanted = None if image_names is None else set(image_names)
    report.num_images_listed = len(annolist)
    images = []
    seen_names = set()
    for index, annotation in enumerate(tqdm(annolist, desc="MPII annolist", unit="img",
                                            leave=False, disable=None)):
        if _number(img_train[index]) != 1:
            report.count("image_not_train")  # test image: joints withheld by MPII
            continue
        image_name = _text(_field(_field(annotation, "image"), "name"))
        if not image_name:
            report.count("image_without_name", index)
            continue
        if wanted is not None and image_name not in wanted:
            continue
        if image_name in seen_names:  # one record per image: keep the first entry
            report.count("image_duplicate", image_name)
            continue
        seen_names.add(image_name)
        singles = set()
        if single_person:
            singles = {int(v) - 1 for v in map(_number, _as_list(single_person[index]))
                       if v is not None}
        people = []
        for rect_index, rect in enumerate(_as_list(_field(annotation, "annorect"))):
            person = _parse_mat_person(rect, rect_index, image_name, report)
            if person is not None:
                people.append((person, rect_index in singles))
        if subset == "multi_person" and not any(
            person.keypoints is not None and not single for person, single in people
        ):
            report.count("image_not_multi_person")
            continue
        images.append((_image_id(image_name, index), image_name, [p for p, _ in people]))
    if strict:
        raise_for_skipped(mat_file, report.issues, report.examples, SKIPPED_ISSUES,
                          describe=_describe_mat_example)
    records = _finish_records(
        images, image_dir, split_role=split_role, ignore=ignore,
        skip_bad_images=skip_bad_images, verify_images=verify_images, report=report,
    )
    report.log()
    return records, report


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
    _check_arguments(split_role, ignore, image_dir, json_file)
    report = ReadReport(source=json_file, category_name="person", keypoint_names=MPII.joint_names)
    offset = 1.0 if one_based else 0.0
    by_image: dict[str, list[_Person]] = collections.OrderedDict()
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
        people.append(_Person(keypoints, None, centre, scale, index))
    report.num_images_listed = len(by_image)
    if strict:
        raise_for_skipped(json_file, report.issues, report.examples, SKIPPED_ISSUES,
                          describe="entry {}".format)
    images = [
        (_image_id(name, position), name, people)
        for position, (name, people) in enumerate(by_image.items())
    ]
    records = _finish_records(
        images, image_dir, split_role=split_role, ignore=ignore,
        skip_bad_images=skip_bad_images, verify_images=verify_images, report=report,
    )
    report.log()
    return records, report
