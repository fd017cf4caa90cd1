"""Converting pose-ae-demo TensorFlow 1 snapshots, checked against the demo graph's outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from associative_embedding.conversion.released import (
    ConversionError,
    convert_released_weights,
)
from tests.conversion.demo_graph import save_demo_snapshot

SIZES = {"f": 8, "increase": 4, "depth": 2, "stacks": 2, "stem": (4, 6)}


def _images() -> np.ndarray:
    # Non-square, sides multiples of 16 (depth 2).
    return np.random.default_rng(3).uniform(size=(2, 32, 48, 3)).astype(np.float32)


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def test_multi_person_network_matches_the_demo_graph_for_every_stack(tmp_path):
    images = _images()
    expected = save_demo_snapshot(str(tmp_path), images * 255.0, 68, **SIZES)
    conversion = convert_released_weights("pose_ae_demo", str(tmp_path))
    model = conversion.model
    assert model.layout == "pose_ae_demo"
    assert (model.num_stacks, model.num_joints, model.tag_dim) == (2, 17, 1)
    outputs = model(images).numpy()  # the project's input: [0, 1]
    assert outputs.shape == (2, 2, 8, 12, 34)
    for stack in range(2):
        # Demo main.py: heatmaps = channels [:17], tags = channels [-17:].
        reference = np.concatenate(
            [expected[:, stack, ..., :17], expected[:, stack, ..., -17:]], axis=-1
        )
        assert _relative_error(outputs[:, stack], reference) <= 1e-3, stack
    assert sorted(conversion.assigned) == sorted(v.path for v in model.weights)
    assert len(set(conversion.assigned)) == len(conversion.assigned)
    path = tmp_path / "demo.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded(images).numpy(), outputs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("v1_format", [False, True])
def test_refinement_network_matches_the_demo_graph(tmp_path, v1_format):
    images = _images()
    expected = save_demo_snapshot(
        str(tmp_path), images * 255.0, 17, seed=1, v1_format=v1_format, **SIZES
    )
    model = convert_released_weights("pose_ae_demo_refine", str(tmp_path / "snapshot")).model
    assert (model.num_joints, model.tag_dim, model.extra_prediction_channels) == (17, 0, 0)
    outputs = model(images).numpy()
    assert outputs.shape == expected.shape
    for stack in range(2):
        assert _relative_error(outputs[:, stack], expected[:, stack]) <= 1e-3, stack


def test_wrong_format_and_missing_files_give_clear_errors(tmp_path):
    save_demo_snapshot(str(tmp_path), _images() * 255.0, 17, **SIZES)
    # A refinement snapshot read as the multi-person network: 17 < 34 output channels.
    with pytest.raises(ConversionError, match="'my_model/out_0/weights' has 17 output"):
        convert_released_weights("pose_ae_demo", str(tmp_path))
    multi_person = tmp_path / "multi_person"
    multi_person.mkdir()
    save_demo_snapshot(str(multi_person), _images() * 255.0, 68, **SIZES)
    with pytest.raises(ConversionError, match="has 68 output channels, the refinement"):
        convert_released_weights("pose_ae_demo_refine", str(multi_person))
    with pytest.raises(FileNotFoundError):
        convert_released_weights("pose_ae_demo", str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="snapshot"):
        convert_released_weights("pose_ae_demo_refine", str(empty))
    # A pose-ae-demo snapshot given as a PyTorch checkpoint.
    with pytest.raises(ValueError):
        convert_released_weights("pose_ae_train", str(tmp_path / "snapshot.index"))
