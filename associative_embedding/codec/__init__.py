"""Codec: training-target encoding and test-time decoding of heatmaps + associative embeddings.

Encode side: ``KeypointEncoder`` / ``encode_targets`` (``codec.encode``, TensorFlow ops usable
inside tf.data): keypoints in input pixels -> heatmaps (h, w, K), keypoint targets (30, K, 3)
and the loss mask (h, w).
Decode side: ``group_poses`` (grouping decoder, ``codec.decode``, NumPy/SciPy) and test-time
fusion and back-projection (``codec.fusion``). Its TensorFlow twin ``group_poses_tf`` /
``group_poses_padded_tf`` / ``build_group_poses_function`` (``codec.graph_decoder``, with the
steps in ``codec.graph_grouping`` and ``codec.graph_refine`` and the assignment solver in
``codec.ops``) gives the same people inside a ``tf.function`` or a SavedModel.
Instance segmentation (paper Sec. 3.4): the targets are encoded by
``data.instance_pipeline``; ``decode_instances`` (``codec.instance_decode``) turns detection +
tag maps into instance masks, ``merge_scales`` merges the proposals of several test scales.
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
    image_region_mask,
    map_from_image,
    poses_to_image,
    resize_maps,
    unflip_maps,
    warp_maps,
)
from associative_embedding.codec.graph_decoder import (
    build_group_poses_function,
    group_poses_padded_tf,
    group_poses_tf,
)
from associative_embedding.codec.instance_decode import (
    DecodedInstance,
    decode_instances,
    merge_scales,
    resize_instance_maps,
)

__all__ = [
    "DecodedInstance",
    "KeypointEncoder",
    "build_group_poses_function",
    "default_flip_index",
    "default_grouping_order",
    "decode_instances",
    "default_sigma",
    "encode_targets",
    "fuse_flip",
    "fuse_outputs",
    "fuse_scales",
    "group_poses",
    "group_poses_padded_tf",
    "group_poses_tf",
    "image_region_mask",
    "map_from_image",
    "merge_scales",
    "poses_to_image",
    "render_heatmaps",
    "resize_instance_maps",
    "resize_maps",
    "unflip_maps",
    "warp_maps",
]
