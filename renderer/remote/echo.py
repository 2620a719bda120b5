"""A stand-in worker behind `serve`, without a model or torch: for the tests, the benchmark, and for
checking a tunnel and its bandwidth before a GPU job is set up.

It answers each FrameRequest with one fixed image whose first pixel holds the first seed (mod 256),
so that a reader can tell which request a frame answers, and each JobRequest with the name of its
request's class as the value, after `job_steps` progress reports. A StatusRequest is answered too.

    VIZ_TOKEN=... python -m renderer.remote.echo [serve options] [--size 1024] [--image frame.npy]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Callable

import numpy as np

from renderer.frame_slots import FrameReply
from renderer.protocol import (CancelJob, FrameRequest, JobDone, JobProgress, JobRequest, RenderResult, StatusRequest,
                               WorkerStatus)
from renderer.remote.options import add_serve_options, run_server


class EchoHandler:
    def __init__(self, image: np.ndarray, render_seconds: float = 0.0, job_steps: int = 3) -> None:
        self.image = image
        self.render_seconds = render_seconds
        self.job_steps = job_steps
        self.frames_requested = 0             # FrameRequests handled (superseded ones included)
        self.frames_rendered = 0
        self.messages: list[object] = []      # everything handled, in order
        self._send: Callable[[object], None] | None = None
        self._frame: FrameRequest | None = None
        self._jobs: dict[int, tuple[JobRequest, int]] = {}

    def open(self, send: Callable[[object], None]) -> None:
        self._send = send
        self._frame, self._jobs = None, {}

    def handle(self, message: object) -> None:
        self.messages.append(message)
        if isinstance(message, FrameRequest):
            self.frames_requested += 1
            self._frame = message  # latest wins
        elif isinstance(message, JobRequest):
            self._jobs[message.job_id] = (message, 0)
        elif isinstance(message, CancelJob) and self._jobs.pop(message.job_id, None) is not None:
            self._send(JobDone(message.job_id, cancelled=True))
        elif isinstance(message, StatusRequest):
            self._send(WorkerStatus(pid=os.getpid(), model_loads=0, models=(), jobs=len(self._jobs)))

    def poll(self) -> bool:
        if self._frame is not None:
            request, self._frame = self._frame, None
            time.sleep(self.render_seconds)  # the render this handler stands in for
            image = self.image.copy()
            image[0, 0, :] = request.args.latent[0][0] % 256 if request.args.latent else 0
            self.frames_rendered += 1
            self._send(FrameReply(result=RenderResult(stamp=request.stamp, args=request.args, image=image,
                                                      render_time=self.render_seconds, device="echo")))
        elif self._jobs:
            job_id, (request, step) = next(iter(self._jobs.items()))
            if step < self.job_steps:
                self._jobs[job_id] = (request, step + 1)
                self._send(JobProgress(job_id, done=step + 1, total=self.job_steps + 1))
            else:
                del self._jobs[job_id]
                self._send(JobDone(job_id, value=type(request.spec).__name__))
        return self._frame is not None or bool(self._jobs)

    def close(self) -> None:
        self._send, self._frame, self._jobs = None, None, {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m renderer.remote.echo", description=__doc__.splitlines()[0])
    add_serve_options(parser)
    parser.add_argument("--size", type=int, default=1024, help="side of the grey test frame")
    parser.add_argument("--image", help="a .npy of a uint8 H x W x 3 frame to serve instead")
    parser.add_argument("--render-seconds", type=float, default=0.0)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if options.image:
        image = np.load(options.image, allow_pickle=False)
    else:
        image = np.full((options.size, options.size, 3), 128, np.uint8)
    return run_server(options, EchoHandler(image, options.render_seconds))


if __name__ == "__main__":
    sys.exit(main())
