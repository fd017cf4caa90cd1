"""TFDS builder for the synthetic people set: needs no download and no manual files.

`associative_embedding.data.synthetic.generate_synthetic_dataset` writes a COCO-format dataset
(the same bytes `tools/make_synthetic.py` writes for the same split, size and seed) into the
TFDS download folder, and `associative_embedding.data.coco.read_coco_keypoints` reads it back,
exactly as for real COCO; examples use the layout of `associative_embedding.data.tfds.features`
with K = 17 (COCO joints).

Configs: '256' (default, 256x256 images, train 5000 / validation 500 images, seeds 0 / 1 as in
`synthetic.DEFAULT_SPLITS`) and '512'. A custom `SyntheticPeopleConfig` sets other sizes, e.g.
a tiny set for tests.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import tensorflow_datasets as tfds

from associative_embedding.core.keypoint_info import COCO
from associative_embedding.data import synthetic
from associative_embedding.data.coco import read_coco_keypoints
from associative_embedding.data.tfds.builder_base import PoseBuilder
from associative_embedding.data.tfds.features import pose_features, record_to_example

__all__ = ["SyntheticPeople", "SyntheticPeopleConfig"]


def _default_splits() -> dict[str, tuple[str, int, int]]:
    train, validation = synthetic.DEFAULT_SPLITS["train"], synthetic.DEFAULT_SPLITS["val"]
    return {
        "train": ("train", train.num_images, train.seed),
        "validation": ("val", validation.num_images, validation.seed),
    }


@dataclasses.dataclass(eq=False)
class SyntheticPeopleConfig(tfds.core.BuilderConfig):
    """Size of the generated set.

    Attributes:
        image_size: side of the square images.
        splits: TFDS split -> (generator split name, number of images, seed); the generator
            split name is mixed into the seed, so 'val' reproduces `make_synthetic.py`'s 'val'.
    """

    image_size: int = synthetic.DEFAULT_IMAGE_SIZE
    splits: Mapping[str, tuple[str, int, int]] = dataclasses.field(
        default_factory=_default_splits
    )


class SyntheticPeople(PoseBuilder):
    """Synthetic articulated people in COCO format (17 joints), generated offline."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        SyntheticPeopleConfig(name="256", description="256x256 images."),
        SyntheticPeopleConfig(name="512", image_size=512, description="512x512 images."),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "Seeded synthetic multi-person stick figures with the 17 COCO joints, crowds of "
                "overlapping people and cluttered backgrounds (associative_embedding.data."
                "synthetic), one example per image."
            ),
            features=pose_features(COCO.num_joints),
        )

    def _split_generators(self, dl_manager):
        config = self.builder_config
        out_dir = os.fspath(
            dl_manager.download_dir / f"synthetic_people_{config.name}_{self.version}"
        )
        generators = {}
        for split, (generator_split, num_images, seed) in config.splits.items():
            annotation_file = synthetic.generate_synthetic_dataset(
                out_dir, split=generator_split, num_images=num_images, seed=seed,
                image_size=config.image_size, show_progress=num_images >= 100,
            )
            records, _ = read_coco_keypoints(
                annotation_file, os.path.join(out_dir, generator_split),
                split_role="train" if split == "train" else "eval",
            )
            generators[split] = self._generate_examples(records)
        return generators

    def _generate_examples(self, records):
        for record in records:
            yield record.image_id, record_to_example(record)
