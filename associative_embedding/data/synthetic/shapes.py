"""Synthetic "shapes" instance segmentation data, written as a real COCO instances dataset.

Three categories - 'disc' (an ellipse), 'square' (a rotated, nearly square rectangle) and
'triangle' - drawn as solid, mildly shaded shapes on a smooth background. The data is made so
that a small hourglass learns it on a CPU in minutes, yet *grouping matters*: instances of one
category often touch (shared boundary, no gap) or occlude each other, so a per-category
foreground map alone cannot separate them, and instances of one category often have similar
colours, so colour alone cannot either.

Layout (``generate_synthetic_shapes``): ``root/{split}/{image_id:012d}.png`` (RGB PNG),
``root/annotations/instances_{split}.json`` (COCO instances: one compressed-RLE segmentation
per instance, its *visible* mask after occlusion; ``iscrowd`` 0; category ids 1 disc,
2 square, 3 triangle) and ``root/annotations/instances_{split}_statistics.json``. The JSON is
read by pycocotools, `coco_instances.read_coco_instances` and COCO ``segm`` evaluation.

The scenes are drawn by ``shapes_scene`` (which describes the model), their distribution is
``ShapesConfig``; this module writes a split and its statistics and gathers the public names.

Statistics (`ShapesStatistics`, also written as JSON) count, per split, the images, the
instances per category and per image, the touching same-category pairs (visible masks that are
4-adjacent) and the images that contain one, occluded instances and the visible fraction.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import pathlib
import time

import numpy as np

from associative_embedding.data.coco_instances import write_coco_instances
from associative_embedding.data.instances import InstanceRecord, InstanceSegment
from associative_embedding.data.synthetic.shapes_config import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_SPLITS,
    SHAPES_CATEGORIES,
    ShapesConfig,
)
from associative_embedding.data.synthetic.shapes_geometry import touching_pairs
from associative_embedding.data.synthetic.shapes_scene import (
    ShapeInstance,
    ShapesScene,
    render_shapes_scene,
)
from associative_embedding.data.synthetic.writer import ImageEncoding, SplitWriter

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "DEFAULT_SPLITS",
    "SHAPES_CATEGORIES",
    "ShapeInstance",
    "ShapesConfig",
    "ShapesDataset",
    "ShapesScene",
    "ShapesStatistics",
    "generate_synthetic_shapes",
    "render_shapes_scene",
    "shapes_annotation_path",
    "shapes_statistics_path",
    "touching_pairs",
]



@dataclasses.dataclass(frozen=True)
class ShapesStatistics:
    """Statistics of one generated split.

    Attributes:
        split, seed, image_size: what was generated.
        num_images: images written.
        num_instances: annotations written.
        instances_per_category: category name -> instances.
        instances_per_image: instance count -> images with that many.
        placements: 'free' / 'touch' / 'occlude' -> instances placed that way.
        touching_same_category_pairs: pairs of same-category instances whose visible masks
            are 4-adjacent (shared boundary, no gap).
        images_with_touching_same_category_pair: images with at least one such pair.
        fraction_images_touching_same_category: the above over num_images.
        touching_pairs_any_category: 4-adjacent pairs of any categories.
        occluded_instances: instances with visible area below 99 % of their in-image area.
        mean_visible_fraction: mean visible area / full area.
        similar_colour_images: images drawn in the "similar-coloured" mode.
        seconds: generation time.
    """

    split: str
    seed: int
    image_size: int
    num_images: int
    num_instances: int
    instances_per_category: dict[str, int]
    instances_per_image: dict[int, int]
    placements: dict[str, int]
    touching_same_category_pairs: int
    images_with_touching_same_category_pair: int
    fraction_images_touching_same_category: float
    touching_pairs_any_category: int
    occluded_instances: int
    mean_visible_fraction: float
    similar_colour_images: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class ShapesDataset:
    """What `generate_synthetic_shapes` wrote."""

    annotation_file: pathlib.Path
    image_dir: pathlib.Path
    statistics_file: pathlib.Path
    statistics: ShapesStatistics



def shapes_annotation_path(root: str | os.PathLike, split: str) -> pathlib.Path:
    """``root/annotations/instances_{split}.json``."""
    return pathlib.Path(root) / "annotations" / f"instances_{split}.json"


def shapes_statistics_path(root: str | os.PathLike, split: str) -> pathlib.Path:
    """``root/annotations/instances_{split}_statistics.json``."""
    return pathlib.Path(root) / "annotations" / f"instances_{split}_statistics.json"


@dataclasses.dataclass(frozen=True)
class _ImageStatistics:
    """One image's share of `ShapesStatistics` (see there)."""

    num_instances: int
    touching_same: int
    touching_any: int
    similar_colours: bool
    categories: tuple[str, ...]
    placements: tuple[str, ...]
    occluded: int
    visible_fractions: tuple[float, ...]

    @classmethod
    def of(cls, scene: ShapesScene) -> _ImageStatistics:
        """The counts of one rendered scene (needs its masks, so runs where it was drawn)."""
        instances = scene.instances
        masks = [instance.mask for instance in instances]
        categories = [instance.category_index for instance in instances]
        visible = [int(instance.mask.sum()) for instance in instances]
        return cls(
            num_instances=len(instances),
            touching_same=len(touching_pairs(masks, categories)),
            touching_any=len(touching_pairs(masks, [0] * len(masks))),
            similar_colours=bool(scene.similar_colours),
            categories=tuple(SHAPES_CATEGORIES.names[index] for index in categories),
            placements=tuple(instance.placement for instance in instances),
            occluded=sum(
                area < 0.99 * int(instance.full_mask.sum())
                for area, instance in zip(visible, instances, strict=True)
            ),
            visible_fractions=tuple(
                area / max(instance.full_area, 1e-6)
                for area, instance in zip(visible, instances, strict=True)
            ),
        )


