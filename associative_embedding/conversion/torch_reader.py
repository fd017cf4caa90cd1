"""Reads PyTorch checkpoint files without PyTorch and without running arbitrary pickled code.

`torch.save` writes a pickle whose tensors refer to raw storages kept outside the pickle, in
one of two containers:

- the zip format (PyTorch >= 1.6): a zip archive `NAME/data.pkl` + `NAME/data/<key>` (one
  raw little-endian storage per key) + `NAME/version` (+ `NAME/byteorder`);
- the legacy format (PyTorch < 1.6, and `_use_new_zipfile_serialization=False`): five
  pickles in a row (magic number, protocol version 1001, system info, the object, the list
  of storage keys) followed, for each key in that order, by an int64 element count and the
  storage's raw bytes.

In both, a tensor is pickled as a call of `torch._utils._rebuild_tensor_v2` (or the older
`_rebuild_tensor`) on a persistent id ('storage', storage class, key, location, numel, ...),
an offset, a size and a stride; a state dict is a `collections.OrderedDict`. The unpickler
here resolves exactly those globals (plus `_rebuild_parameter` and `_codecs.encode`, which
builds bytes) to its own harmless stand-ins and refuses every other global, so a malicious
file cannot run code. Storages are read lazily: `TorchTensor.numpy()` reads one tensor's
bytes from the file, so a checkpoint with optimizer state costs no memory for what is not
used.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

#: First pickle of a legacy-format file.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
#: Second pickle of a legacy-format file.
LEGACY_PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    # NumPy has no bfloat16: read the raw 16 bits, widened to float32 in `TorchTensor.numpy`.
    "BFloat16Storage": np.uint16,
}


class TorchFormatError(ValueError):
    """The file is not a PyTorch checkpoint this reader accepts (or is damaged)."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
    """Stand-in for a `torch.<Type>Storage` class named in a persistent id."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(_STORAGE_DTYPES[self.name]).newbyteorder("<")


@dataclasses.dataclass
class _Storage:
    """One raw storage: where its bytes are and how many elements it has."""

    key: str
    storage_type: _StorageType
    numel: int
    read: Callable[[int, int], bytes] | None = None  # (byte offset, byte count) -> bytes
    base: _Storage | None = None  # legacy views: a slice of another storage
    base_offset: int = 0

    def read_elements(self, start: int, count: int) -> np.ndarray:
        """Elements [start, start + count) of the storage as a 1-D array."""
        if self.base is not None:
            return self.base.read_elements(self.base_offset + start, count)
        if self.read is None:
            raise TorchFormatError(f"storage {self.key!r} has no data in the file")
        itemsize = self.storage_type.dtype.itemsize
        data = self.read(start * itemsize, count * itemsize)
        if len(data) != count * itemsize:
            raise TorchFormatError(f"storage {self.key!r} is truncated")
        return np.frombuffer(data, dtype=self.storage_type.dtype)


@dataclasses.dataclass(frozen=True)
class TorchTensor:
    """A tensor of the checkpoint, read on demand.

    Attributes:
        shape: the tensor's shape.
        dtype: NumPy dtype of `numpy()` (bfloat16 tensors are returned as float32).
    """

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def dtype(self) -> np.dtype:
        if self.storage.storage_type.name == "BFloat16Storage":
            return np.dtype(np.float32)
        return self.storage.storage_type.dtype.newbyteorder("=")

    def numpy(self) -> np.ndarray:
        """The tensor's values, a fresh C-contiguous array of `shape`.

        Raises:
            TorchFormatError: when the tensor reaches outside its storage or the data is
                truncated.
        """
        if (
            len(self.shape) != len(self.stride)
            or any(size < 0 for size in self.shape)
            or any(step < 0 for step in self.stride)
        ):
            raise TorchFormatError(f"invalid tensor size {self.shape} / stride {self.stride}")
        if 0 in self.shape:
            return np.zeros(self.shape, self.dtype)
        span = 1 + sum(
            (size - 1) * step for size, step in zip(self.shape, self.stride, strict=True)
        )
        if self.offset < 0 or self.offset + span > self.storage.numel:
            raise TorchFormatError(
                f"tensor of size {self.shape} at offset {self.offset} does not fit its storage "
                f"of {self.storage.numel} elements"
            )
        flat = self.storage.read_elements(self.offset, span)
        itemsize = flat.dtype.itemsize
        values = np.lib.stride_tricks.as_strided(
            flat, shape=self.shape, strides=tuple(step * itemsize for step in self.stride)
        )
        values = np.array(values, dtype=values.dtype.newbyteorder("="), order="C")
        if self.storage.storage_type.name == "BFloat16Storage":
            values = (values.astype(np.uint32) << 16).view(np.float32)
        return values


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> TorchTensor:
    """Stand-in for torch._utils._rebuild_tensor(_v2): extra arguments (requires_grad,
    backward hooks, metadata) do not matter for the values."""
    if not isinstance(storage, _Storage):
        raise TorchFormatError("a tensor refers to something that is not a storage")
    return TorchTensor(
        storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride)
    )


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    """Stand-in for torch._utils._rebuild_parameter (an nn.Parameter): its data."""
    return data


def _encode(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for _codecs.encode, with which protocol-2 pickles write bytes objects."""
    return text.encode(encoding)


