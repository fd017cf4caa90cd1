"""The keypoint dataset readers behind one registry: a format detector, a reader, its joints.

Every pose split (training, validation, `tools/evaluate.py`) is read through `read_split` or
`read_train_records`, which ask each registered `KeypointReader` in turn whether it recognises
the annotation file. Adding a dataset is a reader module in this folder plus one
`register_reader` line at the end of this file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from absl import logging

from associative_embedding.core.keypoint_info import (
    KeypointInfo,
    get_keypoint_info,
    keypoint_info_for_names,
    keypoint_info_for_num_joints,
)
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import coco, mpii, mpii_mat, posetrack

FORMAT_COCO = "coco_format"
FORMAT_MPII_MAT = "mpii_mat"
FORMAT_MPII_JSON = "mpii_json"

# Reader issues (data/coco.py) that drop an image from the split.
_SKIPPED_IMAGE_ISSUES = ("image_missing", "image_unreadable", "image_size_mismatch")


@dataclasses.dataclass(frozen=True)
class KeypointReader:
    """One annotation format.

    Attributes:
        name: the format's name (``Split.annotation_format``).
        detect: (path, first bytes of the file with leading whitespace stripped) -> whether
            the file is in this format.
        read: (annotation_file, image_dir, *, split_role, strict, ...) -> (records, report),
            the report having ``issues``, ``num_images_listed`` and ``checked``.
        num_joints: the report -> the dataset's number of joints.
        keypoint_info: the report -> the format's joint set, for a format whose joints are
            not told by their count (PoseTrack's 17 are not COCO's); None: by the joint names
            the file lists, else by the count (``read_split``'s 'auto').
    """

    name: str
    detect: Callable[[str, bytes], bool]
    read: Callable[..., tuple[list[PoseRecord], Any]]
    num_joints: Callable[[Any], int]
    keypoint_info: Callable[[Any], KeypointInfo] | None = None


#: The registered readers, in detection order.
READERS: dict[str, KeypointReader] = {}


def register_reader(reader: KeypointReader) -> KeypointReader:
    """Adds a reader (detection tries readers in registration order)."""
    if reader.name in READERS:
        raise ValueError(f"a reader named {reader.name!r} is already registered")
    READERS[reader.name] = reader
    return reader


@dataclasses.dataclass
class Split:
    """An evaluation split: records, the dataset's metadata and how to evaluate it.

    Attributes:
        ground_truth: for COCO-format files, the annotations as the reader's check cleaned
            them (``data.annotation_checks``), which the COCO evaluator scores against; None
            for MPII.
    """

    records: list[PoseRecord]
    keypoint_info: KeypointInfo
    annotation_format: str
    annotation_file: str
    num_images_listed: int
    num_images_skipped: int
    ground_truth: dict | None = dataclasses.field(default=None, repr=False)


def detect_annotation_format(annotation_file: str | os.PathLike) -> str:
    """The name of the registered reader that recognises the file ('mpii_mat' for a .mat
    file, 'mpii_json' for a JSON list, 'coco_format' for a JSON object).

    Raises:
        FileNotFoundError: naming the file when it does not exist.
        ValueError: naming the file when it is none of these.
    """
    path = os.fspath(annotation_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip()
    for reader in READERS.values():
        if reader.detect(path, head):
            return reader.name
    raise ValueError(f"{path}: not a COCO-format JSON object, an MPII JSON list or a .mat file.")


def read_train_records(
    annotation_file: str, image_dir: str, ignore: str, *, strict: bool = False
) -> list[PoseRecord]:
    """Training records of a COCO-format file or an MPII JSON conversion / .mat release.

    `strict` makes the reader raise (naming the file and ids) instead of skipping invalid
    annotations.
    """
    reader = READERS[detect_annotation_format(annotation_file)]
    records, _ = reader.read(
        annotation_file, image_dir, split_role="train", ignore=ignore, strict=strict
    )
    return records


def read_split(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    dataset: str = "auto",
    skip_missing_images: bool = True,
    strict: bool = False,
) -> Split:
    """Reads an evaluation split with the package's readers in eval mode.

    Args:
        annotation_file: COCO-format JSON, MPII JSON conversion or the MPII .mat release.
        image_dir: the images' folder.
        dataset: a keypoint set ('coco', 'crowdpose', 'mpii', 'posetrack') or 'auto': the set
            whose joint names the file lists (a PoseTrack file's head_bottom and head_top make
            it 'posetrack'), else the one its number of joints stands for.
        skip_missing_images: skip (count and warn about) images whose file is missing
            instead of raising.
        strict: raise ``annotation_checks.AnnotationError`` (naming the file and the ids)
            instead of skipping invalid annotations.

    Returns:
        A ``Split``.

    Raises:
        ValueError: when the dataset's joint count disagrees with the annotations.
    """
    annotation_file = os.fspath(annotation_file)
    annotation_format = detect_annotation_format(annotation_file)
    reader = READERS[annotation_format]
    records, report = reader.read(
        annotation_file, image_dir, split_role="eval", skip_bad_images=skip_missing_images,
        strict=strict,
    )
    num_joints = reader.num_joints(report)
    if dataset == "auto" and reader.keypoint_info is not None:
        keypoint_info = reader.keypoint_info(report)
    elif dataset == "auto":
        keypoint_info = keypoint_info_for_names(getattr(report, "keypoint_names", ()))
        if keypoint_info is None or keypoint_info.num_joints != num_joints:
            keypoint_info = keypoint_info_for_num_joints(num_joints)
    else:
        keypoint_info = get_keypoint_info(dataset)
        if keypoint_info.num_joints != num_joints:
            raise ValueError(
                f"{annotation_file}: {num_joints} joints, but dataset {dataset!r} has "
                f"{keypoint_info.num_joints}."
            )
    skipped = sum(report.issues.get(issue, 0) for issue in _SKIPPED_IMAGE_ISSUES)
    if skipped:
        logging.warning(
            "%d of %d images listed in %s were skipped (missing or unreadable files) and are "
            "not evaluated.", skipped, report.num_images_listed, annotation_file,
        )
    return Split(
        records=records,
        keypoint_info=keypoint_info,
        annotation_format=annotation_format,
        annotation_file=annotation_file,
        num_images_listed=report.num_images_listed,
        num_images_skipped=skipped,
        ground_truth=report.checked.dataset if report.checked is not None else None,
    )


# The registered formats, in detection order (a '.mat' file is recognised by its name, the
# JSON formats by their first character).
register_reader(KeypointReader(
    FORMAT_MPII_MAT, lambda path, head: path.endswith(".mat"), mpii_mat.read_mpii_mat, lambda _: 16
))
register_reader(KeypointReader(
    FORMAT_MPII_JSON, lambda path, head: head.startswith(b"["), mpii.read_mpii_json, lambda _: 16
))
register_reader(KeypointReader(
    posetrack.FORMAT_POSETRACK, posetrack.is_posetrack_file, posetrack.read_posetrack_records,
    lambda report: len(report.keypoint_names), posetrack.keypoint_info_of,
))
register_reader(KeypointReader(
    FORMAT_COCO, lambda path, head: head.startswith(b"{"), coco.read_coco_keypoints,
    lambda report: len(report.keypoint_names),
))
