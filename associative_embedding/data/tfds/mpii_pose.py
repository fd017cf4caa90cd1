"""TFDS builder for MPII Human Pose, multi-person, fully offline.

Reads the official release with `associative_embedding.data.mpii_mat.read_mpii_mat` (structure,
quirks, multi-person subset and head boxes documented there) and stores one example per image
in the layout of `associative_embedding.data.tfds.features`, plus ``head_boxes`` (P, 4) for
PCKh. Manual directory layout (as the MPII archives extract)::

    <manual_dir>/mpii_human_pose_v1_u12_1.mat        (or mpii_human_pose_v1_u12_2/...)
    <manual_dir>/images/*.jpg

MPII withholds the test-set joints, so both splits come from the training images:
'validation' is a fixed random sample of `num_validation_images` images (seeded, chosen from
the sorted image names, so the same files give the same split) and 'train' is the rest; all
people of an image stay in the same split.

Configs: 'multi_person' (default): the images holding MPII's multi-person groups; 'all': every
training image with an annotated person. A `MpiiPoseConfig` with ``json_splits`` builds from
the common JSON conversion instead (split -> (json, image folder); head boxes estimated).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import numpy as np
import tensorflow_datasets as tfds

from associative_embedding.core.keypoint_info import MPII
from associative_embedding.data.mpii import read_mpii_json
from associative_embedding.data.mpii_mat import read_mpii_mat
from associative_embedding.data.tfds.builder_base import PoseBuilder
from associative_embedding.data.tfds.features import pose_features, record_to_example

__all__ = ["MpiiPose", "MpiiPoseConfig"]

_MAT_CANDIDATES = (
    "mpii_human_pose_v1_u12_1.mat",
    "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat",
)

_CITATION = """\
@inproceedings{andriluka14cvpr,
  title={2D Human Pose Estimation: New Benchmark and State of the Art Analysis},
  author={Andriluka, Mykhaylo and Pishchulin, Leonid and Gehler, Peter and Schiele, Bernt},
  booktitle={CVPR}, year={2014}}
"""


@dataclasses.dataclass(eq=False)
class MpiiPoseConfig(tfds.core.BuilderConfig):
    """MPII source files and split choices.

    Attributes:
        subset: 'multi_person' or 'all' (see mpii_mat.read_mpii_mat).
        mat_file: the .mat, absolute or relative to the manual directory ('' = look for the
            official names).
        image_dir: image folder, absolute or relative to the manual directory.
        num_validation_images: images held out as 'validation' (0: 'train' only).
        validation_seed: seed of that sample.
        json_splits: optional split -> (JSON file, image folder) to build from the JSON
            conversion instead of the .mat.
        ignore: 'crowd_and_unlabelled' (mask unannotated people) or 'crowd' (mask nothing).
        verify_images: fully decode every image while building.
        skip_bad_images: skip (and log) missing/corrupt images instead of failing.
    """

    subset: str = "multi_person"
    mat_file: str = ""
    image_dir: str = "images"
    num_validation_images: int = 500
    validation_seed: int = 0
    json_splits: Mapping[str, tuple[str, str]] | None = None
    ignore: str = "crowd_and_unlabelled"
    verify_images: bool = True
    skip_bad_images: bool = False


def validation_image_names(image_names: list[str], count: int, seed: int) -> set[str]:
    """The `count` held-out images: a seeded sample of the sorted names."""
    names = sorted(set(image_names))
    if count >= len(names):
        raise ValueError(
            f"num_validation_images={count} leaves no training image ({len(names)} images)."
        )
    chosen = np.random.default_rng(seed).choice(len(names), size=count, replace=False)
    return {names[i] for i in chosen}


class MpiiPose(PoseBuilder):
    """MPII Human Pose, multi-person: images, 16 keypoints per person, head boxes, ignore mask."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        MpiiPoseConfig(name="multi_person", description="Images holding multi-person groups."),
        MpiiPoseConfig(name="all", subset="all",
                       description="Every training image with an annotated person."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download the MPII Human Pose images (mpii_human_pose_v1.tar.gz) and annotations
    (mpii_human_pose_v1_u12_2.zip) from http://human-pose.mpi-inf.mpg.de/#download and extract
    both into the manual directory, so that it holds images/ and
    mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat (or the .mat at its top level).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "MPII Human Pose for bottom-up multi-person pose estimation: one example per "
                "image with all its annotated people, head boxes and an ignore mask."
            ),
            features=pose_features(MPII.num_joints, head_boxes=True),
            homepage="http://human-pose.mpi-inf.mpg.de/",
            citation=_CITATION,
        )

    def _resolve(self, dl_manager, path: str) -> str:
        return path if os.path.isabs(path) else os.fspath(dl_manager.manual_dir / path)

    def _mat_path(self, dl_manager) -> str:
        if self.builder_config.mat_file:
            return self._resolve(dl_manager, self.builder_config.mat_file)
        for candidate in _MAT_CANDIDATES:
            path = self._resolve(dl_manager, candidate)
            if os.path.isfile(path):
                return path
        raise FileNotFoundError(
            f"MPII annotation file not found in {dl_manager.manual_dir} (looked for "
            f"{list(_MAT_CANDIDATES)}). {self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )

    def _split_generators(self, dl_manager):
        config = self.builder_config
        reader_options = dict(ignore=config.ignore, verify_images=config.verify_images,
                              skip_bad_images=config.skip_bad_images)
        if config.json_splits:
            generators = {}
            for split, (json_file, image_dir) in config.json_splits.items():
                records, _ = read_mpii_json(
                    self._resolve(dl_manager, json_file), self._resolve(dl_manager, image_dir),
                    split_role="train" if split == "train" else "eval", **reader_options,
                )
                generators[split] = self._generate_examples(records)
            return generators
        records, _ = read_mpii_mat(
            self._mat_path(dl_manager), self._resolve(dl_manager, config.image_dir),
            subset=config.subset, split_role="train", **reader_options,
        )
        if not config.num_validation_images:
            return {"train": self._generate_examples(records)}
        held_out = validation_image_names(
            [os.path.basename(r.file_name) for r in records],
            config.num_validation_images, config.validation_seed,
        )
        return {
            "train": self._generate_examples(
                [r for r in records if os.path.basename(r.file_name) not in held_out]),
            "validation": self._generate_examples(
                [r for r in records if os.path.basename(r.file_name) in held_out]),
        }

    def _generate_examples(self, records):
        for record in records:
            yield record.image_id, record_to_example(record, head_boxes=True)
