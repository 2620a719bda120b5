"""Reading official network pickles safely: nothing in the file is ever executed.

The official code reduces every network object to `_reconstruct_persistent_obj(meta)`, where
`meta` carries the class name, the object's `__dict__` (tensors, child objects, constructor
arguments) and `module_src`, the source of the module that defined the class, which the
official loader executes. Here the unpickler resolves only the handful of globals such files
use (see NETWORK_NOTES.md), each to a small function of ours that checks its arguments, and
`_reconstruct_persistent_obj` returns an inert `PersistentObject` record of the meta dict.
Turning a record into a working network is `renderer.worker.models`' job.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct, scalar as _np_scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct, scalar as _np_scalar


class ModelLoadError(Exception):
    """A model file could not be loaded; the message names the file, the problem and what to do."""


class RefusedPickle(Exception):
    """Raised inside the unpickler when the stream asks for something not allowed; the loader
    turns it into a ModelLoadError naming the file."""


class NotPickleData(Exception):
    """The stream is not pickle data at all (an unknown opcode)."""


class EasyDict(dict):
    """Stands for `dnnlib.util.EasyDict` (a dict of keyword arguments) in official pickles."""


@dataclass(eq=False)
class PersistentObject:
    """One official network object as data: its class name, its `__dict__`, and a guess at the
    family from its source text. Never instantiated and its source never run."""

    class_name: str
    state: dict = field(repr=False)
    source_family: str | None = None   # 'stylegan3' / 'stylegan2' from module_src text; a hint only
    version: int | None = None

    @property
    def children(self) -> dict[str, "PersistentObject"]:
        modules = self.state.get("_modules") or {}
        return {name: obj for name, obj in modules.items() if isinstance(obj, PersistentObject)}

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The state dict of this object and its children, named by module path as
        `nn.Module.state_dict()` names them (non-persistent buffers left out)."""
        out: dict[str, torch.Tensor] = {}
        skip = set(self.state.get("_non_persistent_buffers_set") or ())
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if isinstance(value, torch.Tensor) and name not in skip:
                    out[prefix + name] = value
        for name, child in self.children.items():
            out.update(child.tensors(f"{prefix}{name}."))
        return out


def _source_family(module_src: Any) -> str | None:
    if not isinstance(module_src, str):
        return None
    if re.search(r"^class SynthesisInput\b", module_src, re.MULTILINE):
        return "stylegan3"
    if re.search(r"^class SynthesisBlock\b", module_src, re.MULTILINE):
        return "stylegan2"
    return None


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    """What `torch_utils.persistence._reconstruct_persistent_obj` resolves to: a record of `meta`."""
    if not isinstance(meta, dict):
        raise RefusedPickle(f"a persistent object's description is a {type(meta).__name__}, not a dict")
    if meta.get("type", "class") != "class":
        raise RefusedPickle(f"persistent object of type {meta.get('type')!r}; only 'class' objects are supported")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise RefusedPickle("a persistent object lacks its class_name or state")
    version = meta.get("version")
    return PersistentObject(
        class_name=class_name,
        state=state,
        source_family=_source_family(meta.get("module_src")),
        version=version if isinstance(version, int) else None,
    )


# --- Tensors -----------------------------------------------------------------------------------

_LEGACY_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
}


class _StorageHeaderReader(pickle.Unpickler):
    """Reads only the header pickles of a legacy torch storage blob, to learn the declared size."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _LEGACY_STORAGE_DTYPES:
            return name
        raise RefusedPickle(f"tensor data refers to {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        return pid


def _check_storage_size(blob: bytes) -> None:
    """Refuse a legacy storage blob that declares more data than it holds, before torch allocates it."""
    if blob[:2] == b"PK":  # zip-format blob: torch checks sizes against the archive entries
        return
    f = io.BytesIO(blob)
    reader = _StorageHeaderReader(f)
    for _ in range(3):  # magic number, protocol version, system info
        reader.load()
    pid = reader.load()
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and pid[1] in _LEGACY_STORAGE_DTYPES):
        raise RefusedPickle("tensor data in an unrecognised layout")
    numel = pid[4]
    itemsize = torch.empty((), dtype=_LEGACY_STORAGE_DTYPES[pid[1]]).element_size()
    if not isinstance(numel, int) or numel < 0 or numel * itemsize > len(blob):
        raise RefusedPickle(f"a tensor declares {numel} elements but its data holds only {len(blob)} bytes")


def _load_storage(blob: Any) -> torch.storage.TypedStorage:
    """`torch.storage._load_from_bytes`: a tensor storage, read with torch's weights-only loader."""
    if not isinstance(blob, (bytes, bytearray)):
        raise RefusedPickle(f"tensor storage given as {type(blob).__name__}, not bytes")
    _check_storage_size(bytes(blob))
    storage = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.storage.TypedStorage):
        raise RefusedPickle(f"tensor storage decodes to a {type(storage).__name__}")
    return storage


