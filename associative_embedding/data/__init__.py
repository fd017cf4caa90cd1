"""Dataset readers, records, augmentation and tf.data pipelines."""

from associative_embedding.core.keypoint_info import (
    COCO,
    CROWDPOSE,
    MPII,
    KeypointInfo,
    get_keypoint_info,
)
from associative_embedding.core.record import PoseRecord

__all__ = ["COCO", "CROWDPOSE", "MPII", "KeypointInfo", "PoseRecord", "get_keypoint_info"]
