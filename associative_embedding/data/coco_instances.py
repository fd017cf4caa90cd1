"""COCO-format instance segmentation reader and writer: annotation JSON <-> `InstanceRecord`s.

Reads any COCO ``instances_*.json`` (and any file of the same format: a
``person_keypoints_*.json`` is a valid instances file for its person category; the synthetic
shapes of `synthetic_shapes`). The JSON loading, the image table and the conversion of a region
(polygons, compressed or uncompressed RLE) to an RLE are the keypoint reader's
(`associative_embedding.data.coco`), so both readers treat the same file the same way.

What becomes what (per image):
    * non-crowd annotation of a selected category with a usable, non-empty segmentation ->
      an `InstanceSegment` (mask area and box computed from the mask; the file's ``area`` and
      ``bbox`` are not trusted), in file order.
    * crowd annotation (``iscrowd`` true) of a selected category -> its region is merged into
      the record's ``ignore_rle`` (never a segment). A crowd without a usable segmentation falls
      back to its ``bbox`` (as in the keypoint reader).
    * instance whose mask area is below ``min_area`` -> its region goes into ``ignore_rle``
      (it is drawn in the image, so it must not be supervised as background either).
    * annotation of a category in the file but not selected -> nothing (background).
    Images without any usable instance are kept: they are negatives for training and count for
    false positives in evaluation.

The file is first checked once by `annotation_checks.check_coco_annotations`, the validator
shared with the keypoint reader (duplicate image and annotation ids, references to images and
categories, areas; rules there), and read from its cleaned copy; its counts join the report.

Invalid annotations (each counted in `InstanceReadReport.issues` under the name given, logged
once, and skipped; with ``skip_invalid=False`` a ValueError naming the annotation id and the
file is raised instead, by the check for the first three):
    * 'category_unknown': ``category_id`` missing or not among the file's categories.
    * 'annotation_unknown_image': ``image_id`` not listed in ``images``.
    * 'annotation_malformed': an annotation that is not a JSON object.
    * 'segmentation_missing' (no ``segmentation`` or an empty one), 'polygon_too_short'
      (< 6 numbers), 'polygon_malformed' (odd length / not numbers), 'rle_size_mismatch'
      (RLE size other than the image's), 'rle_invalid' (run lengths negative, not numbers, or not
      summing to H * W): the segmentation cannot be (fully) read. A non-crowd instance is
      skipped when nothing usable is left ('instance_skipped_invalid_segmentation'); polygons
      that are dropped from an otherwise usable list are only counted.
    * 'segmentation_empty': the mask has no pixel (e.g. a polygon entirely outside the image).
Images whose file is missing (or, with ``verify_images``, undecodable or of another size than
annotated) raise an error naming the file, or with ``skip_invalid`` are skipped and counted
('image_missing', 'image_unreadable', 'image_size_mismatch').

`write_coco_instances` writes records back as a COCO instances JSON (RLE segmentations), e.g.
ground truth for COCO ``segm`` evaluation of VOC or synthetic data.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from associative_embedding.core.record import merge_rles, rle_bytes, rle_str
from associative_embedding.data import annotation_checks
from associative_embedding.data import coco as coco_reader
from associative_embedding.data.annotation_checks import (
    load_annotation_json,
    require_coco_format,
)
from associative_embedding.data.annotation_fields import rle_is_valid
from associative_embedding.data.coco import ReadReport
from associative_embedding.data.instances import (
    InstanceCategories,
    InstanceRecord,
    InstanceSegment,
)

__all__ = [
    "InstanceReadReport",
    "coco_instances_dict",
    "read_coco_instances",
    "read_coco_instances_with_report",
    "rle_is_valid",
    "select_categories",
    "write_coco_instances",
]

# Annotation counts from which a progress bar is shown when `show_progress` is None.
_AUTO_PROGRESS_MIN_ITEMS = 20000

@dataclasses.dataclass
class InstanceReadReport(ReadReport):
    """What an instance reader read, kept, repaired and skipped. Logged once by `log()`.

    Extends the keypoint reader's `ReadReport` (its ``count``/``issues``/``examples``
    bookkeeping); the keypoint-only fields (``keypoint_names``, ``num_people*``,
    ``num_unlabelled``) stay at their defaults.

    Attributes:
        category_names: the C selected categories, in channel order.
        num_annotations: annotations (VOC: objects) in the source.
        num_instances: usable instances of the selected categories in the source.
        num_instances_kept: instances in the returned records.
        instances_per_category: category name -> instances kept.
        num_images_without_instances: returned records with no instance (kept as negatives).
        (inherited) num_images_listed, num_images_kept, num_crowd, num_other_category
        (annotations of categories not selected), issues, examples.
    """

    category_names: tuple[str, ...] = ()
    num_annotations: int = 0
    num_instances: int = 0
    num_instances_kept: int = 0
    instances_per_category: dict[str, int] = dataclasses.field(default_factory=dict)
    num_images_without_instances: int = 0

    informational_issues = frozenset({
        "image_without_instances", "instance_below_min_area", "object_class_mixed",
    }) | annotation_checks.INFORMATIONAL_ISSUES

    def headline(self) -> str:
        """The first sentence of `summary`: what was kept out of what."""
        return (
            f"{self.source}: kept {self.num_images_kept}/{self.num_images_listed} images "
            f"({self.num_images_without_instances} without instances), "
            f"{self.num_instances_kept} instances of {len(self.category_names)} category(ies) "
            f"(source: {self.num_annotations} annotations, {self.num_instances} usable "
            f"instances, {self.num_crowd} crowd regions, {self.num_other_category} of other "
            f"categories)."
        )

    def finish(self, records: Sequence[InstanceRecord], categories: InstanceCategories) -> None:
        """Fills the kept-counts from the returned records and logs the report once.

        Every instance reader ends with this: the images without instances are counted as an
        (informational) issue too, so that the summary lists them.

        Args:
            records: the records the reader returns.
            categories: the selected categories, in channel order.
        """
        self.category_names = categories.names
        self.num_images_kept = len(records)
        self.num_instances_kept = sum(record.num_instances for record in records)
        self.num_images_without_instances = sum(1 for r in records if not r.segments)
        counts = collections.Counter(
            segment.category_index for record in records for segment in record.segments
        )
        self.instances_per_category = {
            name: counts.get(index, 0) for index, name in enumerate(categories.names)
        }
        self.count("image_without_instances", amount=self.num_images_without_instances)
        self.log()


def _segmentation_rle(
    annotation: dict, height: int, width: int, report: InstanceReadReport
) -> tuple[dict | None, list[str]]:
    """The annotation's segmentation as one compressed RLE (bytes counts), no bbox fallback.

    Returns:
        (rle or None when nothing usable is left, the names of the problems found); every
        problem is also counted in `report`.
    """
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict) and _rle_corrupt(segmentation, height, width):
        report.count("rle_invalid", annotation.get("id"))
        return None, ["rle_invalid"]
    return coco_reader.segmentation_rle(annotation, height, width, report)


def _rle_corrupt(segmentation: dict, height: int, width: int) -> bool:
    """An RLE of the image's size whose run lengths are corrupt (other sizes are counted as
    'rle_size_mismatch' by the region logic)."""
    size = segmentation.get("size")
    size_matches = (isinstance(size, (list, tuple))
                    and [_int_or_none(s) for s in size] == [height, width])
    return size_matches and not rle_is_valid(segmentation, height, width)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _file_categories(categories: Any, annotation_file: str) -> dict[int, str]:
    """id -> name of the file's categories."""
    if not isinstance(categories, list):
        raise ValueError(f"{annotation_file}: 'categories' must be a list.")
    names: dict[int, str] = {}
    for index, category in enumerate(categories):
        if not isinstance(category, dict) or _int_or_none(category.get("id")) is None:
            raise ValueError(
                f"{annotation_file}: categories[{index}] lacks an integer 'id': {category!r:.200}"
            )
        category_id = int(category["id"])
        if category_id in names:
            raise ValueError(f"{annotation_file}: duplicate category id {category_id}.")
        names[category_id] = str(category.get("name", category_id))
    return names


