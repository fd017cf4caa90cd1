"""Opening trained networks: '.keras' files, SavedModels, work dirs and checkpoint prefixes.

`Predictor` is the one interface the evaluators, the refiner and the tools call a network
through (images in [0, 1] -> last-stack outputs), whatever it was loaded from. The network of a
work dir or checkpoint is rebuilt from its config.json with `build_model_from_config` (the
backbone registry in `modeling.registry`), so loading needs nothing above the modeling layer.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

# Importing the hourglass module registers its serialisable layers and models with Keras.
import associative_embedding.modeling.hourglass  # noqa: F401
from associative_embedding.core import startup
from associative_embedding.core.config_checks import ConfigError
from associative_embedding.core.run_dir import (
    RESTORE_ERRORS,
    ModelFileError,
    describe_error,
    num_detection_channels,
    read_training_config,
)
from associative_embedding.modeling.registry import build_backbone

DEFAULT_INPUT_MULTIPLE = 64


#: What loading a damaged '.keras' file can raise: h5py's OSError on a truncated weights file,
#: zipfile's BadZipFile, JSON and Keras deserialisation errors (ValueError, KeyError, TypeError),
#: and the checkpoint errors.
MODEL_READ_ERRORS = (*RESTORE_ERRORS, KeyError, TypeError, EOFError, zipfile.BadZipFile)


def build_model_from_config(config: ml_collections.ConfigDict) -> keras.Model:
    """The experiment's network (`config.model`, its backbone from `modeling.registry`; K from
    `num_detection_channels`)."""
    return build_backbone(config, num_detection_channels(config))


def load_keras_model(path: str | os.PathLike) -> keras.Model:
    """Loads a '.keras' model file for inference (`safe_mode=True`, not compiled).

    Raises:
        FileNotFoundError: naming the path when nothing is there.
        ModelFileError: naming the path and the reason when the file exists but is not a
            readable '.keras' file (truncated, corrupt, not a zip archive).
    """
    path = os.fspath(path)
    check_keras_file(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except MODEL_READ_ERRORS as error:
        raise unreadable_model_error(path, error) from None


def check_keras_file(path: str) -> None:
    """Checks, without loading it, that a '.keras' file is a whole zip archive with a model
    config (Keras itself reports a truncated file as "File not found").

    Raises:
        FileNotFoundError: naming the path when nothing is there.
        ModelFileError: naming the path and what is wrong.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelFileError(f"{path} is a directory, not a '.keras' file")
    problem = None
    try:
        if not zipfile.is_zipfile(path):
            problem = "not a zip archive"
        else:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
                if damaged is not None:
                    problem = f"{damaged} inside fails its checksum"
                elif "config.json" not in archive.namelist():
                    problem = "no config.json inside"
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        problem = describe_error(error)
    if problem:
        raise ModelFileError(
            f"model file {path} exists but is unreadable (truncated or corrupt: {problem})"
        )


def load_inference_model(path: str | os.PathLike) -> Any:
    """`load_predictor`, with a missing model told from a damaged one.

    Args:
        path: a '.keras' file, a SavedModel directory, a `tools/train.py` work dir or a
            training checkpoint prefix.

    Returns:
        The `Predictor`.

    Raises:
        FileNotFoundError: naming the path when nothing is there.
        ModelFileError: naming the path and the reason when it exists but cannot be read.
        ConfigError: naming a work dir's config.json and its bad fields.
        ValueError: when the path is no model format the tools load.
    """
    path = os.fspath(path)
    is_keras_file = path.endswith(".keras") and not os.path.isfile(path + ".index")
    if is_keras_file:
        # Keras reports a truncated '.keras' file as "File not found" (a ValueError).
        check_keras_file(path)
    try:
        return load_predictor(path)
    except (FileNotFoundError, startup.UserInputError):
        raise
    except ValueError as error:
        if is_keras_file:
            raise unreadable_model_error(path, error) from None
        raise
    except (*MODEL_READ_ERRORS, DecodeError) as error:
        raise unreadable_model_error(path, error) from None