def _is_int_tuple(value: Any) -> bool:
    return isinstance(value, (tuple, list, torch.Size)) and all(isinstance(v, int) and v >= 0 for v in value)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any,
                    backward_hooks: Any, metadata: Any = None) -> torch.Tensor:
    """`torch._utils._rebuild_tensor_v2`, with its arguments checked first."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise RefusedPickle(f"a tensor is built on a {type(storage).__name__}, not a storage")
    if not (isinstance(storage_offset, int) and _is_int_tuple(size) and _is_int_tuple(stride) and len(size) == len(stride)):
        raise RefusedPickle("a tensor has a malformed offset, size or stride")
    if backward_hooks:
        raise RefusedPickle("a tensor carries backward hooks")
    if metadata is not None and not isinstance(metadata, dict):
        raise RefusedPickle("a tensor carries malformed metadata")
    itemsize = torch.empty((), dtype=storage.dtype).element_size()
    available = storage._untyped_storage.nbytes() // itemsize
    extent = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if math.prod(size) else 0
    if extent > available:  # torch would silently grow the storage to fit
        raise RefusedPickle(f"a tensor of shape {tuple(size)} reaches past the end of its data "
                            f"({extent} of {available} elements)")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, tuple(size), tuple(stride), bool(requires_grad),
                                           collections.OrderedDict(), metadata)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> torch.nn.Parameter:
    """`torch._utils._rebuild_parameter`."""
    if not isinstance(data, torch.Tensor) or backward_hooks:
        raise RefusedPickle("a parameter is not built from a plain tensor")
    return torch.nn.Parameter(data, requires_grad=bool(requires_grad))


# --- numpy -------------------------------------------------------------------------------------

class _NumpyArrayClass:
    """Stands for `numpy.ndarray` in a stream: only numpy's `_reconstruct` may receive it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RefusedPickle("the stream calls numpy.ndarray directly")


_NDARRAY = _NumpyArrayClass()


def _numpy_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's `_reconstruct(ndarray, (0,), b'b')`: an empty array that BUILD then fills."""
    if subtype is not _NDARRAY or not _is_int_tuple(shape) or math.prod(shape) > 1:
        raise RefusedPickle("a numpy array is reconstructed in an unusual way")
    return _np_reconstruct(np.ndarray, tuple(shape), dtype)


def _numpy_dtype(*args: Any) -> np.dtype:
    if not args or not isinstance(args[0], str):
        raise RefusedPickle("a numpy dtype is described in an unusual way")
    return np.dtype(*args)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype):
        raise RefusedPickle("a numpy scalar without a dtype")
    return _np_scalar(dtype, data) if data is not None else _np_scalar(dtype)


def _make_set(items: Any = ()) -> set:
    """`builtins.set`: protocol 3 pickles (Python 3.7, StyleGAN2-ADA era) spell sets this way."""
    if not isinstance(items, (list, tuple)):
        raise RefusedPickle(f"a set is built from a {type(items).__name__}")
    return set(items)


# --- The unpickler -----------------------------------------------------------------------------

ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): _NDARRAY,
    ("builtins", "set"): _make_set,
}
for _numpy_module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    ALLOWED_GLOBALS[(_numpy_module, "scalar")] = _numpy_scalar
    ALLOWED_GLOBALS[(_numpy_module, "_reconstruct")] = _numpy_reconstruct

_NEWOBJ_CLASSES = (collections.OrderedDict, EasyDict)   # classes the stream may instantiate empty
_BUILD_TYPES = (np.ndarray, np.dtype)                   # objects whose state the stream may set


