"""Fixtures of the inference tests: one tiny randomly initialised network in the three formats
the predict tool loads (a .keras file, a training work dir, a SavedModel)."""

from __future__ import annotations

import pathlib

import pytest

TINY_MODEL = {"num_stacks": 2, "widths": (16, 16, 16), "stem_widths": (8, 16)}


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> pathlib.Path:
    """A 2-stack, width-16 StackedHourglass for COCO's 17 joints (50k parameters, seed 0).

    Its random outputs give ~0.25 heatmap peaks, so the decoder finds (meaningless) people.
    """
    import keras

    from associative_embedding.modeling.hourglass import StackedHourglass

    keras.utils.set_random_seed(0)
    model = StackedHourglass(num_joints=17, **TINY_MODEL)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory) -> pathlib.Path:
    """A tools/train.py work dir layout: config.json and the best checkpoint (best/model)."""
    import keras
    import tensorflow as tf

    from associative_embedding.core.run_dir import CONFIG_NAME
    from associative_embedding.modeling.loading import build_model_from_config
    from associative_embedding.tasks.pose.config import base_config

    config = base_config()
    config.model.update(TINY_MODEL)
    workdir = tmp_path_factory.mktemp("workdir")
    (workdir / CONFIG_NAME).write_text(config.to_json_best_effort(indent=2))
    keras.utils.set_random_seed(1)
    model = build_model_from_config(config)
    tf.train.Checkpoint(model=model).write(str(workdir / "best" / "model"))
    return workdir


@pytest.fixture(scope="session")
def tiny_saved_model(tmp_path_factory, tiny_model_path) -> pathlib.Path:
    """A plain SavedModel: serving_default float32 images (B, H, W, 3) -> {'outputs'}."""
    import keras
    import tensorflow as tf

    import associative_embedding.modeling.hourglass  # noqa: F401 - registers the model class

    model = keras.saving.load_model(tiny_model_path, compile=False, safe_mode=True)

    class Serving(tf.Module):
        def __init__(self, network: keras.Model) -> None:
            super().__init__()
            self.network = network

        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")]
        )
        def serve(self, images):
            return {"outputs": self.network(images, training=False)}

    serving = Serving(model)
    path = tmp_path_factory.mktemp("saved_model") / "1"
    tf.saved_model.save(serving, str(path), signatures={"serving_default": serving.serve})
    return path
