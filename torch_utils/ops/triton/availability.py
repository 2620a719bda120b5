"""Whether the Triton kernels can run here, and if not, why, in words.

On a CUDA GPU the kernels need: the triton package, a GPU it supports, a C compiler and Python's
headers (Triton compiles a small launcher module for each kernel signature), and a compile that
finishes. The last is proven by compiling and running a one-line kernel in a child process with a
time limit, once per GPU, so that a broken toolchain costs seconds and never hangs the caller.
On CPU tensors the kernels run only in Triton's interpreter (TRITON_INTERPRET=1 when the kernels
are first imported, and still set).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import threading

import torch

PROBE_TIMEOUT_S = 60.0
MIN_CAPABILITY = (7, 0)
KERNELS_MODULE = "torch_utils.ops.triton.kernels"

_PROBE = """
import sys, torch, triton, triton.language as tl
@triton.jit
def double(x_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.arange(0, BLOCK)
    keep = offsets < n
    tl.store(x_ptr + offsets, tl.load(x_ptr + offsets, mask=keep) * 2, mask=keep)
x = torch.arange(8, dtype=torch.float32, device=sys.argv[1])
double[(1,)](x, 8, BLOCK=8)
assert x.cpu().tolist() == [2.0 * i for i in range(8)], x
"""

_lock = threading.Lock()
_cuda_reasons: dict[int, str | None] = {}


@functools.lru_cache(maxsize=1)
def _import_error() -> str | None:
    if importlib.util.find_spec("triton") is None:
        return "the triton package is not installed (pip install -r requirements-dev.txt)"
    try:
        import triton  # noqa: F401  (optional dependency: only its import is tested here)
    except Exception as error:  # a broken install raises anything from its native module
        return f"triton does not import: {type(error).__name__}: {error}"
    return None


def interpreter_requested() -> bool:
    """TRITON_INTERPRET is set to a true value (Triton's own reading of it)."""
    from triton import knobs  # optional dependency, present once _import_error() is None

    return bool(knobs.runtime.interpret)


def kernels_interpreted() -> bool | None:
    """Whether the kernels were built for the interpreter (None: not imported yet). Triton decides
    when a kernel is defined, so this is fixed for the life of the process once they are."""
    module = sys.modules.get(KERNELS_MODULE)
    if module is None:
        return None
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(module.upfirdn_kernel, InterpretedFunction)


def _interpreter_reason() -> str | None:
    """Why the kernels cannot run in the interpreter here (None: they can)."""
    built = kernels_interpreted()
    if not interpreter_requested():
        return "CPU tensors need Triton's interpreter: set TRITON_INTERPRET=1 before starting"
    if built is False:
        return "the kernels were built for the GPU before TRITON_INTERPRET was set; set it before starting"
    return None


def _compiler_reason() -> str | None:
    chosen = os.environ.get("CC")
    if chosen is not None and shutil.which(chosen) is None:
        return f"the C compiler named by CC ({chosen}) is not there; Triton needs one for its kernel launcher"
    if chosen is None and shutil.which("gcc") is None and shutil.which("clang") is None:
        return "no C compiler for Triton's kernel launcher (install gcc, or set CC)"
    scheme = sysconfig.get_default_scheme()
    include = sysconfig.get_paths(scheme="posix_prefix" if scheme == "posix_local" else scheme)["include"]
    if not os.path.exists(os.path.join(include, "Python.h")):
        return f"Python's C headers are missing ({include}/Python.h; install python3-dev)"
    return None


def _probe(index: int, timeout_s: float) -> str | None:
    """Compile and run a one-line kernel on GPU `index` in a child process."""
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, f"cuda:{index}"], capture_output=True, text=True,
                              timeout=timeout_s, env={**os.environ, "TRITON_INTERPRET": "0"})
    except subprocess.TimeoutExpired:
        return f"compiling a test kernel did not finish within {timeout_s:.0f} s"
    except OSError as error:
        return f"could not start a process to compile a test kernel: {error}"
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        return f"a test kernel failed to compile or run: {lines[-1] if lines else f'exit status {done.returncode}'}"
    return None


def _cuda_reason(device: torch.device, timeout_s: float) -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    if kernels_interpreted():
        return None  # the interpreter copies CUDA tensors to the host and back: slow, but it runs
    index = torch.cuda.current_device() if device.index is None else device.index
    with _lock:  # one answer per GPU for the life of the process (the probe runs once)
        if index not in _cuda_reasons:
            _cuda_reasons[index] = _gpu_reason(index, timeout_s)
        return _cuda_reasons[index]


def _gpu_reason(index: int, timeout_s: float) -> str | None:
    capability = torch.cuda.get_device_capability(index)
    if torch.version.hip is None and capability < MIN_CAPABILITY:
        name = torch.cuda.get_device_name(index)
        return (f"unsupported GPU: {name} has compute capability {capability[0]}.{capability[1]}, "
                f"Triton needs {MIN_CAPABILITY[0]}.{MIN_CAPABILITY[1]} or newer")
    return _compiler_reason() or _probe(index, timeout_s)


def triton_unavailable_reason(device: torch.device | str | None = None,
                              timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the Triton kernels cannot run on tensors on `device`, in words (None: they can). None
    for `device` asks about this process: the interpreter, else the current CUDA GPU. The first
    call per GPU compiles a test kernel (seconds; at most timeout_s); the answer is remembered."""
    reason = _import_error()
    if reason is not None:
        return reason
    if device is None:
        cpu = _interpreter_reason()
        if cpu is None:
            return None
        cuda = _cuda_reason(torch.device("cuda"), timeout_s)
        return None if cuda is None else f"{cuda}, and {cpu[0].lower()}{cpu[1:]}"
    device = torch.device(device)
    if device.type == "cpu":
        return _interpreter_reason()
    if device.type == "cuda":
        return _cuda_reason(device, timeout_s)
    return f"Triton does not run on {device.type} tensors"
