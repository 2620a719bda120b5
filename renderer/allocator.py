"""glibc allocator settings for the processes that run the networks: renderer, background jobs,
trainer, benchmark. Torch-free (the GUI process uses it to start the renderer).

By default glibc serves large blocks (above a threshold that adapts up to 32 MB) straight from the
kernel with mmap and hands them back on free, so every frame maps its activations afresh and
page-faults them in again. With these settings large blocks come from the heap, which keeps
freed memory for the next frame. Measured on the development machine (2 threads, fast CPU path,
steady-state frames): StyleGAN3-R 256 2.39 -> 1.90 s, StyleGAN3-T 1024 4.07 -> 3.42 s,
StyleGAN3-T 256 1.82 -> 1.72 s; a StyleGAN3 training step about half. The cost: memory a process
once used stays with it, so its resident size stays at its peak, until release_free_memory()
hands the free part back (the renderer does when the model changes, or after running out of memory).

glibc reads these variables once, when a process starts: they go into a child's environment before
the child starts. Settings the user made (any of them already in the environment) win.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from typing import Iterator, Mapping

MALLOC_TUNING = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",  # blocks up to 4 GiB from the heap, not from mmap
    "MALLOC_TRIM_THRESHOLD_": "68719476736",  # never give the heap's free top back
    "MALLOC_TOP_PAD_": "268435456",  # grow the heap 256 MiB at a time
}


def applies() -> bool:
    """Only glibc (Linux) reads these variables."""
    return sys.platform.startswith("linux")


def tuned_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` (default os.environ) with the tuning added where the user set nothing; unchanged
    where user settings exist or on systems without glibc."""
    env = dict(os.environ if environ is None else environ)
    if applies() and not any(key in env for key in MALLOC_TUNING):
        env.update(MALLOC_TUNING)
    return env


@contextlib.contextmanager
def tuned_children() -> Iterator[None]:
    """Processes started inside the block (multiprocessing 'spawn', subprocess without env=) get
    the tuning; this process's environment is restored afterwards."""
    added = {k: v for k, v in tuned_environ().items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def release_free_memory() -> bool:
    """Give the heap's free memory back to the system (glibc's malloc_trim): with the tuning, freed
    memory otherwise stays with the process. False where there is no malloc_trim to call."""
    if not applies():
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True