def select_categories(
    available: dict[int, str], category_ids: Iterable[int] | None, source: str
) -> InstanceCategories:
    """The selected categories in channel order: `category_ids` as given, else all by id.

    Raises:
        ValueError: naming `source` when a requested id is not available or repeated, or when
            nothing is selected.
    """
    if category_ids is None:
        chosen = sorted(available)
    else:
        chosen = [int(i) for i in category_ids]
        unknown = [i for i in chosen if i not in available]
        if unknown:
            raise ValueError(
                f"{source}: category ids {unknown} are not in the file; available (id, name): "
                f"{sorted(available.items())}."
            )
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"{source}: category_ids lists an id twice: {chosen}.")
    if not chosen:
        raise ValueError(f"{source}: no category selected (the file has {len(available)}).")
    return InstanceCategories(names=tuple(available[i] for i in chosen), ids=tuple(chosen))


@dataclasses.dataclass
class _ImageInstances:
    segments: list = dataclasses.field(default_factory=list)
    ignore: list = dataclasses.field(default_factory=list)


def read_coco_instances(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    category_ids: Sequence[int] | None = None,
    min_area: float = 0.0,
    skip_invalid: bool = True,
    verify_images: bool = False,
    show_progress: bool | None = None,
) -> tuple[list[InstanceRecord], InstanceCategories]:
    """Reads a COCO-format instances file into one `InstanceRecord` per image.

    See `read_coco_instances_with_report` (same arguments) for the details; this drops the
    report (it is logged once either way).

    Returns:
        (records, categories): records in the file's image order; ``categories`` the selected
        ones in channel order (`InstanceSegment.category_index` indexes it).
    """
    records, categories, _ = read_coco_instances_with_report(
        annotation_file, image_dir, category_ids=category_ids, min_area=min_area,
        skip_invalid=skip_invalid, verify_images=verify_images, show_progress=show_progress,
    )
    return records, categories


