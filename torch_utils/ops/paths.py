"""Which implementation of the custom ops runs, and at what precision.

Paths:
- 'reference': plain PyTorch written like the definitions (torch_utils/ops/*_ref); the yardstick.
- 'cpu': polyphase, separable, fused and tiled ops (torch_utils/ops/cpu) for CPU tensors; tensors
  on other devices fall back to the reference ops.
- 'cuda': offered when torch sees a CUDA device. There are no custom CUDA kernels: CUDA tensors
  run the reference ops on the GPU, CPU tensors still get the fast CPU ops.

Chosen by set_path(), else $VIZ_OPS, else the fastest available ('cuda' > 'cpu' > 'reference').

Precision: float32 by default. `with precision("bfloat16"):` is a *preview* mode (reduced
precision, clearly not the reference numbers) in which the generators run their convolutions and
filters in bfloat16 on the CPU; bench/synthesis.py prints its error against float32.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

import torch

PATHS = ("reference", "cpu", "cuda")
PRECISIONS = ("float32", "bfloat16")
_forced: str | None = None
_precision: str = "float32"
_cpu_error: str | None = None


def _cpu_module():
    """The fast CPU ops, or None (the reason kept in cpu_unavailable_reason())."""
    global _cpu_error
    try:
        from torch_utils.ops import cpu
    except ImportError as error:  # a broken install must not take the reference path down
        _cpu_error = f"{type(error).__name__}: {error}"
        return None
    return cpu


def cpu_unavailable_reason() -> str | None:
    _cpu_module()
    return _cpu_error


def available() -> tuple[str, ...]:
    """Op paths that can run in this process, slowest first."""
    paths = ["reference"]
    if _cpu_module() is not None:
        paths.append("cpu")
    if torch.cuda.is_available():
        paths.append("cuda")
    return tuple(paths)


def active() -> str:
    """The op path in use: set_path() > $VIZ_OPS > fastest available."""
    path = _forced or os.environ.get("VIZ_OPS", "").strip().lower() or available()[-1]
    if path not in PATHS:
        raise ValueError(f"VIZ_OPS={path!r} is not an op path; choose one of {', '.join(PATHS)}")
    if path not in available():
        reason = f" ({cpu_unavailable_reason()})" if path == "cpu" else ""
        raise RuntimeError(f"op path {path!r} is not available here{reason}; available: {', '.join(available())}")
    return path


def set_path(path: str | None) -> None:
    """Force an op path for this process (None: back to $VIZ_OPS / automatic)."""
    global _forced
    if path is not None and path not in PATHS:
        raise ValueError(f"unknown op path {path!r}; choose one of {', '.join(PATHS)}")
    _forced = path


def implementation(op: str) -> Callable:
    """The function implementing `op` ('upfirdn2d', 'bias_act', 'filtered_lrelu') on the active path."""
    from torch_utils.ops import bias_act, filtered_lrelu, upfirdn2d

    reference = {
        "upfirdn2d": upfirdn2d.upfirdn2d_ref,
        "bias_act": bias_act.bias_act_ref,
        "filtered_lrelu": filtered_lrelu.filtered_lrelu_ref,
    }
    if op not in reference:
        raise ValueError(f"unknown op {op!r}; known: {', '.join(reference)}")
    if active() == "reference":
        return reference[op]
    # 'cpu' and 'cuda': the fast CPU functions hand non-CPU tensors to the reference ops.
    return getattr(_cpu_module(), op)


def active_precision() -> str:
    """'float32', or 'bfloat16' inside a precision('bfloat16') block."""
    return _precision


def compute_dtype(device: torch.device) -> torch.dtype:
    """The dtype the generators compute in on `device` under the current precision."""
    if _precision == "bfloat16" and device.type == "cpu":
        return torch.bfloat16
    return torch.float32


@contextlib.contextmanager
def precision(name: str) -> Iterator[None]:
    """Run the generators at `name` precision inside the block ('bfloat16': low-precision preview)."""
    global _precision
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    previous, _precision = _precision, name
    try:
        yield
    finally:
        _precision = previous


def describe() -> str:
    """What runs, for status lines: e.g. 'cpu' or 'cpu, bfloat16 preview'."""
    path = active()
    return path if _precision == "float32" else f"{path}, {_precision} preview"
