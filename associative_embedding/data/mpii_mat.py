"""MPII Human Pose: the official .mat release reader.

The official release ``mpii_human_pose_v1_u12_1.mat`` (`read_mpii_mat`), loaded with
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

Records are built by `data.mpii` (shared with the JSON conversion's reader), whose docstring
gives the people, boxes, ignore regions and checked issues.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.io
from tqdm import tqdm

from associative_embedding.core.keypoint_info import MPII
from associative_embedding.core.record import PoseRecord
from associative_embedding.data.annotation_checks import raise_for_skipped
from associative_embedding.data.coco import IgnoreMode, ReadReport, SplitRole
from associative_embedding.data.mpii import (
    NUM_JOINTS,
    SKIPPED_ISSUES,
    ParsedPerson,
    Subset,
    check_arguments,
    finish_records,
    image_id_from_name,
)

__all__ = ["load_mpii_release", "read_mpii_mat"]


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


def _describe_mat_example(example: Any) -> str:
    """How a strict error names a .mat example: (image name, annorect index), a name or index."""
    if isinstance(example, tuple):
        return f"image {example[0]} person (annorect index) {example[1]}"
    return f"image {example}" if isinstance(example, str) else f"annolist index {example}"


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
) -> ParsedPerson | None:
    """One annorect -> ParsedPerson (1-based -> 0-based), or None when it carries nothing usable."""
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
    return ParsedPerson(keypoints, head_box, centre, scale, rect_index)


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
    check_arguments(split_role, ignore, image_dir, mat_file)
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
        images.append((image_id_from_name(image_name, index), image_name, [p for p, _ in people]))
    if strict:
        raise_for_skipped(mat_file, report.issues, report.examples, SKIPPED_ISSUES,
                          describe=_describe_mat_example)
    records = finish_records(
        images, image_dir, split_role=split_role, ignore=ignore,
        skip_bad_images=skip_bad_images, verify_images=verify_images, report=report,
    )
    report.log()
    return records, report
