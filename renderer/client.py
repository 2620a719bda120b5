"""The GUI's handle on the render worker: frames (the newest request wins), background jobs, restarts.

One worker serves every request of a GUI (renderer.worker.worker): the frame on screen, and jobs
(analyses, the equivariance readout, clip frames) that it runs in slices between frames. By default
it runs in a process of its own (multiprocessing 'spawn'), so the window stays responsive while a
frame renders and survives a worker crash: the client restarts it with the latest args, and jobs
that were running end with an error saying they were lost. Frames come back through shared memory
(renderer.frame_slots); everything else through the reply queue. With `remote=`, the worker is one
that `visualizer.py serve` runs on another machine (renderer/remote/backend.py): the same requests
and replies over an authenticated socket, and the link's state in place of the process's.

This module never imports torch: the worker is imported inside the worker process, or, in
in-process mode, in a thread of this process.
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import queue
import sys
import threading
import time
import weakref
from dataclasses import replace
from pathlib import Path

from renderer.allocator import tuned_children
from renderer.frame_slots import FrameReply, NeedSpace, SlotFreed, SlotOwner
from renderer.protocol import (CancelJob, FrameRequest, JobDone, JobProgress, JobRequest, JobSpec, RenderArgs,
                               RenderResult, StatusRequest, StopWorker, WorkerStatus)
from renderer.remote.backend import RemoteBackend
from renderer.remote.client import LinkState, RemoteClient
from renderer.remote.messages import DirectoryListing
from renderer.remote.served_files import local_listing

SHUTDOWN_WAIT_S = 5.0         # how long close() waits for the worker to finish before stopping it by force
MAX_RESTARTS = 3              # consecutive crashes without a result before giving up
POLL_S = 0.01                 # pause between polls while waiting (wait(), status())
LISTING_FRESH_S = 2.0         # a folder listing younger than this is used again as it is


def _worker_process(requests, replies, slots) -> None:
    """The spawned process's entry point; the torch side is imported here, in the child only."""
    from renderer.worker.process import main

    main(requests, replies, slots)


