"""What every background job of the worker shares: a slice's Step, the job's failure, and the
network a job runs on (renderer.worker.jobs and renderer.worker.explore_jobs hold the jobs)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Generator, TypeVar

import torch
from torch import nn

from renderer.protocol import RenderArgs
from renderer.worker.model_cache import ModelCache, ModelUnavailable
from renderer.worker.render import RenderError, resolve_device


class JobFailed(Exception):
    """The job cannot finish; the message says why, in words for the user."""


@dataclass(frozen=True)
class Step:
    """What a slice achieved: done of total units, and an output for the client (clip frames)."""
    done: int
    total: int
    output: object = None


JobRun = Generator[Step, None, object]
T = TypeVar("T")
WAIT_PER_SLICE = 0.05       # seconds a slice waits for work done in the background


def in_background(work: Callable[[], T], done: int = 0, total: int = 1) -> Generator[Step, None, T]:
    """`yield from in_background(work)`: run `work` (one long call, such as reading a large file) in a
    thread while the job goes on yielding slices of at most WAIT_PER_SLICE, so frames are served
    meanwhile; returns what it returned, or raises what it raised. A cancelled job leaves the thread
    to finish on its own (its result is dropped)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as e:  # handed to the job, which raises it in its own thread
            outcome["error"] = e

    thread = threading.Thread(target=run, name="job-background", daemon=True)
    thread.start()
    while True:
        thread.join(WAIT_PER_SLICE)
        if not thread.is_alive():
            break
        yield Step(done, total)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def network(models: ModelCache, args: RenderArgs) -> tuple[nn.Module, torch.device]:
    """The generator of args.model on args.device, from the worker's cache."""
    if not args.model:
        raise JobFailed("No model is loaded.")
    try:
        device, _ = resolve_device(args.device)
        model, _ = models.get(args.model, device)
    except (RenderError, ModelUnavailable) as e:
        raise JobFailed(str(e)) from None
    return model.G, device
