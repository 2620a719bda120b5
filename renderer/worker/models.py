"""Model sources: official network pickles, our native .safetensors checkpoints, and training run
directories (their newest complete snapshot).

An official pickle is read by `torch_utils.persistence` into inert records; the generator to show
(G_ema of a snapshot, or a bare generator) is rebuilt as our own network from its class names,
constructor arguments and tensors. The native format is a .safetensors file whose metadata records
the family and the constructor arguments; it is always written atomically.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

from renderer.files import write_atomic  # noqa: F401  (re-exported for the trainer)
from renderer.worker.networks import FAMILIES, build_generator, family_label
from renderer.protocol import ModelInfo
from torch_utils.persistence import ModelLoadError, PersistentObject, load_pickle

__all__ = [
    "ModelLoadError", "load_generator", "save_generator", "resolve_model_path", "model_info",
    "load_official_pickle", "NATIVE_FORMAT", "NATIVE_FORMAT_VERSION",
]

NATIVE_FORMAT = "stylegan-visualizer-generator"
NATIVE_FORMAT_VERSION = 1
_RESERVED_METADATA = ("format", "format_version", "family", "init_kwargs")
SNAPSHOT_NAME = re.compile(r"network-snapshot-(\d+)\.(pkl|safetensors)")
SUPPORTED = "StyleGAN3 (T and R) and StyleGAN2 generators"

# The official Generator's positional parameters, for pickles that record _init_args.
_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")


# --- Finding the file --------------------------------------------------------------------------

def resolve_model_path(path: str | os.PathLike) -> Path:
    """A model file as is; a training run directory -> its newest complete snapshot
    (`network-snapshot-NNNNNN.pkl` or `.safetensors`, by number; temporary and half-written files
    are skipped)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file or directory")
    if not path.is_dir():
        return path
    snapshots = []
    for candidate in path.iterdir():
        match = SNAPSHOT_NAME.fullmatch(candidate.name)
        if match and candidate.is_file():
            snapshots.append((int(match.group(1)), match.group(2) == "safetensors", candidate))
    for _, _, candidate in sorted(snapshots, reverse=True):
        if _looks_complete(candidate):
            return candidate
    raise ModelLoadError(
        f"{path}: no complete network-snapshot-NNNNNN.pkl or .safetensors in this directory; "
        "give a model file, or a training run directory once it has written a snapshot"
    )


def _looks_complete(path: Path) -> bool:
    """Whether a snapshot file has been written to the end (official training writes in place)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if path.suffix == ".safetensors":
                return _safetensors_extent(f, size) == size
            if size == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"."  # a pickle ends with the STOP opcode
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        return False


def _safetensors_extent(f, size: int) -> int:
    """The size a .safetensors file must have according to its header (-1 if the header is cut)."""
    header_len = struct.unpack("<Q", f.read(8))[0]
    if header_len > size - 8:
        return -1
    header = json.loads(f.read(header_len))
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    return 8 + header_len + max(ends, default=0)


def _is_native(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and head[:1] != b"\x80"


# --- Loading -----------------------------------------------------------------------------------

def load_official_pickle(path: str | os.PathLike) -> Any:
    """An official pickle's content with network objects as inert `PersistentObject` records:
    for a snapshot, the dict of G, D, G_ema, augment_pipe and training_set_kwargs."""
    return load_pickle(path)


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The generator to show from an official pickle (G_ema of a snapshot, or a bare generator), a
    native .safetensors checkpoint, or a training run directory's newest snapshot; in eval mode,
    without gradients, on `device`. Provenance: `G.source_path`, `G.untrained`, `G.checkpoint_metadata`."""
    path = resolve_model_path(path)
    try:
        native = _is_native(path)
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if native:
        G, metadata = _load_native(path)
    else:
        G, metadata = _generator_from_pickle(path), {}
    G.source_path = str(path)
    G.untrained = metadata.get("untrained", "false").lower() == "true"
    G.checkpoint_metadata = metadata
    return G.to(device).eval().requires_grad_(False)


def _generator_from_pickle(path: Path) -> nn.Module:
    content = load_pickle(path)
    record = _generator_record(content, path)
    family = _family_of(record, path)
    init_kwargs = _init_kwargs_of(record, path)
    return _build_and_fill(family, init_kwargs, record.tensors(), path)


