"""Model sources: official network pickles (NVlabs/stylegan3, stylegan2-ada-pytorch, stylegan3-fun,
legacy TensorFlow StyleGAN2), our native .safetensors checkpoints, and training run directories
(their newest complete snapshot).

An official pickle is read by `torch_utils.persistence` into inert records; the generator to show
(G_ema of a snapshot, a bare generator, or Gs of a TensorFlow pickle) is rebuilt as our own
network from its class names, constructor arguments and tensors: the arguments are checked first
(generator_kwargs), the network is built only as far as the file's tensors could fill it, and is
compared with them before it takes them (checked_build). Every failure is a ModelLoadError whose message
names the file and the problem in a sentence.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from renderer.conventions import SNAPSHOT_NAME
from renderer.files import write_atomic  # noqa: F401  (re-exported for the trainer)
from renderer.protocol import ModelInfo
from renderer.worker import native_checkpoint, tf_conversion
from renderer.worker.checked_build import TensorMismatch, build, fill, stored_elements
from renderer.worker.generator_kwargs import BadArguments, check_arguments, normal_form, source_project
from renderer.worker.model_records import (
    TENSORFLOW, MalformedFile, constructor_arguments, family_of, find_generator, module_tree,
)
from renderer.worker.native_checkpoint import NativeFormatError
from renderer.worker.networks import FAMILIES, family_label
from torch_utils.persistence import SUPPORTED_FILES, ModelLoadError, read_pickle
from torch_utils.regular_file import NotARegularFile, describe_if_not_regular, open_regular

__all__ = [
    "ModelLoadError", "Provenance", "load_generator", "save_generator", "resolve_model_path", "model_info",
    "load_official_pickle", "NATIVE_FORMAT", "NATIVE_FORMAT_VERSION",
]

NATIVE_FORMAT = native_checkpoint.FORMAT
NATIVE_FORMAT_VERSION = native_checkpoint.FORMAT_VERSION
NATIVE_SOURCE = "StyleGAN visualizer"
NATIVE_KIND = "native checkpoint"


@dataclass(frozen=True)
class Provenance:
    """Where a loaded generator comes from, for `info` and the GUI's model line."""

    source: str                          # the project whose code wrote the file
    kind: str                            # training snapshot, bare generator, TensorFlow network, native checkpoint
    pickle_protocol: int | None = None


# --- Finding the file --------------------------------------------------------------------------

def resolve_model_path(path: str | os.PathLike) -> Path:
    """A model file as is; a training run directory -> its newest complete snapshot
    (`network-snapshot-NNNNNN.pkl` or `.safetensors`, by number; temporary and half-written files
    are skipped). Anything but a regular file or a directory is refused without opening it."""
    path = Path(path).expanduser()
    try:
        mode = os.stat(path).st_mode
        what = describe_if_not_regular(path)
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: no such file or directory") from None
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not stat.S_ISDIR(mode):
        if what is not None:
            raise ModelLoadError(f"{path} is {what}, not a model file; give a .pkl or .safetensors file or a "
                                 "training run directory")
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
    if path.suffix == ".safetensors":
        try:
            return native_checkpoint.extent(path) == path.stat().st_size
        except OSError:
            return False
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return False
            f.seek(size - 1)
            return f.read(1) == b"."  # a pickle ends with the STOP opcode
    except OSError:
        return False


def _is_native(path: Path, head: bytes) -> bool:
    return path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == b"{" and head[:1] != b"\x80")


# --- Loading -----------------------------------------------------------------------------------

