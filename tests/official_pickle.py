"""Test helper: writes pickles in the official snapshot layout from our own networks, and hostile
pickles, with our own pickler.

Every network object becomes a REDUCE of `torch_utils.persistence._reconstruct_persistent_obj`
with one meta dict (type, version, module_src, class_name, state), as the official training code
writes them; tensors pickle the way torch pickles them; `dnnlib.util.EasyDict` and any other
global can be named in the stream without that module existing here (`GlobalName`).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

OFFICIAL_VERSION = 6
DEFAULT_MODULE_SRC = "# module source as the official code would store it; never executed by our loader\n"


@dataclass(frozen=True)
class GlobalName:
    """A global written into the stream by module and name, without importing it."""

    module: str
    name: str

    def __call__(self, *args: Any) -> Any:  # pickle insists that REDUCE's callable be callable
        raise RuntimeError("a GlobalName only names a global in a pickle stream")


@dataclass
class Call:
    """Pickles as REDUCE: `func(*args)` at load time, then BUILD with `state` if it is not None."""

    func: "GlobalName | Call"
    args: tuple = ()
    state: Any = None

    def __call__(self, *args: Any) -> Any:  # so that a Call can itself be the callable of a Call
        raise RuntimeError("a Call only describes a call in a pickle stream")


class EasyDictValue(dict):
    """Pickles as a `dnnlib.util.EasyDict` (NEWOBJ, then its items), as training kwargs are."""


@dataclass(eq=False)
class TFNetworkValue:
    """Pickles as a legacy `dnnlib.tflib.network.Network`: NEWOBJ, then BUILD with its state dict."""

    state: dict


@dataclass(eq=False)
class Persistent:
    """A network object as the official persistence module pickles it."""

    class_name: str
    state: dict = field(repr=False)
    module_src: str | None = DEFAULT_MODULE_SRC
    version: int = OFFICIAL_VERSION
    kind: str = "class"

    def meta(self) -> dict:
        meta = {"type": self.kind, "version": self.version, "class_name": self.class_name, "state": self.state}
        if self.module_src is not None:
            meta["module_src"] = self.module_src
        return meta

    def child(self, path: str) -> "Persistent":
        obj = self
        for name in path.split("."):
            obj = obj.state["_modules"][name]
        return obj


RECONSTRUCT = GlobalName("torch_utils.persistence", "_reconstruct_persistent_obj")
EASYDICT = GlobalName("dnnlib.util", "EasyDict")
TF_NETWORK = GlobalName("dnnlib.tflib.network", "Network")


def _hyperparameter(value: Any) -> Any:
    """Plain attribute values as the official networks hold them (numpy floats and arrays)."""
    if isinstance(value, float):
        return np.float64(value)
    if isinstance(value, tuple) and value and all(isinstance(v, (int, float)) for v in value):
        return np.asarray(value)
    return value


def _plain_data(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, np.generic, np.ndarray)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_data(v) for k, v in value.items())
    return False


def _easydict(value: Any) -> Any:
    if isinstance(value, dict):
        return EasyDictValue({k: _easydict(v) for k, v in value.items()})
    return value


def to_persistent(module: nn.Module, module_src: str | None = DEFAULT_MODULE_SRC,
                  init_kwargs: dict | None = None) -> Persistent:
    """`module` and its children as official persistent objects. Hyperparameters that are plain data
    are kept (floats as numpy floats); the top object records `init_kwargs` (default: its own
    `init_kwargs`) as an EasyDict."""
    state: dict[str, Any] = {}
    for name, value in module.__dict__.items():
        if name in ("_parameters", "_buffers"):
            state[name] = collections.OrderedDict(value)
        elif name == "_modules":
            state[name] = collections.OrderedDict(
                (n, to_persistent(c, module_src, init_kwargs={}) if c is not None else None) for n, c in value.items()
            )
        elif name == "_non_persistent_buffers_set":
            state[name] = set(value)
        elif name == "init_kwargs":
            continue
        elif name.startswith("_") and isinstance(value, collections.OrderedDict) and not value:
            state[name] = collections.OrderedDict()
        elif _plain_data(value):
            state[name] = _hyperparameter(value)
    kwargs = getattr(module, "init_kwargs", {}) if init_kwargs is None else init_kwargs
    state["_init_args"] = ()
    state["_init_kwargs"] = _easydict(dict(kwargs))
    return Persistent(class_name=type(module).__name__, state=state, module_src=module_src)


def fake_discriminator(img_resolution: int = 64) -> Persistent:
    block = Persistent("DiscriminatorBlock", {
        "_parameters": collections.OrderedDict(weight=nn.Parameter(torch.randn(8, 3, 1, 1))),
        "_buffers": collections.OrderedDict(resample_filter=torch.ones(4, 4) / 16),
        "_modules": collections.OrderedDict(),
        "resolution": img_resolution, "_init_args": (), "_init_kwargs": EasyDictValue(resolution=img_resolution),
    })
    return Persistent("Discriminator", {
        "_parameters": collections.OrderedDict(), "_buffers": collections.OrderedDict(),
        "_modules": collections.OrderedDict([(f"b{img_resolution}", block)]),
        "img_resolution": img_resolution, "_init_args": (),
        "_init_kwargs": EasyDictValue(c_dim=0, img_resolution=img_resolution, img_channels=3,
                                      block_kwargs=EasyDictValue(freeze_layers=0)),
    })


def fake_augment_pipe() -> Persistent:
    return Persistent("AugmentPipe", {
        "_parameters": collections.OrderedDict(),
        "_buffers": collections.OrderedDict(p=torch.tensor(0.25), Hz_geom=torch.randn(12)),
        "_modules": collections.OrderedDict(),
        "xflip": np.float64(1.0), "rotate90": 1, "_init_args": (), "_init_kwargs": EasyDictValue(xflip=1, rotate90=1),
    })


def snapshot(G: nn.Module, G_ema: nn.Module | None = None, module_src: str | None = DEFAULT_MODULE_SRC) -> dict:
    """A training snapshot dict like network-snapshot-NNNNNN.pkl: G, D, G_ema, augment_pipe, training_set_kwargs."""
    res = int(G.img_resolution)
    return {
        "G": to_persistent(G, module_src),
        "D": fake_discriminator(res),
        "G_ema": to_persistent(G_ema if G_ema is not None else G, module_src),
        "augment_pipe": fake_augment_pipe(),
        "training_set_kwargs": EasyDictValue(
            class_name="training.dataset.ImageFolderDataset", path="~/datasets/faces.zip", use_labels=False,
            max_size=1000, xflip=False, resolution=res, random_seed=0,
        ),
    }


class OfficialPickler(pickle._Pickler):
    """Python's pickler, taught to write Persistent objects, EasyDicts and named globals."""

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, GlobalName):
            if self.proto >= 4:
                self.save(obj.module)
                self.save(obj.name)
                self.write(pickle.STACK_GLOBAL)
            else:
                self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
            return
        if type(obj) is EasyDictValue:
            if self._new_object(obj, EASYDICT):
                self._batch_setitems(iter(obj.items()))
            return
        if type(obj) is TFNetworkValue:
            if self._new_object(obj, TF_NETWORK):
                self.save(obj.state)
                self.write(pickle.BUILD)
            return
        super().save(obj, save_persistent_id)

    def _new_object(self, obj: Any, cls: GlobalName) -> bool:
        """NEWOBJ of `cls` without arguments, memoized; False (and a memo reference written) when
        `obj` was written before."""
        if self.memo.get(id(obj)):
            self.write(self.get(self.memo[id(obj)][0]))
            return False
        self.save(cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        return True

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Persistent):
            return (RECONSTRUCT, (obj.meta(),))
        if isinstance(obj, Call):
            return (obj.func, tuple(obj.args), obj.state)
        return NotImplemented


