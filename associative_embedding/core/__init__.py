"""Core: the vocabulary every other layer speaks, with no dependency on any of them.

Keypoint sets (``keypoint_info``: joint names, flip pairs, grouping order), pixel geometry and
affine transforms (``transforms``), the annotation record and its coordinate conventions
(``record``), drawing (``visualization``), startup and error reporting shared by the tools
(``startup``) and training-run directories (``run_dir``). Nothing here imports TensorFlow models,
datasets or tasks, so any layer may import it.
"""

from associative_embedding.core.keypoint_info import (
    COCO,
    CROWDPOSE,
    MPII,
    KeypointInfo,
    get_keypoint_info,
)
from associative_embedding.core.record import PoseRecord

__all__ = ["COCO", "CROWDPOSE", "MPII", "KeypointInfo", "PoseRecord", "get_keypoint_info"]
