"""Codec: training-target encoding and test-time decoding of heatmaps + associative embeddings.

Encode side: ``KeypointEncoder`` / ``encode_targets`` (``codec.encode``, TensorFlow ops usable
inside tf.data): keypoints in input pixels -> heatmaps (h, w, K), keypoint targets (30, K, 3)
and the loss mask (h, w).
Decode side: ``group_poses`` (grouping decoder, ``codec.decode``, NumPy/SciPy) and test-time
fusion and back-projection (``codec.fusion``).
Every array's shape is in the submodules' docstrings.
"""

from associative_embedding.codec.decode import default_grouping_order, group_poses
from associative_embedding.codec.encode import (
    KeypointEncoder,
    default_sigma,
    encode_targets,
    render_heatmaps,
)
from associative_embedding.codec.fusion import (
    default_flip_index,
    fuse_flip,
    fuse_outputs,
    fuse_scales,
    map_from_image,
    poses_to_image,
    resize_maps,
    unflip_maps,
    warp_maps,
)

__all__ = [
    "KeypointEncoder",
    "default_flip_index",
    "default_grouping_order",
    "default_sigma",
    "encode_targets",
    "fuse_flip",
    "fuse_outputs",
    "fuse_scales",
    "group_poses",
    "map_from_image",
    "poses_to_image",
    "render_heatmaps",
    "resize_maps",
    "unflip_maps",
    "warp_maps",
]
