"""Reading official network pickles safely: nothing in the file is ever executed.

The official code reduces every network object to `_reconstruct_persistent_obj(meta)`, where
`meta` carries the class name, the object's `__dict__` (tensors, child objects, constructor
arguments) and `module_src`, the source of the module that defined the class, which the
official loader executes. Legacy TensorFlow pickles hold `dnnlib.tflib.network.Network` objects
whose state is plain data. Here the unpickler resolves only the handful of globals such files
use (see NETWORK_NOTES.md), each to a small builder of ours that checks its arguments
(torch_utils.pickle_torch, torch_utils.pickle_numpy); network objects come back as inert
records. Turning a record into a working network is `renderer.worker.models`' job.

Bounds: every opcode counts against MAX_OPERATIONS, every byte of tensor or array data against
the file's size (torch_utils.pickle_limits), and no length field makes Python read past the end.
"""

from __future__ import annotations

import codecs
import collections
import functools
import io
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch_utils import pickle_numpy, pickle_torch
from torch_utils.pickle_limits import MAX_OPERATIONS, DataBudget, NotPickleData, RefusedPickle, UnsupportedFile
from torch_utils.regular_file import NotARegularFile, open_regular

__all__ = ["ModelLoadError", "RefusedPickle", "PersistentObject", "TFNetwork", "PickleContent", "read_pickle",
           "load_pickle", "SUPPORTED_FILES"]

SUPPORTED_FILES = ("network pickles of NVlabs/stylegan3, NVlabs/stylegan2-ada-pytorch and PDillis/stylegan3-fun "
                   "(StyleGAN3 and StyleGAN2 generators), TensorFlow StyleGAN2 / StyleGAN2-ADA pickles, and "
                   ".safetensors files written by `visualizer.py convert`")
MAX_CLASS_NAME = 200


class ModelLoadError(Exception):
    """A model file could not be loaded; the message names the file, the problem and what to do."""


class EasyDict(dict):
    """Stands for `dnnlib.util.EasyDict` (a dict of keyword arguments) in official pickles."""


@dataclass(eq=False)
class PersistentObject:
    """One official network object as data: its class name, its `__dict__`, and a guess at the
    family from its source text. Never instantiated and its source never run. `state` is as the
    file wrote it: renderer.worker.model_records checks it before use."""

    class_name: str
    state: dict = field(repr=False)
    source_family: str | None = None   # 'stylegan3' / 'stylegan2' from module_src text; a hint only
    version: int | None = None


@dataclass(eq=False)
class TFNetwork:
    """A legacy TensorFlow `dnnlib.tflib.network.Network` as data (its pickled state dict:
    version, name, static_kwargs, components, variables, build_func_name, ...). The embedded
    TensorFlow source is never needed."""

    state: dict | None = field(default=None, repr=False)


@dataclass
class PickleContent:
    """What a pickle holds, and the protocol it was written with."""

    content: Any
    protocol: int


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
    kind = meta.get("type", "class")
    if kind != "class":
        shown = kind if isinstance(kind, str) and len(kind) < 40 else type(kind).__name__
        raise RefusedPickle(f"persistent object of type {shown!r}; only 'class' objects are supported")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict) or len(class_name) > MAX_CLASS_NAME:
        raise RefusedPickle("a persistent object lacks its class_name or state")
    version = meta.get("version")
    return PersistentObject(
        class_name=class_name,
        state=state,
        source_family=_source_family(meta.get("module_src")),
        version=version if type(version) is int else None,
    )


# --- Small builders for the remaining globals ----------------------------------------------------

def _ordered_dict(items: Any = ()) -> collections.OrderedDict:
    """`collections.OrderedDict()`; pickles fill it with SETITEMS, protocol 2 may pass [key, value] pairs."""
    if items == ():
        return collections.OrderedDict()
    if not isinstance(items, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in items):
        raise RefusedPickle("an OrderedDict is built in an unusual way")
    return collections.OrderedDict(items)


def _make_set(items: Any = ()) -> set:
    """`builtins.set` / `__builtin__.set`: protocols 2 and 3 spell sets as a call on a list."""
    if items == ():
        return set()
    if not isinstance(items, list):
        raise RefusedPickle(f"a set is built from a {type(items).__name__}")
    try:
        return set(items)
    except TypeError:
        raise RefusedPickle("a set holds a value that cannot be in a set") from None