def dumps(obj: Any, protocol: int = 4) -> bytes:
    """`obj` pickled as the official code writes it (protocol 4; Python 3.7 wrote protocol 3)."""
    buf = io.BytesIO()
    OfficialPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def write_official_pickle(obj: Any, path: str | Path, protocol: int = 4) -> Path:
    """Write `obj` (a snapshot dict, a Persistent, or anything with them inside) to `path`."""
    path = Path(path)
    path.write_bytes(dumps(obj, protocol))
    return path


def legacy_storage_blob(dtype_name: str, declared_numel: int, data: bytes) -> bytes:
    """A torch legacy-format storage blob (what `torch.storage._load_from_bytes` receives) that
    declares `declared_numel` elements of torch.<dtype_name> and carries `data`."""
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                                  "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, out, protocol=2)
    main = io.BytesIO()
    pickler = OfficialPickler(main, protocol=2)
    pickler.persistent_id = lambda obj: obj if isinstance(obj, tuple) and obj[:1] == ("storage",) else None
    pickler.dump(("storage", GlobalName("torch", dtype_name), "0", "cpu", declared_numel, None))
    out.write(main.getvalue())
    pickle.dump(["0"], out, protocol=2)
    out.write(struct.pack("<q", declared_numel))
    out.write(data)
    return out.getvalue()


# --- Raw opcode streams, for files no pickler would write -----------------------------------------

def short_str(text: str) -> bytes:
    """SHORT_BINUNICODE: a string of at most 255 bytes."""
    data = text.encode()
    return pickle.SHORT_BINUNICODE + bytes([len(data)]) + data


def stack_global(module: str, name: str) -> bytes:
    """STACK_GLOBAL for module.name (protocol 4 and later)."""
    return short_str(module) + short_str(name) + pickle.STACK_GLOBAL


def code_payloads(marker: Path) -> dict[str, Call]:
    """Named by the global they use, each tries to create `marker` when an ordinary unpickler reads it."""
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": Call(GlobalName("os", "system"), (f"touch '{marker}'",)),
        "posix.system": Call(GlobalName("posix", "system"), (f"touch '{marker}'",)),
        "builtins.eval": Call(GlobalName("builtins", "eval"), (code,)),
        "builtins.exec": Call(GlobalName("builtins", "exec"), (code,)),
        "builtins.open": Call(GlobalName("builtins", "open"), (str(marker), "w")),
        "__builtin__.eval": Call(GlobalName("__builtin__", "eval"), (code,)),   # protocol 2's spelling
        "subprocess.Popen": Call(GlobalName("subprocess", "Popen"), (["touch", str(marker)],)),
        "subprocess.call": Call(GlobalName("subprocess", "call"), (["touch", str(marker)],)),
        "subprocess.run": Call(GlobalName("subprocess", "run"), (["touch", str(marker)],)),
        "builtins.getattr": Call(Call(GlobalName("builtins", "getattr"),
                                      (Call(GlobalName("builtins", "__import__"), ("os",)), "system")),
                                 (f"touch '{marker}'",)),
        "pickle.loads": Call(GlobalName("pickle", "loads"), (dumps(Call(GlobalName("builtins", "exec"), (code,))),)),
        "torch.load": Call(GlobalName("torch", "load"), (str(marker),)),
        "numpy.save": Call(GlobalName("numpy", "save"), (str(marker), np.zeros(1))),
        "torch_utils.persistence.load_pickle": Call(GlobalName("torch_utils.persistence", "load_pickle"), (str(marker),)),
        "copyreg._reconstructor": Call(GlobalName("copyreg", "_reconstructor"),
                                       (GlobalName("builtins", "object"), None, None)),
    }