def unreadable_model_error(path: str, error: BaseException) -> ModelFileError:
    """The `ModelFileError` for a model or checkpoint at `path` whose loading raised `error`."""
    if isinstance(error, ModelFileError | ConfigError):
        return ModelFileError(str(error))
    if os.path.isfile(f"{path}.index"):
        kind = "checkpoint"
    else:
        kind = "model file" if os.path.isfile(path) else "model"
    if isinstance(error, AssertionError):
        return ModelFileError(
            f"{kind} {path} does not match the network built from the config: "
            f"{describe_error(error)}"
        )
    return ModelFileError(
        f"{kind} {path} exists but is unreadable (truncated or corrupt: {describe_error(error)})"
    )


def load_trained_model(workdir: str, *, which: str = "best") -> keras.Model:
    """Rebuilds a training run's network from WORKDIR/config.json and restores its weights.

    Args:
        workdir: a `tools/train.py` work dir.
        which: 'best' (WORKDIR/best/model, the best checkpoint by validation AP) or 'latest'
            (the newest checkpoint in WORKDIR/checkpoints).

    Raises:
        FileNotFoundError: naming the missing config or checkpoint.
    """
    if which == "best":
        path = os.path.join(workdir, "best", "model")
        if not tf.io.gfile.exists(path + ".index"):
            read_training_config(workdir)  # a missing config.json is the clearer message
            raise FileNotFoundError(f"{workdir}: no best checkpoint at {path} (no evaluation yet)")
    elif which == "latest":
        path = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
        if path is None:
            read_training_config(workdir)
            raise FileNotFoundError(f"{workdir}: no checkpoint in {workdir}/checkpoints")
    else:
        raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
    model, _ = load_model_from_checkpoint(path)
    return model


def load_model_from_checkpoint(
    checkpoint: str,
) -> tuple[keras.Model, ml_collections.ConfigDict]:
    """Rebuilds the network of a training checkpoint prefix and restores its weights.

    Args:
        checkpoint: a checkpoint prefix written by the trainer, e.g. WORKDIR/checkpoints/ckpt-500
            or WORKDIR/best/model; the work dir's config.json is found in its parent folders.

    Returns:
        (model, training config).

    Raises:
        FileNotFoundError: naming the checkpoint or the missing config.json.
        ModelFileError: naming the checkpoint when it exists but cannot be read (truncated or
            corrupt files, or a network other than its config.json's).
    """
    if not tf.io.gfile.exists(checkpoint + ".index"):
        raise FileNotFoundError(f"no checkpoint at {checkpoint} (expected {checkpoint}.index)")
    config = read_training_config(checkpoint)
    model = build_model_from_config(config)
    # Training checkpoints also hold the optimizer and the input iterator: read the model only
    # (read(), unlike restore(), has no save counter to match).
    try:
        status = tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()
        status.assert_existing_objects_matched()
    except RESTORE_ERRORS as error:
        raise unreadable_model_error(checkpoint, error) from None
    return model, config


class Predictor:
    """Wraps a network: images (B, H, W, 3) in [0, 1] -> last-stack outputs (B, h, w, C).

    Attributes:
        input_multiple: the input height and width must be multiples of this.
        output_stride: input pixels per output pixel when the model says so (a Keras
            network, our SavedModel export), else None (the caller's setting applies).
        source: where the model came from (for messages).
    """

    def __init__(
        self,
        call: Callable[[tf.Tensor], Any],
        *,
        input_multiple: int = DEFAULT_INPUT_MULTIPLE,
        output_stride: int | None = None,
        source: str = "model",
    ) -> None:
        self._call = call
        self.input_multiple = int(input_multiple)
        self.output_stride = None if output_stride is None else int(output_stride)
        self.source = source

    def __call__(self, images: np.ndarray | tf.Tensor) -> np.ndarray:
        """Runs the network.

        Args:
            images: (B, H, W, 3) float32 RGB in [0, 1].

        Returns:
            (B, h, w, C) float32: the last stack of (B, S, h, w, C) outputs (a model without a
            stack axis is used as is).
        """
        outputs = self._call(tf.convert_to_tensor(images, tf.float32))
        if isinstance(outputs, Mapping):
            outputs = _single_output(outputs, self.source)
        outputs = np.asarray(outputs, dtype=np.float32)
        if outputs.ndim == 5:
            return outputs[:, -1]
        if outputs.ndim == 4:
            return outputs
        raise ValueError(
            f"{self.source}: outputs must be (B, S, h, w, C) or (B, h, w, C), got {outputs.shape}."
        )


