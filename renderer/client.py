"""The GUI's handle on the renderer: latest-args-wins, frames through shared memory, restarts.

The renderer runs in a process of its own (multiprocessing 'spawn'), so the window stays
responsive while a frame renders and survives a renderer crash. Requests are small messages
(stamp, args) on a queue; the renderer reads all waiting requests and renders only the newest.
A frame comes back in one of two shared-memory slots that this side owns (created, resized and
unlinked here); the reply on the result queue carries only the metadata. A slot is written only
after this side has copied the previous frame out of it and said so.

This module never imports torch: the renderer is imported inside the renderer process, or,
in in-process mode, in a worker thread.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import signal
import threading
import weakref
from dataclasses import dataclass, replace
from multiprocessing import shared_memory

import numpy as np

from renderer.allocator import tuned_children
from renderer.protocol import RenderArgs, RenderResult

NUM_SLOTS = 2                 # double buffer: the renderer writes one while this side copies the other
PARENT_CHECK_S = 1.0          # how often an idle renderer process checks that its parent still lives
SHUTDOWN_WAIT_S = 5.0
MAX_RESTARTS = 3              # consecutive crashes without a frame before giving up


# Messages to the renderer process.
@dataclass(frozen=True)
class _Render:
    stamp: int
    args: RenderArgs


@dataclass(frozen=True)
class _Slot:
    index: int
    name: str
    size: int


@dataclass(frozen=True)
class _Free:
    index: int


@dataclass(frozen=True)
class _Stop:
    pass


# Messages from the renderer process.
@dataclass(frozen=True)
class _Frame:
    result: RenderResult          # image None: the pixels are in slot `slot`
    slot: int | None
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class _NeedSpace:
    index: int
    nbytes: int


def _attach(name: str) -> shared_memory.SharedMemory:
    # The renderer process shares its parent's resource tracker (spawn passes it on), so the
    # registration that attaching makes is the parent's own and its unlink() clears it.
    return shared_memory.SharedMemory(name=name)


def _renderer_process_main(requests, replies, slots: list[tuple[str, int] | None]) -> None:
    """The renderer process: read requests, render the newest, hand frames back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the GUI's to handle; it closes the client
    from renderer.worker.render import Renderer

    renderer = Renderer()
    segments: dict[int, shared_memory.SharedMemory] = {}
    for index, slot in enumerate(slots):
        if slot is not None:
            segments[index] = _attach(slot[0])
    free = set(range(NUM_SLOTS))
    resizing: set[int] = set()
    pending: _Render | None = None
    ready: RenderResult | None = None
    parent = multiprocessing.parent_process()

    def try_deliver(result: RenderResult) -> bool:
        image = result.image
        if image is None:
            replies.put(_Frame(result=result, slot=None))
            return True
        fitting = [i for i in free if i in segments and segments[i].size >= image.nbytes]
        if fitting:
            index = fitting[0]
            np.ndarray(image.shape, np.uint8, buffer=segments[index].buf)[...] = image
            free.discard(index)
            replies.put(_Frame(result=replace(result, image=None), slot=index, shape=image.shape))
            return True
        growable = sorted(free - resizing)
        if growable and not resizing:
            resizing.add(growable[0])
            free.discard(growable[0])
            replies.put(_NeedSpace(index=growable[0], nbytes=image.nbytes))
        return False

    while True:
        if ready is not None and try_deliver(ready):
            ready = None
        idle = ready is not None or pending is None  # waiting for a slot, or nothing to do
        try:
            msg = requests.get(timeout=PARENT_CHECK_S) if idle else requests.get_nowait()
        except queue.Empty:
            msg = None
            if idle and parent is not None and not parent.is_alive():
                return
        if isinstance(msg, _Stop):
            return
        if isinstance(msg, _Render):
            pending = msg
        elif isinstance(msg, _Free):
            free.add(msg.index)
        elif isinstance(msg, _Slot):
            old = segments.pop(msg.index, None)
            if old is not None:
                old.close()
            segments[msg.index] = _attach(msg.name)
            resizing.discard(msg.index)
            free.add(msg.index)
        if msg is None and pending is not None and ready is None:
            ready = renderer.render(pending.args, pending.stamp)
            pending = None


