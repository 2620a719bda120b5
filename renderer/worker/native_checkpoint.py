"""The native checkpoint format: a .safetensors file of a generator's state dict whose metadata
records the format, family and constructor arguments.

Reading checks the header before any tensor data is touched: its length against the file, every
entry's type, shape and byte range against each other and the file, the constructor arguments'
size and nesting. Writing is atomic (renderer.files.write_atomic).
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import safetensors
import safetensors.torch
import torch
from torch import nn

from renderer.files import write_atomic
from torch_utils.plain_data import NotPlainData, plain_value
from torch_utils.regular_file import open_regular

FORMAT = "stylegan-visualizer-generator"
FORMAT_VERSION = 1
RESERVED_METADATA = ("format", "format_version", "family", "init_kwargs")
MAX_HEADER = 100 << 20          # the safetensors library's own limit
MAX_INIT_KWARGS = 256 << 10     # constructor arguments are a few hundred bytes of JSON
MAX_TENSORS = 100_000
ITEM_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


class NativeFormatError(ValueError):
    """A .safetensors file that is not a readable generator checkpoint; a phrase completing "<file>: ..."."""


@dataclass
class Header:
    entries: dict[str, dict]
    metadata: dict[str, str]
    data_end: int                 # where the data must end: the file's size when complete


def read_header(f: BinaryIO, size: int) -> Header:
    """The header of the .safetensors file `f` (of `size` bytes), checked."""
    f.seek(0)
    head = f.read(8)
    if len(head) < 8:
        raise NativeFormatError("the file ends inside its .safetensors header (truncated)")
    (length,) = struct.unpack("<Q", head)
    if length > min(MAX_HEADER, size - 8):
        raise NativeFormatError(f"its .safetensors header claims {length:,} bytes but the file has {size:,} "
                                "(truncated, or not a .safetensors file)")
    try:
        header = json.loads(f.read(length))
    except (ValueError, RecursionError):
        raise NativeFormatError("its .safetensors header is not readable JSON (truncated or damaged)") from None
    if not isinstance(header, dict) or len(header) > MAX_TENSORS:
        raise NativeFormatError("its .safetensors header is not a table of tensors (damaged)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise NativeFormatError("its .safetensors metadata is not a table of texts (damaged)")
    end = 0
    for name, entry in header.items():
        if not _valid_entry(entry):
            raise NativeFormatError(f"its .safetensors header describes tensor {name[:80]!r} inconsistently (damaged)")
        end = max(end, entry["data_offsets"][1])
    return Header(entries=header, metadata=metadata, data_end=8 + length + end)


def _valid_entry(entry: Any) -> bool:
    if not isinstance(entry, dict) or entry.get("dtype") not in ITEM_SIZES:
        return False
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and len(shape) <= 16 and all(type(n) is int and n >= 0 for n in shape)):
        return False
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)):
        return False
    begin, end = offsets
    return 0 <= begin <= end and end - begin == math.prod(shape) * ITEM_SIZES[entry["dtype"]]


def read(f: BinaryIO, size: int) -> tuple[str, dict[str, Any], dict[str, torch.Tensor], dict[str, str]]:
    """(family, constructor arguments, tensors, other metadata) of the checkpoint in `f`."""
    header = read_header(f, size)
    if header.data_end > size:
        raise NativeFormatError(f"its tensors need {header.data_end:,} bytes but the file has {size:,} (truncated "
                                "or still being written); wait until it is complete, or copy it again")
    metadata = header.metadata
    if metadata.get("format") != FORMAT:
        raise NativeFormatError(f"a .safetensors file, but not a generator checkpoint of this tool (no 'format: {FORMAT}' "
                                "metadata); convert official pickles with `visualizer.py convert`")
    version = metadata.get("format_version", "")
    if not version.isdigit() or len(version) > 6 or int(version) > FORMAT_VERSION:
        raise NativeFormatError(f"checkpoint format version {version[:20]!r} is newer than this tool reads "
                                f"({FORMAT_VERSION}); update the visualizer")
    init_kwargs = _constructor_arguments(metadata.get("init_kwargs"))
    f.seek(0)
    try:
        tensors = safetensors.torch.load(f.read(size))
    except (safetensors.SafetensorError, ValueError) as e:
        raise NativeFormatError(f"not a readable .safetensors file ({' '.join(str(e).split())[:160]}); it may be "
                                "truncated or damaged") from None
    extra = {k: v for k, v in metadata.items() if k not in RESERVED_METADATA}
    return metadata.get("family", ""), init_kwargs, tensors, extra


def _constructor_arguments(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        raise NativeFormatError("the checkpoint does not record its constructor arguments (init_kwargs); it is damaged")
    if len(text) > MAX_INIT_KWARGS:
        raise NativeFormatError(f"the checkpoint's constructor arguments take {len(text):,} characters, far more "
                                "than any generator's; the file is damaged or crafted")
    try:
        kwargs = plain_value(json.loads(text))
    except (ValueError, RecursionError) as e:
        reason = str(e) if isinstance(e, NotPlainData) else "not readable JSON"
        raise NativeFormatError(f"the checkpoint's constructor arguments are unreadable ({reason})") from None
    if not isinstance(kwargs, dict):
        raise NativeFormatError("the checkpoint's constructor arguments are not a JSON object")
    return kwargs


def extent(path: Path) -> int:
    """Where the data of the .safetensors file `path` ends according to its header (-1: unreadable)."""
    try:
        with open_regular(path) as f:
            return read_header(f, os.fstat(f.fileno()).st_size).data_end
    except (OSError, NativeFormatError):
        return -1


def save(G: nn.Module, path: str | os.PathLike, family: str, init_kwargs: dict,
         metadata: dict[str, Any] | None = None) -> Path:
    """Write G's state dict with the format's metadata plus `metadata` (non-string values as JSON)."""
    path = Path(path)
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "family": family,
        "init_kwargs": json.dumps(plain_value(init_kwargs), sort_keys=True),
    }
    for key, value in (metadata or {}).items():
        if key in header:
            raise ValueError(f"metadata key {key!r} is reserved by the checkpoint format")
        header[str(key)] = value if isinstance(value, str) else json.dumps(value)
    tensors = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in G.state_dict().items()}
    write_atomic(path, safetensors.torch.save(tensors, metadata=header))
    return path
