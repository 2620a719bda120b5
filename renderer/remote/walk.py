"""Every instance of one class inside a request (each RenderArgs: a frame's, a job's base, each
keyframe's; each DirectionSource), changed by one function: the server resolves their paths under its
root, the GUI's side puts W files' bytes in place of their paths."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

from renderer.protocol import RenderArgs

T = TypeVar("T")


def replace_instances(message: Any, cls: type[T], change: Callable[[T], T]) -> Any:
    """`message` with change(x) in place of every instance x of `cls` in it (the same object where none
    changed)."""
    if isinstance(message, cls):
        return change(message)
    if isinstance(message, tuple):
        replaced = tuple(replace_instances(v, cls, change) for v in message)
        return message if all(a is b for a, b in zip(replaced, message)) else replaced
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        changes = {}
        for f in dataclasses.fields(message):
            if f.init:
                value = getattr(message, f.name)
                replaced = replace_instances(value, cls, change)
                if replaced is not value:
                    changes[f.name] = replaced
        return dataclasses.replace(message, **changes) if changes else message
    return message


def replace_args(message: Any, change: Callable[[RenderArgs], RenderArgs]) -> Any:
    """`message` with change(args) in place of every RenderArgs in it (the same object where none changed)."""
    return replace_instances(message, RenderArgs, change)
