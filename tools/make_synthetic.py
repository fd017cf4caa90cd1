"""Writes the synthetic-people keypoint dataset in COCO format (no download needed).

Usage:
    python tools/make_synthetic.py --out /tmp/synthetic            # train (5000) + val (500)
    python tools/make_synthetic.py --out DIR --split val --num_images 200 --seed 7

Layout: DIR/<split>/<image_id:012d>.jpg and DIR/annotations/person_keypoints_<split>.json,
readable by pycocotools, `associative_embedding.data.coco.read_coco_keypoints` and COCO
keypoint evaluation. Defaults (per split) are in
`associative_embedding.data.synthetic.DEFAULT_SPLITS`; --num_images applies to every split
given, and --seed S gives split i (in --split order) the seed S + i, so train and val differ.
After each split the grouping statistics are printed (images, people, fraction of images with
>= 3 people, fraction with a pair of boxes overlapping at IoU >= 0.3) with the time taken.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from associative_embedding.data import synthetic  # noqa: E402

_OUT = flags.DEFINE_string("out", None, "Dataset root folder (created if needed).", required=True)
_SPLITS = flags.DEFINE_list("split", ["train", "val"], "Splits to write.")
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", None, "Images per split (default: per-split default, train 5000, val 500)."
)
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", synthetic.DEFAULT_IMAGE_SIZE, "Side of the square images in pixels."
)
_SEED = flags.DEFINE_integer(
    "seed", None, "Base seed; split i gets seed + i (default: per-split default, train 0, val 1)."
)


def _split_settings(split: str, position: int) -> tuple[int, int]:
    """(num_images, seed) of one split from the flags and the per-split defaults."""
    default = synthetic.DEFAULT_SPLITS.get(split)
    num_images = _NUM_IMAGES.value
    seed = None if _SEED.value is None else _SEED.value + position
    if default is not None:
        num_images = default.num_images if num_images is None else num_images
        seed = default.seed if seed is None else seed
    if num_images is None or seed is None:
        raise app.UsageError(
            f"split {split!r} has no defaults ({sorted(synthetic.DEFAULT_SPLITS)} do): "
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
    for split, (num_images, seed) in settings.items():
        start = time.perf_counter()
        path = synthetic.generate_synthetic_dataset(
            _OUT.value,
            split=split,
            num_images=num_images,
            seed=seed,
            image_size=_IMAGE_SIZE.value,
            show_progress=True,
        )
        elapsed = time.perf_counter() - start
        stats = synthetic.compute_statistics(path)
        print(
            f"{split}: {path}\n"
            f"  seed {seed}, {_IMAGE_SIZE.value}x{_IMAGE_SIZE.value}, "
            f"{elapsed:.1f} s ({num_images / elapsed:.0f} images/s)\n"
            f"  images {stats.num_images}, people {stats.num_people} "
            f"({stats.mean_people_per_image:.2f}/image)\n"
            f"  images with >= 3 people: {stats.fraction_three_or_more:.1%}\n"
            f"  images with a box pair at IoU >= {stats.iou_threshold}: "
            f"{stats.fraction_overlapping_pair:.1%}\n"
            f"  occluded (v=1) among labelled joints: {stats.occluded_joint_fraction:.1%}",
            flush=True,
        )


if __name__ == "__main__":
    app.run(main)
