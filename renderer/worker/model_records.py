"""What an unpickled network file holds, checked: where its generator is, and that generator's
records as a module tree of class names, tensors and constructor arguments.

The records come from torch_utils.persistence exactly as the file wrote them; nothing about their
shape can be assumed (a child module given as a list, a tensor name that is a number, the same
module in two places). Every such file gets MalformedFile with a phrase naming the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from torch_utils.persistence import SUPPORTED_FILES, PersistentObject, TFNetwork
from torch_utils.plain_data import NotPlainData, plain_value

MAX_MODULES = 10_000
MAX_DEPTH = 32
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
# The official Generator's positional parameters (stylegan2-ada-pytorch adds synthesis_kwargs).
GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")

SNAPSHOT = "training snapshot"
BARE_GENERATOR = "bare generator"
TENSORFLOW = "TensorFlow network, converted on load"


class MalformedFile(ValueError):
    """The file's records cannot be a supported generator; the message is a phrase that completes
    "<file>: ..." and says what to do."""


@dataclass
class ModuleRecord:
    """One network object of the file, checked: own tensors (parameters and persistent buffers),
    child objects, and the constructor arguments as recorded."""

    class_name: str
    tensors: dict[str, torch.Tensor]
    children: dict[str, "ModuleRecord"]
    init_args: tuple
    init_kwargs: dict
    source_family: str | None

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Tensors of this object and its children, named as `nn.Module.state_dict()` names them."""
        out = {prefix + name: t for name, t in self.tensors.items()}
        for name, child in self.children.items():
            out.update(child.state_dict(f"{prefix}{name}."))
        return out


@dataclass
class GeneratorInFile:
    kind: str                                   # SNAPSHOT, BARE_GENERATOR or TENSORFLOW
    record: PersistentObject | TFNetwork


def find_generator(content: Any) -> GeneratorInFile:
    """The generator to show: G_ema of a snapshot, a bare generator, or Gs of a TensorFlow (G, D, Gs)."""
    if isinstance(content, PersistentObject):
        if "Generator" not in content.class_name:
            raise MalformedFile(f"the pickle holds a {_name(content.class_name)}, not a generator; open a training "
                                "snapshot or a generator pickle")
        return GeneratorInFile(BARE_GENERATOR, content)
    if isinstance(content, dict):
        G_ema = content.get("G_ema")
        if isinstance(G_ema, PersistentObject):
            return GeneratorInFile(SNAPSHOT, G_ema)
        keys = ", ".join(repr(k) if isinstance(k, str) and len(k) < 40 else type(k).__name__
                         for k in list(content)[:10]) or "none"
        raise MalformedFile(f"a pickled dict without a 'G_ema' network (keys: {keys}); expected a training snapshot "
                            "(G, D, G_ema, ...) or a pickled generator")
    if isinstance(content, TFNetwork):
        return GeneratorInFile(TENSORFLOW, content)
    if isinstance(content, (tuple, list)) and len(content) == 3 and all(isinstance(n, TFNetwork) for n in content):
        return GeneratorInFile(TENSORFLOW, content[2])   # (G, D, Gs): Gs is the moving average to show
    raise MalformedFile(f"the pickle holds a Python {type(content).__name__}, not a network; expected a training "
                        "snapshot (G, D, G_ema, ...) or a pickled generator")


