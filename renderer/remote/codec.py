"""Typed messages: a registered dataclass to MessagePack bytes and back, checked against its type
hints on the way in.

A message is the MessagePack array [tag, {field: value, ...}]; the tag is the name of a registered
class, looked up in the registry (never imported). Decoding accepts only registered tags (and, where
the caller says so, only some of them), only the fields the class declares, values of the declared
types within the size limits (`Limits`), and numpy arrays as [dtype, shape, bytes] with the dtype
from ARRAY_DTYPES and as many bytes as dtype and shape call for. A float field takes any float,
NaN and infinities included; an int, bool or str field takes nothing else. Every refusal is a
MessageError whose text names the field. Nothing here can run code: there is no pickle, and a
class is built only through its own constructor from checked values.

Registering a class is one line, `MESSAGES.register(MyResult)` (renderer/remote/messages.py);
dataclasses it holds are registered with it. A field's limits can be raised where one is declared,
`frames: Annotated[tuple[RenderArgs, ...], Limits(items=100_000)]`, or at registration,
`register(ClipSpec, frames=Limits(items=100_000))`. A field typed `AnyMessage` holds an instance
of any registered class. A field the contract declares as `object` (a job's result, say) is given
its type at registration: `register(JobDone, value=JobResult | None)`. A union of registered
classes travels as the instance itself; a union that mixes them with sequences or plain values
travels as [alternative's index, value].
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import msgspec
import numpy as np
from msgspec import Meta, Raw

PROTOCOL_VERSION = 1

ARRAY_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64",
                "float16", "float32", "float64")
MAX_TAG = 128                 # characters of a class or field name
MAX_FIELDS = 256              # fields of one class
MAX_DIM = 1 << 40             # elements along one array axis


class MessageError(ValueError):
    """A message that cannot be read (or written): malformed, of an unknown type, or over a limit."""


@dataclass(frozen=True)
class Limits:
    """Size limits of one field (and of everything inside it)."""

    text: int = 64 * 1024                 # characters of a str
    items: int = 65_536                   # elements of a tuple or list
    array_bytes: int = 64 * 1024 * 1024   # bytes of a numpy array's data, or of a bytes field
    array_dims: int = 8                   # axes of a numpy array


class _AnyMessageMarker:
    def __repr__(self) -> str:
        return "any registered message"


_ANY = _AnyMessageMarker()
AnyMessage = Annotated[object, _ANY]      # a field holding an instance of any registered class


# -----------------------------------------------------------------------------------------------
# What each field's type compiles to. `decode` takes the field's MessagePack bytes (a msgspec.Raw
# view into the message) and returns the checked value; `encode` returns what msgspec writes.


class _Node:
    def decode(self, raw: Raw, path: str) -> Any:
        raise NotImplementedError

    def encode(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _decoder(spec: Any) -> msgspec.msgpack.Decoder:
    return msgspec.msgpack.Decoder(spec, strict=True)


def _refusal(path: str, error: Exception) -> MessageError:
    text = str(error).replace(" - at `$`", "")
    return MessageError(f"{path}: {text}")


def _run(decoder: msgspec.msgpack.Decoder, raw: Raw, path: str) -> Any:
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as e:
        raise _refusal(path, e) from None


class _Leaf(_Node):
    """A type msgspec checks by itself: numbers, bool, str, bytes, None, Literal, tuples and unions of them."""

    def __init__(self, spec: Any, description: str) -> None:
        self._decoder = _decoder(spec)
        self._description = description

    def decode(self, raw: Raw, path: str) -> Any:
        return _run(self._decoder, raw, path)

    def encode(self, value: Any, path: str) -> Any:
        return value

    def describe(self) -> str:
        return self._description


class _Array(_Node):
    def __init__(self, limits: Limits) -> None:
        shape = Annotated[tuple[Annotated[int, Meta(ge=0, le=MAX_DIM)], ...], Meta(max_length=limits.array_dims)]
        data = Annotated[bytearray, Meta(max_length=limits.array_bytes)]
        self._decoder = _decoder(tuple[Literal[ARRAY_DTYPES], shape, data])  # type: ignore[valid-type]
        self._limits = limits

    def decode(self, raw: Raw, path: str) -> np.ndarray:
        dtype_name, shape, data = _run(self._decoder, raw, path)
        dtype = np.dtype(dtype_name).newbyteorder("<")
        expected = dtype.itemsize
        for n in shape:
            expected *= n
        if expected != len(data):
            raise MessageError(f"{path}: an array of {dtype_name} {list(shape)} needs {expected} bytes, "
                               f"the message holds {len(data)}")
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, np.ndarray):
            raise MessageError(f"{path}: expected a numpy array, got {type(value).__name__}")
        if value.dtype.name not in ARRAY_DTYPES:
            raise MessageError(f"{path}: arrays of {value.dtype} cannot travel; use one of {', '.join(ARRAY_DTYPES)}")
        a = np.ascontiguousarray(value)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        return [a.dtype.name, list(a.shape), memoryview(a.reshape(-1)).cast("B")]

    def describe(self) -> str:
        return f"ndarray[dims<={self._limits.array_dims},bytes<={self._limits.array_bytes}]"


_NIL = 0xC0                   # MessagePack nil
_ENVELOPE = _decoder(tuple[Annotated[str, Meta(max_length=MAX_TAG)],
                           Annotated[dict[Annotated[str, Meta(max_length=MAX_TAG)], Raw], Meta(max_length=MAX_FIELDS)]])


class _Optional(_Node):
    def __init__(self, inner: _Node) -> None:
        self._inner = inner

    def decode(self, raw: Raw, path: str) -> Any:
        view = memoryview(raw)
        if len(view) == 1 and view[0] == _NIL:
            return None
        return self._inner.decode(raw, path)

    def encode(self, value: Any, path: str) -> Any:
        return None if value is None else self._inner.encode(value, path)

    def describe(self) -> str:
        return f"optional[{self._inner.describe()}]"


class _Sequence(_Node):
    def __init__(self, inner: _Node, items: int, kind: type) -> None:
        self._decoder = _decoder(Annotated[tuple[Raw, ...], Meta(max_length=items)])
        self._inner, self._items, self._kind = inner, items, kind

    def decode(self, raw: Raw, path: str) -> Any:
        elements = _run(self._decoder, raw, path)
        return self._kind(self._inner.decode(e, f"{path}[{i}]") for i, e in enumerate(elements))

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, (tuple, list)):
            raise MessageError(f"{path}: expected a {self._kind.__name__}, got {type(value).__name__}")
        return [self._inner.encode(e, f"{path}[{i}]") for i, e in enumerate(value)]

    def describe(self) -> str:
        return f"{self._kind.__name__}[{self._inner.describe()},...<={self._items}]"


class _FixedTuple(_Node):
    def __init__(self, inners: tuple[_Node, ...]) -> None:
        self._decoder = _decoder(tuple[tuple(Raw for _ in inners)] if inners else tuple[()])
        self._inners = inners

    def decode(self, raw: Raw, path: str) -> Any:
        elements = _run(self._decoder, raw, path)
        return tuple(node.decode(e, f"{path}[{i}]") for i, (node, e) in enumerate(zip(self._inners, elements)))

    def encode(self, value: Any, path: str) -> Any:
        if not isinstance(value, tuple) or len(value) != len(self._inners):
            raise MessageError(f"{path}: expected a tuple of {len(self._inners)}")
        return [node.encode(e, f"{path}[{i}]") for i, (node, e) in enumerate(zip(self._inners, value))]

    def describe(self) -> str:
        return "tuple[" + ",".join(n.describe() for n in self._inners) + "]"


class _Instance(_Node):
    """An instance of a registered class: one of `tags`, or any registered class if tags is None."""

    def __init__(self, registry: "Registry", tags: frozenset[str] | None) -> None:
        self._registry, self._tags = registry, tags

    def decode(self, raw: Raw, path: str) -> Any:
        return self._registry._decode_instance(raw, self._tags, path)

    def encode(self, value: Any, path: str) -> Any:
        return self._registry._encode_instance(value, self._tags, path)

    def describe(self) -> str:
        return "any" if self._tags is None else "|".join(sorted(self._tags))


class _OneOf(_Node):
    """A value of one of several kinds that MessagePack alone cannot tell apart: [index, value]."""

    def __init__(self, alternatives: tuple[tuple[Any, _Node], ...]) -> None:
        count = Annotated[int, Meta(ge=0, lt=len(alternatives))]
        self._decoder = _decoder(tuple[count, Raw])
        self._alternatives = alternatives

    def decode(self, raw: Raw, path: str) -> Any:
        index, value = _run(self._decoder, raw, path)
        return self._alternatives[index][1].decode(value, path)

    def encode(self, value: Any, path: str) -> Any:
        for index, (hint, node) in enumerate(self._alternatives):
            if _is_instance_of(value, hint):
                try:
                    return [index, node.encode(value, path)]
                except MessageError:
                    continue  # e.g. a tuple of another element type: the next alternative may take it
        raise MessageError(f"{path}: a {type(value).__name__} is none of the kinds this field takes")

    def describe(self) -> str:
        return "oneof[" + ",".join(node.describe() for _, node in self._alternatives) + "]"


def _is_instance_of(value: Any, hint: Any) -> bool:
    """Whether `value` is of the kind `hint` names (for choosing a union's alternative)."""
    if _origin(hint) is Annotated:
        return _is_instance_of(value, typing.get_args(hint)[0])
    if _is_dataclass_type(hint):
        return type(value) is hint
    if _origin(hint) in (tuple, list):
        return isinstance(value, (tuple, list))
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (float, np.floating))
    if hint in (str, bytes) or hint is np.ndarray:
        return isinstance(value, hint)
    return False