def model_predictor(model: Any, source: str | None = None) -> Predictor:
    """A Predictor over an in-memory Keras model (inference mode, one trace per input rank).

    Args:
        model: e.g. a ``StackedHourglass``; its ``input_multiple`` is used when it has one.
        source: how messages name it (default: the model's name).
    """
    call = tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
        reduce_retracing=True,
    )
    multiple = int(getattr(model, "input_multiple", DEFAULT_INPUT_MULTIPLE))
    stride = getattr(model, "output_stride", None)
    return Predictor(
        call,
        input_multiple=multiple,
        output_stride=None if stride is None else int(stride),
        source=source or model.name,
    )


def _as_int(value: Any) -> int:
    """An int from a Python number or a restored tf.Variable / tensor."""
    return int(value.numpy()) if hasattr(value, "numpy") else int(value)


def _single_output(outputs: Mapping[str, Any], source: str) -> Any:
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    if "outputs" in outputs:
        return outputs["outputs"]
    raise ValueError(
        f"{source}: the model returns several outputs {sorted(outputs)}; expected one "
        "(or one named 'outputs')."
    )


def load_predictor(path: str | os.PathLike) -> Predictor:
    """Loads a network for inference.

    Args:
        path: a Keras ``.keras`` file (loaded with ``safe_mode=True``, ``compile=False``), a
            TensorFlow SavedModel directory, a ``tools/train.py`` work dir (its config.json
            and best checkpoint) or a training checkpoint prefix (WORKDIR/checkpoints/ckpt-N).

    Returns:
        A ``Predictor``.

    Raises:
        FileNotFoundError: naming the path when it does not exist.
        ValueError: when the path is neither format.
    """
    path = os.fspath(path)
    if os.path.isfile(path + ".index") and not os.path.isdir(path):
        model, _ = load_model_from_checkpoint(path)
        return model_predictor(model, source=path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model not found: {path}")
    if path.endswith(".keras") and os.path.isfile(path):
        # Checked and wrapped, so library callers (paper tables, refiners) also get the path
        # and the reason for a damaged file.
        return model_predictor(load_keras_model(path), source=path)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        loaded = tf.saved_model.load(path)
        if hasattr(loaded, "network") and hasattr(loaded, "export_format"):
            # Our export (tasks/pose/export.py): its float network function, not the uint8
            # serving signature, so that evaluation sees exactly the preprocessed input.
            # The lambda keeps `loaded` (which owns the variables) alive.
            return Predictor(
                lambda images: loaded.network(images),
                input_multiple=int(loaded.input_multiple.numpy()),
                output_stride=int(loaded.output_stride.numpy()),
                source=path,
            )
        multiple = _as_int(getattr(loaded, "input_multiple", DEFAULT_INPUT_MULTIPLE))
        signature = getattr(loaded, "signatures", {}).get("serving_default")
        if signature is not None:
            names = list(signature.structured_input_signature[1])
            if len(names) != 1:
                raise ValueError(f"{path}: serving_default takes {names}; expected one input.")
            input_name = names[0]
            return Predictor(
                lambda images: signature(**{input_name: images}),
                input_multiple=multiple,
                source=path,
            )
        if callable(loaded):
            return Predictor(loaded, input_multiple=multiple, source=path)
        raise ValueError(f"{path}: SavedModel has no serving_default signature and no __call__.")
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json")):
        return model_predictor(load_trained_model(path), source=path)
    raise ValueError(
        f"{path}: not a model this tool can load; give a '.keras' file, a SavedModel directory "
        "or a tools/train.py work dir."
    )
