"""SavedModel export of the single-person refinement network (paper Table 4's refinement).

``export_refinement_model(model, keypoint_info, export_dir, ...)`` writes
``EXPORT_DIR/<version>/`` with

``serving_default``
    crops: (B, S, S, 3) uint8 RGB person crops (S a multiple of 64) -> {'heatmaps':
    (B, S/4, S/4, K) float32}, the last stack's heatmaps.
``network``
    the same on float32 crops in [0, 1] (what ``modeling.loading.load_predictor`` calls),

and ``assets.extra/refinement_config.json``: the keypoint metadata and the ``PoseRefiner``
options of the export (crop sizes, crop rule, threshold, flip, agreement radius, adjust), which
``tasks.refinement.refine.load_refiner(EXPORT_DIR/<version>)`` takes as its defaults. The cropping,
flip fusion, peak finding and joint replacement run in the caller (``PoseRefiner``): they are
per-person, data-dependent steps around a plain network call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from associative_embedding.core.keypoint_info import KeypointInfo
from associative_embedding.export.serving import prepare_version_dir

REFINEMENT_EXPORT_FORMAT = "associative_embedding_refinement_v1"
REFINEMENT_CONFIG_NAME = "refinement_config.json"


class RefinementExportModule(tf.Module):
    """The exported refinement network (module docstring)."""

    def __init__(self, model: keras.Model, num_joints: int) -> None:
        super().__init__(name="associative_embedding_refinement")
        self.model = model
        self.num_joints = int(num_joints)
        channels = int(model.output_shape[-1])
        if channels < self.num_joints:
            raise ValueError(
                f"model outputs {channels} channels, fewer than the {self.num_joints} joints."
            )
        self.input_multiple = tf.Variable(
            int(getattr(model, "input_multiple", 64)), trainable=False, name="input_multiple"
        )
        self.output_stride = tf.Variable(
            int(getattr(model, "output_stride", 4)), trainable=False, name="output_stride"
        )
        self.export_format = tf.Variable(
            REFINEMENT_EXPORT_FORMAT, trainable=False, name="export_format"
        )

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def network(self, images: tf.Tensor) -> tf.Tensor:
        """(B, S, S, 3) float32 in [0, 1] -> (B, S/4, S/4, K) heatmaps of the last stack."""
        outputs = self.model(images, training=False)
        return tf.cast(outputs[:, -1, ..., : self.num_joints], tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="crops")])
    def serving_default(self, crops: tf.Tensor) -> dict[str, tf.Tensor]:
        """uint8 (B, S, S, 3) person crops -> {'heatmaps': (B, S/4, S/4, K)}."""
        return {"heatmaps": self.network(tf.image.convert_image_dtype(crops, tf.float32))}


def export_refinement_model(
    model: keras.Model,
    keypoint_info: KeypointInfo,
    export_dir: str | os.PathLike,
    *,
    version: int = 1,
    refiner_options: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> str:
    """Writes ``export_dir/<version>/`` (module docstring); returns that directory.

    Args:
        model: the single-person network (a StackedHourglass with tag_dim 0; the first K
            channels of another model are used).
        keypoint_info: the dataset of the poses it refines.
        export_dir: the TF Serving model base path.
        version: the version sub-directory (a positive integer).
        refiner_options: ``PoseRefiner`` keyword arguments stored as the export's defaults.
        model_config: the training config, stored for humans.
        overwrite: replace an existing version directory instead of failing.

    Raises:
        ValueError: on a bad version or model.
        FileExistsError: when the version directory exists and ``overwrite`` is False.
    """
    version_dir = prepare_version_dir(export_dir, version, overwrite)
    module = RefinementExportModule(model, keypoint_info.num_joints)
    tf.saved_model.save(
        module, version_dir,
        signatures={"serving_default": module.serving_default.get_concrete_function()},
    )
    extra_dir = os.path.join(version_dir, "assets.extra")
    os.makedirs(extra_dir, exist_ok=True)
    options = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in dict(refiner_options or {}).items()
    }
    description = {
        "format": REFINEMENT_EXPORT_FORMAT,
        "keypoints": {
            "name": keypoint_info.name,
            "joint_names": list(keypoint_info.joint_names),
            "flip_index": [int(k) for k in keypoint_info.flip_index],
        },
        "num_joints": keypoint_info.num_joints,
        "refiner": options,
        "model": dict(model_config or {}),
    }
    with open(os.path.join(extra_dir, REFINEMENT_CONFIG_NAME), "w") as file:
        json.dump(description, file, indent=2, default=str)
    return version_dir


def read_refinement_export_options(version_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``PoseRefiner`` options stored with a refinement export, or None when `version_dir`
    is not one."""
    path = os.path.join(os.fspath(version_dir), "assets.extra", REFINEMENT_CONFIG_NAME)
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        description = json.load(file)
    options = dict(description.get("refiner", {}))
    if "crop_sizes" in options:
        options["crop_sizes"] = tuple(int(size) for size in options["crop_sizes"])
    options["_num_joints"] = int(description.get("num_joints", 0))
    return options