_DISTINGUISHABLE = (bool, int, float, str, bytes, np.ndarray)


# -----------------------------------------------------------------------------------------------
# Type hints -> nodes.


def _origin(hint: Any) -> Any:
    return typing.get_origin(hint)


def _is_union(hint: Any) -> bool:
    return _origin(hint) in (Union, types.UnionType)


def _leaf_spec(hint: Any, limits: Limits) -> tuple[Any, str] | None:
    """The msgspec type and a description of `hint` when msgspec can check it alone, else None."""
    if hint is type(None) or hint is None:
        return type(None), "none"
    if hint in (int, float, bool):
        return hint, hint.__name__
    if hint is str:
        return Annotated[str, Meta(max_length=limits.text)], f"str<={limits.text}"
    if hint is bytes:
        return Annotated[bytes, Meta(max_length=limits.array_bytes)], f"bytes<={limits.array_bytes}"
    origin, args = _origin(hint), typing.get_args(hint)
    if origin is Literal:
        return hint, "literal" + repr(args)
    if origin is Annotated:
        return _leaf_spec(args[0], _with_limits(limits, args[1:]))
    if _is_union(hint):
        parts = [_leaf_spec(a, limits) for a in args]
        if any(p is None for p in parts):
            return None
        return Union[tuple(p[0] for p in parts)], "union[" + ",".join(sorted(p[1] for p in parts)) + "]"
    if origin in (tuple, list):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis or origin is list:
            inner = _leaf_spec(args[0], limits)
            if inner is None:
                return None
            return (Annotated[origin[inner[0], ...] if origin is tuple else list[inner[0]], Meta(max_length=limits.items)],
                    f"{origin.__name__}[{inner[1]},...<={limits.items}]")
        parts = [_leaf_spec(a, limits) for a in args]
        if any(p is None for p in parts):
            return None
        return tuple[tuple(p[0] for p in parts)] if parts else tuple[()], "tuple[" + ",".join(p[1] for p in parts) + "]"
    return None


