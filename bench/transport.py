"""How a rendered frame gets from the renderer process to the GUI: shared memory vs a pickled Queue.

For a 1024x1024 uint8 RGB frame, times the round trip both ways in the same run (a spawned
process answers each request with the frame; the GUI side ends holding its own copy):
  shared memory: a small request and reply on Queues, the pixels copied into and out of a
                 multiprocessing.shared_memory segment (what renderer/client.py does);
  queue:         the frame itself pickled through a multiprocessing Queue.

    python bench/transport.py [--size 1024] [--repeats 50]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from multiprocessing import shared_memory

import numpy as np


def _answer_with_shared_memory(requests, replies, name: str, shape: tuple[int, ...]) -> None:
    segment = shared_memory.SharedMemory(name=name)
    frame = np.random.RandomState(0).randint(0, 256, size=shape, dtype=np.uint8)
    target = np.ndarray(shape, np.uint8, buffer=segment.buf)
    while requests.get() is not None:
        target[...] = frame
        replies.put(shape)
    del target
    segment.close()


def _answer_with_pickles(requests, replies, shape: tuple[int, ...]) -> None:
    frame = np.random.RandomState(0).randint(0, 256, size=shape, dtype=np.uint8)
    while requests.get() is not None:
        replies.put(frame)


def _time_round_trips(requests, replies, receive, repeats: int) -> list[float]:
    for _ in range(3):  # warm-up
        requests.put(True)
        receive(replies.get())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        requests.put(True)
        receive(replies.get())
        times.append(time.perf_counter() - start)
    requests.put(None)
    return times


def bench_shared_memory(ctx, shape: tuple[int, ...], repeats: int) -> list[float]:
    nbytes = int(np.prod(shape))
    segment = shared_memory.SharedMemory(create=True, size=nbytes)
    requests, replies = ctx.Queue(), ctx.Queue()
    process = ctx.Process(target=_answer_with_shared_memory, args=(requests, replies, segment.name, shape))
    process.start()
    try:
        source = np.ndarray(shape, np.uint8, buffer=segment.buf)
        times = _time_round_trips(requests, replies, lambda reply: source.copy(), repeats)
        del source
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
        segment.close()
        segment.unlink()
    return times


def bench_queue(ctx, shape: tuple[int, ...], repeats: int) -> list[float]:
    requests, replies = ctx.Queue(), ctx.Queue()
    process = ctx.Process(target=_answer_with_pickles, args=(requests, replies, shape))
    process.start()
    try:
        times = _time_round_trips(requests, replies, lambda frame: frame, repeats)
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="frame height and width (default 1024)")
    parser.add_argument("--repeats", type=int, default=50)
    opts = parser.parse_args()
    shape = (opts.size, opts.size, 3)
    ctx = multiprocessing.get_context("spawn")

    shm = statistics.median(bench_shared_memory(ctx, shape, opts.repeats))
    pickled = statistics.median(bench_queue(ctx, shape, opts.repeats))
    print(f"frame {opts.size}x{opts.size}x3 uint8 ({np.prod(shape) / 2**20:.1f} MiB), median of {opts.repeats} round trips")
    print(f"  shared memory : {shm * 1000:7.3f} ms")
    print(f"  pickled queue : {pickled * 1000:7.3f} ms")
    print(f"  queue / shared memory = {pickled / shm:.1f}x")


if __name__ == "__main__":
    main()