def read_coco_instances_with_report(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    category_ids: Sequence[int] | None = None,
    min_area: float = 0.0,
    skip_invalid: bool = True,
    verify_images: bool = False,
    show_progress: bool | None = None,
) -> tuple[list[InstanceRecord], InstanceCategories, InstanceReadReport]:
    """Reads a COCO-format instances file; also returns what was read and skipped.

    Args:
        annotation_file: COCO-format JSON (images, annotations, categories).
        image_dir: folder the images' ``file_name`` entries are relative to.
        category_ids: the dataset category ids to read, in channel order; default: every
            category in the file, sorted by id.
        min_area: instances whose mask has fewer pixels become ignore regions (see the module
            docstring); 0 keeps every non-empty instance.
        skip_invalid: skip and count invalid annotations and missing/broken images (default);
            False raises instead: for what the shared check would skip, one error listing
            every such annotation id, else on the first one.
        verify_images: fully decode every image (slow: ~5 ms each) to catch corrupt files and
            sizes that disagree with the JSON.
        show_progress: tqdm bars; None shows them for files of >= 20000 annotations.

    Returns:
        (records, categories, report); the report is also logged once.

    Raises:
        FileNotFoundError: the annotation file, the image folder or (unless skipping) an image
            file is missing; the message names the path.
        ValueError: invalid JSON or not COCO format, unknown requested category ids, duplicate
            image/category ids (the message names the file); unless skipping, an invalid
            annotation (the message names its id and the file) or an undecodable image
            (`image_io.ImageDecodeError`, a ValueError).
    """
    annotation_file, image_dir = os.fspath(annotation_file), os.fspath(image_dir)
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0, got {min_area}.")
    data = load_annotation_json(annotation_file)
    require_coco_format(data, annotation_file)
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(
            f"image directory not found: {image_dir} (images of {annotation_file})"
        )
    available = _file_categories(data["categories"], annotation_file)
    categories = select_categories(available, category_ids, annotation_file)
    channel_of_id = {category_id: index for index, category_id in enumerate(categories.ids)}

    checked = annotation_checks.check_coco_annotations(
        data, annotation_file, strict=not skip_invalid
    )
    data = checked.dataset
    report = InstanceReadReport(source=annotation_file, category_names=categories.names)
    report.add_checks(checked)
    entries = coco_reader.image_entries(data["images"], annotation_file, image_dir, report)
    report.num_images_listed = len(entries)
    instances = {image_id: _ImageInstances() for image_id in entries}
    annotations = data["annotations"]
    if not isinstance(annotations, list):
        raise ValueError(f"{annotation_file}: 'annotations' must be a list.")
    report.num_annotations = checked.report.num_annotations

    def invalid(issue: str | None, annotation: Any, reason: str) -> None:
        annotation_id = annotation.get("id") if isinstance(annotation, dict) else None
        if issue is not None:
            report.count(issue, annotation_id)
        if not skip_invalid:
            image_id = annotation.get("image_id") if isinstance(annotation, dict) else None
            raise ValueError(
                f"{annotation_file}: annotation {annotation_id} (image {image_id}): {reason}. "
                "Pass skip_invalid=True to skip and count such annotations."
            )

    progress = len(annotations) >= _AUTO_PROGRESS_MIN_ITEMS if show_progress is None else (
        show_progress)
    for annotation in tqdm(annotations, desc="annotations", unit="ann", disable=not progress,
                           leave=False):
        if not isinstance(annotation, dict):
            invalid("annotation_malformed", annotation, f"not a JSON object: {annotation!r:.100}")
            continue
        category_id = _int_or_none(annotation.get("category_id"))
        if category_id is None or category_id not in available:
            invalid("category_unknown", annotation,
                    f"category_id {annotation.get('category_id')!r} is not in the file's "
                    f"categories {sorted(available)}")
            continue
        if category_id not in channel_of_id:
            report.num_other_category += 1
            continue
        image_id = _int_or_none(annotation.get("image_id"))
        entry = entries.get(image_id) if image_id is not None else None
        if entry is None:
            invalid("annotation_unknown_image", annotation,
                    f"image_id {annotation.get('image_id')!r} is not listed in 'images'")
            continue
        if entry.height <= 0:  # size unknown and file missing: reported with the image below
            continue
        image = instances[image_id]
        if annotation.get("iscrowd"):
            report.num_crowd += 1
            segmentation = annotation.get("segmentation")
            if isinstance(segmentation, dict) and _rle_corrupt(
                    segmentation, entry.height, entry.width):
                invalid("rle_invalid", annotation, "the crowd RLE's run lengths are corrupt")
                continue
            region = coco_reader.region_rle(annotation, entry.height, entry.width, report)
            if region is not None:
                image.ignore.append(region)
            continue
        rle, problems = _segmentation_rle(annotation, entry.height, entry.width, report)
        if problems:
            invalid(None, annotation, f"invalid segmentation ({', '.join(problems)})")
        if rle is None:
            invalid("instance_skipped_invalid_segmentation", annotation,
                    "no usable segmentation")
            continue
        area = float(mask_utils.area(rle))
        if area <= 0:
            invalid("segmentation_empty", annotation, "the segmentation mask is empty")
            continue
        report.num_instances += 1
        if area < min_area:
            report.count("instance_below_min_area", annotation.get("id"))
            image.ignore.append(rle)
            continue
        image.segments.append(InstanceSegment(
            category_index=channel_of_id[category_id],
            rle=rle_str(rle),
            annotation_id=_annotation_id(annotation),
            area=area,
            bbox=np.asarray(mask_utils.toBbox(rle), np.float32),
        ))

    kept = []
    for entry in entries.values():
        if entry.height <= 0:  # no size in the JSON and no file to read it from
            coco_reader.skip_or_raise(
                "image_missing",
                f"image {entry.image_id}: image file not found: {entry.file_name}",
                entry, skip_invalid, report,
            )
            continue
        kept.append(entry)
    records = []
    for entry in tqdm(kept, desc="checking images", unit="img",
                      disable=not (verify_images and (progress or len(kept) >= 200)),
                      leave=False):
        problem = coco_reader.check_image(entry, verify_images)
        if problem is not None:
            coco_reader.skip_or_raise(*problem, entry, skip_invalid, report)
            continue
        image = instances[entry.image_id]
        records.append(InstanceRecord(
            image_id=entry.image_id,
            file_name=entry.file_name,
            height=entry.height,
            width=entry.width,
            segments=image.segments,
            ignore_rle=merge_rles(image.ignore, entry.height, entry.width),
            source=annotation_file,
        ))
    report.finish(records, categories)
    return records, categories, report


