"""Which implementation of the custom ops runs: 'reference' (plain PyTorch, the yardstick),
'cpu' (fast CPU kernels) or 'cuda'. Chosen by VIZ_OPS, else the fastest available."""

from __future__ import annotations

import os
from typing import Callable

PATHS = ("reference", "cpu", "cuda")
_forced: str | None = None


def available() -> tuple[str, ...]:
    """Op paths that can run in this process."""
    return ("reference",)


def active() -> str:
    """The op path in use: set_path() > $VIZ_OPS > fastest available."""
    path = _forced or os.environ.get("VIZ_OPS", "").strip().lower() or available()[-1]
    if path not in PATHS:
        raise ValueError(f"VIZ_OPS={path!r} is not an op path; choose one of {', '.join(PATHS)}")
    if path not in available():
        raise RuntimeError(f"op path {path!r} is not available here (available: {', '.join(available())})")
    return path


def set_path(path: str | None) -> None:
    """Force an op path for this process (None: back to $VIZ_OPS / automatic)."""
    global _forced
    if path is not None and path not in PATHS:
        raise ValueError(f"unknown op path {path!r}; choose one of {', '.join(PATHS)}")
    _forced = path


def implementation(op: str) -> Callable:
    """The function implementing `op` on the active path."""
    from torch_utils.ops import bias_act, filtered_lrelu, upfirdn2d

    reference = {
        "upfirdn2d": upfirdn2d.upfirdn2d_ref,
        "bias_act": bias_act.bias_act_ref,
        "filtered_lrelu": filtered_lrelu.filtered_lrelu_ref,
    }
    return reference[op]