def _with_limits(limits: Limits, extras: tuple[Any, ...]) -> Limits:
    for extra in extras:
        if isinstance(extra, Limits):
            limits = extra
    return limits


def _is_dataclass_type(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


# -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    node: _Node
    required: bool


@dataclass
class _Schema:
    cls: type
    tag: str
    fields: tuple[_Field, ...] = ()


class Registry:
    """The classes that may travel, and how each is checked."""

    def __init__(self) -> None:
        self._by_tag: dict[str, _Schema] = {}
        self._by_class: dict[type, _Schema] = {}
        self._fingerprint: str | None = None
        self._accepted: dict[tuple[type, ...], frozenset[str]] = {}

    def register(self, cls: type, **field_limits: Any) -> type:
        """Let `cls` (a dataclass) travel; returns it, so it also works as a decorator. A keyword names
        a field: a Limits raises its limits; a type gives a field declared `object` its type."""
        if not _is_dataclass_type(cls):
            raise TypeError(f"{cls!r} is not a dataclass; only dataclasses can be registered as messages")
        field_types = {name: hint for name, hint in field_limits.items() if not isinstance(hint, Limits)}
        field_limits = {name: value for name, value in field_limits.items() if isinstance(value, Limits)}
        unknown = (set(field_limits) | set(field_types)) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
        if cls in self._by_class:
            if field_limits or field_types:
                raise TypeError(f"{cls.__name__} is already registered (perhaps inside another class); "
                                "register it with its limits before the classes that hold it")
            return cls
        tag = cls.__name__
        if tag in self._by_tag:
            raise TypeError(f"two message classes are named {tag}: {self._by_tag[tag].cls!r} and {cls!r}")
        schema = _Schema(cls=cls, tag=tag)
        self._by_tag[tag], self._by_class[cls] = schema, schema  # first, so that a class may hold itself
        self._fingerprint = None
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
            for name, hint in field_types.items():
                if hints[name] is not object:
                    raise TypeError(f"{cls.__name__}.{name} is declared {hints[name]!r}; only a field declared "
                                    "`object` is given its type at registration")
                hints[name] = hint
            fields = []
            for f in dataclasses.fields(cls):
                if not f.init:
                    continue
                limits = field_limits.get(f.name, Limits())
                node = self._node(hints[f.name], limits, f"{cls.__name__}.{f.name}")
                required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                fields.append(_Field(f.name, node, required))
            if len(fields) > MAX_FIELDS:
                raise TypeError(f"{cls.__name__} has more than {MAX_FIELDS} fields")
            schema.fields = tuple(fields)
        except BaseException:
            del self._by_tag[tag], self._by_class[cls]
            raise
        return cls

    def _node(self, hint: Any, limits: Limits, where: str) -> _Node:
        if _origin(hint) is Annotated:
            base, *extras = typing.get_args(hint)
            if _ANY in extras:
                return _Instance(self, None)
            return self._node(base, _with_limits(limits, tuple(extras)), where)
        leaf = _leaf_spec(hint, limits)
        if leaf is not None:
            try:
                return _Leaf(*leaf)
            except TypeError as e:
                raise TypeError(f"{where}: msgspec cannot check {hint!r}: {e}") from None
        if hint is np.ndarray or _origin(hint) is np.ndarray:
            return _Array(limits)
        if _is_dataclass_type(hint):
            self.register(hint)
            return _Instance(self, frozenset([self._by_class[hint].tag]))
        if _is_union(hint):
            args = typing.get_args(hint)
            rest = [a for a in args if a is not type(None)]
            optional = len(rest) < len(args)
            if all(_is_dataclass_type(a) for a in rest):
                for a in rest:
                    self.register(a)
                inner: _Node = _Instance(self, frozenset(self._by_class[a].tag for a in rest))
            elif len(rest) == 1:
                inner = self._node(rest[0], limits, where)
            else:
                inner = self._one_of(rest, limits, where)
            return _Optional(inner) if optional else inner
        origin, args = _origin(hint), typing.get_args(hint)
        if origin in (tuple, list):
            if origin is list or len(args) == 2 and args[1] is Ellipsis:
                return _Sequence(self._node(args[0], limits, f"{where}[]"), limits.items, origin)
            return _FixedTuple(tuple(self._node(a, limits, f"{where}[{i}]") for i, a in enumerate(args)))
        raise TypeError(f"{where}: type {hint!r} cannot travel in a message; use int, float, bool, str, bytes, "
                        "tuples, numpy arrays, registered dataclasses, or AnyMessage")

    def _one_of(self, alternatives: list[Any], limits: Limits, where: str) -> _Node:
        for a in alternatives:
            base = typing.get_args(a)[0] if _origin(a) is Annotated else a
            if not (_is_dataclass_type(base) or _origin(base) in (tuple, list) or base in _DISTINGUISHABLE):
                raise TypeError(f"{where}: {base!r} in a union cannot be told apart from the other kinds; "
                                "unions may hold registered classes, tuples, numpy arrays and plain values")
        return _OneOf(tuple((a, self._node(a, limits, f"{where}|{i}")) for i, a in enumerate(alternatives)))

    @property
    def fingerprint(self) -> str:
        """A digest of every registered class's fields, types and limits: both ends must agree."""
        if self._fingerprint is None:
            digest = hashlib.sha256(f"v{PROTOCOL_VERSION}".encode())
            for tag in sorted(self._by_tag):
                fields = ";".join(f"{f.name}{'!' if f.required else '?'}:{f.node.describe()}"
                                  for f in self._by_tag[tag].fields)
                digest.update(f"\n{tag}({fields})".encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def is_registered(self, cls: type) -> bool:
        return cls in self._by_class

    # --- encoding ------------------------------------------------------------------------------

    def encode(self, message: object, check: bool = True) -> bytes:
        """The message's bytes; MessageError if it (or something in it) cannot travel. With `check`, the
        bytes are read back as the other side will read them, so that a message over a limit is refused
        here, by its sender, rather than breaking the link at the other end."""
        tree = self._encode_instance(message, None, "message")
        try:
            data = msgspec.msgpack.encode(tree, enc_hook=_plain_scalar)
        except (TypeError, ValueError, OverflowError) as e:
            raise MessageError(f"{type(message).__name__}: cannot be encoded: {e}") from None
        if check:
            self.decode(data)
        return data

    def _encode_instance(self, value: Any, tags: frozenset[str] | None, path: str) -> list:
        schema = self._by_class.get(type(value))
        if schema is None:
            raise MessageError(f"{path}: {type(value).__name__} is not a registered message class")
        if tags is not None and schema.tag not in tags:
            raise MessageError(f"{path}: a {schema.tag} cannot stand here (expected {' or '.join(sorted(tags))})")
        body = {f.name: f.node.encode(getattr(value, f.name), f"{schema.tag}.{f.name}") for f in schema.fields}
        return [schema.tag, body]

    # --- decoding ------------------------------------------------------------------------------

    def decode(self, data: bytes | bytearray | memoryview, *, accept: tuple[type, ...] | None = None,
               max_bytes: int | None = None) -> Any:
        """The message in `data`, checked; MessageError names what is wrong. `accept` limits the
        outermost class to those given; `max_bytes` refuses a longer message before reading it."""
        if max_bytes is not None and len(data) > max_bytes:
            raise MessageError(f"message of {len(data)} bytes is over the limit of {max_bytes}")
        return self._decode_instance(Raw(data), self._tags_of(accept), "message")

    def _tags_of(self, accept: tuple[type, ...] | None) -> frozenset[str] | None:
        if accept is None:
            return None
        tags = self._accepted.get(accept)
        if tags is None:
            missing = [c.__name__ for c in accept if c not in self._by_class]
            if missing:
                raise TypeError(f"not registered: {', '.join(missing)}")
            tags = self._accepted[accept] = frozenset(self._by_class[c].tag for c in accept)
        return tags

    def _decode_instance(self, raw: Raw, tags: frozenset[str] | None, path: str) -> Any:
        tag, body = _run(_ENVELOPE, raw, path)
        schema = self._by_tag.get(tag)
        if schema is None:
            raise MessageError(f"{path}: unknown message type {tag[:40]!r}")
        if tags is not None and tag not in tags:
            raise MessageError(f"{path}: a {tag} is not expected here (expected {' or '.join(sorted(tags))})")
        extra = set(body) - {f.name for f in schema.fields}
        if extra:
            raise MessageError(f"{tag}: no field {', '.join(repr(n[:40]) for n in sorted(extra))}")
        values = {}
        for f in schema.fields:
            if f.name in body:
                values[f.name] = f.node.decode(body[f.name], f"{tag}.{f.name}")
            elif f.required:
                raise MessageError(f"{tag}: field {f.name!r} is missing")
        try:
            return schema.cls(**values)
        except (TypeError, ValueError) as e:
            raise MessageError(f"{tag}: {e}") from None


def _plain_scalar(value: Any) -> Any:
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    raise TypeError(f"a {type(value).__name__} cannot travel")
