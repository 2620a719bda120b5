"""numpy values in a network pickle, built from checked (dtype, shape, bytes) only.

numpy pickles a dtype as `dtype(code, align, copy)` followed by a state tuple (byte order,
fields, sizes, flags), and an array as `_reconstruct(ndarray, (0,), b'b')` followed by a state
tuple (shape, dtype, order, raw bytes), or, from protocol 5 on, as `_frombuffer(bytes, dtype,
shape, order)`. Handing numpy such a state lets the file describe object fields, offsets past
the data or sizes that do not match it. Here the stream only ever gets placeholders; their
state is checked (plain numeric types only, sizes matching the data) and the value is made
with `np.frombuffer` on a copy of the bytes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from torch_utils.pickle_limits import DataBudget, RefusedPickle

# Kind and size codes as numpy's dtype reduction spells them: booleans, integers, floats, complex.
PLAIN_DTYPE_CODES = frozenset({"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "c8", "c16"})
MAX_DIMS = 32


class Placeholder:
    """A value whose state the stream has yet to set (BUILD); the memo keys it was stored under,
    so that the finished value can replace it there."""

    def __init__(self) -> None:
        self.memo_keys: list[Any] = []


class DtypeSpec(Placeholder):
    """`numpy.dtype(code, align, copy)` before its state names the byte order."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code


class PendingArray(Placeholder):
    """`numpy._core.multiarray._reconstruct(ndarray, (0,), b'b')` before its state gives the data."""


class NdarrayClass:
    """Stands for `numpy.ndarray` in a stream: only `_reconstruct` may receive it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RefusedPickle("the stream calls numpy.ndarray directly")


NDARRAY = NdarrayClass()


def is_plain_dtype(dtype: Any) -> bool:
    """A finished dtype of one of PLAIN_DTYPE_CODES (no fields, no sub-arrays, no objects)."""
    return (isinstance(dtype, np.dtype) and dtype.kind in "biufc" and dtype.fields is None
            and dtype.subdtype is None and not dtype.hasobject and f"{dtype.kind}{dtype.itemsize}" in PLAIN_DTYPE_CODES)


def make_dtype(code: Any, align: Any = False, copy: Any = True) -> DtypeSpec:
    """`numpy.dtype(code, align, copy)`."""
    if not isinstance(code, str) or code not in PLAIN_DTYPE_CODES:
        shown = code if isinstance(code, str) and len(code) < 20 else type(code).__name__
        raise RefusedPickle(f"it describes numpy data of type {shown!r}; only plain numbers are allowed")
    if not isinstance(align, bool) or not isinstance(copy, bool):
        raise RefusedPickle("a numpy dtype is described in an unusual way")
    return DtypeSpec(code)


def finish_dtype(spec: DtypeSpec, state: Any) -> np.dtype:
    """The dtype `spec` with numpy's dtype state: (version, byte order, sub-array, names, fields,
    element size, alignment, flags[, metadata]), which must be that of a plain number."""
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
        raise RefusedPickle("a numpy dtype has an unusual state")
    order, subarray, names, fields, elsize, alignment, flags = state[1:8]
    metadata = state[8] if len(state) == 9 else None
    if order not in ("<", ">", "|", "=") or subarray is not None or names is not None or fields is not None \
            or elsize != -1 or alignment != -1 or flags != 0 or metadata not in (None, {}):
        raise RefusedPickle("a numpy dtype carries fields, sizes or flags that plain numbers never have")
    dtype = np.dtype(spec.code)
    if order in "<>" and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(order)
    return dtype


def _checked_dtype(dtype: Any) -> np.dtype:
    if isinstance(dtype, DtypeSpec):
        raise RefusedPickle("a numpy dtype is used before its state is set")
    if not is_plain_dtype(dtype):
        raise RefusedPickle("numpy data of a type other than plain numbers")
    return dtype


def _checked_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, (tuple, list)) or len(shape) > MAX_DIMS \
            or not all(type(n) is int and n >= 0 for n in shape):
        raise RefusedPickle("a numpy array has a malformed shape")
    return tuple(shape)


def _from_bytes(data: Any, dtype: Any, shape: Any, fortran: bool, budget: DataBudget) -> np.ndarray:
    dtype, shape = _checked_dtype(dtype), _checked_shape(shape)
    if not isinstance(data, (bytes, bytearray)):
        raise RefusedPickle(f"a numpy array's data is a {type(data).__name__}, not bytes")
    nbytes = math.prod(shape) * dtype.itemsize
    if len(data) != nbytes:
        raise RefusedPickle(f"a numpy array of shape {list(shape)} and type {dtype.name} needs {nbytes:,} bytes "
                            f"but carries {len(data):,}")
    budget.charge(nbytes, "a numpy array")
    flat = np.frombuffer(bytes(data), dtype=dtype).astype(dtype.newbyteorder("="), copy=True)
    return flat.reshape(shape, order="F" if fortran else "C")


def reconstruct_array(subtype: Any, shape: Any, typecode: Any) -> PendingArray:
    """`numpy._core.multiarray._reconstruct(ndarray, (0,), b'b')`: an array that BUILD fills."""
    if subtype is not NDARRAY or shape not in ((0,), [0]) or typecode not in (b"b", "b"):
        raise RefusedPickle("a numpy array is reconstructed in an unusual way")
    return PendingArray()


def finish_array(pending: PendingArray, state: Any, budget: DataBudget) -> np.ndarray:
    """The array of `pending` from ndarray's state: ([version,] shape, dtype, fortran order, raw bytes)."""
    if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
        state = state[1:]
    if not isinstance(state, tuple) or len(state) != 4 or not isinstance(state[2], bool):
        raise RefusedPickle("a numpy array has an unusual state")
    shape, dtype, fortran, data = state
    return _from_bytes(data, dtype, shape, fortran, budget)


def array_from_buffer(data: Any, dtype: Any, shape: Any, order: Any, budget: DataBudget) -> np.ndarray:
    """`numpy._core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol 5)."""
    if order not in ("C", "F"):
        raise RefusedPickle("a numpy array has an unusual memory order")
    return _from_bytes(data, dtype, shape, order == "F", budget)


def make_scalar(dtype: Any, data: Any = None) -> np.generic:
    """`numpy._core.multiarray.scalar(dtype, bytes)`: one number."""
    dtype = _checked_dtype(dtype)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise RefusedPickle(f"a numpy {dtype.name} scalar does not carry exactly {dtype.itemsize} bytes")
    return np.frombuffer(bytes(data), dtype=dtype).astype(dtype.newbyteorder("="))[0]