@dataclasses.dataclass(frozen=True)
class _ImageSummary:
    """What a written image contributes: its segments (annotation ids still -1) and
    statistics. A worker sends this back instead of the scene's full-size masks."""

    segments: tuple[InstanceSegment, ...]
    statistics: _ImageStatistics


def _summarize_image(scene: ShapesScene, image_id: int) -> _ImageSummary:
    del image_id  # the segments are numbered in image order by the caller
    segments = tuple(
        InstanceSegment.from_mask(instance.mask, instance.category_index)
        for instance in scene.instances
    )
    return _ImageSummary(segments, _ImageStatistics.of(scene))


class _StatisticsAccumulator:
    def __init__(self) -> None:
        self.per_category: collections.Counter = collections.Counter()
        self.per_image: collections.Counter = collections.Counter()
        self.placements: collections.Counter = collections.Counter()
        self.touching_same = self.images_touching = self.touching_any = 0
        self.occluded = self.similar = 0
        self.visible_fractions: list[float] = []

    def add(self, image: _ImageStatistics) -> None:
        self.touching_same += image.touching_same
        self.images_touching += image.touching_same > 0
        self.touching_any += image.touching_any
        self.per_image[image.num_instances] += 1
        self.similar += image.similar_colours
        self.per_category.update(image.categories)
        self.placements.update(image.placements)
        self.occluded += image.occluded
        self.visible_fractions.extend(image.visible_fractions)

    def result(self, split: str, seed: int, image_size: int, num_images: int,
               seconds: float) -> ShapesStatistics:
        return ShapesStatistics(
            split=split,
            seed=seed,
            image_size=image_size,
            num_images=num_images,
            num_instances=sum(self.per_category.values()),
            instances_per_category={name: self.per_category.get(name, 0)
                                    for name in SHAPES_CATEGORIES.names},
            instances_per_image=dict(sorted(self.per_image.items())),
            placements={name: self.placements.get(name, 0)
                        for name in ("free", "touch", "occlude")},
            touching_same_category_pairs=self.touching_same,
            images_with_touching_same_category_pair=self.images_touching,
            fraction_images_touching_same_category=self.images_touching / max(num_images, 1),
            touching_pairs_any_category=self.touching_any,
            occluded_instances=self.occluded,
            mean_visible_fraction=float(np.mean(self.visible_fractions))
            if self.visible_fractions else 0.0,
            similar_colour_images=self.similar,
            seconds=seconds,
        )


def generate_synthetic_shapes(
    root: str | os.PathLike,
    split: str,
    num_images: int,
    seed: int,
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    config: ShapesConfig | None = None,
    show_progress: bool = False,
    workers: int = 0,
) -> ShapesDataset:
    """Writes one split of the synthetic shapes dataset (see the module docstring).

    The output depends only on (split, num_images, seed, image_size, config), not on
    ``workers``: the same
    arguments give byte-identical images and annotation JSON (the statistics JSON also holds
    the generation time). Image ids are 1..num_images, annotation ids 1..N in image order.

    Args:
        root: dataset root (created if needed; existing files of the split are overwritten).
        split: split name, e.g. 'train' or 'val' (also mixed into the random seed).
        num_images: number of images (>= 1).
        seed: non-negative base seed.
        image_size: side of the square images in pixels (>= 32).
        config: scene distribution; default `ShapesConfig()`.
        show_progress: show a tqdm progress bar.
        workers: processes that render and write the images (``writer.resolve_workers``):
            0 = one per CPU (a small split stays in this process), 1 = serial, in this
            process.

    Returns:
        The paths written and the split's statistics.

    Raises:
        ValueError: naming the first bad argument.
        writer.SyntheticImageError: naming the image that could not be made.
    """
    config = config or ShapesConfig()
    start = time.perf_counter()
    writer = SplitWriter(root, split, num_images=num_images, seed=seed, image_size=image_size)
    image_dir = writer.image_dir

    records = []
    statistics = _StatisticsAccumulator()
    next_annotation_id = 1
    for image_id, path, summary in writer.write_images(
        functools.partial(render_shapes_scene, image_size=image_size, config=config),
        ImageEncoding(".png", "PNG"),
        summarize=_summarize_image,
        progress_label="shapes" if show_progress else None,
        workers=workers,
    ):
        segments = []
        for segment in summary.segments:
            segments.append(dataclasses.replace(segment, annotation_id=next_annotation_id))
            next_annotation_id += 1
        records.append(InstanceRecord(
            image_id=image_id, file_name=str(path.resolve()), height=image_size,
            width=image_size, segments=segments,
        ))
        statistics.add(summary.statistics)
    info = {
        # The module path of the original single-module generator, kept so that files written
        # before and after the package split stay byte-identical.
        "description": "Synthetic shapes for instance segmentation "
        "(associative_embedding.data.synthetic_shapes)",
        "split": split,
        "seed": seed,
        "image_size": image_size,
        "config": dataclasses.asdict(config),
    }
    annotation_file = write_coco_instances(
        shapes_annotation_path(root, split), records, SHAPES_CATEGORIES,
        image_dir=image_dir.resolve(), info=info,
    )
    result = statistics.result(split, seed, image_size, num_images,
                               time.perf_counter() - start)
    statistics_file = shapes_statistics_path(root, split)
    statistics_file.write_text(json.dumps(dataclasses.asdict(result), indent=2) + "\n",
                               encoding="utf-8")
    return ShapesDataset(annotation_file=annotation_file, image_dir=image_dir,
                         statistics_file=statistics_file, statistics=result)
