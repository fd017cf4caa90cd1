"""A minimal writer of PyTorch's legacy `torch.save` format (float32 state dicts only).

Used by the tests to make edited checkpoints (a dropped tensor, a wrong shape) without
PyTorch. It emits the pickle opcodes torch itself writes (see the fixture files with
`pickletools.dis`): five pickles (magic number, protocol 1001, system info, the object, the
storage keys), then per storage an int64 element count and its little-endian bytes.
"""

from __future__ import annotations

import pickle
import struct

import numpy as np

from associative_embedding.conversion.torch_reader import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
)


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _int_tuple(values: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def write_legacy_state_dict(
    path: str, state: dict[str, np.ndarray], *, pytorch_2017: bool = False
) -> None:
    """Writes `{'state_dict': OrderedDict(name -> float32 tensor)}` as torch's legacy format.

    Args:
        path: the output file.
        state: name -> array (stored as float32, C order).
        pytorch_2017: write tensors as PyTorch 0.2-0.3 did (`torch._utils._rebuild_tensor`
            with storage, offset, size and stride only) instead of `_rebuild_tensor_v2`.
    """
    arrays = [np.ascontiguousarray(value, dtype="<f4") for value in state.values()]
    body = b"\x80\x02}(" + _text("state_dict") + b"ccollections\nOrderedDict\n)R("
    for key, (name, array) in enumerate(zip(state, arrays, strict=True)):
        strides, step = [], 1
        for size in reversed(array.shape):
            strides.insert(0, step)
            step *= size
        rebuild = b"_rebuild_tensor" if pytorch_2017 else b"_rebuild_tensor_v2"
        body += _text(name) + b"ctorch._utils\n" + rebuild + b"\n("
        body += b"(" + _text("storage") + b"ctorch\nFloatStorage\n" + _text(str(key))
        body += _text("cpu") + _int(array.size) + b"NtQ"  # persistent id of the storage
        body += _int(0) + _int_tuple(array.shape) + _int_tuple(tuple(strides))
        if not pytorch_2017:
            body += b"\x89ccollections\nOrderedDict\n)R"  # requires_grad, backward hooks
        body += b"tR"
    body += b"uu."
    with open(path, "wb") as file:
        for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(header, file, protocol=2)
        file.write(body)
        pickle.dump([str(key) for key in range(len(arrays))], file, protocol=2)
        for array in arrays:
            file.write(struct.pack("<q", array.size))
            file.write(array.tobytes())
