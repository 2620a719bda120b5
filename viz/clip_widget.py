"""Clip export: the current animation (latent, style mix, translation, rotation) or recorded keyframes
(a list: jump to one, re-record it, delete it), rendered frame-exactly offline for a chosen duration,
fps and size, to MP4, GIF or PNGs, in the background with a progress bar and Cancel."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, grayed_out
from renderer.clip_writer import ClipExport, ClipWriteError
from renderer.protocol import CLIP_FORMATS, ClipSpec, Keyframe, RenderArgs
from renderer.timeline import MAX_CLIP_FRAMES, check_clip
from viz.capture_widget import next_free
from viz.state import CLIP_SOURCES, ClipState

SOURCES = CLIP_SOURCES
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
        self.exported_keyframes: tuple[Keyframe, ...] = ()   # the keyframes of the latest keyframe clip made
        self._exporting_keyframes: tuple[Keyframe, ...] | None = None

    def state(self) -> ClipState:
        return ClipState(source=SOURCES[self.source], keyframes=tuple(self.keyframes), duration=float(self.duration),
                         fps=float(self.fps), height=int(self.height), format=self.format)

    def restore(self, state: ClipState) -> None:
        self.source = SOURCES.index(state.source) if state.source in SOURCES else 0
        self.keyframes = list(state.keyframes)
        self.fps = min(max(FPS_RANGE[0], state.fps), FPS_RANGE[1])
        self.duration = min(max(0.1, state.duration), self.max_duration())
        self.height = min(max(HEIGHT_RANGE[0], state.height), HEIGHT_RANGE[1])
        self.format = state.format if state.format in CLIP_FORMATS else CLIP_FORMATS[0]

    def reset(self) -> None:
        """The clip settings back to their defaults; the keyframes stay (Clear keyframes removes them)."""
        self.restore(replace(ClipState(), keyframes=tuple(self.keyframes)))

    @property
    def unexported_keyframes(self) -> int:
        """Keyframes recorded or changed since the latest keyframe clip was made (0: none)."""
        return 0 if tuple(self.keyframes) == self.exported_keyframes else len(self.keyframes)

    def clear_keyframes(self, why: str | None = None) -> None:
        if self.keyframes and why:
            self.viz.note(f"{len(self.keyframes)} keyframes cleared: {why}")
        self.keyframes = []

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

    def keyframe(self, args: RenderArgs) -> Keyframe:
        """The frame of `args` as a keyframe, with the values interpolated between keyframes."""
        viz = self.viz
        if viz.model_info.has_input_transform:
            translate, rotate = viz.equivariance.transform_at(0.0)
        else:
            translate, rotate = (0.0, 0.0), 0.0
        return Keyframe(args, (float(viz.latent.x), float(viz.latent.y)), translate, rotate)

    def record_keyframe(self, args: RenderArgs) -> None:
        self.keyframes.append(self.keyframe(args))

    def rerecord(self, index: int):
        """An action (for viz.defer) that replaces keyframe `index` with the frame being built."""
        def action(args: RenderArgs) -> None:
            if 0 <= index < len(self.keyframes):
                self.keyframes[index] = self.keyframe(args)
        return action

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
            self._exporting_keyframes = spec.keyframes if spec.motion is None else None
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
            if self._exporting_keyframes is not None:
                self.exported_keyframes = self._exporting_keyframes
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
            imgui_utils.items.record("Source")
            if SOURCES[self.source] == "Keyframes":
                if button("Add keyframe", lay.button_width * 1.3):
                    self.viz.defer(self.record_keyframe)
                imgui.same_line()
                if button("Clear keyframes", lay.button_width * 1.3, enabled=bool(self.keyframes)):
                    self.keyframes = []
                imgui.same_line()
                imgui.text(f"{len(self.keyframes)} keyframes")
                self._keyframe_list()
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

    def _keyframe_list(self) -> None:
        """One row per keyframe: where it is, and Go (jump to it), Re-record (with the current frame), Delete."""
        if not self.keyframes:
            imgui.text_disabled("Set up a frame, then Add keyframe; the clip runs through them in order.")
            return
        lay = self.viz.layout
        flags = imgui.TableFlags_.row_bg | imgui.TableFlags_.borders_inner_v | imgui.TableFlags_.sizing_stretch_prop
        rows = min(len(self.keyframes), 6) + 1
        height = rows * (imgui.get_frame_height() + imgui.get_style().cell_padding.y * 2)
        if not imgui.begin_table("##keyframes", 3, flags | imgui.TableFlags_.scroll_y, imgui.ImVec2(0, height)):
            return
        imgui.table_setup_scroll_freeze(0, 1)
        imgui.table_setup_column("#", imgui.TableColumnFlags_.width_fixed, lay.px(24))
        imgui.table_setup_column("Frame")
        style = imgui.get_style()
        buttons = imgui.calc_text_size("GoRe-recordDelete").x + 6 * style.frame_padding.x + 3 * style.item_spacing.x
        imgui.table_setup_column("", imgui.TableColumnFlags_.width_fixed, buttons)
        imgui.table_headers_row()
        for i, key in enumerate(list(self.keyframes)):
            imgui.table_next_row()
            imgui.table_next_column()
            imgui.text(str(i + 1))
            imgui.table_next_column()
            imgui.text(describe_keyframe(key))
            imgui.table_next_column()
            if button(f"Go##key{i}"):
                self.viz.jump_to_keyframe(key)
            imgui.same_line()
            if button(f"Re-record##key{i}"):
                self.viz.defer(self.rerecord(i))
            imgui.same_line()
            if button(f"Delete##key{i}"):
                del self.keyframes[i]
        imgui.end_table()


def describe_keyframe(key: Keyframe) -> str:
    """'x 12.30 y 0.00, t (0.100, 0.000), r 0.050' (the transform only where it is not the identity)."""
    text = f"x {key.position[0]:.2f} y {key.position[1]:.2f}"
    if key.translate != (0.0, 0.0) or key.rotate:
        text += f", t ({key.translate[0]:.3f}, {key.translate[1]:.3f}), r {key.rotate:.3f}"
    if key.args.mix_rows:
        text += f", mix {key.args.mix_seed}"
    return text
