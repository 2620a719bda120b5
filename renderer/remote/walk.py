"""Every RenderArgs inside a request (a frame's, a job's base, each keyframe's), changed by one function:
the server resolves their models under its root, the GUI's side puts W files' bytes in place of their paths."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from renderer.protocol import RenderArgs


def replace_args(message: Any, change: Callable[[RenderArgs], RenderArgs]) -> Any:
    """`message` with change(args) in place of every RenderArgs in it (the same object where none changed)."""
    if isinstance(message, RenderArgs):
        return change(message)
    if isinstance(message, tuple):
        replaced = tuple(replace_args(v, change) for v in message)
        return message if all(a is b for a, b in zip(replaced, message)) else replaced
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        changes = {}
        for f in dataclasses.fields(message):
            if f.init:
                value = getattr(message, f.name)
                replaced = replace_args(value, change)
                if replaced is not value:
                    changes[f.name] = replaced
        return dataclasses.replace(message, **changes) if changes else message
    return message
