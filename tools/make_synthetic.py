"""Writes a synthetic dataset in COCO format (no download needed): people or shapes.

Usage:
    python tools/make_synthetic.py --out /tmp/synthetic            # train (5000) + val (500)
    python tools/make_synthetic.py --out DIR --split val --num_images 200 --seed 7
    python tools/make_synthetic.py --kind=shapes --output_dir=/tmp/shapes  # train 2000 + val 300

--kind=people (default): synthetic people with keypoints. Layout:
DIR/<split>/<image_id:012d>.jpg and DIR/annotations/person_keypoints_<split>.json, readable by
pycocotools, `associative_embedding.data.coco.read_coco_keypoints` and COCO keypoint
evaluation; 256x256 by default. After each split the grouping statistics are printed (images,
people, fraction of images with >= 3 people, fraction with a pair of boxes overlapping at
IoU >= 0.3) with the time taken.

--kind=shapes: the instance segmentation shapes (disc, square, triangle) of
`associative_embedding.data.synthetic.shapes`. Layout: DIR/<split>/<image_id:012d>.png,
DIR/annotations/instances_<split>.json (COCO instances, RLE masks) and
DIR/annotations/instances_<split>_statistics.json; 128x128 by default. After each split the
instances per category and the touching same-category pairs are printed.

Defaults (per kind and split) are in the modules' DEFAULT_SPLITS; --num_images applies to every
split given, and --seed S gives split i (in --split order) the seed S + i, so train and val
differ. --output_dir is another name for --out. --workers sets the processes that render the
images (default 0: one per CPU; 1: serial); the files do not depend on it.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from associative_embedding.core import startup  # noqa: E402

# Before anything imports TensorFlow or tqdm: quiet start-up, visible progress bars.
startup.start_tool()

from absl import app, flags  # noqa: E402

from associative_embedding.data import synthetic  # noqa: E402
from associative_embedding.data.synthetic import shapes as synthetic_shapes  # noqa: E402

_KIND = flags.DEFINE_enum(
    "kind", "people", ["people", "shapes"],
    "people: keypoint stick figures; shapes: instance segmentation shapes.",
)
_OUT = flags.DEFINE_string("out", None, "Dataset root folder (created if needed).", required=True)
flags.DEFINE_alias("output_dir", "out")
_SPLITS = flags.DEFINE_list("split", ["train", "val"], "Splits to write.")
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", None,
    "Images per split (default: per-split default; people train 5000, val 500; shapes train "
    "2000, val 300).",
)
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", None,
    f"Side of the square images in pixels (default: people {synthetic.DEFAULT_IMAGE_SIZE}, "
    f"shapes {synthetic_shapes.DEFAULT_IMAGE_SIZE}).",
)
_SEED = flags.DEFINE_integer(
    "seed", None, "Base seed; split i gets seed + i (default: per-split default, train 0, val 1)."
)
_WORKERS = flags.DEFINE_integer(
    "workers", 0,
    "Processes that render and write the images: 0 = one per CPU (a split of a few hundred "
    "images or less stays in one process), 1 = serial. The files are the same either way.",
    lower_bound=0,
)


def _default_splits() -> dict:
    if _KIND.value == "shapes":
        return synthetic_shapes.DEFAULT_SPLITS
    return synthetic.DEFAULT_SPLITS


def _split_settings(split: str, position: int) -> tuple[int, int]:
    """(num_images, seed) of one split from the flags and the per-split defaults."""
    default = _default_splits().get(split)
    num_images = _NUM_IMAGES.value
    seed = None if _SEED.value is None else _SEED.value + position
    if default is not None:
        num_images = default.num_images if num_images is None else num_images
        seed = default.seed if seed is None else seed
    if num_images is None or seed is None:
        raise app.UsageError(
            f"split {split!r} has no defaults ({sorted(_default_splits())} do): "
            "pass --num_images and --seed."
        )
    return num_images, seed


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    splits = [split.strip() for split in _SPLITS.value if split.strip()]
    if not splits:
        raise app.UsageError("--split is empty.")
    if len(set(splits)) != len(splits):
        raise app.UsageError(f"--split lists a split twice: {splits}.")
    settings = {split: _split_settings(split, position) for position, split in enumerate(splits)}
    if _KIND.value == "shapes":
        _make_shapes(settings)
        return
    image_size = synthetic.DEFAULT_IMAGE_SIZE if _IMAGE_SIZE.value is None else _IMAGE_SIZE.value
    for split, (num_images, seed) in settings.items():
        start = time.perf_counter()
        path = synthetic.generate_synthetic_dataset(
            _OUT.value,
            split=split,
            num_images=num_images,
            seed=seed,
            image_size=image_size,
            show_progress=True,
            workers=_WORKERS.value,
        )
        elapsed = time.perf_counter() - start
        stats = synthetic.compute_statistics(path)
        print(
            f"{split}: {path}\n"
            f"  seed {seed}, {image_size}x{image_size}, "
            f"{elapsed:.1f} s ({num_images / elapsed:.0f} images/s)\n"
            f"  images {stats.num_images}, people {stats.num_people} "
            f"({stats.mean_people_per_image:.2f}/image)\n"
            f"  images with >= 3 people: {stats.fraction_three_or_more:.1%}\n"
            f"  images with a box pair at IoU >= {stats.iou_threshold}: "
            f"{stats.fraction_overlapping_pair:.1%}\n"
            f"  occluded (v=1) among labelled joints: {stats.occluded_joint_fraction:.1%}",
            flush=True,
        )


def _make_shapes(settings: dict[str, tuple[int, int]]) -> None:
    image_size = (synthetic_shapes.DEFAULT_IMAGE_SIZE if _IMAGE_SIZE.value is None
                  else _IMAGE_SIZE.value)
    for split, (num_images, seed) in settings.items():
        dataset = synthetic_shapes.generate_synthetic_shapes(
            _OUT.value, split, num_images, seed, image_size, show_progress=True,
            workers=_WORKERS.value,
        )
        stats = dataset.statistics
        per_category = ", ".join(f"{n} {c}" for c, n in stats.instances_per_category.items())
        print(
            f"{split}: {dataset.annotation_file}\n"
            f"  seed {seed}, {image_size}x{image_size}, {stats.seconds:.1f} s "
            f"({num_images / stats.seconds:.0f} images/s)\n"
            f"  images {stats.num_images}, instances {stats.num_instances} "
            f"({stats.num_instances / stats.num_images:.2f}/image): {per_category}\n"
            f"  touching same-category pairs {stats.touching_same_category_pairs}, in "
            f"{stats.fraction_images_touching_same_category:.1%} of the images\n"
            f"  occluded instances {stats.occluded_instances}, mean visible fraction "
            f"{stats.mean_visible_fraction:.1%}\n"
            f"  statistics: {dataset.statistics_file}",
            flush=True,
        )


if __name__ == "__main__":
    startup.run_tool(main)
