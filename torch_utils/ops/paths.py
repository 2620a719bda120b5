"""Which implementation of the custom ops runs, and at what precision.

Op paths:
- 'reference': plain PyTorch written like the definitions (reference/); any device; the yardstick.
- 'cpu': polyphase, separable, fused and tiled ops for CPU tensors (cpu/); tensors on other devices
  get the reference ops.
- 'gpu': the same ideas as torch convolutions (gpu/): runs on any device's tensors; the choice for
  MPS, and for CUDA where the Triton kernels cannot start.
- 'triton': fused Triton kernels (triton/), the automatic choice for CUDA tensors when Triton can
  start there; on CPU tensors only in Triton's interpreter (TRITON_INTERPRET=1).

A request chooses its path and precision for the calls inside a block:

    with paths.selected("cpu", "float32"):
        G.synthesis(ws)

The choice lives in a context variable, so concurrent requests (threads of one worker) do not see
each other's. Without a choice ('auto' or None): $VIZ_OPS, else the automatic choice for the
tensors' device: the first path of CHAINS[device type] that can start there, else 'reference'.
Whether a path can start is decided once per device (a probe that runs the path's ops there, given
PROBE_SECONDS at most, so that nothing hangs); explain() says what was chosen and why faster paths
were skipped, for the status line.

Precision: float32 by default; 'bfloat16' is a labelled low-precision preview in which the generators
run their convolutions and filters in bfloat16 (CPU and CUDA; float32 elsewhere).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Iterator

import torch

from torch_utils.ops import reference

PATHS = (  # slowest first
    "reference",
    "cpu",
    "gpu",
    "triton",
)
PRECISIONS = ("float32", "bfloat16")
OPS = ("upfirdn2d", "bias_act", "filtered_lrelu")
_MODULES = {  # optional paths, imported on first use
    "cpu": "torch_utils.ops.cpu",
    "gpu": "torch_utils.ops.gpu",
    "triton": "torch_utils.ops.triton",
}
# The automatic choice per device type, fastest first; 'reference' ends every chain.
CHAINS = {
    "cuda": ("triton", "gpu"),
    "mps": ("gpu",),
    "cpu": ("cpu",),
}
# A path's check that it can start on a device: the function of its module that returns None or
# the reason in words (paths without one only need to import).
_PROBES = {
    "gpu": "gpu_unavailable_reason",
    "triton": "triton_unavailable_reason",
}
PROBE_SECONDS = 20.0  # a probe that has not answered by then counts as "cannot start"
_REFERENCE = {"upfirdn2d": reference.upfirdn2d_ref, "bias_act": reference.bias_act_ref,
              "filtered_lrelu": reference.filtered_lrelu_ref}


@dataclass(frozen=True)
class Selection:
    path: str | None = None          # None: $VIZ_OPS, else automatic
    precision: str = "float32"


_selection: contextvars.ContextVar[Selection] = contextvars.ContextVar("op_selection", default=Selection())
_probing: contextvars.ContextVar[str | None] = contextvars.ContextVar("op_path_probing", default=None)
_import_errors: dict[str, str] = {}


def _module(path: str) -> ModuleType | None:
    """The module of an optional path, or None (the reason kept in unavailable_reason())."""
    try:
        return importlib.import_module(_MODULES[path])
    except ImportError as error:  # a broken install must not take the reference path down
        _import_errors[path] = f"{type(error).__name__}: {error}"
        return None


def _import_reason(path: str) -> str | None:
    if path == "reference":
        return None
    if path not in PATHS:
        return f"unknown op path {path!r}; choose one of {', '.join(PATHS)}"
    return None if _module(path) is not None else _import_errors.get(path, "not importable")


def available(device: torch.device | str = "cpu") -> tuple[str, ...]:
    """Op paths that can run on tensors on `device` in this process, slowest first."""
    return tuple(p for p in PATHS if unavailable_reason(p, device) is None)


@dataclass(frozen=True)
class Choice:
    """The automatic choice for one device: the path, and why each faster one was skipped."""

    path: str
    skipped: tuple[str, ...] = ()


_choices: dict[tuple[str, int | None], Choice] = {}
_reasons: dict[tuple[str, str, int | None], str | None] = {}
_choices_lock = threading.Lock()


def _one_device(device: torch.device) -> torch.device:
    """'cuda' means the current CUDA device: decisions are per physical device."""
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _start_reason(path: str, device: torch.device) -> str | None:
    """Why `path` cannot start on `device` (None if it can): imported, then probed there."""
    reason = _import_reason(path)
    if reason is not None:
        return reason
    probe = getattr(_module(path), _PROBES[path], None)
    if probe is None:
        return f"{_MODULES[path]} has no {_PROBES[path]}()"
    return probe(device)


def _probe(path: str, device: torch.device, seconds: float) -> str | None:
    """_start_reason on a helper thread, given `seconds`: a compiler or driver that hangs costs
    that long once, not the application."""
    answer: list[str | None] = []

    def run() -> None:
        _selection.set(Selection(path))  # ops the probe dispatches run on the probed path ...
        _probing.set(path)  # ... without waiting for this probe's own answer
        try:
            answer.append(_start_reason(path, device))
        except Exception as error:  # anything that stops a path from starting is a reason to skip it
            answer.append(f"{type(error).__name__}: {error}")

    thread = threading.Thread(target=run, name=f"probe-{path}-{device}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive() or not answer:
        return f"it did not start within {seconds:g} s"
    return answer[0]


def unavailable_reason(path: str, device: torch.device | str = "cpu") -> str | None:
    """Why op path `path` cannot run on tensors on `device`, in words (None if it can). It must
    import; a path with a probe (_PROBES) must also start there: probed once per device,
    PROBE_SECONDS at most."""
    if path not in _PROBES:
        return _import_reason(path)
    device = _one_device(torch.device(device))
    key = (path, device.type, device.index)
    if key not in _reasons:
        with _choices_lock:
            if key not in _reasons:
                _reasons[key] = _probe(path, device, PROBE_SECONDS)
    return _reasons[key]


def _automatic(device: torch.device) -> Choice:
    device = _one_device(device)
    key = (device.type, device.index)
    choice = _choices.get(key)
    if choice is None:
        skipped = []
        for path in CHAINS.get(device.type, ()):
            reason = unavailable_reason(path, device)
            if reason is None:
                choice = Choice(path, tuple(skipped))
                break
            skipped.append(f"{path}: {reason}")
        else:
            choice = Choice("reference", tuple(skipped))
        _choices[key] = choice
    return choice


def forget_choices() -> None:
    """Probe and choose again on next use (after installing a driver or a compiler)."""
    with _choices_lock:
        _choices.clear()
        _reasons.clear()


def _forced() -> str | None:
    path = _selection.get().path or os.environ.get("VIZ_OPS", "").strip().lower() or None
    return None if path == "auto" else path


def active(device: torch.device | str = "cpu") -> str:
    """The op path that runs for tensors on `device`: the selection > $VIZ_OPS > the automatic choice.
    A forced path runs on any device's tensors (e.g. 'gpu' on CPU tensors, as its tests do)."""
    device = torch.device(device)
    path = _forced()
    if path is None:
        return _automatic(device).path
    reason = _import_reason(path) if path == _probing.get() else unavailable_reason(path, device)
    if reason is not None:
        raise RuntimeError(f"op path {path!r} is not available for {device.type} tensors ({reason}); "
                           f"available: {', '.join(available(device))}")
    return path


