"""SavedModel export for TF Serving: the network, and poses decoded inside the graph.

``export_saved_model(model, keypoint_info, export_dir, ...)`` writes ``EXPORT_DIR/<version>/``
(the TF Serving layout) with three signatures:

``serving_default``
    images: (B, H, W, 3) uint8 RGB, any H and W (padded right/bottom to multiples of the
    network's 64 inside the graph, zeros like the evaluation preprocessing) ->
    {'heatmaps': (B, h, w, K) float32, 'tags': (B, h, w, K, D') float32} of the last stack, with
    h = ceil(H / 64) * 16 and w likewise (map pixel j covers input pixels [4j, 4j + 4)).
    With ``flip=True`` the mirrored batch is run too: heatmaps are the mean of the two, tags
    the prediction's D dims then the un-flipped ones (D' = 2D), as ``codec.fuse_flip``.
``serve_bytes``
    encoded: (B,) string, JPEG/PNG/BMP/GIF (first frame) bytes -> the same dict plus
    'map_sizes' (B, 2) int32. Each image runs alone, so its maps equal ``serving_default`` on
    it exactly; maps of smaller images are zero-padded right/bottom to the batch's largest and
    'map_sizes' gives each one's valid (h, w).
``predict_poses``
    image: (H, W, 3) uint8 RGB -> {'poses': (P, K, 3) float32 (x, y, score) in original image
    pixels (pixel-centre convention), 'scores': (P,) float32, descending}. Evaluation
    preprocessing (``data.augment.eval_preprocess``: long side to ``input_size``, padding), the
    network (and its flip), heatmaps zeroed on the padding (as ``codec.image_region_mask``),
    then the grouping decoder in TensorFlow ops (``codec.graph_decoder.group_poses_tf``: NMS,
    top-k, tag matching, adjust, refine) and the inverse of the preprocessing affine. Missing
    joints are (0, 0, 0).

The module also keeps ``network`` (float32 images in [0, 1], already padded -> the last stack's
raw outputs (B, h, w, K (1 + D))), used by ``modeling.loading.load_predictor``, and writes
``assets.extra/export_config.json`` (keypoint metadata, input size, flip, decoder options, the
model's config) for humans and tools. Nothing is pickled; loading needs no Python code from this
package (``tf.saved_model.load`` or TF Serving).

``export_tflite(model, path, input_size)`` converts the network alone for a fixed
(1, S, S, 3) float32 input in [0, 1] to a TFLite flatbuffer returning the last stack's
(1, S/4, S/4, K (1 + D)) outputs (decoding is left to the caller, as TFLite has no efficient
form of the data-dependent grouping).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from associative_embedding.codec.graph_decoder import group_poses_tf
from associative_embedding.core.keypoint_info import KeypointInfo
from associative_embedding.data import augment
from associative_embedding.export.serving import prepare_version_dir

EXPORT_FORMAT = "associative_embedding_pose_v1"
SIGNATURES = ("serving_default", "serve_bytes", "predict_poses")
EXPORT_CONFIG_NAME = "export_config.json"


@dataclasses.dataclass
class ExportConfig:
    """What the exported graph does besides running the network.

    Attributes:
        input_size: long side of ``predict_poses``' network input (0 keeps the image size).
        flip: run the mirrored image too and fuse (all three signatures).
        decoder: keyword arguments of ``group_poses_tf`` / ``codec.group_poses``
            (detection_threshold, tag_threshold, max_people, nms_kernel, top_k, adjust, refine,
            refine_score, tag_distance, block_distant_pairs); the grouping order comes from the
            keypoint metadata.
    """

    input_size: int = 512
    flip: bool = False
    decoder: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input_size < 0:
            raise ValueError(f"input_size must be >= 0, got {self.input_size}.")
        allowed = {
            "detection_threshold", "tag_threshold", "max_people", "nms_kernel", "top_k",
            "adjust", "refine", "refine_score", "tag_distance", "block_distant_pairs",
        }
        unknown = sorted(set(self.decoder) - allowed)
        if unknown:
            raise ValueError(f"unknown decoder options {unknown}; allowed: {sorted(allowed)}.")


class PoseExportModule(tf.Module):
    """The exported object: network + preprocessing + in-graph decoding (module docstring)."""

    def __init__(
        self,
        model: keras.Model,
        keypoint_info: KeypointInfo,
        config: ExportConfig | None = None,
    ) -> None:
        super().__init__(name="associative_embedding_pose")
        self.config = config or ExportConfig()
        self.model = model
        self.num_joints = int(keypoint_info.num_joints)
        channels = int(model.output_shape[-1])
        if channels % self.num_joints or channels // self.num_joints < 2:
            raise ValueError(
                f"model outputs {channels} channels, which do not fit K = {self.num_joints} "
                "joints (expected K * (1 + D))."
            )
        self.tag_dim = channels // self.num_joints - 1
        self._multiple = int(getattr(model, "input_multiple", 64))
        self._stride = int(getattr(model, "output_stride", 4))
        self._flip_index = tf.constant(keypoint_info.flip_index, tf.int32)
        self._grouping_order = tuple(int(k) for k in keypoint_info.grouping_order)
        # Plain attributes survive saving as constants of the restored object.
        self.input_multiple = tf.Variable(self._multiple, trainable=False, name="input_multiple")
        self.output_stride = tf.Variable(self._stride, trainable=False, name="output_stride")
        self.export_format = tf.Variable(EXPORT_FORMAT, trainable=False, name="export_format")

    # ------------------------------------------------------------------ network on float images

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def network(self, images: tf.Tensor) -> tf.Tensor:
        """(B, H, W, 3) float32 in [0, 1], H and W multiples of 64 -> (B, h, w, K(1+D))."""
        outputs = self.model(images, training=False)
        return tf.cast(outputs[:, -1], tf.float32)

    def _maps(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Padded float images -> heatmaps (B, h, w, K), tags (B, h, w, K, D'), flip-fused."""
        batch = tf.shape(images)[0]
        if self.config.flip:
            images = tf.concat([images, images[:, :, ::-1]], axis=0)
        outputs = self.network(images)
        shape = tf.shape(outputs)
        heatmaps = outputs[..., : self.num_joints]
        tags = tf.reshape(
            outputs[..., self.num_joints :],
            tf.stack([shape[0], shape[1], shape[2], self.num_joints, self.tag_dim]),
        )
        if not self.config.flip:
            return heatmaps, tags
        # Un-flip the mirrored half: columns reversed, joint k read from flip_index[k].
        back_heatmaps = tf.gather(heatmaps[batch:, :, ::-1], self._flip_index, axis=3)
        back_tags = tf.gather(tags[batch:, :, ::-1], self._flip_index, axis=3)
        fused_heatmaps = (heatmaps[:batch] + back_heatmaps) * 0.5
        return fused_heatmaps, tf.concat([tags[:batch], back_tags], axis=4)

    def _pad(self, images: tf.Tensor) -> tf.Tensor:
        """(B, H, W, 3) float -> right/bottom zero padding to multiples of the network's 64."""
        shape = tf.shape(images)
        multiple = self._multiple
        padded_h = (shape[1] + multiple - 1) // multiple * multiple
        padded_w = (shape[2] + multiple - 1) // multiple * multiple
        return tf.pad(images, [[0, 0], [0, padded_h - shape[1]], [0, padded_w - shape[2]], [0, 0]])

    # ------------------------------------------------------------------------------ signatures

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serving_default(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """uint8 (B, H, W, 3) -> {'heatmaps': (B, h, w, K), 'tags': (B, h, w, K, D')}."""
        floats = tf.image.convert_image_dtype(images, tf.float32)
        heatmaps, tags = self._maps(self._pad(floats))
        return {"heatmaps": heatmaps, "tags": tags}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="encoded")])
    def serve_bytes(self, encoded: tf.Tensor) -> dict[str, tf.Tensor]:
        """(B,) encoded images -> the ``serving_default`` dict plus 'map_sizes' (B, 2).

        Each image runs through the network alone (its own padding), so its maps equal
        ``serving_default`` on that image exactly; the maps of smaller images are zero-padded
        right/bottom to the batch's largest, and 'map_sizes' gives each image's valid (h, w).
        """

        def decode(data: tf.Tensor) -> tf.Tensor:
            return tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)

        # A first pass for the sizes (decoding is cheap next to the network): map_fn needs the
        # padded output size before it stacks the per-image maps.
        image_sizes = tf.map_fn(
            lambda data: tf.shape(decode(data))[:2],
            encoded,
            fn_output_signature=tf.TensorSpec([2], tf.int32),
        )
        multiple, stride = self._multiple, self._stride
        map_sizes = (image_sizes + multiple - 1) // multiple * (multiple // stride)
        max_size = tf.reduce_max(
            tf.concat([map_sizes, tf.zeros([1, 2], tf.int32)], axis=0), axis=0
        )

        def maps_of(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            floats = tf.image.convert_image_dtype(decode(data), tf.float32)
            heatmaps, tags = self._maps(self._pad(floats[None]))
            size = tf.shape(heatmaps)[1:3]
            padding = [[0, max_size[0] - size[0]], [0, max_size[1] - size[1]]]
            return (
                tf.pad(heatmaps[0], padding + [[0, 0]]),
                tf.pad(tags[0], padding + [[0, 0], [0, 0]]),
            )

        tag_dims = self.tag_dim * (2 if self.config.flip else 1)
        heatmaps, tags = tf.map_fn(
            maps_of,
            encoded,
            fn_output_signature=(
                tf.TensorSpec([None, None, self.num_joints], tf.float32),
                tf.TensorSpec([None, None, self.num_joints, tag_dims], tf.float32),
            ),
        )
        return {"heatmaps": heatmaps, "tags": tags, "map_sizes": map_sizes}

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="image")])
    def predict_poses(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        """uint8 (H, W, 3) -> {'poses': (P, K, 3) image pixels, 'scores': (P,)}."""
        inputs = augment.eval_preprocess(image, self.config.input_size, self._multiple)
        heatmaps, tags = self._maps(inputs["image"][None])
        # Heatmaps zeroed on the map pixels that only cover padding, as the NumPy estimator
        # (codec.image_region_mask): training never supervises them.
        stride = self._stride
        region = (inputs["resized_size"] + stride - 1) // stride
        map_shape = tf.shape(heatmaps)[1:3]
        inside = (tf.range(map_shape[0])[:, None] < region[0]) & (
            tf.range(map_shape[1])[None, :] < region[1]
        )
        heatmaps = tf.where(inside[None, :, :, None], heatmaps, tf.zeros_like(heatmaps))
        poses, scores = group_poses_tf(
            heatmaps[0],
            tags[0],
            grouping_order=self._grouping_order,
            **self.config.decoder,
        )
        # Heatmap corner coordinates -> network-input pixel centres -> image pixels.
        input_xy = tf.cast(poses[..., :2], tf.float64) * float(self._stride) - 0.5
        image_from_input = tf.linalg.inv(inputs["input_from_image"])
        image_xy = (
            tf.einsum("pkj,ij->pki", input_xy, image_from_input[:2, :2])
            + image_from_input[:2, 2]
        )
        present = poses[..., 2:] > 0
        image_xy = tf.where(present, tf.cast(image_xy, tf.float32), tf.zeros_like(image_xy,
                                                                                   tf.float32))
        return {"poses": tf.concat([image_xy, poses[..., 2:]], axis=-1), "scores": scores}


def export_saved_model(
    model: keras.Model,
    keypoint_info: KeypointInfo,
    export_dir: str | os.PathLike,
    *,
    version: int = 1,
    config: ExportConfig | None = None,
    model_config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> str:
    """Writes ``export_dir/<version>/`` (module docstring); returns that directory.

    Args:
        model: a ``StackedHourglass`` (any Keras model with the same input/output layout).
        keypoint_info: the dataset's keypoint metadata (K, flip index, grouping order).
        export_dir: the TF Serving model base path.
        version: the version sub-directory (a positive integer, as TF Serving expects).
        config: preprocessing / flip / decoder settings of the exported graph.
        model_config: extra information stored in ``export_config.json`` (e.g. the training
            config), for humans.
        overwrite: replace an existing version directory instead of failing.

    Raises:
        ValueError: on a bad version.
        FileExistsError: when the version directory exists and ``overwrite`` is False.
    """
    version_dir = prepare_version_dir(export_dir, version, overwrite)
    module = PoseExportModule(model, keypoint_info, config)
    signatures = {
        "serving_default": module.serving_default.get_concrete_function(),
        "serve_bytes": module.serve_bytes.get_concrete_function(),
        "predict_poses": module.predict_poses.get_concrete_function(),
    }
    tf.saved_model.save(module, version_dir, signatures=signatures)
    extra_dir = os.path.join(version_dir, "assets.extra")
    os.makedirs(extra_dir, exist_ok=True)
    description = {
        "format": EXPORT_FORMAT,
        "signatures": list(SIGNATURES),
        "keypoints": {
            "name": keypoint_info.name,
            "joint_names": list(keypoint_info.joint_names),
            "flip_index": [int(k) for k in keypoint_info.flip_index],
            "grouping_order": [int(k) for k in keypoint_info.grouping_order],
        },
        "num_joints": module.num_joints,
        "tag_dim": module.tag_dim,
        "input_multiple": module._multiple,
        "output_stride": module._stride,
        "export": dataclasses.asdict(module.config),
        "model": dict(model_config or {}),
    }
    with open(os.path.join(extra_dir, EXPORT_CONFIG_NAME), "w") as file:
        json.dump(description, file, indent=2, default=str)
    return version_dir


def read_export_config(version_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``assets.extra/export_config.json`` of an exported version directory."""
    path = os.path.join(os.fspath(version_dir), "assets.extra", EXPORT_CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: not an associative_embedding export?")
    with open(path) as file:
        return json.load(file)


def is_pose_export(loaded: Any) -> bool:
    """True for an object restored from ``export_saved_model`` (it has ``network``)."""
    return hasattr(loaded, "network") and hasattr(loaded, "export_format")


__all__ = [
    "EXPORT_FORMAT",
    "ExportConfig",
    "PoseExportModule",
    "SIGNATURES",
    "export_saved_model",
    "is_pose_export",
    "read_export_config",
]
