"""The visualizer window. One frame: poll the worker; draw the widgets (each updates its own state and
may ask for an action); build the frame's RenderArgs from every widget's state in one function; run
the actions with those finished args; send the args; draw the newest frame under the ImGui windows."""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from imgui_bundle import imgui

from gui_utils.gl_utils import Texture, TextureQuad
from gui_utils.imgui_utils import items
from gui_utils.imgui_window import ImguiWindow
from gui_utils.scripted_input import ScriptedInput
from renderer.animation import Animation
from renderer.client import RenderClient
from renderer.files import remove_stale_temporaries
from renderer.protocol import ModelInfo, RenderArgs, RenderResult
from renderer.timeline import animated_args
from viz.analysis_widget import AnalysisWidget
from viz.capture_widget import CaptureWidget
from viz.clip_widget import ClipWidget
from viz.config import RecentModels
from viz.equivariance_widget import EquivarianceWidget
from viz.image_view import ImageView
from viz.latent_widget import LatentWidget
from viz.layer_widget import LayerWidget
from viz.layout import FONT_SIZE, WINDOW_SIZE, Layout
from viz.model_widget import ModelWidget
from viz.performance_widget import PerformanceWidget
from viz.shortcuts import Shortcuts
from viz.status_bar import StatusBar
from viz.stylemix_widget import StyleMixWidget
from viz.trunc_noise_widget import TruncNoiseWidget

TIMING_HISTORY = 240          # frames kept for the frame-time plots
NOTE_SECONDS = 6.0            # how long a status note stays
COLLAPSED_AT_START = ("Style mixing", "Equivariance", "Analysis", "Clip export", "Performance")


@dataclass
class Options:
    """What the command line asks for."""
    models: list[str] = field(default_factory=list)
    capture_dir: str = "captures"
    browse_dir: str | None = None
    device: str = "auto"
    in_process: bool = False
    seed: int | None = None
    layer: str | None = None
    fft: bool = False
    save_gui: str | None = None
    timeout: float = 180.0


