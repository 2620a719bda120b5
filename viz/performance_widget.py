"""Performance: GUI and render frame-time plots, FPS limit, vsync, where the renderer runs, force
fp32, device, op path and precision (bfloat16 is a labelled low-precision preview); with a remote
worker, the frames' codec (lossless or JPEG at a quality) and the link's round trip and bandwidth."""

from __future__ import annotations

import numpy as np
from imgui_bundle import imgui, implot

from gui_utils import imgui_utils
from gui_utils.imgui_utils import checkbox
from renderer.protocol import DEVICES, OP_PATHS, PRECISIONS, RenderArgs
from renderer.remote.client import LinkStats, RemoteClient
from renderer.remote.frames import FrameCodec
from viz.state import PerformanceState
from viz.status_bar import link_speed

FPS_LIMIT_RANGE = (5, 240)
PLOT_HEADROOM = 1.2
PRECISION_LABELS = {"float32": "float32", "bfloat16": "bfloat16 (low-precision preview)"}
LINK_CODECS = ("zstd", "jpeg")
LINK_CODEC_LABELS = {"zstd": "lossless (zstd)", "jpeg": "JPEG"}


class PerformanceWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.default = PerformanceState(device=viz.options.device or PerformanceState().device)
        self.device = self.default.device
        self.op_path = "auto"
        self.precision = "float32"
        self.force_fp32 = False                 # the official fp16 layers run in float16 on CUDA

    def state(self) -> PerformanceState:
        viz = self.viz
        return PerformanceState(device=self.device, op_path=self.op_path, precision=self.precision,
                                force_fp32=self.force_fp32, fps_limit=int(viz.fps_limit), vsync=bool(viz.vsync))

    def restore(self, state: PerformanceState) -> None:
        self.device = state.device or self.default.device
        self.op_path = state.op_path if state.op_path in OP_PATHS else OP_PATHS[0]
        self.precision = state.precision if state.precision in PRECISIONS else PRECISIONS[0]
        self.force_fp32 = state.force_fp32
        self.viz.fps_limit = int(min(max(state.fps_limit, FPS_LIMIT_RANGE[0]), FPS_LIMIT_RANGE[1]))
        self.viz.set_vsync(state.vsync)

    def reset(self) -> None:
        self.restore(self.default)

    def contribute(self, args: RenderArgs) -> RenderArgs:
        return args.replace(device=self.device, op_path=self.op_path, precision=self.precision,
                            force_fp32=self.force_fp32)

    def __call__(self, show: bool) -> None:
        if show:
            self._draw()

    def _plot(self, title: str, times, label: str) -> None:
        lay = self.viz.layout
        ys = np.asarray(times, dtype=np.float64) * 1e3
        if implot.begin_plot(title, imgui.ImVec2(-1, lay.plot_height), implot.Flags_.no_legend | implot.Flags_.no_menus):
            implot.setup_axes("", "ms", implot.AxisFlags_.no_tick_labels)
            implot.setup_axis_limits(implot.ImAxis_.x1, 0, max(1, len(ys)), implot.Cond_.always)
            top = float(ys.max()) * PLOT_HEADROOM if len(ys) else 1.0
            implot.setup_axis_limits(implot.ImAxis_.y1, 0, max(top, 1.0), implot.Cond_.always)
            if len(ys):
                implot.plot_line(label, np.arange(len(ys), dtype=np.float64), ys)
            implot.end_plot()

    def _draw(self) -> None:
        viz = self.viz
        gui = np.mean(list(viz.gui_times)[-30:]) if viz.gui_times else 0.0
        render = np.mean(list(viz.render_times)[-30:]) if viz.render_times else 0.0
        self._plot(f"GUI frame {gui * 1e3:.1f} ms ({1 / gui if gui else 0:.0f} fps)###gui", viz.gui_times, "GUI")
        self._plot(f"Render {render * 1e3:.1f} ms###render", viz.render_times, "render")
        _, viz.fps_limit = imgui.slider_int("FPS limit", viz.fps_limit, *FPS_LIMIT_RANGE)
        imgui_utils.help_marker("The most frames per second while something moves; an idle window redraws only "
                                "when something changes.")
        changed, vsync = checkbox("Vertical sync", viz.vsync)
        if changed:
            viz.set_vsync(vsync)
        remote = viz.client.remote if viz.client is not None else None
        if remote is None:
            imgui.same_line()
            changed, own = checkbox("Renderer in its own process", not viz.in_process)
            if changed:
                viz.restart_renderer(in_process=not own)
            imgui_utils.help_marker("In this process the GUI imports torch and a renderer crash takes it down.")
        else:
            self._link(remote)
        _, self.force_fp32 = checkbox("Force fp32", self.force_fp32)
        imgui_utils.help_marker("Run the official fp16 layers in float32 too. fp16 only ever runs on CUDA, in the "
                                "layers the model was built with it (the highest num_fp16_res resolutions).")
        self.device = self._combo("Device", self.device, DEVICES)
        self.op_path = self._combo("Op path", self.op_path, OP_PATHS)
        self.precision = self._combo("Precision", self.precision, PRECISIONS, PRECISION_LABELS)
        result = viz.result
        fp16 = f", float16 in {result.fp16_layers} layers" if result.fp16_layers else ""
        imgui.text_disabled(f"Running on {result.device or '?'}, ops: {result.op_path or '?'}, {result.precision}{fp16}")
        if result.op_path_note:
            imgui.text_wrapped(f"Faster op paths skipped: {result.op_path_note}")

    def _link(self, remote: RemoteClient) -> None:
        """The remote worker's link: the frames' codec (switchable) and what the link measured."""
        codec = remote.frame_codec
        name = self._combo("Frames", codec.name, LINK_CODECS, LINK_CODEC_LABELS)
        quality = codec.jpeg_quality
        if name == "jpeg":
            _, quality = imgui.slider_int("JPEG quality", quality, 1, 100)
            imgui_utils.items.record("JPEG quality")
        if (name, quality) != (codec.name, codec.jpeg_quality):
            remote.set_frame_codec(FrameCodec(name, quality))
        imgui_utils.help_marker("Lossless sends the exact pixels; JPEG is smaller and slightly blurred, for slow "
                                "links. Clip frames always travel lossless.")
        for line in link_lines(remote.stats):
            imgui.text_disabled(line)

    @staticmethod
    def _combo(label: str, value: str, options, labels: dict[str, str] | None = None) -> str:
        options = list(options)
        if value not in options:
            options.append(value)       # e.g. --device cuda:1
        names = [labels.get(o, o) if labels else o for o in options]
        changed, idx = imgui.combo(label, options.index(value), names)
        imgui_utils.items.record(label)
        return options[idx] if changed else value


def link_lines(stats: LinkStats) -> list[str]:
    """The link's measurements in words: round trip, bandwidth, the last frame's size and codec times."""
    rtt, rate = link_speed(stats)
    lines = [f"Round trip {rtt} (ping), bandwidth {rate}"]
    frame = stats.last_frame
    if frame is not None and frame.codec:
        lines.append(f"Last frame: image {frame.image_bytes / 1024:.0f} KiB {frame.codec} ({frame.compression_ratio:.1f}x), "
                     f"reply {frame.wire_bytes / 1024:.0f} KiB, {frame.round_trip_seconds * 1e3:.0f} ms there and back")
        lines.append(f"  of which on the server {frame.server_seconds * 1e3:.0f} ms (encoding {frame.encode_seconds * 1e3:.1f} "
                     f"ms), decoding here {frame.decode_seconds * 1e3:.1f} ms")
    return lines
