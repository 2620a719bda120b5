"""Files written by torch.save, read without running code and without taking more memory than the
file's size.

torch.load(weights_only=True) already refuses code (its unpickler builds tensors, numbers, strings
and containers only), but both of torch.save's layouts can declare more data than the file holds:
a zip archive's records may be deflated (a small file expanding into gigabytes), and the legacy
layout (before torch 1.6, as torchvision's and LPIPS's published weights are) declares each
storage's size in its pickle, which torch allocates before it reads the data. So the layout is
checked first, from the bytes alone:

- zip archive: not a TorchScript program (whose code/ records torch.load would hand to
  torch.jit.load), every record stored (torch.save never compresses), the object tree (data.pkl) at most
  `max_pickle_bytes`, the records together no larger than the file;
- legacy: magic number, protocol and system header, then the object pickle read with a reader that
  resolves names only (nothing is built; globals other than torch's tensor rebuilding and
  OrderedDict are refused), then the storage keys and each storage's element count and
  data, which must match what the pickle declared and end within the file.

Anything else is a TorchSaveError naming the problem.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

from torch_utils.pickle_torch import LEGACY_STORAGE_DTYPES, LEGACY_MAGIC
from torch_utils.regular_file import NotARegularFile, open_regular

MAX_PICKLE_BYTES = 64 << 20


class TorchSaveError(ValueError):
    """Not a torch.save file this reader accepts; the message is a phrase that completes "<file> ..."."""


class _Inert:
    """What the names-only reader makes of every object: it accepts any state and holds none."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _PlainValues(pickle.Unpickler):
    """Reads a pickle of plain values only (the legacy header, the storage keys)."""

    def find_class(self, module: str, name: str) -> Any:
        raise TorchSaveError(f"refers to {module}.{name} where torch.save writes plain values")


# What torch.save's legacy layout of tensors and containers refers to; anything else is refused here.
LEGACY_GLOBALS = frozenset({("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor"),
                            ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter")})


class _NamesOnly(pickle.Unpickler):
    """Reads a legacy object pickle without building anything: storage types resolve to their names,
    the few other globals of LEGACY_GLOBALS to an inert placeholder (any other is refused),
    persistent ids (the storages) are collected."""

    def __init__(self, f: BinaryIO) -> None:
        super().__init__(f)
        self.storages: dict[str, tuple[str, int]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in LEGACY_STORAGE_DTYPES:
            return name
        if (module, name) in LEGACY_GLOBALS:
            return _Inert
        raise TorchSaveError(f"refers to {module[:60]}.{name[:60]}, which a file of tensors never needs (refused: "
                             "loading it could run code)")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and pid[1] in LEGACY_STORAGE_DTYPES
                and isinstance(pid[2], str) and type(pid[4]) is int and pid[4] >= 0):
            raise TorchSaveError("refers to data in a form torch.save never writes")
        known = self.storages.setdefault(pid[2], (pid[1], pid[4]))
        if known != (pid[1], pid[4]):
            raise TorchSaveError("declares one storage twice with different sizes")
        return _Inert()


def check_layout(f: BinaryIO, max_pickle_bytes: int = MAX_PICKLE_BYTES) -> str:
    """'zip' or 'legacy' once the layout of the open file `f` is checked (see the module docstring);
    `f` is left at its start."""
    size = os.fstat(f.fileno()).st_size
    head = f.read(4)
    f.seek(0)
    if head[:2] == b"PK":
        _check_zip(f, size, max_pickle_bytes)
        return "zip"
    if head[:1] == b"\x80":
        _check_legacy(f, size)
        return "legacy"
    raise TorchSaveError("is not a torch.save file (neither its zip archive nor its legacy layout)")


def _check_zip(f: BinaryIO, size: int, max_pickle_bytes: int) -> None:
    try:
        with zipfile.ZipFile(f) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise TorchSaveError(f"is not a torch.save archive ({e})") from None
    for record in records:
        if record.filename.split("/", 1)[-1].startswith(("code/", "constants.pkl")):
            raise TorchSaveError("is a TorchScript program (torch.jit.save), which carries code that this tool never "
                                 "runs")
        if record.compress_type != zipfile.ZIP_STORED:
            raise TorchSaveError(f"holds a compressed record ({record.filename}), which torch.save never writes; "
                                 "refusing to expand it")
        if record.filename.endswith(".pkl") and record.file_size > max_pickle_bytes:
            raise TorchSaveError(f"has an object tree {record.filename} of {record.file_size:,} bytes, more than "
                                 f"{max_pickle_bytes:,}")
    if sum(record.file_size for record in records) > size:
        raise TorchSaveError(f"has records that claim more bytes than the file holds ({size:,}); it is damaged")
    f.seek(0)


def _check_legacy(f: BinaryIO, size: int) -> None:
    try:
        header = _PlainValues(f)
        magic = header.load()
        header.load(), header.load()                 # the protocol version and the system's sizes
        if magic != LEGACY_MAGIC:
            raise TorchSaveError("is not a torch.save file (its first value is not torch's magic number)")
        reader = _NamesOnly(f)
        reader.load()
        storage_keys = _PlainValues(f).load()
        if not (isinstance(storage_keys, list) and all(isinstance(k, str) for k in storage_keys)
                and set(storage_keys) == set(reader.storages) and len(storage_keys) == len(reader.storages)):
            raise TorchSaveError("lists storages other than those its objects use; it is damaged")
        for key in storage_keys:
            type_name, numel = reader.storages[key]
            (stored,) = struct.unpack("<q", f.read(8))
            nbytes = numel * LEGACY_STORAGE_DTYPES[type_name].itemsize
            if stored != numel or f.tell() + nbytes > size:
                raise TorchSaveError(f"declares a storage of {numel:,} elements that its data does not hold; it is "
                                     "damaged or crafted")
            f.seek(nbytes, io.SEEK_CUR)
    except TorchSaveError:
        raise
    except RecursionError:
        raise TorchSaveError("nests its values too deeply") from None
    except Exception:  # any malformed pickle or a short read: pickle, struct, type and value errors alike
        raise TorchSaveError("is not a complete torch.save file (its legacy layout is malformed or ends early)") from None
    finally:
        f.seek(0)


def load_checked(f: BinaryIO, name: str, max_pickle_bytes: int = MAX_PICKLE_BYTES) -> Any:
    """The object in the open torch.save file `f` (`name` for messages), layout checked first, then
    loaded with torch's weights-only unpickler onto the CPU. TorchSaveError otherwise."""
    try:
        check_layout(f, max_pickle_bytes)
    except TorchSaveError as e:
        raise TorchSaveError(f"{name} {e}") from None
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise TorchSaveError(f"{name} holds objects other than tensors and plain values "
                             f"({str(e).splitlines()[0][:200]})") from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise TorchSaveError(f"{name} cannot be read by torch ({type(e).__name__}: {str(e)[:200]})") from None


def read_checked(path: str | os.PathLike, max_pickle_bytes: int = MAX_PICKLE_BYTES) -> Any:
    """load_checked of the regular file at `path` (a FIFO or device is refused, not waited on)."""
    path = Path(path)
    try:
        f = open_regular(path)
    except NotARegularFile as e:
        raise TorchSaveError(str(e)) from None
    except OSError as e:
        raise TorchSaveError(f"{path.name} cannot be read ({e.strerror or e})") from None
    with f:
        return load_checked(f, path.name, max_pickle_bytes)
