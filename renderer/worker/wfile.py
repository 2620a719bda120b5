"""W latents from files: `.npy` as Save W writes it, `.npz` as the official projector writes it
(`projected_w.npz`, one array `w`).

Shape [num_ws, w_dim], [1, num_ws, w_dim] or [w_dim] (broadcast to every row). The header is read
and checked before any data: type, shape and length, so a file claiming a huge array or a 1 GB
file of the wrong shape costs nothing. Types: float32; float16 and either byte order convert
exactly; float64 is rounded to float32, in which the network computes. Integers, booleans,
complex numbers and structured types are refused (complex would lose its imaginary part).
Only regular files are opened (a FIFO would block), and non-finite values are refused.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from torch_utils.regular_file import NotARegularFile, open_regular

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
MAX_HEADER = 10_000          # numpy's own default limit for .npy headers
MAX_MEMBERS = 64
ACCEPTED_KINDS = "f"         # floating point (float16 / 32 / 64, either byte order)


class WFileError(Exception):
    """A W file that cannot be used; the message names the file, the problem and what to do."""


def read_w_file(path: str | os.PathLike, num_ws: int, w_dim: int) -> np.ndarray:
    """W from a .npy or .npz file -> float32 [num_ws, w_dim]."""
    path = Path(path)
    try:
        with open_regular(path) as f:
            return _parsed(f, os.fstat(f.fileno()).st_size, path.name, num_ws, w_dim)
    except NotARegularFile as e:
        raise WFileError(f"Could not read W: {e}; give a .npy or .npz file") from None
    except OSError as e:
        raise WFileError(f"Could not read W from {path.name}: {e.strerror or e}") from None


def w_from_bytes(data: bytes, num_ws: int, w_dim: int, name: str = "(sent by the GUI)") -> np.ndarray:
    """W from the bytes of a .npy or .npz file (a remote GUI's W file, which travels with its request)."""
    return _parsed(io.BytesIO(data), len(data), name, num_ws, w_dim)


def _parsed(f: BinaryIO, size: int, name: str, num_ws: int, w_dim: int) -> np.ndarray:
    magic = f.read(6)
    f.seek(0)
    if magic == NPY_MAGIC:
        w = _read_npy(f, size, name, num_ws, w_dim)
    elif magic[:4] == ZIP_MAGIC:
        w = _read_npz(f, name, num_ws, w_dim)
    else:
        raise WFileError(f"W file {name} is neither a .npy nor a .npz file; save W from the visualizer or "
                         "use the official projector's projected_w.npz")
    if not np.isfinite(w).all():
        raise WFileError(f"W in {name} holds NaN or infinite values; it cannot be rendered")
    if w.shape == (w_dim,):
        w = np.broadcast_to(w, (num_ws, w_dim))
    elif w.ndim == 3:
        w = w[0]
    return np.ascontiguousarray(w, dtype=np.float32)


def _header(stream: BinaryIO, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream, max_header_size=MAX_HEADER)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(stream, max_header_size=MAX_HEADER)
    except (ValueError, SyntaxError, TypeError, EOFError) as e:
        raise WFileError(f"W file {name} has an unreadable .npy header ({' '.join(str(e).split())[:120]})") from None
    raise WFileError(f"W file {name} is in .npy format version {version[0]}.{version[1]}, which W files never use")


def _checked(shape: tuple[int, ...], dtype: np.dtype, name: str, num_ws: int, w_dim: int) -> int:
    """The number of data bytes, once type and shape are known to be a usable W."""
    if dtype.kind not in ACCEPTED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        kind = {"b": "booleans", "i": "integers", "u": "integers", "c": "complex numbers"}.get(dtype.kind, "not numbers")
        raise WFileError(f"W in {name} is of type {dtype.str} ({kind}); W must be floating point "
                         "(float32, float16 or float64)")
    if shape not in ((num_ws, w_dim), (1, num_ws, w_dim), (w_dim,)):
        raise WFileError(f"W in {name} has shape {list(shape)}; this model needs [{num_ws}, {w_dim}], "
                         f"[1, {num_ws}, {w_dim}] or [{w_dim}]")
    return math.prod(shape) * dtype.itemsize


def _array(data: bytes, shape: tuple[int, ...], fortran: bool, dtype: np.dtype) -> np.ndarray:
    flat = np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="))
    return flat.reshape(shape, order="F" if fortran else "C").astype(np.float32)


def _read_npy(f: BinaryIO, size: int, name: str, num_ws: int, w_dim: int) -> np.ndarray:
    shape, fortran, dtype = _header(f, name)
    nbytes = _checked(shape, dtype, name, num_ws, w_dim)
    if size - f.tell() < nbytes:
        raise WFileError(f"W file {name} ends early: its header promises {nbytes:,} bytes of data, the file holds "
                         f"{max(size - f.tell(), 0):,} (truncated)")
    return _array(f.read(nbytes), shape, fortran, dtype)


def _read_npz(f: BinaryIO, name: str, num_ws: int, w_dim: int) -> np.ndarray:
    try:
        with zipfile.ZipFile(f) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > MAX_MEMBERS:
                raise WFileError(f"W file {name} is an archive of {len(members)} files, not a saved W")
            chosen = [m for m in members if m.filename == "w.npy"] or members
            if len(chosen) != 1 or not chosen[0].filename.endswith(".npy"):
                listed = ", ".join(m.filename[:40] for m in members[:5]) or "nothing"
                raise WFileError(f"W file {name} is a .npz archive holding {listed}; expected a single array "
                                 "(or one named 'w', as the official projector writes)")
            member = chosen[0]
            if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or member.flag_bits & 0x1:
                raise WFileError(f"W file {name} stores {member.filename} compressed in a way .npz files never use")
            with archive.open(member) as stream:
                shape, fortran, dtype = _header(stream, name)
                nbytes = _checked(shape, dtype, name, num_ws, w_dim)
                data = stream.read(nbytes)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as e:
        raise WFileError(f"W file {name} is a damaged .npz archive ({' '.join(str(e).split())[:120]})") from None
    if len(data) < nbytes:
        raise WFileError(f"W file {name} ends early: its array needs {nbytes:,} bytes, the archive holds {len(data):,}")
    return _array(data, shape, fortran, dtype)
