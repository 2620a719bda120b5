"""Clip export: the current animation (latent, style mix, translation, rotation) or recorded keyframes,
rendered frame-exactly offline for a chosen duration, fps and size, to MP4, GIF or PNGs, in the
background with a progress bar and Cancel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, grayed_out
from renderer.conventions import as_matrix3, user_transform, weighted_seeds
from renderer.protocol import CLIP_FORMATS, ClipSpec, RenderArgs
from viz.capture_widget import next_free

SOURCES = ("Current animation", "Keyframes")
FORMAT_LABELS = {"mp4": "MP4 (H.264)", "gif": "GIF", "png": "PNG sequence"}


@dataclass(frozen=True)
class Keyframe:
    args: RenderArgs
    position: tuple[float, float]          # latent x, y
    translate: tuple[float, float]
    rotate: float


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


class ClipWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.source = 0
        self.keyframes: list[Keyframe] = []
        self.duration = 2.0
        self.fps = 10.0
        self.height = 0                    # 0: native resolution
        self.format = "mp4"
        self.job = None
        self.last_output: str | None = None

    # Frames -------------------------------------------------------------------------------

    def num_frames(self) -> int:
        return max(1, round(self.duration * self.fps))

    def animation_frames(self) -> tuple[RenderArgs, ...]:
        viz = self.viz
        frames = []
        for i in range(self.num_frames()):
            args, t = viz.args, i / self.fps
            for widget in (viz.latent, viz.stylemix, viz.equivariance):
                args = widget.args_at(args, t)
            frames.append(args)
        return tuple(frames)

    def record_keyframe(self) -> None:
        viz = self.viz
        translate, rotate = viz.equivariance.transform_at(0.0)
        self.keyframes.append(Keyframe(viz.args, (viz.latent.x, viz.latent.y), translate, rotate))

    def keyframe_frames(self) -> tuple[RenderArgs, ...]:
        """Piecewise-linear latent position, translation and rotation through the keyframes, the other
        settings of each segment from its first keyframe."""
        keys = self.keyframes
        n = self.num_frames()
        has_transform = self.viz.model_info.has_input_transform
        frames = []
        for i in range(n):
            u = (i / max(1, n - 1)) * (len(keys) - 1)
            k = min(int(u), len(keys) - 2) if len(keys) > 1 else 0
            a, b = keys[k], keys[min(k + 1, len(keys) - 1)]
            f = u - k
            args = a.args
            if args.w_file is None:
                args = args.replace(latent=weighted_seeds(_lerp(a.position[0], b.position[0], f),
                                                          _lerp(a.position[1], b.position[1], f)))
            if has_transform:
                translate = (_lerp(a.translate[0], b.translate[0], f), _lerp(a.translate[1], b.translate[1], f))
                args = args.replace(input_transform=as_matrix3(user_transform(translate, _lerp(a.rotate, b.rotate, f))))
            frames.append(args)
        return tuple(frames)

    # Export -------------------------------------------------------------------------------

    def export(self) -> Path | None:
        try:
            from renderer.client import ExportJob
        except ImportError:
            from renderer.worker.export import ExportJob

        viz = self.viz
        if self.busy:
            return None
        if SOURCES[self.source] == "Keyframes" and not self.keyframes:
            viz.note("record at least one keyframe first")
            return None
        frames = self.keyframe_frames() if SOURCES[self.source] == "Keyframes" else self.animation_frames()
        directory = Path(viz.capture.directory).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        out = next_free(directory, "clip", "" if self.format == "png" else f".{self.format}")
        spec = ClipSpec(out_path=str(out), frames=frames, fps=float(self.fps), format=self.format,
                        size=self.height or None)
        self.job = ExportJob(spec)
        viz.note(f"exporting {len(frames)} frames to {out}")
        return out

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.done

    def cancel(self) -> None:
        if self.busy:
            self.job.cancel()

    def _poll(self) -> None:
        job = self.job
        if job is None or not job.done:
            return
        if job.error:
            self.viz.note(f"clip export failed: {job.error}")
        elif job.output:
            self.last_output = str(job.output)
            self.viz.note(f"exported {job.output}")
        else:
            self.viz.note("clip export cancelled")
        self.job = None

    def __call__(self, show: bool) -> None:
        self._poll()
        if not show:
            return
        lay = self.viz.layout
        with grayed_out(self.busy):
            _, self.source = imgui.combo("Source", self.source, list(SOURCES))
            if SOURCES[self.source] == "Keyframes":
                if button("Add keyframe", lay.button_width * 1.3):
                    self.record_keyframe()
                imgui.same_line()
                if button("Clear keyframes", lay.button_width * 1.3, enabled=bool(self.keyframes)):
                    self.keyframes = []
                imgui.same_line()
                imgui.text(f"{len(self.keyframes)} keyframes")
            with imgui_utils.item_width(lay.small_input_width):
                changed, duration = imgui.input_float("Duration (s)", self.duration, 0.5, 5.0, "%.1f")
                if changed:
                    self.duration = max(0.1, duration)
                imgui.same_line()
                changed, fps = imgui.input_float("FPS", self.fps, 1.0, 10.0, "%.0f")
                if changed:
                    self.fps = max(1.0, fps)
            with imgui_utils.item_width(lay.small_input_width):
                changed, height = imgui.input_int("Height (px, 0 = native)", self.height, 16, 128)
                if changed:
                    self.height = max(0, height)
            idx = CLIP_FORMATS.index(self.format)
            changed, idx = imgui.combo("Format", idx, [FORMAT_LABELS[f] for f in CLIP_FORMATS])
            if changed:
                self.format = CLIP_FORMATS[idx]
            if button("Export clip", lay.button_width * 1.3, enabled=not self.busy):
                self.export()
        if self.job is not None:
            imgui.same_line()
            if button("Cancel", lay.button_width):
                self.cancel()
            imgui.progress_bar(float(self.job.progress), imgui.ImVec2(-1, 0),
                               f"{self.job.progress * 100:.0f} %")
        elif self.last_output:
            imgui.same_line()
            imgui.text_disabled(Path(self.last_output).name)
        imgui.text_disabled(f"{self.num_frames()} frames")
