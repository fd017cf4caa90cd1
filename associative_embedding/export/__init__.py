"""Export: SavedModel for TF Serving (network + poses decoded in the graph) and TFLite.

``saved_model.export_saved_model`` / ``saved_model.export_tflite`` write the files;
``graph_decoder.group_poses_tf`` is the grouping decoder of ``codec.group_poses`` in TensorFlow
ops (same options, same results), used by the ``predict_poses`` signature.
"""

from associative_embedding.codec.ops import linear_sum_assignment_tf
from associative_embedding.export.graph_decoder import (
    build_group_poses_function,
    group_poses_padded_tf,
    group_poses_tf,
)
from associative_embedding.export.saved_model import (
    ExportConfig,
    PoseExportModule,
    export_saved_model,
    export_tflite,
    read_export_config,
)

__all__ = [
    "ExportConfig",
    "PoseExportModule",
    "build_group_poses_function",
    "export_saved_model",
    "export_tflite",
    "group_poses_padded_tf",
    "group_poses_tf",
    "linear_sum_assignment_tf",
    "read_export_config",
]
