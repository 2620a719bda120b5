"""The Triton path: fused kernels for upfirdn2d, bias_act and filtered_lrelu on CUDA GPUs, or in
Triton's interpreter on CPU tensors (TRITON_INTERPRET=1).

triton_unavailable_reason(device) says in words why the kernels cannot run (None: they can); it
works without the triton package. The ops import triton on first use (ops.py)."""

from __future__ import annotations

import importlib
from typing import Any

from torch_utils.ops.triton.availability import triton_unavailable_reason

__all__ = ["bias_act", "filtered_lrelu", "triton_unavailable_reason", "upfirdn2d"]
_OPS = ("bias_act", "filtered_lrelu", "upfirdn2d")


def __getattr__(name: str) -> Any:
    if name in _OPS:  # triton is an optional dependency: imported only when an op is wanted
        return getattr(importlib.import_module("torch_utils.ops.triton.ops"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