class Visualizer(ImguiWindow):
    def __init__(self, options: Options) -> None:
        super().__init__("StyleGAN visualizer", WINDOW_SIZE, FONT_SIZE)
        self.options = options
        self.layout = Layout(self.content_scale)
        self.args = RenderArgs()                    # the frame's args, built once per frame by build_args()
        self.sent_args: RenderArgs | None = None
        self.result = RenderResult()                # the newest result, shown on screen
        self.model_info = ModelInfo()               # of the newest result that had one
        self.layers: tuple = ()
        self.texture = Texture()
        self.quad = TextureQuad()
        self.image_args: RenderArgs | None = None   # args of the frame in the texture
        self.frame_dt = 0.0
        self.gui_times: deque[float] = deque(maxlen=TIMING_HISTORY)
        self.render_times: deque[float] = deque(maxlen=TIMING_HISTORY)
        self.fps_limit = 60
        self.notes: list[tuple[float, str]] = []
        self.recent = RecentModels()
        self.input = ScriptedInput()
        self.frame_hooks.append(self.input.feed)
        self.after_draw_hooks: list = []
        self.before_widgets = None              # a script's step, run each frame before the widgets
        self._deferred: list = []               # actions asked for while drawing, run with the finished args
        self.client = None
        self.in_process = options.in_process
        self._start_renderer()

        self.model = ModelWidget(self)
        self.latent = LatentWidget(self)
        self.stylemix = StyleMixWidget(self)
        self.trunc_noise = TruncNoiseWidget(self)
        self.equivariance = EquivarianceWidget(self)
        self.layer = LayerWidget(self)
        self.analysis = AnalysisWidget(self)
        self.capture = CaptureWidget(self)
        self.clip = ClipWidget(self)
        self.performance = PerformanceWidget(self)
        self.image_view = ImageView(self)
        self.status_bar = StatusBar(self)
        self.shortcuts = Shortcuts(self)
        self.sections = [
            ("Model", self.model), ("Latent", self.latent), ("Style mixing", self.stylemix),
            ("Truncation & noise", self.trunc_noise), ("Equivariance", self.equivariance),
            ("Layers", self.layer), ("Analysis", self.analysis), ("Capture", self.capture), ("Clip export", self.clip),
            ("Performance", self.performance),
        ]
        # The widgets whose state makes up the frame's RenderArgs, in the order build_args applies them.
        self.arg_widgets = (self.model, self.latent, self.stylemix, self.trunc_noise, self.equivariance, self.layer,
                            self.performance)
        remove_stale_temporaries(Path(options.capture_dir).expanduser())
        self._last_frame = time.perf_counter()

    # Renderer -------------------------------------------------------------------------------

    def _start_renderer(self) -> None:
        self.client = RenderClient(in_process=self.in_process)

    def restart_renderer(self, in_process: bool | None = None) -> None:
        """Start a fresh renderer, optionally switching between its own process and this one."""
        if in_process is not None:
            self.in_process = in_process
        if self.client is not None:
            self.client.close()
        self._start_renderer()
        self.sent_args = None
        self.note("renderer restarted" + (" in this process" if self.in_process else " in its own process"))

    def _poll_result(self) -> None:
        result = self.client.get_result()
        if result is None:
            return
        self.result = result
        if result.model.path or result.model.family:
            self.model_info = result.model
        if result.layers:
            self.layers = result.layers
        if result.image is not None and result.error is None:
            self.texture.upload(result.image)
            self.image_args = result.args
        if result.render_time:
            self.render_times.append(result.render_time)
        if result.message:
            self.note(result.message)

    @property
    def frame_ready(self) -> bool:
        """The frame for the current args has come back (shown, or failed with an error)."""
        return self.result.args is not None and self.result.args == self.args

    # Helpers for widgets --------------------------------------------------------------------

    def animation(self) -> Animation:
        """Everything that moves, as the widgets hold it now (the frame at t = 0; a clip at later t)."""
        info = self.model_info
        return Animation(latent=self.latent.motion, mix=self.stylemix.motion, transform=self.equivariance.motion,
                         has_transform=info.has_input_transform, uses_seeds=self.latent.w_file is None,
                         mixes=bool(self.stylemix.rows), img_resolution=info.img_resolution)

    def build_args(self) -> RenderArgs:
        """The frame's RenderArgs from the widgets' state: the one place they are made."""
        args = RenderArgs()
        for widget in self.arg_widgets:
            args = widget.contribute(args)
        return animated_args(args, self.animation(), 0.0)

    def defer(self, action) -> None:
        """Run action(args) once this frame's args are built (exports, keyframes, analyses)."""
        self._deferred.append(action)

    def note(self, text: str) -> None:
        """A message in the status line for a few seconds (and on stderr)."""
        self.notes.append((time.monotonic(), text))
        print(text, file=sys.stderr)

    @property
    def current_note(self) -> str | None:
        now = time.monotonic()
        self.notes = [(t, s) for t, s in self.notes if now - t < NOTE_SECONDS]
        return self.notes[-1][1] if self.notes else None

    # Frame loop -----------------------------------------------------------------------------

    def frame(self) -> None:
        now = time.perf_counter()
        self.frame_dt, self._last_frame = now - self._last_frame, now
        self.gui_times.append(self.frame_dt)
        self.begin_frame()
        for path in self.take_dropped_paths():
            self.model.open(path)
        self._poll_result()
        if self.before_widgets is not None:
            self.before_widgets()

        self._draw_pane()
        self.image_view(True)
        self.status_bar(True)
        self.shortcuts(True)
        self.args = self.build_args()
        actions, self._deferred = self._deferred, []
        for action in actions:
            action(self.args)

        if self.args != self.sent_args:
            self.client.set_args(self.args)
            self.sent_args = self.args
        items.end_frame()
        self.end_frame(self.image_view.draw_scene, after_draw=self._after_draw)
        self._limit_fps(now)

    def _draw_pane(self) -> None:
        lay = self.layout
        height = self.size[1] - lay.status_height
        imgui.set_next_window_pos(imgui.ImVec2(0, 0))
        imgui.set_next_window_size(imgui.ImVec2(lay.pane_width, height))
        flags = (imgui.WindowFlags_.no_title_bar | imgui.WindowFlags_.no_resize | imgui.WindowFlags_.no_move
                 | imgui.WindowFlags_.no_collapse | imgui.WindowFlags_.no_saved_settings)
        imgui.begin("Controls", None, flags)
        imgui.push_item_width(lay.item_width)
        from gui_utils.imgui_utils import collapsing_header

        for title, widget in self.sections:
            expanded = collapsing_header(title, default_open=title not in COLLAPSED_AT_START)
            if expanded:
                imgui.indent()
            widget(expanded)
            if expanded:
                imgui.unindent()
                imgui.spacing()
        imgui.pop_item_width()
        imgui.end()

    def _after_draw(self) -> None:
        for hook in self.after_draw_hooks:
            hook()

    def _limit_fps(self, frame_start: float) -> None:
        if self.fps_limit > 0:
            remaining = 1.0 / self.fps_limit - (time.perf_counter() - frame_start)
            if remaining > 0:
                time.sleep(remaining)

    def save_gui(self, path: str | Path) -> Path:
        """Read the window back (call from an after-draw hook) and write it as a PNG, atomically."""
        from PIL import Image

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        Image.fromarray(self.read_pixels()).save(tmp, format="PNG")
        tmp.replace(path)
        return path

    def close(self) -> None:
        if self.clip is not None:
            self.clip.cancel()
        self.analysis.cancel()
        self.equivariance.readout.cancel()
        if self.client is not None:
            self.client.close()
            self.client = None
        self.texture.delete()
        self.quad.delete()
        super().close()

