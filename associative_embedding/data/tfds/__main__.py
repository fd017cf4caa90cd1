"""Builds one of this package's TFDS datasets: the `tfds build` equivalent without Apache Beam.

TFDS 4.9's `tfds build` command imports apache_beam on start-up even for builders that do not
use it; this entry point needs only tensorflow-datasets::

    python -m associative_embedding.data.tfds coco_keypoints/2017 \
        --manual_dir ~/data/coco --data_dir ~/tensorflow_datasets
    python -m associative_embedding.data.tfds mpii_pose/multi_person --manual_dir ~/data/mpii
    python -m associative_embedding.data.tfds synthetic_people/256
"""

from __future__ import annotations

import argparse
import os

import tensorflow_datasets as tfds

import associative_embedding.data.tfds  # noqa: F401  (registers the builders)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m associative_embedding.data.tfds", description=__doc__.splitlines()[0]
    )
    parser.add_argument("dataset", help="name[/config], e.g. coco_keypoints/2017, "
                        "mpii_pose/multi_person, synthetic_people/256")
    parser.add_argument("--manual_dir", default=None,
                        help="folder holding the manually downloaded files")
    parser.add_argument("--data_dir", default=None,
                        help="TFDS data folder (default ~/tensorflow_datasets)")
    args = parser.parse_args(argv)
    builder = tfds.builder(args.dataset, data_dir=args.data_dir)
    manual_dir = os.path.expanduser(args.manual_dir) if args.manual_dir else None
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    print(f"{builder.info.full_name} written to {builder.data_dir}")
    for name, split in builder.info.splits.items():
        print(f"  {name}: {split.num_examples} examples")


if __name__ == "__main__":
    main()