def _name(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _as_dict(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedFile(f"{what} is a {type(value).__name__} instead of a dict; the file is damaged or was not "
                            "written by a supported project")
    return value


def _checked_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name) if isinstance(name, (str, int)) and len(repr(name)) < 40 else type(name).__name__
        raise MalformedFile(f"{what} is named {shown}, which no network module or tensor is; the file is damaged")
    return name


def module_tree(obj: PersistentObject) -> ModuleRecord:
    """`obj` and its children as checked ModuleRecords (at most MAX_MODULES objects, MAX_DEPTH deep,
    each object in one place only)."""
    seen: set[int] = set()

    def visit(o: PersistentObject, path: str, depth: int) -> ModuleRecord:
        where = f"module {path or '(top)'}"
        if depth > MAX_DEPTH:
            raise MalformedFile(f"its network modules nest more than {MAX_DEPTH} levels deep; the file is damaged "
                                "or crafted")
        if id(o) in seen:
            raise MalformedFile(f"the network object at {path} appears twice in the module tree; the file is damaged "
                                "or crafted")
        seen.add(id(o))
        if len(seen) > MAX_MODULES:
            raise MalformedFile(f"it holds more than {MAX_MODULES:,} network modules; the file is damaged or crafted")
        state = o.state
        if not all(isinstance(k, str) for k in state):
            raise MalformedFile(f"the state of {where} has keys that are not names; the file is damaged")
        skip = state.get("_non_persistent_buffers_set") or ()
        if not isinstance(skip, (set, frozenset, list, tuple)) or not all(isinstance(s, str) for s in skip):
            raise MalformedFile(f"the non-persistent buffer list of {where} is malformed; the file is damaged")
        tensors: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, value in _as_dict(state.get(group), f"{group} of {where}").items():
                name = _checked_name(name, f"a tensor of {where}")
                if value is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise MalformedFile(f"{path + '.' if path else ''}{name} is a {type(value).__name__}, not a "
                                        "tensor; the file is damaged")
                tensors[name] = value
        children: dict[str, ModuleRecord] = {}
        for name, child in _as_dict(state.get("_modules"), f"_modules of {where}").items():
            name = _checked_name(name, f"a child of {where}")
            if child is None:
                continue
            child_path = f"{path}.{name}" if path else name
            if not isinstance(child, PersistentObject):
                raise MalformedFile(f"child module {child_path} is a {type(child).__name__}, not a network record; "
                                    "the file is damaged or holds code of another architecture")
            children[name] = visit(child, child_path, depth + 1)
        init_args = state.get("_init_args") or ()
        if not isinstance(init_args, (list, tuple)):
            raise MalformedFile(f"the positional constructor arguments of {where} are of type "
                                f"{type(init_args).__name__}, not a list; the file is damaged")
        init_kwargs = _as_dict(state.get("_init_kwargs"), f"_init_kwargs of {where}")
        return ModuleRecord(o.class_name, tensors, children, tuple(init_args), init_kwargs, o.source_family)

    return visit(obj, "", 0)


def family_of(record: ModuleRecord) -> str:
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
    described = _name(record.class_name)
    if synthesis is not None:
        children = ", ".join(f"{n} ({_name(c.class_name)})" for n, c in list(synthesis.children.items())[:6])
        described += f" with synthesis {_name(synthesis.class_name)} [{children}]"
    raise MalformedFile(f"it holds a generator of an unknown architecture ({described}); this tool reads "
                        f"{SUPPORTED_FILES}")


def constructor_arguments(record: ModuleRecord, names: tuple[str, ...] = GENERATOR_ARGS,
                          what: str = "generator") -> dict[str, Any]:
    """The constructor arguments of the network `record` (a generator, or `what` with the official
    positional parameters `names`) as plain data, positional ones named."""
    args, kwargs = record.init_args, dict(record.init_kwargs)
    if len(args) > len(names):
        raise MalformedFile(f"the {what} records {len(args)} positional constructor arguments; the official "
                            f"{record.class_name[:60]} takes at most {len(names)}")
    for name, value in zip(names, args):
        if name in kwargs:
            raise MalformedFile(f"the {what} records {name} both by position and by name; the file is damaged")
        kwargs[name] = value
    if not kwargs:
        raise MalformedFile(f"the {what} does not record its constructor arguments (_init_kwargs); it was not "
                            "written by the official training code")
    try:
        return plain_value(kwargs)
    except NotPlainData as e:
        raise MalformedFile(f"the {what}'s constructor arguments are unreadable (they hold {e}); the file is "
                            "damaged or crafted") from None