class _ProcessBackend:
    """The renderer process, its queues and the shared-memory slots (owned here)."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._segments: list[shared_memory.SharedMemory | None] = [None] * NUM_SLOTS
        self._process = None
        self._requests = None
        self._replies = None
        self.start()

    def start(self) -> None:
        self._requests = self._ctx.Queue()
        self._replies = self._ctx.Queue()
        slots = [(s.name, s.size) if s is not None else None for s in self._segments]
        self._process = self._ctx.Process(target=_renderer_process_main, args=(self._requests, self._replies, slots),
                                          name="stylegan-renderer", daemon=True)
        with tuned_children():  # frames reuse their memory instead of page-faulting it in (allocator.py)
            self._process.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def exit_code(self) -> int | None:
        """None while the process runs."""
        if self._process is None:
            return None
        return self._process.exitcode

    def send(self, stamp: int, args: RenderArgs) -> None:
        self._requests.put(_Render(stamp=stamp, args=args))

    def poll(self) -> list[RenderResult]:
        """Finished results (newest last, only the newest carries its image); frees their slots."""
        frames: list[_Frame] = []
        while True:
            try:
                msg = self._replies.get_nowait()
            except (queue.Empty, OSError, EOFError, ValueError, pickle.UnpicklingError):
                break  # nothing more, or the tail of a message from a renderer that died writing it
            if isinstance(msg, _NeedSpace):
                self._resize(msg.index, msg.nbytes)
            elif isinstance(msg, _Frame):
                frames.append(msg)
        results = [f.result for f in frames]
        for i, frame in enumerate(frames):
            if frame.slot is None:
                continue
            if i == len(frames) - 1:
                segment = self._segments[frame.slot]
                image = np.ndarray(frame.shape, np.uint8, buffer=segment.buf).copy()
                results[i] = replace(frame.result, image=image)
            self._requests.put(_Free(index=frame.slot))
        return results

    def _resize(self, index: int, nbytes: int) -> None:
        self._unlink(index)
        segment = shared_memory.SharedMemory(create=True, size=max(nbytes, 1))
        self._segments[index] = segment
        self._requests.put(_Slot(index=index, name=segment.name, size=segment.size))

    def _unlink(self, index: int) -> None:
        segment = self._segments[index]
        self._segments[index] = None
        if segment is not None:
            segment.close()
            try:
                segment.unlink()
            except FileNotFoundError:
                pass

    def stop_process(self) -> None:
        """End the renderer process (politely, then by force) and drop its queues."""
        process, requests, replies = self._process, self._requests, self._replies
        self._process = self._requests = self._replies = None
        if process is not None:
            if process.is_alive():
                try:
                    requests.put(_Stop())
                except (OSError, ValueError):
                    pass
                process.join(SHUTDOWN_WAIT_S)
            if process.is_alive():
                process.terminate()
                process.join(SHUTDOWN_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
        for q in (requests, replies):
            if q is not None:
                q.close()
                q.join_thread()

    def restart(self) -> None:
        self.stop_process()
        # A renderer that died mid-write may have left a slot half-written; fresh slots come on demand.
        for index in range(NUM_SLOTS):
            self._unlink(index)
        self.start()

    def close(self) -> None:
        self.stop_process()
        for index in range(NUM_SLOTS):
            self._unlink(index)


class _ThreadBackend:
    """The renderer in a worker thread of this process (tests, and the GUI's 'own process: off')."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._pending: _Render | None = None
        self._results: list[RenderResult] = []
        self._stopping = False
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="stylegan-renderer", daemon=True)
        self._thread.start()

    pid = None

    def _run(self) -> None:
        try:
            from renderer.worker.render import Renderer

            renderer = Renderer()
        except Exception as e:  # an import failure must surface as a result, not a dead thread
            self._failure = e
            return
        while True:
            with self._lock:
                while self._pending is None and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                request, self._pending = self._pending, None
            result = renderer.render(request.args, request.stamp)
            with self._lock:
                self._results.append(result)

    def exit_code(self) -> int | None:
        return None if self._thread.is_alive() else 1

    def send(self, stamp: int, args: RenderArgs) -> None:
        with self._lock:
            self._pending = _Render(stamp=stamp, args=args)
            self._lock.notify()

    def poll(self) -> list[RenderResult]:
        with self._lock:
            results, self._results = self._results, []
        if self._failure is not None and not results:
            results = [RenderResult(error=f"The renderer could not start: {type(self._failure).__name__}: {self._failure}")]
        return results

    def restart(self) -> None:
        self.close()
        self.__init__()

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()
        self._thread.join()


