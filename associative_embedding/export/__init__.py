"""Export: serving forms of trained networks, for every task.

``serving`` writes the TF Serving version folder and TFLite files; ``graph_decoder`` (with
``graph_grouping`` and ``graph_refine``) is the grouping decoder of ``codec.group_poses`` in
TensorFlow ops (same options, same results) that a SavedModel runs in its graph. The tasks'
exports (``tasks.pose.export``: the pose SavedModel with its ``predict_poses`` signature;
``tasks.refinement.export``) assemble their modules from these.
"""

from associative_embedding.export.graph_decoder import (
    build_group_poses_function,
    group_poses_padded_tf,
    group_poses_tf,
)
from associative_embedding.export.serving import export_tflite, prepare_version_dir

__all__ = [
    "build_group_poses_function",
    "export_tflite",
    "group_poses_padded_tf",
    "group_poses_tf",
    "prepare_version_dir",
]