def _annotation_id(annotation: dict) -> int:
    value = _int_or_none(annotation.get("id"))
    return -1 if value is None else value


def coco_instances_dict(
    records: Sequence[InstanceRecord],
    categories: InstanceCategories,
    *,
    image_dir: str | os.PathLike | None = None,
    ignore_as_crowd: bool = False,
    info: dict | None = None,
) -> dict:
    """A COCO instances dataset (dict) of records: RLE segmentations, one image per record.

    Args:
        records: the images; ``segments[n].category_index`` indexes `categories`.
        categories: channel order -> dataset category ids and names.
        image_dir: ``file_name`` entries are written relative to this folder; default: the
            base name of each record's ``file_name``.
        ignore_as_crowd: also write each record's ``ignore_rle`` as one crowd annotation
            (``iscrowd`` 1) per category, so COCO evaluation ignores detections there. The
            reader merges crowds of all categories into one region, so this is an
            approximation of the original crowds; default False (ignore regions not written).
        info: the ``info`` entry.

    Returns:
        The dict. Annotation ids are the segments' ``annotation_id`` when all are positive and
        unique, else 1..N in record order (COCO evaluation needs unique ids); crowd annotations
        get ids after the largest instance id. ``area`` and ``bbox`` come from the masks.
    """
    images, annotations = [], []
    ids = [segment.annotation_id for record in records for segment in record.segments]
    keep_ids = all(i > 0 for i in ids) and len(set(ids)) == len(ids)
    next_id = 1
    for record in records:
        if image_dir is not None:
            file_name = os.path.relpath(record.file_name, os.fspath(image_dir))
        else:
            file_name = os.path.basename(record.file_name)
        images.append({"id": int(record.image_id), "file_name": file_name.replace(os.sep, "/"),
                       "height": int(record.height), "width": int(record.width)})
        for segment in record.segments:
            if not 0 <= segment.category_index < categories.num_categories:
                raise ValueError(
                    f"{record.source or record.file_name}: image {record.image_id} annotation "
                    f"{segment.annotation_id} has category index {segment.category_index}, "
                    f"outside the {categories.num_categories} categories."
                )
            annotations.append(_annotation(
                segment.annotation_id if keep_ids else next_id, record.image_id,
                categories.ids[segment.category_index], segment.rle, iscrowd=0,
            ))
            next_id += 1
    if ignore_as_crowd:
        next_id = max([a["id"] for a in annotations], default=0) + 1
        for record in records:
            if record.ignore_rle is None:
                continue
            for category_id in categories.ids:
                annotations.append(_annotation(
                    next_id, record.image_id, category_id, record.ignore_rle, iscrowd=1
                ))
                next_id += 1
    return {
        "info": dict(info or {}),
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories.to_coco(),
    }


