"""Training losses of Associative Embedding: the detection (heatmap) loss in `heatmap`, the
associative-embedding grouping (pull / push tag) loss for keypoints in `grouping`, their weighted
per-stack combination for pose training in `pose`, and the instance-segmentation detection and
sampled-pixel grouping losses in `segmentation`. All are pure, vectorised TensorFlow functions of
(outputs, targets) that run eagerly, in `tf.function`, under XLA and in distribution-strategy
replicas; the names below are the public API.
"""

from associative_embedding.losses.grouping import (
    PUSH_TYPES,
    KeypointsLike,
    grouping_loss,
    keypoints_to_dense,
)
from associative_embedding.losses.heatmap import heatmap_loss
from associative_embedding.losses.pose import (
    DEFAULT_HEATMAP_WEIGHT,
    DEFAULT_PULL_WEIGHT,
    DEFAULT_PUSH_WEIGHT,
    per_example_total_loss,
    total_loss,
)
from associative_embedding.losses.segmentation import (
    SEGMENTATION_NORMALIZATIONS,
    per_example_segmentation_loss,
    sampled_pixel_grouping_loss,
)

__all__ = [
    "DEFAULT_HEATMAP_WEIGHT",
    "DEFAULT_PULL_WEIGHT",
    "DEFAULT_PUSH_WEIGHT",
    "PUSH_TYPES",
    "SEGMENTATION_NORMALIZATIONS",
    "KeypointsLike",
    "grouping_loss",
    "heatmap_loss",
    "keypoints_to_dense",
    "per_example_segmentation_loss",
    "per_example_total_loss",
    "sampled_pixel_grouping_loss",
    "total_loss",
]