class _ProcessBackend:
    """The worker process, its queues and the shared-memory slots (owned here)."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._slots = SlotOwner()
        self._process = None
        self._requests = None
        self._replies = None
        self.start()

    def start(self) -> None:
        self._requests = self._ctx.Queue()
        self._replies = self._ctx.Queue()
        self._process = self._ctx.Process(target=_worker_process, name="stylegan-worker", daemon=True,
                                          args=(self._requests, self._replies, self._slots.current()))
        with tuned_children():  # frames reuse their memory instead of page-faulting it in (allocator.py)
            self._process.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def exit_code(self) -> int | None:
        """None while the process runs."""
        return None if self._process is None else self._process.exitcode

    def send(self, msg: object) -> None:
        self._requests.put(msg)

    def poll(self) -> list[object]:
        """The replies that have arrived, in order; of the frames, only the newest has its image."""
        replies: list[object] = []
        while True:
            try:
                msg = self._replies.get_nowait()
            except (queue.Empty, OSError, EOFError, ValueError, pickle.UnpicklingError):
                break  # nothing more, or the tail of a message from a worker that died writing it
            if isinstance(msg, NeedSpace):
                self._requests.put(self._slots.resize(msg.index, msg.nbytes))
            else:
                replies.append(msg)
        frames = [i for i, msg in enumerate(replies) if isinstance(msg, FrameReply)]
        for i in frames:
            frame: FrameReply = replies[i]
            if frame.slot is None:
                continue
            if i == frames[-1]:
                replies[i] = replace(frame, result=replace(frame.result, image=self._slots.read(frame)), slot=None)
            self._requests.put(SlotFreed(index=frame.slot))
        return replies

    def stop_process(self) -> None:
        """End the worker process (politely, then by force) and drop its queues."""
        process, requests, replies = self._process, self._requests, self._replies
        self._process = self._requests = self._replies = None
        if process is not None:
            if process.is_alive():
                try:
                    requests.put(StopWorker())
                except (OSError, ValueError):
                    pass
                process.join(SHUTDOWN_WAIT_S)
            if process.is_alive():
                process.terminate()
                process.join(SHUTDOWN_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join(SHUTDOWN_WAIT_S)
            process.close()
        for q in (requests, replies):
            if q is not None:
                q.close()
                q.join_thread()

    def restart(self) -> None:
        self.stop_process()
        # A worker that died mid-write may have left a slot half-written; fresh slots come on demand.
        self._slots.unlink_all()
        self.start()

    def close(self) -> None:
        self.stop_process()
        self._slots.unlink_all()


class _ThreadBackend:
    """The worker in a thread of this process (tests, and the GUI's 'own process: off')."""

    pid = None

    def __init__(self) -> None:
        self._inbox: queue.Queue = queue.Queue()
        self._outbox: queue.Queue = queue.Queue()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="stylegan-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from renderer.worker.worker import serve
        except Exception as e:  # an import failure must surface as a result, not a dead thread
            self._outbox.put(FrameReply(result=RenderResult(
                error=f"The render worker could not start: {type(e).__name__}: {e}")))
            return

        def receive(timeout: float | None) -> object:
            return self._inbox.get(timeout=timeout) if timeout else self._inbox.get_nowait()

        def deliver(result: RenderResult) -> bool:
            self._outbox.put(FrameReply(result=result))
            return True

        serve(receive, self._outbox.put, deliver, keep_going=lambda: not self._stopping)

    def exit_code(self) -> int | None:
        if self._thread.is_alive() or self._stopping:
            return None
        return 1

    def send(self, msg: object) -> None:
        self._inbox.put(msg)

    def poll(self) -> list[object]:
        replies = []
        while True:
            try:
                replies.append(self._outbox.get_nowait())
            except queue.Empty:
                return replies

    def restart(self) -> None:
        self.close()
        self.__init__()

    def close(self) -> None:
        """Ask the thread to finish; wait a bounded time (a frame in progress cannot be interrupted:
        the thread is a daemon and ends with the process)."""
        self._stopping = True
        self._inbox.put(StopWorker())
        self._thread.join(SHUTDOWN_WAIT_S)
        if self._thread.is_alive():
            print("visualizer: the in-process render worker is still busy with a frame; not waiting for it",
                  file=sys.stderr)


class JobHandle:
    """A job submitted to the worker. Poll .progress (0..1), .done, .value, .error, .cancelled;
    take_outputs() hands over partial outputs (clip frames) in order; cancel() asks the worker to stop."""

    def __init__(self, client: "RenderClient", job_id: int, spec: JobSpec) -> None:
        self._client = client
        self.job_id = job_id
        self.spec = spec
        self.progress = 0.0
        self._outputs: list[object] = []
        self._outcome: JobDone | None = None

    @property
    def done(self) -> bool:
        self._client.pump()
        return self._outcome is not None

    @property
    def value(self) -> object:
        return self._outcome.value if self.done else None

    @property
    def error(self) -> str | None:
        return self._outcome.error if self.done else None

    @property
    def cancelled(self) -> bool:
        return self.done and self._outcome.cancelled

    def take_outputs(self) -> list[object]:
        self._client.pump()
        outputs, self._outputs = self._outputs, []
        return outputs

    def cancel(self) -> None:
        if self._outcome is None:
            self._client.cancel(self)

    close = cancel

    def wait(self, timeout: float | None = None) -> bool:
        """Pump the client until the job is done (or timeout); True if done. For scripts and tests."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)
        return True

    # Called by the client.
    def _progress(self, msg: JobProgress) -> None:
        self.progress = msg.done / msg.total if msg.total else 1.0
        if msg.output is not None:
            self._outputs.append(msg.output)

    def _finish(self, msg: JobDone) -> None:
        if self._outcome is None:
            self._outcome = msg
            if msg.error is None and not msg.cancelled:
                self.progress = 1.0


class RenderClient:
    """Send RenderArgs, get RenderResults; the newest request wins. Submit jobs; get JobHandles.

    set_args() with args equal to the last sent ones does nothing. get_result() returns the newest
    finished result not yet returned, never one older than a result already returned. A worker that
    dies is restarted with the latest args and the next result says so; a model whose frames crash the
    worker MAX_RESTARTS times in a row is not tried again until another model is chosen.
    """

    def __init__(self, in_process: bool = False, remote: RemoteClient | None = None) -> None:
        self.in_process = in_process and remote is None
        self.remote = remote                  # the link to a worker on another machine, or None
        self._backend: _ProcessBackend | _ThreadBackend | RemoteBackend = (
            RemoteBackend(remote) if remote is not None else _ThreadBackend() if in_process else _ProcessBackend())
        self._finalizer = weakref.finalize(self, self._backend.close)
        self._stamp = 0                       # of the latest request
        self._last_args: RenderArgs | None = None
        self._received_stamp = 0              # newest result received from the worker
        self._returned_stamp = 0              # newest result handed to the caller
        self._unreturned: RenderResult | None = None
        self._notice: str | None = None       # attached to the next result returned
        self._crashes = 0                     # consecutive, since the last result
        self._gave_up_on: str | None = None   # the model whose frames kept crashing the worker
        self._job_ids = itertools.count(1)
        self._jobs: dict[int, JobHandle] = {}
        self._status: WorkerStatus | None = None
        self._listings: dict[str, tuple[float, DirectoryListing]] = {}
        self._link_state: LinkState | None = None
        self.frames_rendered = 0              # results received from the worker, superseded ones included

    @property
    def pid(self) -> int | None:
        """The worker process id (None in in-process and remote mode, or after close())."""
        return None if self._finalizer.alive is False else self._backend.pid

    @property
    def is_busy(self) -> bool:
        """A frame request is being rendered or waits to be."""
        self.pump()
        return self._received_stamp < self._stamp and self._gave_up_on is None

    # Frames ---------------------------------------------------------------------------------

    def set_args(self, args: RenderArgs) -> None:
        self._ensure_open()
        self.pump()
        if args == self._last_args:
            return
        self._last_args = args
        if self._gave_up_on is not None:
            if args.model == self._gave_up_on:
                return
            self._gave_up_on = None
            self._crashes = 0
        self._stamp += 1
        self._backend.send(FrameRequest(stamp=self._stamp, args=args))

    def get_result(self) -> RenderResult | None:
        self._ensure_open()
        self.pump()
        result, self._unreturned = self._unreturned, None
        if result is None:
            return None
        self._returned_stamp = result.stamp
        if self._notice:
            result.message = self._notice if not result.message else f"{self._notice} {result.message}"
            self._notice = None
        return result

    # Jobs -----------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> JobHandle:
        """Start a job in the worker; poll the handle (or wait() on it)."""
        self._ensure_open()
        handle = JobHandle(self, next(self._job_ids), spec)
        self._jobs[handle.job_id] = handle
        self._backend.send(JobRequest(job_id=handle.job_id, spec=spec))
        return handle

    def cancel(self, handle: JobHandle) -> None:
        if self._finalizer.alive and handle.job_id in self._jobs:
            self._backend.send(CancelJob(job_id=handle.job_id))

    def status(self, timeout: float = 30.0) -> WorkerStatus | None:
        """Ask the worker how it stands (model loads, cached models, jobs); None if it does not answer
        (at once for a remote worker that is not connected)."""
        self._ensure_open()
        if self.remote is not None and self.remote.status.state != LinkState.CONNECTED:
            return None
        self._status = None
        self._backend.send(StatusRequest())
        deadline = time.monotonic() + timeout
        while self._status is None and time.monotonic() < deadline:
            time.sleep(POLL_S)
            self.pump()
        return self._status

    # Files ----------------------------------------------------------------------------------

    def list_models(self, path: str, timeout: float = 0.0) -> DirectoryListing | None:
        """The folders, training runs and models in `path` (the model browser, follow run): for a remote
        worker the server's, relative to its root; for a local one this machine's, by the same rules. A
        listing younger than LISTING_FRESH_S is used again; an older one is returned while a newer one is
        asked for. None until the first listing of `path` arrives (waiting up to `timeout` seconds)."""
        self._ensure_open()
        self.pump()
        cached = self._listings.get(path)
        if cached is None or time.monotonic() - cached[0] > LISTING_FRESH_S:
            if isinstance(self._backend, RemoteBackend):
                self._backend.ask_listing(path)
            else:
                self._take([local_listing(path)])
        deadline = time.monotonic() + timeout
        while path not in self._listings and time.monotonic() < deadline:
            time.sleep(POLL_S)
            self.pump()
        cached = self._listings.get(path)
        return cached[1] if cached is not None else None

    # Lifetime -------------------------------------------------------------------------------

    def restart(self) -> None:
        """Start a fresh worker (and re-send the latest args); running jobs are lost."""
        self._ensure_open()
        self._restart_backend()
        self._gave_up_on = None
        self._crashes = 0
        self._resend()

    def close(self) -> None:
        """Stop the worker; no process and no shared-memory segment is left behind."""
        if self._finalizer.alive:
            self._lose_jobs("The visualizer closed before the job finished.")
        self._finalizer()

    def __enter__(self) -> "RenderClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_open(self) -> None:
        if not self._finalizer.alive:
            raise RuntimeError("this RenderClient is closed")

    def _restart_backend(self) -> None:
        self._backend.restart()

    def _resend(self) -> None:
        if self._last_args is not None:
            self._stamp += 1
            self._backend.send(FrameRequest(stamp=self._stamp, args=self._last_args))

    def _lose_jobs(self, why: str) -> None:
        for job_id, handle in list(self._jobs.items()):
            handle._finish(JobDone(job_id=job_id, error=why))
        self._jobs.clear()

    def pump(self) -> None:
        """Take what the worker has sent; restart it if it died."""
        if not self._finalizer.alive:
            return
        self._take(self._backend.poll())
        if self.remote is not None:
            self._follow_link()
        code = self._backend.exit_code()
        if code is None:
            return
        self._take(self._backend.poll())  # what it finished before it died
        what = f"The render worker stopped unexpectedly (exit code {code})"
        self._lose_jobs(f"{what} while this job ran; the job was lost. Start it again.")
        self._restart_backend()
        if self._gave_up_on is not None:
            return  # that model's frames are not sent again
        self._crashes += 1
        if self._crashes >= MAX_RESTARTS:
            model = self._last_args.model if self._last_args is not None else ""
            self._gave_up_on = model
            name = Path(model).name if model else "the current settings"
            self._accept(RenderResult(stamp=self._stamp, args=self._last_args, error=(
                f"{what} {self._crashes} times in a row while rendering {name}; it is not tried again. "
                "The file may be damaged or made to crash the loader: choose another model (or device).")))
            return
        self._notice = f"{what} and was restarted."
        self._resend()

    def _take(self, replies: list[object]) -> None:
        for msg in replies:
            if isinstance(msg, FrameReply):
                self._accept(msg.result)
            elif isinstance(msg, JobProgress):
                handle = self._jobs.get(msg.job_id)
                if handle is not None:
                    handle._progress(msg)
            elif isinstance(msg, JobDone):
                handle = self._jobs.pop(msg.job_id, None)
                if handle is not None:
                    handle._finish(msg)
            elif isinstance(msg, WorkerStatus):
                self._status = msg
            elif isinstance(msg, DirectoryListing):
                self._listings[msg.asked] = (time.monotonic(), msg)

    def _follow_link(self) -> None:
        """A remote worker's link coming back is said with the next result (its loss is in .remote.status)."""
        status = self.remote.status
        if status.state == self._link_state:
            return
        if status.state == LinkState.CONNECTED and self._link_state in (LinkState.RECONNECTING, LinkState.REFUSED):
            self._notice = f"Reconnected to {status.server}" + (f" ({status.message})." if status.message else ".")
        self._link_state = status.state

    def _accept(self, result: RenderResult) -> None:
        """Keep `result` unless it is older than a result already returned or waiting to be (only the
        newest frame of a poll carries its image)."""
        self.frames_rendered += 1
        self._crashes = 0
        self._received_stamp = max(self._received_stamp, result.stamp)
        kept = self._unreturned.stamp if self._unreturned is not None else self._returned_stamp
        if result.stamp > kept and (result.image is not None or result.error is not None or
                                    self._unreturned is None):
            self._unreturned = result
