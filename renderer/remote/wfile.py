"""W files that travel with a request: the bytes of the user's .npy, read on the GUI's machine and
parsed on the server without pickle.

The .npy header is read with numpy's header parser (a literal, never code); the dtype must be a
plain float, and the data must be exactly as long as the header's shape says, before any array is made.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

MAX_W_FILE_BYTES = 16 * 1024 * 1024
W_DTYPES = ("float16", "float32", "float64")
MAX_W_DIMS = 3
NPY_MAGIC = b"\x93NUMPY"


class WFileError(ValueError):
    """A W file that cannot be used."""


def read_w_file(path: str | os.PathLike) -> bytes:
    """The bytes of a .npy W file on this machine, for a request to a remote server."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_W_FILE_BYTES:
            raise WFileError(f"{path.name}: {size} bytes; a W file may have at most {MAX_W_FILE_BYTES}")
        data = path.read_bytes()
    except OSError as e:
        raise WFileError(f"Cannot read the W file {path}: {e.strerror}") from None
    parse_w_file(data, path.name)  # refuse here what the server would refuse
    return data


def parse_w_file(data: bytes, name: str = "the W file") -> np.ndarray:
    """The float32 array in the bytes of a .npy file; WFileError if they are anything else."""
    if len(data) > MAX_W_FILE_BYTES:
        raise WFileError(f"{name}: {len(data)} bytes; a W file may have at most {MAX_W_FILE_BYTES}")
    if not data.startswith(NPY_MAGIC):
        raise WFileError(f"{name}: not a .npy file (save W with numpy.save)")
    stream = io.BytesIO(data)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        version = np.lib.format.read_magic(stream)
        header = readers[version](stream) if version in readers else None
    except (ValueError, SyntaxError, TypeError) as e:
        raise WFileError(f"{name}: a damaged .npy header ({e})") from None
    if header is None:
        raise WFileError(f"{name}: .npy format version {version[0]}.{version[1]} is not supported")
    shape, fortran_order, dtype = header
    if dtype.name not in W_DTYPES or dtype.hasobject or dtype.fields is not None:
        raise WFileError(f"{name}: W must be float16, float32 or float64, not {dtype}")
    if len(shape) > MAX_W_DIMS:
        raise WFileError(f"{name}: W of shape {list(shape)} has more than {MAX_W_DIMS} axes")
    count = math.prod(shape)
    offset = stream.tell()
    if count * dtype.itemsize != len(data) - offset:
        raise WFileError(f"{name}: the header says {list(shape)} {dtype}, but the file holds "
                         f"{len(data) - offset} bytes of data; it may be truncated")
    w = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape, order="F" if fortran_order else "C")
    if not np.isfinite(w).all():
        raise WFileError(f"{name}: W holds NaN or infinite values")
    return w.astype(np.float32)