class _OpcodeTable(dict):
    def __missing__(self, opcode: int) -> Callable:
        raise NotPickleData(f"byte 0x{opcode:02x} is not a pickle opcode")


class _RestrictedUnpickler(pickle._Unpickler):
    """Python's own unpickler with globals limited to ALLOWED_GLOBALS, no persistent ids, and
    object creation / state setting limited to the plain containers those files use."""

    dispatch: dict[int, Callable] = _OpcodeTable(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedPickle(
                f"it refers to {module}.{name}, which a network pickle never needs "
                "(refused: loading it could run code)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("it uses persistent ids, which official network pickles never do")

    def _load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if not any(cls is allowed for allowed in _NEWOBJ_CLASSES) or args:
            raise RefusedPickle(f"it creates an object of {getattr(cls, '__name__', type(cls).__name__)} unexpectedly")
        self.append(cls())

    def _load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        if kwargs:
            raise RefusedPickle("it creates an object with keyword arguments")
        self._load_newobj()

    def _load_build(self) -> None:
        inst = self.stack[-2]
        if not isinstance(inst, _BUILD_TYPES):
            raise RefusedPickle(f"it sets the state of a {type(inst).__name__}")
        pickle._Unpickler.load_build(self)

    def _load_inst_or_obj(self) -> None:
        raise RefusedPickle("it uses the INST/OBJ opcodes, which official network pickles never do")

    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.INST[0]] = _load_inst_or_obj
    dispatch[pickle.OBJ[0]] = _load_inst_or_obj


class _BoundedReader:
    """A file wrapper that never asks the OS for more bytes than the file has left (a hostile length
    field must not make Python allocate it) and notices when the stream ran past the end."""

    def __init__(self, f: io.BufferedReader) -> None:
        self.f = f
        self.size = os.fstat(f.fileno()).st_size
        self.hit_end = False

    def read(self, n: int = -1) -> bytes:
        left = max(self.size - self.f.tell(), 0)
        if n is None or n < 0:
            n = left
        if n > left:
            self.hit_end = True
            n = left
        return self.f.read(n)

    def readline(self) -> bytes:
        line = self.f.readline()
        if not line.endswith(b"\n"):
            self.hit_end = True
        return line


_ZIP_MAGIC = b"PK\x03\x04"


def load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle an official network pickle without executing anything it carries.

    Persistent network objects come back as `PersistentObject` records. Every failure is a
    ModelLoadError naming the file, the problem and what to do.
    """
    path = Path(path)
    truncated = (f"{path}: the file ends early (truncated, or still being written); "
                 "wait until it is complete, or copy or download it again")
    reader = None
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if not head:
                raise ModelLoadError(f"{path}: the file is empty; it may still be being written, or the copy failed")
            if head == _ZIP_MAGIC:
                raise ModelLoadError(
                    f"{path}: this is a zip archive (e.g. a torch.save checkpoint), not an official network "
                    "pickle; load a training snapshot network-snapshot-*.pkl, a released model .pkl, or a "
                    ".safetensors file written by `visualizer.py convert`"
                )
            f.seek(0)
            reader = _BoundedReader(f)
            content = _RestrictedUnpickler(reader).load()
        if reader.hit_end:  # a length field pointed past the end of the file
            raise ModelLoadError(truncated)
        return content
    except ModelLoadError:
        raise
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read the file ({e.strerror or e})") from None
    except RefusedPickle as e:
        raise ModelLoadError(f"{path}: refused to load: {e}. Only official StyleGAN3/StyleGAN2 network "
                             "pickles are supported") from None
    except MemoryError:
        raise ModelLoadError(f"{path}: refused to load: the file asks for more memory than is available") from None
    except Exception as e:  # anything a malformed stream can raise inside pickle, numpy or torch
        if reader is not None and reader.hit_end:
            raise ModelLoadError(truncated) from None
        if isinstance(e, NotPickleData):
            raise ModelLoadError(f"{path}: not a network pickle ({e}); expected an official StyleGAN3/StyleGAN2 "
                                 ".pkl or a .safetensors file written by `visualizer.py convert`") from None
        raise ModelLoadError(f"{path}: not a network pickle, or a corrupted one ({type(e).__name__}: {str(e)[:200]}); "
                             "expected an official StyleGAN3/StyleGAN2 .pkl or a .safetensors file written by "
                             "`visualizer.py convert`") from None
