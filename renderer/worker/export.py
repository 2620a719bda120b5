"""Offline, frame-exact clips: one RenderArgs per frame -> MP4 (H.264), GIF, or a folder of PNGs.

render_clip() does the work (in whatever process calls it); ExportJob runs it in a spawned
background process that the GUI polls once per frame. The output appears under its final name
only when complete: frames go to a temporary name in the same directory, renamed at the end, and
a cancelled or failed export leaves nothing behind. Torch is imported only when rendering starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from renderer.background import BackgroundJob, JobCancelled, JobFailed
from renderer.protocol import CLIP_FORMATS, ClipSpec

PNG_FRAME_NAME = "frame_{:05d}.png"


class ExportError(JobFailed):
    """The clip could not be made; the message says why."""


class ExportCancelled(JobCancelled):
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
    from renderer.worker.render import Renderer

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
    except (ExportError, JobCancelled):  # JobCancelled: also SIGTERM in the background process
        raise
    except Exception as e:
        raise ExportError(f"Writing {out.name} failed: {type(e).__name__}: {e}") from e
    finally:
        frames.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# The background job the GUI polls (renderer.background runs it in a spawned process).
def _export_work(spec: ClipSpec, report: Callable[[int, int], None], cancelled: Callable[[], bool]) -> str:
    return str(render_clip(spec, report, cancelled))


class ExportJob(BackgroundJob[str]):
    """render_clip in a background process. Poll .progress (0..1), .done, .error, .output; .cancel()."""

    def __init__(self, spec: ClipSpec) -> None:
        super().__init__(_export_work, spec, name="clip-export", failure="Export failed")
        self.spec = spec

    @property
    def output(self) -> Path | None:
        value = self.value
        return Path(value) if value else None