def _encode_latin1(text: Any, encoding: Any = None, budget: DataBudget | None = None) -> bytes:
    """`_codecs.encode(text, 'latin1')`: how protocol 2 writes bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedPickle("_codecs.encode is used other than for bytes in latin-1")
    if budget is not None:
        budget.charge(len(text), "a byte string")
    try:
        return codecs.encode(text, "latin1")
    except UnicodeEncodeError:
        raise RefusedPickle("_codecs.encode is given text that is not latin-1 bytes") from None


def _refuse_unsupported(module: str, name: str) -> None:
    """Globals that identify a known file of another kind, named in a sentence of their own."""
    if module == "dill" or module.startswith("dill."):
        raise UnsupportedFile(
            f"it was saved with dill (it refers to {module}.{name}), as StyleGAN-XL and other projects save their "
            f"networks, and holds network code of another architecture; this tool reads {SUPPORTED_FILES}")
    if module.startswith("torch.nn.modules."):
        raise UnsupportedFile(
            f"it holds whole torch modules ({module}.{name}), as StyleGAN-XL pickles do, rather than the official "
            f"persistence records of StyleGAN2/StyleGAN3 generators; this tool reads {SUPPORTED_FILES}")


# --- The unpickler -------------------------------------------------------------------------------

# (module, name) -> name of the builder method of _Builders that the global resolves to.
ALLOWED_GLOBALS: dict[tuple[str, str], str] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): "persistent_object",
    ("collections", "OrderedDict"): "ordered_dict",
    ("dnnlib.util", "EasyDict"): "easydict",
    ("dnnlib.tflib.network", "Network"): "tf_network",
    ("torch._utils", "_rebuild_parameter"): "parameter",
    ("torch._utils", "_rebuild_tensor_v2"): "tensor",
    ("torch.storage", "_load_from_bytes"): "storage",
    ("numpy", "dtype"): "dtype",
    ("numpy", "ndarray"): "ndarray",
    ("builtins", "set"): "set",
    ("__builtin__", "set"): "set",
    ("_codecs", "encode"): "encode",
}
for _numpy in ("numpy.core", "numpy._core"):
    ALLOWED_GLOBALS[(f"{_numpy}.multiarray", "scalar")] = "scalar"
    ALLOWED_GLOBALS[(f"{_numpy}.multiarray", "_reconstruct")] = "reconstruct"
    ALLOWED_GLOBALS[(f"{_numpy}.numeric", "_frombuffer")] = "frombuffer"


class _Builders:
    """What the allowed globals resolve to for one stream (the ones that allocate share its budget)."""

    def __init__(self, budget: DataBudget) -> None:
        self.persistent_object = _reconstruct_persistent_obj
        self.ordered_dict = _ordered_dict
        self.easydict = EasyDict
        self.tf_network = TFNetwork
        self.parameter = pickle_torch.rebuild_parameter
        self.tensor = pickle_torch.rebuild_tensor
        self.storage = functools.partial(pickle_torch.load_storage, budget=budget)
        self.dtype = pickle_numpy.make_dtype
        self.ndarray = pickle_numpy.NDARRAY
        self.set = _make_set
        self.encode = functools.partial(_encode_latin1, budget=budget)
        self.scalar = pickle_numpy.make_scalar
        self.reconstruct = pickle_numpy.reconstruct_array
        self.frombuffer = functools.partial(pickle_numpy.array_from_buffer, budget=budget)


_NEWOBJ_CLASSES = (collections.OrderedDict, EasyDict, TFNetwork)   # classes the stream may instantiate empty


class _OpcodeTable(dict):
    def __missing__(self, opcode: int) -> Callable:
        raise NotPickleData(f"byte 0x{opcode:02x} is not a pickle opcode")


def _refused_opcode(reason: str) -> Callable:
    def load(self: "_RestrictedUnpickler") -> None:
        raise RefusedPickle(reason)
    return load


class _RestrictedUnpickler(pickle._Unpickler):
    """Python's own unpickler with globals limited to ALLOWED_GLOBALS, no persistent ids or
    out-of-band buffers, object creation limited to plain containers, state setting limited to
    the placeholders of pickle_numpy and TensorFlow network records, and every opcode counted."""

    dispatch: dict[int, Callable] = _OpcodeTable(pickle._Unpickler.dispatch)

    def __init__(self, file: Any, budget: DataBudget) -> None:
        super().__init__(file)
        self.builders = _Builders(budget)
        self.budget = budget
        self.operations = 0

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in ALLOWED_GLOBALS:
            return getattr(self.builders, ALLOWED_GLOBALS[key])
        _refuse_unsupported(module, name)
        raise RefusedPickle(f"it refers to {module}.{name}, which a network pickle never needs "
                            "(refused: loading it could run code)")

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
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, pickle_numpy.DtypeSpec):
            self._finish(inst, pickle_numpy.finish_dtype(inst, state))
        elif isinstance(inst, pickle_numpy.PendingArray):
            self._finish(inst, pickle_numpy.finish_array(inst, state, self.budget))
        elif isinstance(inst, TFNetwork) and inst.state is None and isinstance(state, dict):
            inst.state = state
        else:
            raise RefusedPickle(f"it sets the state of a {type(inst).__name__}")

    def _finish(self, placeholder: pickle_numpy.Placeholder, value: Any) -> None:
        """Put the finished value where the placeholder was: on the stack and in the memo."""
        self.stack[-1] = value
        for key in placeholder.memo_keys:
            if self.memo.get(key) is placeholder:
                self.memo[key] = value

    def _put(self, key: Any) -> None:
        """Store the top of the stack in the memo, noting where a placeholder went."""
        top = self.stack[-1]
        if isinstance(top, pickle_numpy.Placeholder):
            top.memo_keys.append(key)
        self.memo[key] = top

    def _load_memoize(self) -> None:
        self._put(len(self.memo))

    def _load_binput(self) -> None:
        self._put(self.read(1)[0])

    def _load_long_binput(self) -> None:
        self._put(int.from_bytes(self.read(4), "little"))

    def _load_put(self) -> None:
        self._put(int(self.readline()[:-1]))

    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.MEMOIZE[0]] = _load_memoize
    dispatch[pickle.BINPUT[0]] = _load_binput
    dispatch[pickle.LONG_BINPUT[0]] = _load_long_binput
    dispatch[pickle.PUT[0]] = _load_put
    for _opcode in (pickle.INST, pickle.OBJ):
        dispatch[_opcode[0]] = _refused_opcode("it uses the INST/OBJ opcodes, which official network pickles never do")
    for _opcode in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_opcode[0]] = _refused_opcode("it uses extension codes, which official network pickles never do")
    for _opcode in (pickle.NEXT_BUFFER, pickle.READONLY_BUFFER):
        dispatch[_opcode[0]] = _refused_opcode("it refers to out-of-band buffers, which a file cannot carry")


def _counted(load_op: Callable) -> Callable:
    def load(self: _RestrictedUnpickler) -> None:
        self.operations += 1
        if self.operations > MAX_OPERATIONS:
            raise RefusedPickle(f"it holds more than {MAX_OPERATIONS:,} pickle operations, far more than any "
                                "network pickle (a damaged or crafted file)")
        load_op(self)
    return load


_RestrictedUnpickler.dispatch = _OpcodeTable({code: _counted(op) for code, op in _RestrictedUnpickler.dispatch.items()})


class _BoundedReader:
    """A file wrapper that never asks the OS for more bytes than the file has left (a hostile length
    field must not make Python allocate it) and notices when the stream ran past the end."""

    def __init__(self, f: io.BufferedReader, size: int) -> None:
        self.f = f
        self.size = size
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
_EXPECTED = ("expected an official StyleGAN3/StyleGAN2 .pkl or a .safetensors file written by "
             "`visualizer.py convert`")


def read_pickle(path: str | os.PathLike) -> PickleContent:
    """Unpickle an official network pickle without executing anything it carries.

    Network objects come back as `PersistentObject` / `TFNetwork` records. Every failure is a
    ModelLoadError naming the file, the problem and what to do.
    """
    path = Path(path)
    truncated = (f"{path}: the file ends early (truncated, or still being written); "
                 "wait until it is complete, or copy or download it again")
    reader = None
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
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
            reader = _BoundedReader(f, size)
            unpickler = _RestrictedUnpickler(reader, DataBudget(size))
            content = unpickler.load()
        if reader.hit_end:  # a length field pointed past the end of the file
            raise ModelLoadError(truncated)
        return PickleContent(content=content, protocol=int(unpickler.proto))
    except ModelLoadError:
        raise
    except NotARegularFile as e:
        raise ModelLoadError(f"{e}; give a model file") from None
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read the file ({e.strerror or e})") from None
    except UnsupportedFile as e:
        raise ModelLoadError(f"{path}: {e}") from None
    except RefusedPickle as e:
        raise ModelLoadError(f"{path}: refused to load: {e}. Only StyleGAN3 and StyleGAN2 network pickles "
                             "(official and of compatible projects) are supported") from None
    except MemoryError:
        raise ModelLoadError(f"{path}: refused to load: the file asks for more memory than is available") from None
    except Exception as e:  # anything a malformed stream can raise inside pickle, numpy or torch
        if reader is not None and reader.hit_end:
            raise ModelLoadError(truncated) from None
        if isinstance(e, NotPickleData):
            raise ModelLoadError(f"{path}: not a network pickle ({e}); {_EXPECTED}") from None
        raise ModelLoadError(f"{path}: not a network pickle, or a corrupted one ({type(e).__name__}: "
                             f"{_one_line(str(e))}); {_EXPECTED}") from None


def load_pickle(path: str | os.PathLike) -> Any:
    """The content of `read_pickle(path)`."""
    return read_pickle(path).content


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
