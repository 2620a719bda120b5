"""Offline, frame-exact clips: one RenderArgs per frame -> MP4 (H.264), GIF, or a folder of PNGs.

render_clip() does the work (in whatever process calls it); ExportJob runs it in a spawned
background process that the GUI polls once per frame. The output appears under its final name
only when complete: frames go to a temporary name in the same directory, renamed at the end, and
a cancelled or failed export leaves nothing behind. Torch is imported only when rendering starts.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import shutil
import signal
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from renderer.protocol import CLIP_FORMATS, ClipSpec

PNG_FRAME_NAME = "frame_{:05d}.png"


class ExportError(Exception):
    """The clip could not be made; the message says why."""


class ExportCancelled(Exception):
    """The user cancelled; nothing was written."""


def output_size(height: int, width: int, spec: ClipSpec) -> tuple[int, int]:
    """(height, width) of the clip's frames: spec.size rows (width keeping the aspect) or native;
    even for MP4, whose yuv420p chroma is subsampled by two."""
    if spec.size is not None:
        width = max(1, round(width * spec.size / height))
        height = spec.size
    if spec.format == "mp4":
        height, width = max(2, height + height % 2), max(2, width + width % 2)
    return height, width


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.LANCZOS))


def _frames(spec: ClipSpec, progress: Callable[[int, int], None] | None,
            cancelled: Callable[[], bool] | None) -> Iterator[np.ndarray]:
    """Each frame rendered and sized for the clip."""
    from renderer.render import Renderer

    renderer = Renderer()
    size = None
    total = len(spec.frames)
    for index, args in enumerate(spec.frames):
        if cancelled is not None and cancelled():
            raise ExportCancelled
        result = renderer.render(args, stamp=index)
        if result.error is not None:
            raise ExportError(f"Frame {index + 1} of {total}: {result.error}")
        if size is None:
            size = output_size(result.image.shape[0], result.image.shape[1], spec)
        yield _resized(result.image, size)
        if progress is not None:
            progress(index + 1, total)


def _write_mp4(path: Path, frames: Iterator[np.ndarray], fps: float) -> None:
    import imageio.v2 as imageio

    writer = imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                                macro_block_size=1, ffmpeg_log_level="error")
    try:
        for frame in frames:
            writer.append_data(frame)
    finally:
        writer.close()


def _write_gif(path: Path, frames: Iterator[np.ndarray], fps: float) -> None:
    # GIF delays are whole hundredths of a second. Pillow merges identical consecutive frames
    # into one longer frame; the clip still plays for the same time.
    images = [Image.fromarray(frame) for frame in frames]
    if not images:
        raise ExportError("The clip has no frames.")
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=max(2, round(100 / fps)) * 10, optimize=False)


def _write_png_folder(path: Path, frames: Iterator[np.ndarray]) -> None:
    path.mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(path / PNG_FRAME_NAME.format(index))


def _replace_folder(tmp: Path, out: Path) -> None:
    """Move a finished PNG folder into place; an earlier export of ours at that name is replaced."""
    if out.exists():
        if not out.is_dir() or any(not p.name.startswith("frame_") for p in out.iterdir()):
            raise ExportError(f"{out} exists and is not a previous PNG-sequence export; choose another name.")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def render_clip(spec: ClipSpec, progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> Path:
    """Render and encode the clip; returns its path. Raises ExportError (with a message for the
    user) or ExportCancelled; in both cases nothing is left on disk."""
    if spec.format not in CLIP_FORMATS:
        raise ExportError(f"Unknown clip format {spec.format!r}; choose one of {', '.join(CLIP_FORMATS)}.")
    if not spec.frames:
        raise ExportError("The clip has no frames.")
    if not spec.fps > 0:
        raise ExportError(f"Frames per second must be positive, got {spec.fps}.")
    out = Path(spec.out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = "" if spec.format == "png" else f".{spec.format}"  # ffmpeg picks the container by extension
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    target = tmp / f"clip{suffix}"
    frames = _frames(spec, progress, cancelled)
    try:
        if spec.format == "mp4":
            _write_mp4(target, frames, spec.fps)
        elif spec.format == "gif":
            _write_gif(target, frames, spec.fps)
        else:
            _write_png_folder(target, frames)
        if spec.format == "png":
            _replace_folder(target, out)
        else:
            os.replace(target, out)
    except (ExportError, ExportCancelled):
        raise
    except Exception as e:
        raise ExportError(f"Writing {out.name} failed: {type(e).__name__}: {e}") from e
    finally:
        frames.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# The background job the GUI polls.
@dataclass(frozen=True)
class _Outcome:
    output: str | None = None
    error: str | None = None
    cancelled: bool = False


def _export_process_main(spec: ClipSpec, progress, cancel, outcomes) -> None:
    def report(done: int, total: int) -> None:
        progress.value = done / total

    def terminated(_signum: int, _frame: object) -> None:
        raise ExportCancelled  # unwinds through render_clip's cleanup: no partial file stays

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, terminated)

    try:
        path = render_clip(spec, report, cancel.is_set)
        outcomes.put(_Outcome(output=str(path)))
    except ExportCancelled:
        outcomes.put(_Outcome(cancelled=True))
    except ExportError as e:
        outcomes.put(_Outcome(error=str(e)))
    except Exception as e:
        outcomes.put(_Outcome(error=f"Export failed: {type(e).__name__}: {e}"))


def _stop_export(process, cancel) -> None:
    cancel.set()
    process.join(30)
    if process.is_alive():
        process.terminate()
        process.join(10)


class ExportJob:
    """render_clip in a background process. Poll .progress (0..1), .done, .error, .output; .cancel()."""

    def __init__(self, spec: ClipSpec) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.spec = spec
        self._progress = ctx.Value("d", 0.0)
        self._cancel = ctx.Event()
        self._outcomes = ctx.Queue()
        self._outcome: _Outcome | None = None
        self._process = ctx.Process(target=_export_process_main, name="clip-export", daemon=True,
                                    args=(spec, self._progress, self._cancel, self._outcomes))
        self._process.start()
        self._finalizer = weakref.finalize(self, _stop_export, self._process, self._cancel)

    def close(self) -> None:
        """Cancel if still running and wait for the process to end (also done at interpreter exit)."""
        self._finalizer()

    @property
    def progress(self) -> float:
        return float(self._progress.value)

    @property
    def done(self) -> bool:
        return self._poll() is not None

    @property
    def error(self) -> str | None:
        outcome = self._poll()
        return outcome.error if outcome is not None else None

    @property
    def output(self) -> Path | None:
        outcome = self._poll()
        return Path(outcome.output) if outcome is not None and outcome.output else None

    @property
    def cancelled(self) -> bool:
        outcome = self._poll()
        return outcome is not None and outcome.cancelled

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (or timeout); True if done."""
        self._process.join(timeout)
        return self.done

    def _poll(self) -> _Outcome | None:
        if self._outcome is not None:
            return self._outcome
        try:
            self._outcome = self._outcomes.get_nowait()
        except queue.Empty:
            if self._process.exitcode is not None:
                try:
                    self._outcome = self._outcomes.get(timeout=1.0)
                except queue.Empty:
                    self._outcome = _Outcome(error=f"The export process stopped unexpectedly (exit code {self._process.exitcode}).")
        if self._outcome is not None:
            self._process.join()
        return self._outcome
