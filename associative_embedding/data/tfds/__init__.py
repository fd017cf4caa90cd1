"""TFDS builders (offline, manual_dir) for COCO keypoints, MPII multi-person and synthetic people.

Importing this package registers the builders 'coco_keypoints', 'mpii_pose' and
'synthetic_people' with TFDS, so ``tfds.builder('coco_keypoints/2017')`` and
``tfds build coco_keypoints --imports associative_embedding.data.tfds`` find them.
Example layout: `associative_embedding.data.tfds.features`.
"""

from associative_embedding.data.tfds.coco_keypoints import CocoKeypoints, CocoKeypointsConfig
from associative_embedding.data.tfds.features import (
    example_to_record,
    pose_features,
    record_to_example,
)
from associative_embedding.data.tfds.mpii_pose import MpiiPose, MpiiPoseConfig
from associative_embedding.data.tfds.synthetic_people import SyntheticPeople, SyntheticPeopleConfig

__all__ = [
    "CocoKeypoints",
    "CocoKeypointsConfig",
    "MpiiPose",
    "MpiiPoseConfig",
    "SyntheticPeople",
    "SyntheticPeopleConfig",
    "example_to_record",
    "pose_features",
    "record_to_example",
]