def _empty_hooks() -> collections.OrderedDict:
    return collections.OrderedDict()


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("_codecs", "encode"): _encode,
}
_ALLOWED_GLOBALS.update({("torch", name): _StorageType(name) for name in _STORAGE_DTYPES})


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a tensor checkpoint needs."""

    def __init__(self, file: Any, persistent_load: Callable[[Any], Any] | None) -> None:
        super().__init__(file, encoding="latin1")
        self._persistent_load = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise TorchFormatError(
                f"refusing to load '{module}.{name}': only tensors, storages and "
                "OrderedDicts are read from PyTorch files (no arbitrary code)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent_load is None:
            raise TorchFormatError(f"unexpected persistent id {pid!r}")
        return self._persistent_load(pid)


def _parse_storage_id(pid: Any) -> tuple[_StorageType, str, int, Any]:
    """(storage type, key, numel, legacy view metadata) of a ('storage', ...) persistent id."""
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage" or len(pid) < 5:
        raise TorchFormatError(f"unsupported persistent id {pid!r} (only storages are read)")
    storage_type, key, _location, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType):
        raise TorchFormatError(f"unsupported storage type {storage_type!r}")
    view = pid[5] if len(pid) > 5 else None
    return storage_type, str(key), int(numel), view


def _unpickle(file: Any, persistent_load: Callable[[Any], Any] | None, what: str) -> Any:
    try:
        return _RestrictedUnpickler(file, persistent_load).load()
    except TorchFormatError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        struct.error,
        UnicodeDecodeError,
        OverflowError,
    ) as error:
        raise TorchFormatError(f"cannot read the {what}: {type(error).__name__}: {error}") from None


def _load_zip(path: str) -> Any:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise TorchFormatError(f"damaged zip archive: {error}") from None
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise TorchFormatError("zip archive without exactly one '<name>/data.pkl' (not torch.save)")
    root = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if root + "byteorder" in names:
        byteorder = archive.read(root + "byteorder").decode("ascii", "replace").strip()
    if byteorder != "little":
        raise TorchFormatError(f"unsupported byte order {byteorder!r}")
    storages: dict[str, _Storage] = {}

    def read_record(name: str) -> Callable[[int, int], bytes]:
        def read(start: int, count: int) -> bytes:
            with archive.open(name) as record:
                record.seek(start)
                return record.read(count)

        return read

    def persistent_load(pid: Any) -> _Storage:
        storage_type, key, numel, _ = _parse_storage_id(pid)
        if key not in storages:
            name = f"{root}data/{key}"
            if name not in names:
                raise TorchFormatError(f"storage record {name!r} is missing from the archive")
            storages[key] = _Storage(key, storage_type, numel, read=read_record(name))
        return storages[key]

    try:
        data = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise TorchFormatError(f"damaged zip archive: {error}") from None
    return _unpickle(io.BytesIO(data), persistent_load, "checkpoint pickle")


def _load_legacy(path: str) -> Any:
    storages: dict[str, _Storage] = {}
    views: list[tuple[_Storage, str, int]] = []

    def persistent_load(pid: Any) -> _Storage:
        storage_type, key, numel, view = _parse_storage_id(pid)
        if key not in storages:
            storages[key] = _Storage(key, storage_type, numel)
        if view is None:
            return storages[key]
        # Old PyTorch saved a view of a storage as (view key, element offset, view size).
        view_key, view_offset, view_size = view
        view_key = str(view_key)
        if view_key not in storages:
            storages[view_key] = _Storage(view_key, storage_type, int(view_size))
            views.append((storages[view_key], key, int(view_offset)))
        return storages[view_key]

    with open(path, "rb") as file:
        magic = _unpickle(file, None, "file header")
        if magic != LEGACY_MAGIC_NUMBER:
            raise TorchFormatError("no PyTorch magic number at the start of the file")
        protocol = _unpickle(file, None, "file header")
        if protocol != LEGACY_PROTOCOL_VERSION:
            raise TorchFormatError(f"unsupported legacy protocol version {protocol!r}")
        sys_info = _unpickle(file, None, "file header")
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise TorchFormatError("big-endian checkpoints are not supported")
        result = _unpickle(file, persistent_load, "checkpoint pickle")
        keys = _unpickle(file, None, "storage key list")
        if not isinstance(keys, list):
            raise TorchFormatError("the storage key list is not a list")
        # The storages follow in the order of `keys`; remember where each one's bytes are.
        file_size = os.fstat(file.fileno()).st_size
        for key in keys:
            key = str(key)
            if key not in storages:
                raise TorchFormatError(f"storage {key!r} is listed but no tensor uses it")
            header = file.read(8)
            if len(header) != 8:
                raise TorchFormatError(f"storage {key!r} is truncated")
            (count,) = struct.unpack("<q", header)
            storage = storages[key]
            nbytes = count * storage.storage_type.dtype.itemsize
            start = file.tell()
            if count < 0 or start + nbytes > file_size:
                raise TorchFormatError(f"storage {key!r} is truncated")
            storage.numel = count
            storage.read = _file_reader(path, start)
            file.seek(nbytes, os.SEEK_CUR)
    for storage, base_key, offset in views:
        if base_key not in storages:
            raise TorchFormatError(f"storage view refers to unknown storage {base_key!r}")
        storage.base, storage.base_offset = storages[base_key], offset
    return result


def _file_reader(path: str, start: int) -> Callable[[int, int], bytes]:
    def read(offset: int, count: int) -> bytes:
        with open(path, "rb") as file:
            file.seek(start + offset)
            return file.read(count)

    return read


def load_torch_file(path: str | os.PathLike) -> Any:
    """Reads a `torch.save` file (zip or legacy format) safely.

    Args:
        path: the file.

    Returns:
        The saved object with dicts, lists, tuples and scalars as saved and every tensor
        replaced by a `TorchTensor` (read its values with `.numpy()`).

    Raises:
        FileNotFoundError: when the file does not exist.
        TorchFormatError: when the file is not a PyTorch checkpoint, is damaged, or names
            any global other than tensors, storages and OrderedDicts.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    with open(path, "rb") as file:
        first = file.read(2)
    if first[:1] != b"\x80":
        raise TorchFormatError("neither a zip archive nor a pickle (not a torch.save file)")
    return _load_legacy(path)


def find_state_dict(checkpoint: Any) -> dict[str, TorchTensor]:
    """The model state dict of a loaded checkpoint.

    Accepts a bare state dict or a dict holding one under 'state_dict' (pose-ae-train's
    `{'state_dict', 'optimizer', 'epoch'}`) or 'model'.

    Args:
        checkpoint: what `load_torch_file` returned.

    Returns:
        Name -> tensor, in file order.

    Raises:
        TorchFormatError: when no state dict of tensors is found.
    """
    if isinstance(checkpoint, dict):
        for key in ("state_dict", "model"):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
        tensors = {
            str(name): value for name, value in checkpoint.items() if isinstance(value, TorchTensor)
        }
        if tensors and len(tensors) == len(checkpoint):
            return tensors
    raise TorchFormatError("no state dict of tensors in the file (expected a model checkpoint)")
