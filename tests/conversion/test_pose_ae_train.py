"""Converting pose-ae-train PyTorch checkpoints, checked against PyTorch's own outputs.

The fixtures (tests/conversion/fixtures, written by make_torch_fixtures.py with PyTorch) are a
reduced-width PoseNet saved exactly as the authors' training code saves it, in both torch
formats, with PoseNet's output on a non-square image. No PyTorch is needed here.
"""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from associative_embedding.conversion import torch_reader
from associative_embedding.conversion.released import (
    ConversionError,
    convert_released_weights,
)
from tests.conversion.legacy_writer import write_legacy_state_dict

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
CHECKPOINTS = ("posenet_tiny_legacy.pth", "posenet_tiny_zip.pth")


def _fixture(name: str) -> str:
    return os.path.join(FIXTURES, name)


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_converted_network_matches_posenet_for_every_stack(checkpoint, tmp_path):
    images = np.load(_fixture("posenet_tiny_input.npy"))
    expected = np.load(_fixture("posenet_tiny_output.npy"))  # (1, S, h, w, 68)
    assert images.shape[1] != images.shape[2]  # non-square
    conversion = convert_released_weights("pose_ae_train", _fixture(checkpoint))
    model = conversion.model
    assert (model.num_stacks, model.num_joints, model.tag_dim) == (2, 17, 1)
    assert model.extra_prediction_channels == 34
    outputs = model(images).numpy()
    assert outputs.shape == expected.shape[:-1] + (34,)
    for stack in range(expected.shape[1]):
        # Channels 0-16 heatmaps and 17-33 tags of the authors' 68.
        reference = expected[:, stack, ..., :34]
        assert _relative_error(outputs[:, stack], reference) <= 1e-3, stack
    # The saved model reloads in safe mode and computes the same.
    path = tmp_path / "converted.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded(images).numpy(), outputs, rtol=0, atol=1e-6)


def test_every_model_variable_is_assigned_exactly_once():
    conversion = convert_released_weights("pose_ae_train", _fixture(CHECKPOINTS[0]))
    paths = [variable.path for variable in conversion.model.weights]
    assert len(conversion.assigned) == len(set(conversion.assigned))
    assert sorted(conversion.assigned) == sorted(paths)


def test_reader_returns_the_same_tensors_from_both_formats():
    legacy = torch_reader.load_torch_file(_fixture(CHECKPOINTS[0]))
    zipped = torch_reader.load_torch_file(_fixture(CHECKPOINTS[1]))
    assert legacy["epoch"] == zipped["epoch"] == 1
    legacy_state = torch_reader.find_state_dict(legacy)
    zipped_state = torch_reader.find_state_dict(zipped)
    assert list(legacy_state) == list(zipped_state)
    assert all(name.startswith("model.module.") for name in legacy_state)
    for name, tensor in legacy_state.items():
        np.testing.assert_array_equal(tensor.numpy(), zipped_state[name].numpy())
    # Optimizer state is read too (lazily), as tensors of the parameters' shapes.
    first = legacy["optimizer"]["state"][0]["exp_avg"]
    assert first.shape == legacy_state["model.module.pre.0.conv.weight"].shape


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_reader_refuses_arbitrary_globals(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as file:
        for header in (
            torch_reader.LEGACY_MAGIC_NUMBER,
            torch_reader.LEGACY_PROTOCOL_VERSION,
            {"little_endian": True},
        ):
            pickle.dump(header, file, protocol=2)
        pickle.dump({"state_dict": _Evil()}, file, protocol=2)
    with pytest.raises(torch_reader.TorchFormatError, match="refusing to load 'posix.system'"):
        torch_reader.load_torch_file(path)


def test_truncated_and_wrong_files_give_clear_errors(tmp_path):
    truncated = tmp_path / "truncated.pth"
    data = Path(_fixture(CHECKPOINTS[0])).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(torch_reader.TorchFormatError, match="truncated|cannot read"):
        convert_released_weights("pose_ae_train", truncated)
    damaged_zip = tmp_path / "damaged.pth"
    data = Path(_fixture(CHECKPOINTS[1])).read_bytes()
    damaged_zip.write_bytes(data[:1000] + b"\0" * 2000 + data[3000:])
    with pytest.raises((torch_reader.TorchFormatError, ConversionError)):
        convert_released_weights("pose_ae_train", damaged_zip)
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    with pytest.raises(torch_reader.TorchFormatError, match="not a torch.save file"):
        convert_released_weights("pose_ae_train", image)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(torch_reader.TorchFormatError, match="data.pkl"):
        convert_released_weights("pose_ae_train", other)


def _rewrite_state(tmp_path, edit) -> str:
    """A legacy-format copy of the fixture's state dict, edited."""
    checkpoint = torch_reader.load_torch_file(_fixture(CHECKPOINTS[0]))
    state = {
        name: tensor.numpy() for name, tensor in torch_reader.find_state_dict(checkpoint).items()
    }
    edit(state)
    path = os.path.join(tmp_path, "edited.pth")
    write_legacy_state_dict(path, state)
    return path


def test_missing_tensor_and_shape_mismatch_are_named(tmp_path):
    missing = "model.module.features.1.0.low2.low3.conv.bias"

    def drop(state):
        del state[missing]

    with pytest.raises(ConversionError, match=f"'{missing}' is missing"):
        convert_released_weights("pose_ae_train", _rewrite_state(tmp_path, drop))

    def reshape(state):
        name = "model.module.features.0.1.conv.weight"
        state[name] = state[name][:, :-1]

    with pytest.raises(ConversionError, match="'model.module.features.0.1.conv'"):
        convert_released_weights("pose_ae_train", _rewrite_state(tmp_path, reshape))

    def extra(state):
        state["model.module.extra.conv.weight"] = np.zeros((1, 1, 1, 1), np.float32)

    with pytest.raises(ConversionError, match="extra.conv.weight"):
        convert_released_weights("pose_ae_train", _rewrite_state(tmp_path, extra))


@pytest.mark.parametrize("pytorch_2017", [False, True])
def test_rewritten_unchanged_state_converts_identically(tmp_path, pytorch_2017):
    # The minimal legacy writer is only trusted because an unedited copy converts the same.
    checkpoint = torch_reader.load_torch_file(_fixture(CHECKPOINTS[0]))
    state = {name: t.numpy() for name, t in torch_reader.find_state_dict(checkpoint).items()}
    path = str(tmp_path / "rewritten.pth")
    write_legacy_state_dict(path, state, pytorch_2017=pytorch_2017)
    images = np.load(_fixture("posenet_tiny_input.npy"))
    original = convert_released_weights("pose_ae_train", _fixture(CHECKPOINTS[0])).model
    rewritten = convert_released_weights("pose_ae_train", path).model
    np.testing.assert_array_equal(rewritten(images).numpy(), original(images).numpy())
    shutil.rmtree(tmp_path, ignore_errors=True)