def next_path(device: torch.device | str, after: str) -> str:
    """The path the automatic choice for `device` would take if `after` could not run: the next path of
    its chain that can start there, else 'reference' (a frame can use it while `after` warms up)."""
    device = torch.device(device)
    chain = CHAINS.get(device.type, ())
    for path in chain[chain.index(after) + 1:] if after in chain else ():
        if unavailable_reason(path, device) is None:
            return path
    return "reference"


def explain(device: torch.device | str = "cpu") -> tuple[str, list[str]]:
    """(the op path for tensors on `device`, why each faster path of the automatic choice was
    skipped, e.g. ['triton: no C compiler found']); nothing was skipped when a path is forced."""
    device = torch.device(device)
    if _forced() is not None:
        return active(device), []
    choice = _automatic(device)
    return choice.path, list(choice.skipped)


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


def bfloat16_unsupported_reason(device: torch.device) -> str | None:
    """Why the bfloat16 preview cannot run fast on `device` (None if it can): on a CPU, torch's
    convolutions need bfloat16 instructions (AVX-512 BF16 or AMX) or they fall back to a slow loop."""
    if device.type == "cuda":
        return None
    if device.type == "cpu":
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return None
        return "this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX) for torch's convolutions"
    return f"not supported on {device.type}"


def compute_dtype(device: torch.device) -> torch.dtype:
    """The dtype the generators compute in on `device` under the selected precision (the bfloat16
    preview only where it runs fast: bfloat16_unsupported_reason)."""
    if active_precision() == "bfloat16" and bfloat16_unsupported_reason(device) is None:
        return torch.bfloat16
    return torch.float32


def describe(device: torch.device | str = "cpu") -> str:
    """What runs, for status lines: e.g. 'cpu' or 'cpu, bfloat16 preview'."""
    path = active(device)
    precision = active_precision()
    return path if precision == "float32" else f"{path}, {precision} preview"
