"""Values read from a file as plain JSON-compatible data, within bounds.

A pickle can share one list between many places (memo references) and a JSON text can nest
deeply; turning either into plain data naively can take exponential time or overflow the stack.
`plain_value` visits every node once per place it appears, stops at a depth and node budget that
constructor arguments never come near, and accepts only None, bools, numbers, strings, lists and
string-keyed dicts (numpy numbers and small arrays become Python ones).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_DEPTH = 16
MAX_NODES = 20_000
MAX_STRING = 10_000


class NotPlainData(ValueError):
    """The value is not plain data, or too large or too deep; the message says which, as a phrase."""


def plain_value(value: Any, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> Any:
    """`value` as None / bool / int / float / str / list / dict[str, ...]; NotPlainData otherwise."""
    budget = [max_nodes]

    def visit(v: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise NotPlainData(f"more than {max_nodes:,} values")
        if depth > max_depth:
            raise NotPlainData(f"values nested more than {max_depth} levels deep")
        if v is None or isinstance(v, (bool, np.bool_)):
            return None if v is None else bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(v)
        if isinstance(v, str):
            if len(v) > MAX_STRING:
                raise NotPlainData(f"a text of {len(v):,} characters")
            return v
        if isinstance(v, np.ndarray):
            if v.dtype.kind not in "biuf" or v.size > max_nodes:
                raise NotPlainData(f"a numpy array of {v.size:,} {v.dtype.name} values")
            budget[0] -= v.size
            return visit(v.tolist(), depth)
        if isinstance(v, (list, tuple)):
            return [visit(item, depth + 1) for item in v]
        if isinstance(v, dict):
            out = {}
            for key, item in v.items():
                if not isinstance(key, str):
                    raise NotPlainData(f"a key of type {type(key).__name__}")
                out[key] = visit(item, depth + 1)
            return out
        raise NotPlainData(f"a value of type {type(v).__name__}")

    return visit(value, 0)


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
