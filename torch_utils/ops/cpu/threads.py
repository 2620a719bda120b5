"""Coarse-grained parallelism for the fused CPU ops.

The fused, tiled ops issue thousands of small matrix products (each a few hundred microseconds).
With torch's intra-op pool every one of them is an OpenMP parallel region, and each region ends
at a barrier: when another process holds one of the cores, that barrier waits for the scheduler
(milliseconds), so at 2 threads on a loaded 2-core machine the fused forward ran ~35x slower than
at 1 thread (measured: one R-256 layer 0.69 s at 1 thread, 24 s at 2). Here the small ops run
single-threaded instead, and the parallelism is one level up: independent channel groups go to
a few Python threads (torch releases the GIL inside each op), which never wait on each other
until the end of the whole op.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

import torch

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool, _pool_size = ThreadPoolExecutor(workers, thread_name_prefix="fastops"), workers
        return _pool


@contextlib.contextmanager
def single_threaded_ops() -> Iterator[int]:
    """Run torch ops in the block on one intra-op thread; yields the thread count in force before,
    the number of coarse workers the caller may use."""
    before = torch.get_num_threads()
    if before > 1:
        torch.set_num_threads(1)
    try:
        yield before
    finally:
        if before > 1:
            torch.set_num_threads(before)


def split(n: int, parts: int) -> list[range]:
    """range(n) in at most `parts` contiguous, nearly equal, non-empty pieces."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(parts)]


def run_parallel(fn: Callable[[T], None], items: Sequence[T], workers: int) -> None:
    """fn(item) for every item, on up to `workers` threads (the caller's thread takes the first);
    exceptions propagate to the caller."""
    if workers <= 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return

    grad_mode = torch.is_grad_enabled()

    def call(item: T) -> None:
        # OpenMP's thread count and autograd's grad mode are per thread: a pool thread must be told.
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        with torch.set_grad_enabled(grad_mode):
            fn(item)

    futures = [_executor(workers - 1).submit(call, item) for item in items[1:]]
    try:
        fn(items[0])
    finally:
        for future in futures:
            future.result()
