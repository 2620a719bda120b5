"""Tensors in a network pickle: storages and the views on them, with sizes checked first.

torch pickles a tensor as `_rebuild_tensor_v2(storage, offset, size, stride, ...)` on a storage
made by `torch.storage._load_from_bytes(blob)`, where the blob is a small file in torch's legacy
format: header pickles, then the element count and the raw data. The header is read (names only)
to check that the declared data is really there before torch's weights-only loader reads it.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import struct
from typing import Any

import torch

from torch_utils.pickle_limits import DataBudget, RefusedPickle

LEGACY_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_TENSOR_DIMS = 16


class _StorageHeaderReader(pickle.Unpickler):
    """Reads the header pickles of a legacy storage blob; globals resolve to their names only."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in LEGACY_STORAGE_DTYPES:
            return name
        raise RefusedPickle(f"tensor data refers to {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        return pid


def declared_storage(blob: bytes) -> tuple[torch.dtype, int]:
    """(dtype, element count) that a legacy storage blob declares, checked against its length."""
    f = io.BytesIO(blob)
    reader = _StorageHeaderReader(f)
    try:
        magic, _protocol, _system = reader.load(), reader.load(), reader.load()
        pid, keys = reader.load(), reader.load()
        (numel,) = struct.unpack("<q", f.read(8))
    except RefusedPickle:
        raise
    except Exception:  # any malformed header: pickle, struct and type errors alike
        raise RefusedPickle("tensor data in an unrecognised layout") from None
    if magic != LEGACY_MAGIC or not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                                      and pid[1] in LEGACY_STORAGE_DTYPES and isinstance(pid[4], int)):
        raise RefusedPickle("tensor data in an unrecognised layout")
    if not (isinstance(keys, list) and len(keys) == 1 and pid[5] is None):
        raise RefusedPickle("tensor data holding several storages or views, which network pickles never do")
    dtype = LEGACY_STORAGE_DTYPES[pid[1]]
    itemsize = torch.empty((), dtype=dtype).element_size()
    left = len(blob) - f.tell()
    if numel != pid[4] or numel < 0 or numel * itemsize > left:
        raise RefusedPickle(f"a tensor declares {pid[4]} elements but its data holds only {len(blob)} bytes")
    return dtype, numel


def load_storage(blob: Any, budget: DataBudget) -> torch.storage.TypedStorage:
    """`torch.storage._load_from_bytes`: a tensor storage, read with torch's weights-only loader."""
    if not isinstance(blob, (bytes, bytearray)):
        raise RefusedPickle(f"tensor storage given as {type(blob).__name__}, not bytes")
    blob = bytes(blob)
    if blob[:2] == b"PK":
        raise RefusedPickle("tensor data in torch's zip layout, which network pickles never use inside a pickle")
    dtype, numel = declared_storage(blob)
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    budget.charge(nbytes, "a tensor")
    storage = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.storage.TypedStorage) or storage.dtype != dtype \
            or storage._untyped_storage.nbytes() != nbytes:
        raise RefusedPickle("tensor data that does not decode to the storage it declares")
    return storage


def _is_size(value: Any) -> bool:
    return isinstance(value, (tuple, list, torch.Size)) and len(value) <= MAX_TENSOR_DIMS \
        and all(type(v) is int and v >= 0 for v in value)


def rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any,
                   backward_hooks: Any, metadata: Any = None) -> torch.Tensor:
    """`torch._utils._rebuild_tensor_v2`, with its arguments checked first."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise RefusedPickle(f"a tensor is built on a {type(storage).__name__}, not a storage")
    if not (type(storage_offset) is int and storage_offset >= 0 and _is_size(size) and _is_size(stride)
            and len(size) == len(stride)):
        raise RefusedPickle("a tensor has a malformed offset, size or stride")
    if backward_hooks:
        raise RefusedPickle("a tensor carries backward hooks")
    if metadata not in (None, {}) or not isinstance(requires_grad, bool):
        raise RefusedPickle("a tensor carries unusual metadata")
    available = storage._untyped_storage.nbytes() // storage.dtype.itemsize
    numel = math.prod(size)
    extent = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if numel else 0
    if extent > available or numel > available:  # torch would grow the storage, or repeat it in a view
        raise RefusedPickle(f"a tensor of shape {list(size)} reaches past the end of its data "
                            f"({max(extent, numel)} of {available} elements)")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, tuple(size), tuple(stride), False,
                                           collections.OrderedDict())


def rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> torch.nn.Parameter:
    """`torch._utils._rebuild_parameter`."""
    if not isinstance(data, torch.Tensor) or isinstance(data, torch.nn.Parameter) or backward_hooks \
            or not isinstance(requires_grad, bool):
        raise RefusedPickle("a parameter is not built from a plain tensor")
    return torch.nn.Parameter(data, requires_grad=False)
