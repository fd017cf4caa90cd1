"""Serving files every task's export writes: the TF Serving version folder and TFLite.

The tasks' exports (``tasks.pose.export``, ``tasks.refinement.export``) build their
``tf.Module`` and signatures and write them through these.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2


def prepare_version_dir(export_dir: str | os.PathLike, version: int, overwrite: bool) -> str:
    """EXPORT_DIR/<version> (TF Serving layout), removed first when `overwrite`.

    Raises:
        ValueError: on a version that is not a positive integer.
        FileExistsError: when the folder exists and `overwrite` is False.
    """
    if int(version) < 1:
        raise ValueError(f"version must be a positive integer, got {version}.")
    version_dir = os.path.join(os.fspath(export_dir), str(int(version)))
    if os.path.exists(version_dir):
        if not overwrite:
            raise FileExistsError(
                f"{version_dir} exists; choose another --version or pass overwrite."
            )
        tf.io.gfile.rmtree(version_dir)
    return version_dir


def export_tflite(model: keras.Model, path: str | os.PathLike, input_size: int = 256) -> str:
    """Converts the network (last stack) for a (1, S, S, 3) float32 input; returns the path.

    Raises:
        ValueError: when ``input_size`` is not a positive multiple of the network's 64.
    """
    multiple = int(getattr(model, "input_multiple", 64))
    if input_size <= 0 or input_size % multiple:
        raise ValueError(f"input_size must be a positive multiple of {multiple}, got {input_size}.")

    @tf.function(input_signature=[tf.TensorSpec([1, input_size, input_size, 3], tf.float32)])
    def network(images: tf.Tensor) -> tf.Tensor:
        return tf.cast(model(images, training=False)[:, -1], tf.float32)

    # Fold the weights into constants first. Handed the variables (from_concrete_functions with
    # the model, or a SavedModel), the TF 2.21 converter keeps Keras 3 variables as TFLite
    # resource variables that nothing initialises: NaN outputs (measured). TF has no public
    # alias of this function.
    frozen = convert_variables_to_constants_v2(network.get_concrete_function())
    flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as file:
        file.write(flatbuffer)
    return path
