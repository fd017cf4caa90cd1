"""Export: serving forms of trained networks, for every task.

``serving`` writes the TF Serving version folder and TFLite files. The grouping decoder that a
SavedModel runs in its graph is ``codec.group_poses_tf`` (``codec.graph_decoder``), the
TensorFlow twin of ``codec.group_poses``. The tasks' exports (``tasks.pose.export``: the pose
SavedModel with its ``predict_poses`` signature; ``tasks.refinement.export``) assemble their
modules from these.
"""

from associative_embedding.export.serving import export_tflite, prepare_version_dir

__all__ = [
    "export_tflite",
    "prepare_version_dir",
]