def _annotation(annotation_id: int, image_id: int, category_id: int, rle: dict,
                iscrowd: int) -> dict:
    bytes_rle = rle_bytes(rle)
    return {
        "id": int(annotation_id),
        "image_id": int(image_id),
        "category_id": int(category_id),
        "iscrowd": int(iscrowd),
        "segmentation": rle_str(bytes_rle),
        "area": float(mask_utils.area(bytes_rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(bytes_rle)],
    }


def write_coco_instances(
    path: str | os.PathLike,
    records: Sequence[InstanceRecord],
    categories: InstanceCategories,
    *,
    image_dir: str | os.PathLike | None = None,
    ignore_as_crowd: bool = False,
    info: dict | None = None,
) -> pathlib.Path:
    """Writes records as a COCO instances JSON (see `coco_instances_dict` for the content).

    The file is written atomically (a temporary file renamed into place); parent folders are
    created.

    Returns:
        The path written.
    """
    path = pathlib.Path(path)
    dataset = coco_instances_dict(records, categories, image_dir=image_dir,
                                  ignore_as_crowd=ignore_as_crowd, info=info)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    # json.dumps uses the C encoder; json.dump to a stream would not.
    temporary.write_text(json.dumps(dataset, separators=(",", ":")), encoding="utf-8")
    os.replace(temporary, path)
    return path
