"""Which implementation of the custom ops runs, and at what precision.

Op paths:
- 'reference': plain PyTorch written like the definitions (reference/); any device; the yardstick.
- 'cpu': polyphase, separable, fused and tiled ops for CPU tensors (cpu/); tensors on other devices
  get the reference ops.
- 'triton': fused Triton kernels (triton/), the automatic choice for CUDA tensors when Triton can
  start there; on CPU tensors only in Triton's interpreter (TRITON_INTERPRET=1).

A request chooses its path and precision for the calls inside a block:

    with paths.selected("cpu", "float32"):
        G.synthesis(ws)

The choice lives in a context variable, so concurrent requests (threads of one worker) do not see
each other's. Without a choice ('auto' or None): $VIZ_OPS, else the best path for the tensors' device.

Precision: float32 by default; 'bfloat16' is a labelled low-precision preview in which the generators
run their convolutions and filters in bfloat16 (CPU and CUDA; float32 elsewhere).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Iterator

import torch

from torch_utils.ops import reference

PATHS = ("reference", "cpu", "triton")
PRECISIONS = ("float32", "bfloat16")
OPS = ("upfirdn2d", "bias_act", "filtered_lrelu")
_MODULES = {"cpu": "torch_utils.ops.cpu", "triton": "torch_utils.ops.triton"}  # optional paths, imported on first use
_REFERENCE = {"upfirdn2d": reference.upfirdn2d_ref, "bias_act": reference.bias_act_ref,
              "filtered_lrelu": reference.filtered_lrelu_ref}


@dataclass(frozen=True)
class Selection:
    path: str | None = None          # None: $VIZ_OPS, else automatic
    precision: str = "float32"


_selection: contextvars.ContextVar[Selection] = contextvars.ContextVar("op_selection", default=Selection())
_import_errors: dict[str, str] = {}


def _module(path: str) -> ModuleType | None:
    """The module of an optional path, or None (the reason kept in unavailable_reason())."""
    try:
        return importlib.import_module(_MODULES[path])
    except ImportError as error:  # a broken install must not take the reference path down
        _import_errors[path] = f"{type(error).__name__}: {error}"
        return None


def unavailable_reason(path: str, device: torch.device | str | None = None) -> str | None:
    """Why an op path cannot run here, or on tensors on `device` (None if it can)."""
    if path == "reference":
        return None
    if path not in PATHS:
        return f"unknown op path {path!r}; choose one of {', '.join(PATHS)}"
    module = _module(path)
    if module is None:
        return _import_errors.get(path, "not importable")
    return module.triton_unavailable_reason(device) if path == "triton" else None


def available() -> tuple[str, ...]:
    """Op paths that can run in this process, slowest first."""
    return tuple(p for p in PATHS if unavailable_reason(p) is None)


def _automatic(device: torch.device) -> str:
    if device.type == "cpu" and "cpu" in available():
        return "cpu"
    if device.type == "cuda" and unavailable_reason("triton", device) is None:
        return "triton"
    return "reference"


def active(device: torch.device | str = "cpu") -> str:
    """The op path that runs for tensors on `device`: the selection > $VIZ_OPS > the best available."""
    device = torch.device(device)
    path = _selection.get().path or os.environ.get("VIZ_OPS", "").strip().lower() or None
    if path is None or path == "auto":
        return _automatic(device)
    reason = unavailable_reason(path)
    if reason is not None:
        raise RuntimeError(f"op path {path!r} is not available here ({reason}); available: {', '.join(available())}")
    return path


@contextlib.contextmanager
def selected(path: str | None = None, precision: str = "float32") -> Iterator[Selection]:
    """Run the ops inside the block on `path` (None or 'auto': automatic) at `precision`."""
    if path is not None and path != "auto" and path not in PATHS:
        raise ValueError(f"unknown op path {path!r}; choose auto or one of {', '.join(PATHS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    selection = Selection(None if path == "auto" else path, precision)
    token = _selection.set(selection)
    try:
        yield selection
    finally:
        _selection.reset(token)


def implementation(op: str, device: torch.device | str = "cpu") -> Callable:
    """The function implementing `op` ('upfirdn2d', 'bias_act', 'filtered_lrelu') for tensors on `device`."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; known: {', '.join(OPS)}")
    path = active(device)
    if path == "reference":
        return _REFERENCE[op]
    return getattr(_module(path), op)


def active_precision() -> str:
    """'float32', or 'bfloat16' inside a selected(..., 'bfloat16') block."""
    return _selection.get().precision


def compute_dtype(device: torch.device) -> torch.dtype:
    """The dtype the generators compute in on `device` under the selected precision."""
    if active_precision() == "bfloat16" and device.type in ("cpu", "cuda"):
        return torch.bfloat16
    return torch.float32


def describe(device: torch.device | str = "cpu") -> str:
    """What runs, for status lines: e.g. 'cpu' or 'cpu, bfloat16 preview'."""
    path = active(device)
    precision = active_precision()
    return path if precision == "float32" else f"{path}, {precision} preview"
