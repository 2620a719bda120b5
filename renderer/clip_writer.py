"""Writing a clip where the user asked for it: frames -> MP4 (H.264), GIF, or a folder of PNGs.

The worker renders a clip's frames (a job); they are encoded here, on the client's machine. The
output appears under its final name only when complete: frames go to a temporary folder beside it
(`.<name>.<pid>-XXXX.partial`), renamed at the end, and an aborted or failed clip leaves nothing
behind (renderer.files.remove_stale_temporaries cleans up after a killed process). Torch-free.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from renderer.protocol import ClipSpec

PNG_FRAME_NAME = "frame_{:05d}.png"
QUEUE_FRAMES = 64             # frames waiting for the encoder before add() blocks


class ClipWriteError(Exception):
    """The clip could not be written; the message says why."""


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


class ClipWriter:
    """add() frames in order, then finish() (renames into place and returns the path) or abort()."""

    def __init__(self, spec: ClipSpec) -> None:
        self.spec = spec
        self.out = Path(spec.out_path)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if spec.format == "png" and self.out.exists() and not _is_png_sequence(self.out):
            raise ClipWriteError(f"{self.out} exists and is not a previous PNG-sequence export; choose another name.")
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.{os.getpid()}-", suffix=".partial",
                                          dir=self.out.parent))
        suffix = "" if spec.format == "png" else f".{spec.format}"  # ffmpeg picks the container by extension
        self._target = self._tmp / f"clip{suffix}"
        self._size: tuple[int, int] | None = None
        self._count = 0
        self._gif: list[Image.Image] = []
        self._mp4 = None
        if spec.format == "png":
            self._target.mkdir()

    def add(self, image: np.ndarray) -> None:
        if self._size is None:
            self._size = output_size(image.shape[0], image.shape[1], self.spec)
        frame = _resized(image, self._size)
        try:
            if self.spec.format == "mp4":
                self._mp4_writer().append_data(frame)
            elif self.spec.format == "gif":
                self._gif.append(Image.fromarray(frame))
            else:
                Image.fromarray(frame).save(self._target / PNG_FRAME_NAME.format(self._count))
        except Exception as e:
            self.abort()
            raise ClipWriteError(f"Writing {self.out.name} failed: {type(e).__name__}: {e}") from None
        self._count += 1

    def _mp4_writer(self):
        if self._mp4 is None:
            import imageio.v2 as imageio

            self._mp4 = imageio.get_writer(self._target, format="FFMPEG", mode="I", fps=self.spec.fps,
                                           codec="libx264", pixelformat="yuv420p", macro_block_size=1,
                                           ffmpeg_log_level="error")
        return self._mp4

    def finish(self) -> Path:
        if self._count == 0:
            self.abort()
            raise ClipWriteError("The clip has no frames.")
        try:
            if self._mp4 is not None:
                self._mp4.close()
                self._mp4 = None
            if self.spec.format == "gif":
                # GIF delays are whole hundredths of a second. Pillow merges identical consecutive frames
                # into one longer frame; the clip still plays for the same time.
                self._gif[0].save(self._target, format="GIF", save_all=True, append_images=self._gif[1:], loop=0,
                                  duration=max(2, round(100 / self.spec.fps)) * 10, optimize=False)
                self._gif = []
            if self.spec.format == "png":
                _replace_folder(self._target, self.out)
            else:
                os.replace(self._target, self.out)
        except ClipWriteError:
            self.abort()
            raise
        except Exception as e:
            self.abort()
            raise ClipWriteError(f"Writing {self.out.name} failed: {type(e).__name__}: {e}") from None
        shutil.rmtree(self._tmp, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        """Drop everything written so far."""
        if self._mp4 is not None:
            try:
                self._mp4.close()
            except Exception:  # the encoder may already be broken; the folder goes anyway
                pass
            self._mp4 = None
        self._gif = []
        shutil.rmtree(self._tmp, ignore_errors=True)


def _is_png_sequence(path: Path) -> bool:
    return path.is_dir() and all(p.name.startswith("frame_") for p in path.iterdir())


def _replace_folder(tmp: Path, out: Path) -> None:
    """Move a finished PNG folder into place; an earlier export of ours at that name is replaced."""
    if out.exists():
        if not _is_png_sequence(out):
            raise ClipWriteError(f"{out} exists and is not a previous PNG-sequence export; choose another name.")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


class ClipExport:
    """A clip being made: the worker's job renders frames, a thread here encodes them as they come.
    Call poll() regularly (the GUI does once per frame); then .done, .output, .error, .cancelled."""

    def __init__(self, job, spec: ClipSpec) -> None:
        self.job = job
        self.spec = spec
        self.output: Path | None = None
        self.rendered_with: tuple[str, str] | None = None   # (op path, precision) of the first frame
        self.error: str | None = None
        self.cancelled = False
        self._writer = ClipWriter(spec)
        self._frames: queue.Queue = queue.Queue(QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._encode, name="clip-writer", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def progress(self) -> float:
        return float(self.job.progress)

    @property
    def done(self) -> bool:
        self.poll()
        return self._closed

    def _encode(self) -> None:
        while True:
            frame = self._frames.get()
            if frame is None:
                return
            if self.error is None:
                try:
                    self._writer.add(frame)
                except ClipWriteError as e:
                    self.error = str(e)

    def poll(self) -> None:
        if self._closed:
            return
        for out in self.job.take_outputs():
            self._take(out)
        if self.error is not None and not self.job.done:
            self.job.cancel()
        if not self.job.done:
            return
        for out in self.job.take_outputs():
            self._take(out)
        self._frames.put(None)
        self._thread.join()
        self._closed = True
        if self.error is None and self.job.error is not None:
            self.error = self.job.error
        self.cancelled = self.job.cancelled and self.error is None
        if self.error is not None or self.cancelled:
            self._writer.abort()
            return
        try:
            self.output = self._writer.finish()
        except ClipWriteError as e:
            self.error = str(e)

    def _take(self, frame) -> None:
        if self.rendered_with is None:
            self.rendered_with = (frame.op_path, frame.precision)
        self._frames.put(frame.image)

    def cancel(self) -> None:
        self.job.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the clip is written, failed or cancelled (for scripts and tests); True if it ended."""
        if not self.job.wait(timeout):
            return False
        self.poll()
        return True