def load_official_pickle(path: str | os.PathLike) -> Any:
    """An official pickle's content with network objects as inert records: for a snapshot, the
    dict of G, D, G_ema, augment_pipe and training_set_kwargs."""
    return read_pickle(path).content


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The generator to show from an official pickle (G_ema of a snapshot, a bare generator, Gs of a
    TensorFlow pickle), a native .safetensors checkpoint, or a training run directory's newest
    snapshot; in eval mode, without gradients, on `device`. Provenance: `G.source_path`,
    `G.provenance`, `G.untrained`, `G.checkpoint_metadata`."""
    path = resolve_model_path(path)
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            native = size > 0 and _is_native(path, f.read(9))
            if native:
                G, metadata, provenance = _load_native(f, size)
        if not native:
            G, metadata, provenance = _load_pickle(path)
    except ModelLoadError:
        raise
    except NotARegularFile as e:
        raise ModelLoadError(f"{e}; give a model file") from None
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read the file ({e.strerror or e})") from None
    except (MalformedFile, BadArguments, TensorMismatch, NativeFormatError, tf_conversion.UnsupportedTensorFlow) as e:
        raise ModelLoadError(f"{path}: {e}") from None
    except MemoryError:
        raise ModelLoadError(f"{path}: not enough memory to load it") from None
    G.source_path = str(path)
    G.provenance = provenance
    G.untrained = metadata.get("untrained", "false").lower() == "true"
    G.checkpoint_metadata = metadata
    return G.to(device).eval().requires_grad_(False)


def _load_pickle(path: Path) -> tuple[nn.Module, dict[str, str], Provenance]:
    pickled = read_pickle(path)
    found = find_generator(pickled.content)
    if found.kind == TENSORFLOW:
        family, source = "stylegan2", tf_conversion.SOURCE
        kwargs, variables = tf_conversion.convert(found.record)
        check_arguments(family, kwargs, source)
        G = build(family, kwargs, sum({id(a): a.size for a in variables.values()}.values()))
        tensors = tf_conversion.state_dict_for(list(G.state_dict()), variables, kwargs["resample_filter"])
    else:
        record = module_tree(found.record)
        family = family_of(record)
        raw = constructor_arguments(record)
        source = source_project(raw)
        kwargs = normal_form(raw, source)
        check_arguments(family, kwargs, source)
        tensors = record.state_dict()
        G = build(family, kwargs, stored_elements(tensors.values()))
    return fill(G, family, tensors), {}, Provenance(source, found.kind, pickled.protocol)


def _load_native(f, size: int) -> tuple[nn.Module, dict[str, str], Provenance]:
    family, kwargs, tensors, metadata = native_checkpoint.read(f, size)
    if family not in FAMILIES:
        raise NativeFormatError(f"unknown generator family {family[:40]!r}; this tool reads {SUPPORTED_FILES}")
    check_arguments(family, kwargs, None)
    G = fill(build(family, kwargs, stored_elements(tensors.values())), family, tensors)
    kind = NATIVE_KIND
    if metadata.get("source_kind"):
        kind += f", converted from a {metadata['source_kind'][:80]}"
    return G, metadata, Provenance(metadata.get("source", NATIVE_SOURCE)[:80], kind)


# --- Saving ------------------------------------------------------------------------------------

def save_generator(G: nn.Module, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write G in the native format: a .safetensors file of its state dict whose metadata records the
    format, family and constructor arguments, plus `metadata` (non-string values stored as JSON).
    Atomic: a reader sees the old file or the complete new one, never a partial one."""
    family = getattr(G, "family", None)
    init_kwargs = getattr(G, "init_kwargs", None)
    if family not in FAMILIES:
        raise ValueError(f"cannot save a {type(G).__name__}: not one of our generators ({', '.join(FAMILIES)})")
    if not isinstance(init_kwargs, dict):
        raise ValueError(f"cannot save this {family} generator: it does not record its constructor arguments; "
                         "build it with renderer.worker.networks.build_generator, or set G.init_kwargs")
    return native_checkpoint.save(G, path, family, init_kwargs, metadata)


# --- Summary -----------------------------------------------------------------------------------

def _fp16_layers(G: nn.Module) -> int:
    """Synthesis layers (StyleGAN3) or blocks (StyleGAN2) built to run in float16 on CUDA."""
    synthesis = G.synthesis
    parts = synthesis.layers() if hasattr(synthesis, "layers") else synthesis.blocks()
    return sum(bool(getattr(part, "use_fp16", False)) for part in parts)


def model_info(G: nn.Module, path: str | os.PathLike) -> ModelInfo:
    """What the GUI and `info` show about a loaded generator."""
    synthesis_input = getattr(G.synthesis, "input", None)
    provenance = getattr(G, "provenance", None) or Provenance(NATIVE_SOURCE, "network in memory")
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
        source=provenance.source,
        kind=provenance.kind,
        pickle_protocol=provenance.pickle_protocol,
        fp16_layers=_fp16_layers(G),
    )


def _trained_kimg(metadata: dict[str, str]) -> float | None:
    """The `kimg` a training snapshot records (training.snapshots), if it is a readable number."""
    try:
        kimg = float(metadata["kimg"])
    except (KeyError, TypeError, ValueError):
        return None
    return kimg if math.isfinite(kimg) and kimg >= 0 else None
