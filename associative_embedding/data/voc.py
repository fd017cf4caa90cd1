"""PASCAL VOC 2012 instance segmentation reader: SegmentationObject + SegmentationClass PNGs.

Layout (``voc_root`` is ``VOCdevkit/VOC2012``)::

    ImageSets/Segmentation/{split}.txt   one image name per line (train 1464, val 1449)
    JPEGImages/{name}.jpg                the image
    SegmentationObject/{name}.png        palette PNG: 0 background, n = object n, 255 void
    SegmentationClass/{name}.png         palette PNG: 0 background, 1..20 class, 255 void

The PNGs are palette images whose *indices* are the labels. cv2 and tf.io expand the palette to
RGB colours, so they are read with Pillow (`read_voc_palette_png`).

What becomes what (per image):
    * object n (pixels with object index n, 1..254) -> an `InstanceSegment` with
      ``annotation_id`` n and the category of the majority of its labelled (1..20) class pixels
      (class c -> channel c - 1 with the default categories); objects whose class pixels
      disagree are counted ('object_class_mixed', informational).
    * void (255 in either PNG; VOC draws a 5-pixel void band along every object boundary and
      marks unlabelled/difficult regions void) -> ``ignore_rle``.
    * an object none of whose pixels has a labelled class ('object_without_class'), or with a
      class index outside 0..20 and 255 ('class_index_invalid'), is skipped and counted, and its
      pixels are ignored (they show an object, so they must not be supervised as background);
      with ``skip_invalid=False`` a ValueError names the PNG and the object instead.
    * an object whose mask area is below ``min_area`` -> ``ignore_rle`` ('instance_below_min_area').
    * an object of a class not in ``category_ids`` -> nothing (background).
Every image of the split is kept, with or without instances. ``image_id`` is the image's 0-based
position in the split list; ``source`` is the object PNG. Missing files raise
FileNotFoundError naming the path, or with ``skip_invalid`` the image is skipped and counted
('image_missing', 'segmentation_missing'); PNGs of different sizes: 'png_size_mismatch'.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from associative_embedding.data import image_io
from associative_embedding.data.coco_instances import InstanceReadReport, select_categories
from associative_embedding.data.instances import (
    InstanceCategories,
    InstanceRecord,
    InstanceSegment,
    encode_mask,
)

__all__ = [
    "VOC_CATEGORIES",
    "VOC_CLASS_NAMES",
    "VOID_INDEX",
    "read_voc_instances",
    "read_voc_instances_with_report",
    "read_voc_palette_png",
]

# The 20 PASCAL VOC classes; class index c (1..20) is VOC_CLASS_NAMES[c - 1].
VOC_CLASS_NAMES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
VOC_CATEGORIES = InstanceCategories(
    names=VOC_CLASS_NAMES, ids=tuple(range(1, len(VOC_CLASS_NAMES) + 1))
)
VOID_INDEX = 255

_AUTO_PROGRESS_MIN_IMAGES = 200


def read_voc_palette_png(path: str | os.PathLike) -> np.ndarray:
    """Reads the label indices of a VOC palette PNG (no palette-to-RGB expansion).

    Args:
        path: a palette ('P') or greyscale ('L') PNG, as VOC's SegmentationObject and
            SegmentationClass files.

    Returns:
        (H, W) uint8 indices.

    Raises:
        FileNotFoundError: naming the path when it does not exist.
        ValueError: naming the path when it is not a readable image, or its mode is neither
            'P' nor 'L' (an RGB rendering of the labels has lost the indices).
    """
    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in ("P", "L"):
                raise ValueError(
                    f"{path}: expected a palette ('P') or greyscale ('L') label PNG, got mode "
                    f"{mode!r}; an RGB rendering of the labels has lost the indices."
                )
            indices = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"label PNG not found: {path}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: cannot read the label PNG: {error}") from None
    if indices.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel label image, got {indices.shape}.")
    return indices


def _split_names(voc_root: str, split: str) -> tuple[str, list[str]]:
    if not split or any(character in split for character in "/\\"):
        raise ValueError(f"split must be a plain name such as 'train' or 'val', got {split!r}.")
    list_file = os.path.join(voc_root, "ImageSets", "Segmentation", f"{split}.txt")
    if not os.path.isfile(list_file):
        available = []
        folder = os.path.dirname(list_file)
        if os.path.isdir(folder):
            available = sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".txt"))
        raise FileNotFoundError(
            f"VOC split list not found: {list_file} (voc_root must be VOCdevkit/VOC2012; "
            f"splits there: {available})"
        )
    with open(list_file, encoding="utf-8") as handle:
        names = [line.split()[0] for line in handle if line.strip()]
    return list_file, names


def read_voc_instances(
    voc_root: str | os.PathLike,
    split: str = "val",
    *,
    category_ids: Sequence[int] | None = None,
    min_area: float = 0.0,
    skip_invalid: bool = True,
    verify_images: bool = False,
    show_progress: bool | None = None,
) -> tuple[list[InstanceRecord], InstanceCategories]:
    """Reads a PASCAL VOC 2012 segmentation split into one `InstanceRecord` per image.

    See `read_voc_instances_with_report` (same arguments); this drops the report (it is logged
    once either way).

    Returns:
        (records, categories): records in split-list order; categories the VOC classes
        selected (default all 20, ids 1..20, channel = id - 1).
    """
    records, categories, _ = read_voc_instances_with_report(
        voc_root, split, category_ids=category_ids, min_area=min_area,
        skip_invalid=skip_invalid, verify_images=verify_images, show_progress=show_progress,
    )
    return records, categories


def read_voc_instances_with_report(
    voc_root: str | os.PathLike,
    split: str = "val",
    *,
    category_ids: Sequence[int] | None = None,
    min_area: float = 0.0,
    skip_invalid: bool = True,
    verify_images: bool = False,
    show_progress: bool | None = None,
) -> tuple[list[InstanceRecord], InstanceCategories, InstanceReadReport]:
    """Reads a PASCAL VOC 2012 segmentation split; also returns what was read and skipped.

    Args:
        voc_root: the ``VOCdevkit/VOC2012`` folder.
        split: name of the list in ``ImageSets/Segmentation`` ('train', 'val', 'trainval').
        category_ids: VOC class indices (1..20) to read, in channel order; default all 20.
        min_area: objects with fewer pixels become ignore regions; 0 keeps every object.
        skip_invalid: skip and count invalid objects and images with missing files (default);
            False raises on the first one.
        verify_images: fully decode every JPEG and check its size against the PNGs.
        show_progress: tqdm bar; None shows it for splits of >= 200 images.

    Returns:
        (records, categories, report); the report is also logged once.

    Raises:
        FileNotFoundError: the split list or (unless skipping) an image/PNG is missing.
        ValueError: unknown category ids; a PNG that is not a palette/greyscale image; unless
            skipping, an invalid object (naming the PNG and the object index), PNGs of
            different sizes, or an undecodable image.
    """
    voc_root = os.fspath(voc_root)
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0, got {min_area}.")
    list_file, names = _split_names(voc_root, split)
    categories = select_categories(
        dict(zip(VOC_CATEGORIES.ids, VOC_CATEGORIES.names, strict=True)), category_ids, list_file
    )
    # Lookup table: VOC class index (0..255) -> channel, -1 for background/unselected,
    # -2 for indices that are no VOC class.
    channel_of_class = np.full(256, -2, np.int64)
    channel_of_class[0] = -1
    channel_of_class[1:len(VOC_CLASS_NAMES) + 1] = -1
    for channel, class_index in enumerate(categories.ids):
        channel_of_class[class_index] = channel

    report = InstanceReadReport(source=list_file, category_names=categories.names)
    report.num_images_listed = len(names)
    progress = len(names) >= _AUTO_PROGRESS_MIN_IMAGES if show_progress is None else show_progress
    records = []
    for image_index, name in enumerate(tqdm(names, desc=f"VOC {split}", unit="img",
                                            disable=not progress, leave=False)):
        record = _read_image(voc_root, name, image_index, channel_of_class, min_area,
                             skip_invalid, verify_images, report)
        if record is not None:
            records.append(record)
    report.finish(records, categories)
    return records, categories, report


def _read_image(
    voc_root: str,
    name: str,
    image_id: int,
    channel_of_class: np.ndarray,
    min_area: float,
    skip_invalid: bool,
    verify_images: bool,
    report: InstanceReadReport,
) -> InstanceRecord | None:
    """One image's record, or None when it is skipped (counted in `report`)."""
    image_path = os.path.abspath(os.path.join(voc_root, "JPEGImages", f"{name}.jpg"))
    object_path = os.path.abspath(os.path.join(voc_root, "SegmentationObject", f"{name}.png"))
    class_path = os.path.abspath(os.path.join(voc_root, "SegmentationClass", f"{name}.png"))

    def skip(issue: str, error: Exception) -> None:
        if not skip_invalid:
            raise error
        report.count(issue, name)

    for issue, path in (("image_missing", image_path), ("segmentation_missing", object_path),
                        ("segmentation_missing", class_path)):
        if not os.path.isfile(path):
            skip(issue, FileNotFoundError(f"VOC image {name}: file not found: {path}"))
            return None
    objects = read_voc_palette_png(object_path)
    classes = read_voc_palette_png(class_path)
    height, width = objects.shape
    if classes.shape != objects.shape:
        skip("png_size_mismatch", ValueError(
            f"VOC image {name}: {object_path} is {height}x{width} but {class_path} is "
            f"{classes.shape[0]}x{classes.shape[1]}."
        ))
        return None
    if verify_images:
        try:
            size = image_io.verify_image(image_path)
        except image_io.ImageDecodeError as error:
            skip("image_unreadable", error)
            return None
        if size != (height, width):
            skip("image_size_mismatch", image_io.ImageDecodeError(
                f"VOC image {name}: {image_path} is {size[0]}x{size[1]} but its label PNGs "
                f"are {height}x{width}."
            ))
            return None

    ignore = (objects == VOID_INDEX) | (classes == VOID_INDEX)
    segments = []
    object_ids = np.flatnonzero(np.bincount(objects.ravel(), minlength=256)[1:VOID_INDEX]) + 1
    for object_id in object_ids:
        mask = objects == object_id
        report.num_annotations += 1
        class_counts = np.bincount(classes[mask], minlength=256)
        invalid_classes = np.flatnonzero(class_counts[len(VOC_CLASS_NAMES) + 1:VOID_INDEX])
        labelled = class_counts[1:len(VOC_CLASS_NAMES) + 1]
        problem = None
        if invalid_classes.size:
            problem = ("class_index_invalid", f"class indices "
                       f"{(invalid_classes + len(VOC_CLASS_NAMES) + 1).tolist()} (VOC has 1..20)")
        elif not labelled.any():
            problem = ("object_without_class", "none of its pixels has a class in 1..20 in "
                       f"{class_path}")
        if problem is not None:
            if not skip_invalid:
                raise ValueError(f"{object_path}: object {object_id}: {problem[1]}.")
            report.count(problem[0], f"{name}:{object_id}")
            ignore |= mask
            continue
        class_index = int(np.argmax(labelled)) + 1
        if np.count_nonzero(labelled) > 1:
            report.count("object_class_mixed", f"{name}:{object_id}")
        channel = int(channel_of_class[class_index])
        if channel < 0:  # a class that was not selected: background
            report.num_other_category += 1
            continue
        report.num_instances += 1
        if mask.sum() < min_area:
            report.count("instance_below_min_area", f"{name}:{object_id}")
            ignore |= mask
            continue
        segments.append(InstanceSegment.from_mask(mask, channel, annotation_id=int(object_id)))
    return InstanceRecord(
        image_id=image_id,
        file_name=image_path,
        height=height,
        width=width,
        segments=segments,
        ignore_rle=encode_mask(ignore) if ignore.any() else None,
        source=object_path,
    )
