"""Clip export: the current animation (latent, style mix, translation, rotation) or recorded keyframes,
rendered frame-exactly offline for a chosen duration, fps and size, to MP4, GIF or PNGs, in the
background with a progress bar and Cancel."""

from __future__ import annotations

from pathlib import Path

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, grayed_out
from renderer.clip_writer import ClipExport, ClipWriteError
from renderer.protocol import CLIP_FORMATS, ClipSpec, Keyframe, RenderArgs
from renderer.timeline import MAX_CLIP_FRAMES, check_clip
from viz.capture_widget import next_free

SOURCES = ("Current animation", "Keyframes")
FORMAT_LABELS = {"mp4": "MP4 (H.264)", "gif": "GIF", "png": "PNG sequence"}
FPS_RANGE = (1.0, 240.0)
HEIGHT_RANGE = (0, 8192)                 # 0: native


class ClipWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.source = 0
        self.keyframes: list[Keyframe] = []
        self.duration = 2.0
        self.fps = 10.0
        self.height = 0                    # 0: native resolution
        self.format = "mp4"
        self.job: ClipExport | None = None
        self.last_output: str | None = None
        self.last_spec: ClipSpec | None = None  # of the latest export started
        self.last_rendered_with: tuple[str, str] | None = None  # (op path, precision) of the last clip

    # Frames -------------------------------------------------------------------------------

    def num_frames(self) -> int:
        return min(MAX_CLIP_FRAMES, max(1, round(self.duration * self.fps)))

    def max_duration(self) -> float:
        return MAX_CLIP_FRAMES / self.fps

    def spec(self, args: RenderArgs, out_path: str) -> ClipSpec:
        """The clip as described by the current settings (frames are computed by the worker, one by one)."""
        keyframes = SOURCES[self.source] == "Keyframes"
        return ClipSpec(out_path=out_path, base=args, num_frames=self.num_frames(),
                        motion=None if keyframes else self.viz.animation(), keyframes=tuple(self.keyframes),
                        fps=float(self.fps), format=self.format, size=self.height or None)

    def record_keyframe(self, args: RenderArgs) -> None:
        viz = self.viz
        if viz.model_info.has_input_transform:
            translate, rotate = viz.equivariance.transform_at(0.0)
        else:
            translate, rotate = (0.0, 0.0), 0.0
        self.keyframes.append(Keyframe(args, (viz.latent.x, viz.latent.y), translate, rotate))

    # Export -------------------------------------------------------------------------------

    def export(self, args: RenderArgs) -> Path | None:
        """Start exporting with the frame's finished args (main_window runs this after build_args)."""
        viz = self.viz
        if self.busy:
            return None
        directory = Path(viz.capture.directory).expanduser()
        out = next_free(directory, "clip", "" if self.format == "png" else f".{self.format}")
        spec = self.spec(args, str(out))
        try:
            check_clip(spec)
            directory.mkdir(parents=True, exist_ok=True)
            self.job = ClipExport(viz.client.submit(spec), spec)
            self.last_spec = spec
        except (ValueError, ClipWriteError, OSError) as e:
            viz.note(f"clip export: {e}")
            return None
        viz.note(f"exporting {spec.num_frames} frames to {out}")
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
            self.last_rendered_with = job.rendered_with
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
                    self.viz.defer(self.record_keyframe)
                imgui.same_line()
                if button("Clear keyframes", lay.button_width * 1.3, enabled=bool(self.keyframes)):
                    self.keyframes = []
                imgui.same_line()
                imgui.text(f"{len(self.keyframes)} keyframes")
            with imgui_utils.item_width(lay.small_input_width):
                changed, duration = imgui.input_float("Duration (s)", self.duration, 0.5, 5.0, "%.1f")
                imgui_utils.items.record("Duration (s)")
                if changed:
                    self.duration = min(max(0.1, duration), self.max_duration())
                imgui.same_line()
                changed, fps = imgui.input_float("FPS", self.fps, 1.0, 10.0, "%.0f")
                if changed:
                    self.fps = min(max(FPS_RANGE[0], fps), FPS_RANGE[1])
                    self.duration = min(self.duration, self.max_duration())
            with imgui_utils.item_width(lay.small_input_width):
                changed, height = imgui.input_int("Height (px, 0 = native)", self.height, 16, 128)
                if changed:
                    self.height = min(max(HEIGHT_RANGE[0], height), HEIGHT_RANGE[1])
            idx = CLIP_FORMATS.index(self.format)
            changed, idx = imgui.combo("Format", idx, [FORMAT_LABELS[f] for f in CLIP_FORMATS])
            if changed:
                self.format = CLIP_FORMATS[idx]
            if button("Export clip", lay.button_width * 1.3, enabled=not self.busy):
                self.viz.defer(self.export)
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