def _generator_record(content: Any, path: Path) -> PersistentObject:
    if isinstance(content, PersistentObject):
        return content
    if isinstance(content, dict):
        G_ema = content.get("G_ema")
        if isinstance(G_ema, PersistentObject):
            return G_ema
        keys = ", ".join(repr(k) for k in list(content)[:10]) or "none"
        raise ModelLoadError(
            f"{path}: a pickled dict without a 'G_ema' network (keys: {keys}); expected a training snapshot "
            "(G, D, G_ema, ...) or a pickled generator"
        )
    raise ModelLoadError(
        f"{path}: the pickle holds a Python {type(content).__name__}, not a network; expected a training snapshot "
        "(G, D, G_ema, ...) or a pickled generator"
    )


def _family_of(record: PersistentObject, path: Path) -> str:
    """'stylegan3' or 'stylegan2' from the class names and the synthesis network's children."""
    synthesis = record.children.get("synthesis")
    mapping = record.children.get("mapping")
    if record.class_name == "Generator" and synthesis is not None and mapping is not None \
            and synthesis.class_name == "SynthesisNetwork":
        parts = synthesis.children
        layers = [name for name in parts if re.fullmatch(r"L\d+_\d+_\d+", name)]
        blocks = [name for name, obj in parts.items() if re.fullmatch(r"b\d+", name) and obj.class_name == "SynthesisBlock"]
        if "input" in parts and parts["input"].class_name == "SynthesisInput" and layers:
            return "stylegan3"
        if blocks and not layers:
            return "stylegan2"
    described = record.class_name
    if synthesis is not None:
        children = ", ".join(f"{n} ({c.class_name})" for n, c in list(synthesis.children.items())[:6])
        described += f" with synthesis {synthesis.class_name} [{children}]"
    raise ModelLoadError(f"{path}: unknown generator architecture: {described}; supported: {SUPPORTED}")