class RenderClient:
    """Send RenderArgs, get RenderResults; the newest request wins.

    set_args() with args equal to the last sent ones does nothing. get_result() returns the newest
    finished result not yet returned, never one older than a result already returned. A renderer
    process that dies is restarted with the latest args, and the next result says so.
    """

    def __init__(self, in_process: bool = False) -> None:
        self.in_process = in_process
        self._backend: _ProcessBackend | _ThreadBackend = _ThreadBackend() if in_process else _ProcessBackend()
        self._finalizer = weakref.finalize(self, self._backend.close)
        self._stamp = 0                       # of the latest request
        self._last_args: RenderArgs | None = None
        self._received_stamp = 0              # newest result received from the renderer
        self._returned_stamp = 0              # newest result handed to the caller
        self._unreturned: RenderResult | None = None
        self._notice: str | None = None       # attached to the next result returned
        self._crashes = 0                     # consecutive, since the last result
        self._gave_up = False
        self.frames_rendered = 0              # results received from the renderer, superseded ones included

    @property
    def pid(self) -> int | None:
        """The renderer process id (None in in-process mode or after close())."""
        return None if self._finalizer.alive is False else self._backend.pid

    @property
    def is_busy(self) -> bool:
        """A request is being rendered or waits to be."""
        self._pump()
        return self._received_stamp < self._stamp and not self._gave_up

    def set_args(self, args: RenderArgs) -> None:
        self._ensure_open()
        self._pump()
        if args == self._last_args:
            return
        self._last_args = args
        if self._gave_up:
            self._gave_up = False
            self._crashes = 0
            self._backend.restart()
        self._stamp += 1
        self._backend.send(self._stamp, args)

    def get_result(self) -> RenderResult | None:
        self._ensure_open()
        self._pump()
        result, self._unreturned = self._unreturned, None
        if result is None:
            return None
        self._returned_stamp = result.stamp
        if self._notice:
            result.message = self._notice if not result.message else f"{self._notice} {result.message}"
            self._notice = None
        return result

    def restart(self) -> None:
        """Start a fresh renderer (and re-send the latest args)."""
        self._ensure_open()
        self._backend.restart()
        self._gave_up = False
        self._crashes = 0
        self._resend()

    def close(self) -> None:
        """Stop the renderer; no process and no shared-memory segment is left behind."""
        self._finalizer()

    def __enter__(self) -> "RenderClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_open(self) -> None:
        if not self._finalizer.alive:
            raise RuntimeError("this RenderClient is closed")

    def _resend(self) -> None:
        if self._last_args is not None:
            self._stamp += 1
            self._backend.send(self._stamp, self._last_args)

    def _pump(self) -> None:
        if not self._finalizer.alive:
            return
        self._take(self._backend.poll())
        code = None if self._gave_up else self._backend.exit_code()
        if code is None:
            return
        self._take(self._backend.poll())  # what it finished before it died
        self._crashes += 1
        what = f"The renderer process stopped unexpectedly (exit code {code})"
        if self._crashes >= MAX_RESTARTS:
            self._gave_up = True
            self._take([RenderResult(stamp=self._stamp, args=self._last_args, error=(
                f"{what}, {self._crashes} times in a row; it was not restarted again. "
                "Change a setting (or choose another model or device) to try once more."))])
            return
        self._backend.restart()
        self._notice = f"{what} and was restarted."
        self._resend()

    def _take(self, results: list[RenderResult]) -> None:
        """Keep the newest of `results` (the only one whose image was copied) unless it is older
        than a result already returned or waiting to be."""
        if not results:
            return
        self.frames_rendered += len(results)
        self._crashes = 0
        newest = max(results, key=lambda r: r.stamp)
        self._received_stamp = max(self._received_stamp, newest.stamp)
        kept = self._unreturned.stamp if self._unreturned is not None else self._returned_stamp
        if newest.stamp > kept:
            self._unreturned = newest
