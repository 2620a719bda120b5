"""The render worker: one model cache for every request of a GUI. Frames come first; background jobs
(renderer.worker.jobs) run one slice at a time between frames, in turn, so that a new frame waits at
most for the slice in progress. Transport-free: serve() below drives it from any inbox and outbox
(multiprocessing queues for the local worker process, or a thread's queues); a remote GUI's requests
take the same turns (Schedule) behind `serve` (renderer.worker.serve).
"""

from __future__ import annotations

import os
import queue
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from renderer.protocol import (CancelJob, FrameRequest, JobDone, JobProgress, JobRequest, RenderResult, StatusRequest,
                               StopWorker, WorkerStatus)
from renderer.worker import jobs
from renderer.worker.model_cache import ModelCache, ModelUnavailable
from renderer.worker.render import RenderError, Renderer, _is_out_of_memory, request_scope

IDLE_WAIT_S = 1.0             # how long an idle worker waits for a message before checking it should go on


@dataclass
class _Running:
    job_id: int
    spec: object
    run: jobs.JobRun


class Worker:
    def __init__(self) -> None:
        self.models = ModelCache()
        self.renderer = Renderer(self.models)
        self._jobs: OrderedDict[int, _Running] = OrderedDict()

    # Frames ---------------------------------------------------------------------------------

    def render(self, request: FrameRequest) -> RenderResult:
        return self.renderer.render(request.args, request.stamp)

    # Jobs -----------------------------------------------------------------------------------

    @property
    def has_jobs(self) -> bool:
        return bool(self._jobs)

    def submit(self, request: JobRequest) -> JobDone | None:
        """Queue a job; a JobDone with the reason if it cannot start."""
        try:
            run = jobs.start(request.spec, self.models)
        except jobs.JobFailed as e:
            return JobDone(job_id=request.job_id, error=str(e))
        self._jobs[request.job_id] = _Running(request.job_id, request.spec, run)
        return None

    def cancel(self, job_id: int) -> JobDone | None:
        running = self._jobs.pop(job_id, None)
        if running is None:
            return None
        running.run.close()
        return JobDone(job_id=job_id, cancelled=True)

    def step(self) -> JobProgress | JobDone | None:
        """Run one slice of the job whose turn it is (jobs take turns); its progress or its end."""
        if not self._jobs:
            return None
        job_id, running = next(iter(self._jobs.items()))
        self._jobs.move_to_end(job_id)
        try:
            with request_scope(jobs.job_args(running.spec)):
                step = next(running.run)
        except StopIteration as stop:
            del self._jobs[job_id]
            return JobDone(job_id=job_id, value=stop.value)
        except Exception as e:  # every failure ends the job with a message; the worker goes on
            del self._jobs[job_id]
            return JobDone(job_id=job_id, error=self._describe(e))
        return JobProgress(job_id=job_id, done=step.done, total=step.total, output=step.output)

    def _describe(self, e: BaseException) -> str:
        if isinstance(e, (jobs.JobFailed, RenderError, ModelUnavailable)):
            return str(e)
        if _is_out_of_memory(e):
            self.renderer.release_memory()
            return "Out of memory while running it. Try fewer images, a smaller model, or another device."
        return f"{type(e).__name__}: {e}"

    def status(self) -> WorkerStatus:
        return WorkerStatus(pid=os.getpid(), model_loads=self.models.loads, models=self.models.files(),
                            jobs=len(self._jobs))

    def close(self) -> None:
        for job_id in list(self._jobs):
            self.cancel(job_id)


class Schedule:
    """The order in which the worker takes a GUI's requests, whatever carries them (serve() below for a
    local GUI, renderer.worker.serve for a remote one): only the newest frame request is rendered, and
    while jobs wait, frames and job slices take turns, so that a new frame waits for at most one slice
    and an animation (a new frame request after every frame) does not starve the jobs."""

    def __init__(self, worker: Worker, send: Callable[[object], None]) -> None:
        self.worker = worker
        self._send = send                     # job replies, status
        self.frame: FrameRequest | None = None  # the newest frame request not yet rendered
        self._job_turn_done = True            # a job slice ran since the last frame

    def take(self, msg: object) -> bool:
        """Note a request (replies that are due at once are sent); False if `msg` is not one."""
        if isinstance(msg, FrameRequest):
            self.frame = msg
        elif isinstance(msg, JobRequest):
            self._reply(self.worker.submit(msg))
        elif isinstance(msg, CancelJob):
            self._reply(self.worker.cancel(msg.job_id))
        elif isinstance(msg, StatusRequest):
            self._send(self.worker.status())
        else:
            return False
        return True

    def has_work(self, frames_held: bool = False) -> bool:
        """Something to run: a frame (unless the transport holds frames back) or a job."""
        return (self.frame is not None and not frames_held) or self.worker.has_jobs

    def run_next(self, frames_held: bool = False) -> RenderResult | None:
        """Run the next piece of work: the frame's result, to hand over; None after a job slice (its
        progress or end is sent) or when there is nothing to do."""
        if self.frame is not None and not frames_held and (not self.worker.has_jobs or self._job_turn_done):
            request, self.frame = self.frame, None
            self._job_turn_done = False
            return self.worker.render(request)
        if self.worker.has_jobs:
            self._job_turn_done = True
            self._reply(self.worker.step())
        return None

    def _reply(self, reply: object | None) -> None:
        if reply is not None:
            self._send(reply)


def serve(receive: Callable[[float | None], object], send: Callable[[object], None],
          deliver: Callable[[RenderResult], bool], take: Callable[[object], bool] = lambda msg: False,
          keep_going: Callable[[], bool] = lambda: True) -> None:
    """Serve requests until a StopWorker arrives or keep_going() turns False.

    receive(timeout) returns the next message or raises queue.Empty (timeout None: do not wait);
    send(reply) hands a reply to the client; deliver(result) hands a frame over and returns False while
    the transport cannot take it yet (it is offered again, and no new frame is rendered meanwhile);
    take(msg) consumes transport messages. Between two pieces of work the worker reads every waiting
    message, so only the newest frame request is rendered (Schedule).
    """
    worker = Worker()
    schedule = Schedule(worker, send)
    ready: RenderResult | None = None
    try:
        while True:
            if ready is not None and deliver(ready):
                ready = None
            idle = not schedule.has_work(frames_held=ready is not None)
            wait: float | None = IDLE_WAIT_S if idle else None
            while True:
                try:
                    msg = receive(wait)
                except queue.Empty:
                    break
                wait = None
                if isinstance(msg, StopWorker):
                    return
                if not schedule.take(msg):
                    take(msg)
            if idle and not keep_going():
                return
            result = schedule.run_next(frames_held=ready is not None)
            if result is not None:
                ready = result
    finally:
        worker.close()
