"""What every background job of the worker shares: a slice's Step, the job's failure, and the
network a job runs on (renderer.worker.jobs and renderer.worker.explore_jobs hold the jobs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

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