def _plain(value: Any) -> Any:
    """Constructor arguments as plain JSON-compatible Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a constructor argument of type {type(value).__name__}")


def _init_kwargs_of(record: PersistentObject, path: Path) -> dict[str, Any]:
    args, kwargs = record.init_args, record.init_kwargs
    if len(args) > len(_GENERATOR_ARGS):
        raise ModelLoadError(f"{path}: the generator records {len(args)} positional constructor arguments; "
                             f"the official Generator takes at most {len(_GENERATOR_ARGS)}")
    kwargs.update(zip(_GENERATOR_ARGS, args))
    if not kwargs:
        raise ModelLoadError(f"{path}: the generator does not record its constructor arguments (_init_kwargs); "
                             "it was not written by the official training code")
    try:
        return _plain(kwargs)
    except TypeError as e:
        raise ModelLoadError(f"{path}: unreadable generator constructor arguments ({e})") from None


def _build_and_fill(family: str, init_kwargs: dict[str, Any], tensors: dict[str, torch.Tensor], path: Path) -> nn.Module:
    """Our network of `family` from the constructor arguments, loaded with exactly `tensors`."""
    try:
        G = build_generator(family, init_kwargs)
    except (TypeError, ValueError, KeyError, AssertionError) as e:
        raise ModelLoadError(f"{path}: our {family} generator does not accept the recorded constructor "
                             f"arguments ({type(e).__name__}: {e}); arguments: {json.dumps(init_kwargs)}") from None
    expected = G.state_dict()
    problems = []
    for label, names in (("missing", [n for n in expected if n not in tensors]),
                         ("unexpected", [n for n in tensors if n not in expected]),
                         ("wrong shape", [f"{n} {list(tensors[n].shape)} instead of {list(expected[n].shape)}"
                                          for n in expected if n in tensors and tensors[n].shape != expected[n].shape])):
        if names:
            more = f" (+{len(names) - 5} more)" if len(names) > 5 else ""
            problems.append(f"{label}: {', '.join(names[:5])}{more}")
    if problems:
        raise ModelLoadError(f"{path}: its tensors do not fit a {family} generator built from its constructor "
                             f"arguments ({'; '.join(problems)}); the file is damaged or from an unsupported variant")
    with torch.no_grad():
        G.load_state_dict(tensors)
    return G


def _load_native(path: Path) -> tuple[nn.Module, dict[str, str]]:
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{path}: the file is empty; it may still be being written, or the copy failed")
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (safetensors.SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: not a readable .safetensors file ({e}); it may be truncated or damaged") from None
    if metadata.get("format") != NATIVE_FORMAT:
        raise ModelLoadError(f"{path}: a .safetensors file, but not a generator checkpoint of this tool (no "
                             f"'format: {NATIVE_FORMAT}' metadata); convert official pickles with `visualizer.py convert`")
    version = metadata.get("format_version", "")
    if not version.isdigit() or int(version) > NATIVE_FORMAT_VERSION:
        raise ModelLoadError(f"{path}: checkpoint format version {version!r} is newer than this tool reads "
                             f"({NATIVE_FORMAT_VERSION}); update the visualizer")
    family = metadata.get("family")
    if family not in FAMILIES:
        raise ModelLoadError(f"{path}: unknown generator family {family!r}; supported: {SUPPORTED}")
    try:
        init_kwargs = json.loads(metadata["init_kwargs"])
    except (KeyError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path}: the checkpoint's constructor arguments are missing or unreadable ({e})") from None
    if not isinstance(init_kwargs, dict):
        raise ModelLoadError(f"{path}: the checkpoint's constructor arguments are not a JSON object")
    extra = {k: v for k, v in metadata.items() if k not in _RESERVED_METADATA}
    return _build_and_fill(family, init_kwargs, tensors, path), extra


# --- Saving ------------------------------------------------------------------------------------

def save_generator(G: nn.Module, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write G in the native format: a .safetensors file of its state dict whose metadata records the
    format, family and constructor arguments, plus `metadata` (non-string values stored as JSON).
    Atomic: a reader sees the old file or the complete new one, never a partial one."""
    path = Path(path)
    family = getattr(G, "family", None)
    init_kwargs = getattr(G, "init_kwargs", None)
    if family not in FAMILIES:
        raise ValueError(f"cannot save a {type(G).__name__}: not one of our generators ({', '.join(FAMILIES)})")
    if not isinstance(init_kwargs, dict):
        raise ValueError(f"cannot save this {family} generator: it does not record its constructor arguments; "
                         "build it with renderer.worker.networks.build_generator, or set G.init_kwargs")
    header = {
        "format": NATIVE_FORMAT,
        "format_version": str(NATIVE_FORMAT_VERSION),
        "family": family,
        "init_kwargs": json.dumps(_plain(init_kwargs), sort_keys=True),
    }
    for key, value in (metadata or {}).items():
        if key in header:
            raise ValueError(f"metadata key {key!r} is reserved by the checkpoint format")
        header[str(key)] = value if isinstance(value, str) else json.dumps(value)
    tensors = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in G.state_dict().items()}
    write_atomic(path, safetensors.torch.save(tensors, metadata=header))
    return path


# --- Summary -----------------------------------------------------------------------------------

def model_info(G: nn.Module, path: str | os.PathLike) -> ModelInfo:
    """What the GUI and `info` show about a loaded generator."""
    synthesis_input = getattr(G.synthesis, "input", None)
    return ModelInfo(
        path=str(path),
        family=family_label(G),
        img_resolution=int(G.img_resolution),
        img_channels=int(G.img_channels),
        z_dim=int(G.z_dim),
        w_dim=int(G.w_dim),
        c_dim=int(G.c_dim),
        num_ws=int(G.num_ws),
        num_params=sum(p.numel() for p in G.parameters()),
        has_noise=any(name.endswith("noise_const") for name, _ in G.named_buffers()),
        has_input_transform=isinstance(getattr(synthesis_input, "transform", None), torch.Tensor),
        untrained=bool(getattr(G, "untrained", False)),
        trained_kimg=_trained_kimg(getattr(G, "checkpoint_metadata", {})),
        snapshot=str(getattr(G, "source_path", path)),
    )


def _trained_kimg(metadata: dict[str, str]) -> float | None:
    """The `kimg` a training snapshot records (training.snapshots), if it is a readable number."""
    try:
        kimg = float(metadata["kimg"])
    except (KeyError, TypeError, ValueError):
        return None
    return kimg if math.isfinite(kimg) and kimg >= 0 else None
