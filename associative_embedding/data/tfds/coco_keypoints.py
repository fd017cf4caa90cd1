"""TFDS builder for COCO person keypoints (any COCO-format keypoint set), fully offline.

Reads the annotation JSON with `associative_embedding.data.coco.read_coco_keypoints` (all quirk
handling and counting lives there) and stores one example per image in the layout of
`associative_embedding.data.tfds.features`. Nothing is downloaded: the user places the files in
the manual directory (default ``~/tensorflow_datasets/downloads/manual``)::

    <manual_dir>/annotations/person_keypoints_train2017.json
    <manual_dir>/annotations/person_keypoints_val2017.json
    <manual_dir>/train2017/*.jpg
    <manual_dir>/val2017/*.jpg

Splits: 'train' keeps only images with at least one usable person (`split_role='train'`);
'validation' keeps every image (`split_role='eval'`), as COCO evaluation needs.

Configs: '2017' (default) masks crowd regions and people without labelled keypoints;
'2017_crowd_only' masks crowd regions only (the official Associative Embedding code). Any other
COCO-format set (CrowdPose, OCHuman, the synthetic set, a test subset) is built by passing a
`CocoKeypointsConfig` whose split paths are absolute or relative to the manual directory::

    config = CocoKeypointsConfig(
        name="crowdpose", num_joints=14,
        splits={"train": ("json/crowdpose_trainval.json", "images"),
                "validation": ("json/crowdpose_test.json", "images")})
    builder = CocoKeypoints(config=config, data_dir=...)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import tensorflow_datasets as tfds

from associative_embedding.data.coco import read_coco_keypoints
from associative_embedding.data.tfds.builder_base import PoseBuilder
from associative_embedding.data.tfds.features import pose_features, record_to_example

__all__ = ["CocoKeypoints", "CocoKeypointsConfig"]

_COCO_2017_SPLITS = {
    "train": ("annotations/person_keypoints_train2017.json", "train2017"),
    "validation": ("annotations/person_keypoints_val2017.json", "val2017"),
}

_CITATION = """\
@inproceedings{lin2014coco,
  title={Microsoft {COCO}: Common Objects in Context},
  author={Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James and
          Perona, Pietro and Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  booktitle={ECCV}, year={2014}}
"""


@dataclasses.dataclass(eq=False)
class CocoKeypointsConfig(tfds.core.BuilderConfig):
    """Which files make which split, and how the reader treats them.

    Attributes:
        splits: split name -> (annotation JSON, image folder), each absolute or relative to the
            manual directory. A split named 'train' is read with split_role='train' (images
            without usable people dropped); every other split with split_role='eval'.
        num_joints: K of the keypoint category (17 COCO, 14 CrowdPose).
        ignore: 'crowd_and_unlabelled' or 'crowd' (see coco.read_coco_keypoints).
        verify_images: fully decode every image while building (catches truncated files).
        skip_bad_images: skip (and log) missing/corrupt images instead of failing the build.
    """

    splits: Mapping[str, tuple[str, str]] = dataclasses.field(
        default_factory=lambda: dict(_COCO_2017_SPLITS)
    )
    num_joints: int = 17
    ignore: str = "crowd_and_unlabelled"
    verify_images: bool = True
    skip_bad_images: bool = False


class CocoKeypoints(PoseBuilder):
    """COCO person keypoints: images, keypoints (P, K, 3), boxes, areas, ignore mask."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        CocoKeypointsConfig(
            name="2017",
            description="COCO 2017 person keypoints; crowd and unlabelled people masked.",
        ),
        CocoKeypointsConfig(
            name="2017_crowd_only",
            description="COCO 2017 person keypoints; only crowd regions masked.",
            ignore="crowd",
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download COCO 2017 from https://cocodataset.org/#download (train2017.zip, val2017.zip,
    annotations_trainval2017.zip) and extract them into the manual directory so that it holds
    annotations/person_keypoints_{train,val}2017.json, train2017/ and val2017/.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "COCO-format person keypoints for bottom-up pose estimation: one example per "
                "image with every usable person's keypoints and an ignore mask."
            ),
            features=pose_features(self.builder_config.num_joints),
            homepage="https://cocodataset.org/#keypoints-2017",
            citation=_CITATION,
        )

    def _resolve(self, dl_manager, path: str) -> str:
        if os.path.isabs(path):
            return path
        return os.fspath(dl_manager.manual_dir / path)

    def _split_generators(self, dl_manager):
        generators = {}
        for split, (annotation_file, image_dir) in self.builder_config.splits.items():
            records, _ = read_coco_keypoints(
                self._resolve(dl_manager, annotation_file),
                self._resolve(dl_manager, image_dir),
                split_role="train" if split == "train" else "eval",
                ignore=self.builder_config.ignore,
                verify_images=self.builder_config.verify_images,
                skip_bad_images=self.builder_config.skip_bad_images,
            )
            generators[split] = self._generate_examples(records)
        return generators

    def _generate_examples(self, records):
        for record in records:
            yield record.image_id, record_to_example(record)
