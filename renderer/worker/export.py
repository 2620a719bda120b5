"""A clip rendered and written in this process (scripts, the CLI and tests): the worker's clip job
(renderer.worker.jobs.clip_frames) feeding renderer.clip_writer. The GUI runs the same job in its
worker and writes the frames on its side (renderer.clip_writer.ClipExport)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from renderer.clip_writer import ClipWriteError, ClipWriter
from renderer.protocol import ClipFrame, ClipSpec
from renderer.worker import jobs
from renderer.worker.model_cache import ModelCache


class ExportError(Exception):
    """The clip could not be made; the message says why."""


class ExportCancelled(Exception):
    """The caller cancelled; nothing was written."""


def render_clip(spec: ClipSpec, progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None, models: ModelCache | None = None) -> Path:
    """Render and write the clip; returns its path. Raises ExportError (with a message for the user)
    or ExportCancelled; in both cases nothing is left on disk."""
    try:
        writer = ClipWriter(spec)
    except (ClipWriteError, OSError) as e:
        raise ExportError(str(e)) from None

    def on_step(step: jobs.Step) -> None:
        if isinstance(step.output, ClipFrame):
            writer.add(step.output.image)
        if progress is not None:
            progress(step.done, step.total)
        if cancelled is not None and cancelled():
            raise ExportCancelled

    try:
        jobs.run_to_end(spec, models, on_step)
        return writer.finish()
    except ExportCancelled:
        writer.abort()
        raise
    except (jobs.JobFailed, ClipWriteError) as e:
        writer.abort()
        raise ExportError(str(e)) from None
    except BaseException:
        writer.abort()
        raise
