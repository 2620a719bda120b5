"""The visualizer window. One frame: take the input (waiting for some while nothing changes); poll the
worker; draw the menu, status line, dock space, image and widgets (each updates its own state and may
ask for an action); build the frame's RenderArgs from every widget's state in one function; run the
actions with those finished args; send the args; let the undo history and the session see the
settings; draw.

The settings (viz.state.Settings) are what the widgets contribute plus their drawing state: the
session, undo and redo, and opening a saved frame all restore them, and build_args makes the frame
from them."""

from __future__ import annotations

import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from imgui_bundle import imgui

from gui_utils.gl_utils import Texture, TextureQuad
from gui_utils.imgui_utils import button, collapsing_header, items
from gui_utils.imgui_window import ImguiWindow
from gui_utils.scripted_input import ScriptedInput
from gui_utils.window import init_glfw, monitor_content_scale, monitor_work_area
from renderer.animation import Animation
from renderer.client import RenderClient
from renderer.remote.client import RemoteClient
from renderer.files import remove_stale_temporaries
from renderer.protocol import Keyframe, ModelInfo, RenderArgs, RenderResult
from renderer.timeline import animated_args
from viz.analysis_widget import AnalysisWidget
from viz.capture_widget import CaptureWidget
from viz.clip_widget import ClipWidget
from viz.config import RecentModels
from viz.dialogs import PathDialog, QuitDialog
from viz.dock_layout import ANALYSIS, CONTROLS, DockLayout
from viz.equivariance_widget import EquivarianceWidget
from viz.explore_panels import ExplorePanels
from viz.frame_state import FrameStateError, frame_settings, settings_document, settings_from_args
from viz.history import History
from viz.image_view import ImageView
from viz.latent_widget import LatentWidget
from viz.layer_widget import LayerWidget
from viz.layout import FONT_SIZE, USER_SCALE_RANGE, Layout, auto_scale, default_window_size
from viz.menu_bar import MenuBar
from viz.model_widget import ModelWidget, path_once
from viz.performance_widget import PerformanceWidget
from viz.redraw import RedrawClock
from viz.session import SessionError, SessionFiles, is_session_document, load_session, read_json, save_session
from viz.shortcuts import Shortcuts
from viz.state import Session, Settings, ViewState
from viz.status_bar import StatusBar
from viz.stylemix_widget import StyleMixWidget
from viz.trunc_noise_widget import TruncNoiseWidget

TIMING_HISTORY = 240          # frames kept for the frame-time plots
NOTE_SECONDS = 6.0            # how long a status note stays
AUTOSAVE_S = 1.0              # the session is written this long after its last change
MAX_FRAME_DT = 0.25           # an animation never jumps further than this in one frame
SETTINGS_OF_FRAMES = 32       # recent frames whose settings are kept (Save image stores them)


@dataclass
class Options:
    """What the command line asks for."""
    models: list[str] = field(default_factory=list)   # none: the last session's model, else default_model
    default_model: str = ""
    capture_dir: str | None = None
    browse_dir: str | None = None
    device: str | None = None
    in_process: bool = False
    seed: int | None = None
    layer: str | None = None
    fft: bool = False
    save_gui: str | None = None
    timeout: float = 180.0
    session: str | None = None                 # open this session file
    fresh: bool = False                        # neither restore nor keep the session of the config dir
    window_size: tuple[int, int] | None = None


def _window_size(options: Options) -> tuple[int, int]:
    if options.window_size is not None:
        return options.window_size
    init_glfw()
    return default_window_size(monitor_work_area(), monitor_content_scale())


class Visualizer(ImguiWindow):
    def __init__(self, options: Options, remote: RemoteClient | None = None) -> None:
        super().__init__("StyleGAN visualizer", _window_size(options), FONT_SIZE)
        self.options = options
        self.user_scale = 1.0
        self.layout = Layout(self._scale())
        self.args = RenderArgs()                    # the frame's args, built once per frame by build_args()
        self.sent_args: RenderArgs | None = None
        self.result = RenderResult()                # the newest result, shown on screen
        self.model_info = ModelInfo()               # of the newest result that had one
        self.layers: tuple = ()
        self.texture = Texture()
        self.quad = TextureQuad()
        self.image_args: RenderArgs | None = None   # args of the frame in the texture
        self.frame_dt = 0.0
        self.frames_drawn = 0
        self.gui_times: deque[float] = deque(maxlen=TIMING_HISTORY)
        self.render_times: deque[float] = deque(maxlen=TIMING_HISTORY)
        self.fps_limit = 60
        self.notes: list[tuple[float, str]] = []
        self.note_log: list[str] = []              # every note of the session (tests)
        self.errors_shown: list[str] = []          # every error a frame brought to the screen (tests)
        self.recent = RecentModels.of_server(remote.address if remote is not None else None)
        self.input = ScriptedInput()
        self.frame_hooks.append(self.input.feed)
        self.frame_hooks.append(self._before_new_frame)
        self.after_draw_hooks: list = []
        self.script = None                      # a ScriptRunner driving this session (tests, --save-gui)
        self._deferred: list = []               # actions asked for while drawing, run with the finished args
        self.client = None
        self.in_process = options.in_process
        self._remote = remote                   # the link to a worker on another machine (--connect)
        self._start_renderer()
        self.redraw = RedrawClock()
        self.dock = DockLayout()
        self.dialog = PathDialog()
        self.quit_dialog = QuitDialog(self.request_close)
        self.show_analysis = False
        self.open_sections: set[str] = set(ViewState().open_sections)
        self._set_sections = False              # apply open_sections to the headers in the next frame
        self._pending_ini: str | None = None
        self.escape_taken = False               # Esc belongs to a field, a popup or a held item this frame
        self._automatic = False                 # the app changed a setting itself this frame (not an undo step)
        self._expected: tuple[RenderArgs, bool, str] | None = None   # a saved frame being restored
        self._settings_of: OrderedDict[RenderArgs, Settings] = OrderedDict()
        self._autosave_at: float | None = None
        self._one_close_button = imgui.WindowClass()    # the panel's tab closes it; its dock shows no second X
        self._one_close_button.dock_node_flags_override_set = imgui.internal.DockNodeFlagsPrivate_.no_close_button

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
        self.menu = MenuBar(self)
        self.sections = [
            ("Model", self.model), ("Latent", self.latent), ("Style mixing", self.stylemix),
            ("Truncation & noise", self.trunc_noise), ("Equivariance", self.equivariance),
            ("Layers", self.layer), ("Analysis", self.analysis), ("Capture", self.capture), ("Clip export", self.clip),
            ("Performance", self.performance),
        ]
        # The widgets whose state makes up the frame's RenderArgs, in the order build_args applies them.
        self.arg_widgets = (self.model, self.latent, self.stylemix, self.trunc_noise, self.equivariance, self.layer,
                            self.performance)
        self.explore = ExplorePanels(self)
        self.sections += self.explore.sections()
        self.arg_widgets += (self.explore.directions,)
        self.sessions = SessionFiles(autosave=not (options.fresh or options.save_gui),
                                     server=remote.address if remote is not None else None)
        self._start_session()
        self.history = History(self.settings())
        remove_stale_temporaries(Path(self.capture.directory).expanduser())
        self._last_frame = time.perf_counter()

    # Renderer -------------------------------------------------------------------------------

    def _start_renderer(self) -> None:
        self.client = RenderClient(in_process=self.in_process, remote=self._remote)

    def restart_renderer(self, in_process: bool | None = None) -> None:
        """Start a fresh renderer, optionally switching between its own process and this one."""
        if self._remote is not None:
            self.note("the renderer runs on the server; restart `serve` there to restart it")
            return
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
        if result.error and result.args is not None:
            result.error = path_once(result.error, result.args.model)
        if result.model.path or result.model.family:
            self.model_info = result.model
        self.model.on_result(result)
        if result.layers and result.layers != self.layers:
            note = self.layer.carry_over(self.layers, result.layers)
            self.layers = result.layers
            if note:
                self.note(note)
                self.automatic_change()
            asked = result.args.layer if result.args is not None else None
            if result.error and asked is not None and asked not in {info.name for info in result.layers}:
                return      # it asked for a layer this model lacks; the frame of the carried-over one follows
        self.result = result
        if result.error:
            self.errors_shown.append(result.error)
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

    @property
    def image_is_stale(self) -> bool:
        """The texture holds another model's frame (a new model is loading, or failed to)."""
        shown = self.image_args
        return shown is not None and shown.model != self.args.model and not self.model.follow

    # Helpers for widgets --------------------------------------------------------------------

    def animation(self) -> Animation:
        """Everything that moves, as the widgets hold it now (the frame at t = 0; a clip at later t)."""
        info = self.model_info
        return Animation(latent=self.latent.motion, mix=self.stylemix.motion, transform=self.equivariance.motion,
                         has_transform=info.has_input_transform, uses_seeds=self.latent.w_file is None,
                         mixes=bool(self.stylemix.active_rows()), img_resolution=info.img_resolution,
                         sweep=self.explore.directions.sweep)

    def build_args(self) -> RenderArgs:
        """The frame's RenderArgs from the widgets' state: the one place they are made."""
        args = RenderArgs()
        for widget in self.arg_widgets:
            args = widget.contribute(args)
        return animated_args(args, self.animation(), 0.0)

    def defer(self, action) -> None:
        """Run action(args) once this frame's args are built (exports, keyframes, analyses)."""
        self._deferred.append(action)

    def wake_after(self, seconds: float) -> None:
        """Draw a frame within `seconds` even if nothing else happens (timers of widgets)."""
        self.redraw.wake_after(seconds)

    def automatic_change(self) -> None:
        """A setting the app changed by itself this frame: part of the user's latest step, not one of its own."""
        self._automatic = True

    def note(self, text: str) -> None:
        """A message in the status line for a few seconds (and on stderr)."""
        self.notes.append((time.monotonic(), text))
        self.note_log.append(text)
        print(text, file=sys.stderr)

    @property
    def current_note(self) -> str | None:
        now = time.monotonic()
        self.notes = [(t, s) for t, s in self.notes if now - t < NOTE_SECONDS]
        if self.notes:
            self.wake_after(self.notes[0][0] + NOTE_SECONDS - now)
        return self.notes[-1][1] if self.notes else None

    # Settings, undo, sessions ---------------------------------------------------------------

    def settings(self) -> Settings:
        return Settings(model=self.model.state(), latent=self.latent.state(), stylemix=self.stylemix.state(),
                        trunc_noise=self.trunc_noise.state(), equivariance=self.equivariance.state(),
                        layer=self.layer.state(), analysis=self.analysis.state(), capture=self.capture.state(),
                        clip=self.clip.state(), performance=self.performance.state(),
                        directions=self.explore.directions.state(), projection=self.explore.projection.state(),
                        seed_grid=self.explore.seed_grid.state(), run=self.explore.run.state(),
                        inspect=self.explore.inspect.state())

    def restore_settings(self, settings: Settings) -> None:
        self.model.restore(settings.model)
        self.latent.restore(settings.latent)
        self.stylemix.restore(settings.stylemix)
        self.trunc_noise.restore(settings.trunc_noise)
        self.equivariance.restore(settings.equivariance)
        self.layer.restore(settings.layer)
        self.analysis.restore(settings.analysis)
        self.capture.restore(settings.capture)
        self.clip.restore(settings.clip)
        self.performance.restore(settings.performance)
        self.explore.directions.restore(settings.directions)
        self.explore.projection.restore(settings.projection)
        self.explore.seed_grid.restore(settings.seed_grid)
        self.explore.run.restore(settings.run)
        self.explore.inspect.restore(settings.inspect)

    def undo(self) -> None:
        target = self.history.undo(self.settings())
        if target is not None:
            self.restore_settings(target)
            self.history.adopt(self.settings())

    def redo(self) -> None:
        target = self.history.redo(self.settings())
        if target is not None:
            self.restore_settings(target)
            self.history.adopt(self.settings())

    def reset_all(self) -> None:
        for _, widget in self.sections:
            widget.reset()

    def session(self) -> Session:
        view = ViewState(open_sections=tuple(sorted(self.open_sections)), analysis_panel=self.show_analysis,
                         ui_scale=self.user_scale, imgui_ini=imgui.save_ini_settings_to_memory())
        imgui.get_io().want_save_ini_settings = False
        return Session(settings=self.settings(), view=view)

    def restore_session(self, session: Session) -> None:
        self.restore_settings(session.settings)
        view = session.view
        self.open_sections = set(view.open_sections)
        self._set_sections = True
        self.show_analysis = view.analysis_panel
        self.user_scale = min(max(view.ui_scale, USER_SCALE_RANGE[0]), USER_SCALE_RANGE[1])
        if view.imgui_ini:
            self._pending_ini = view.imgui_ini

    def _start_session(self) -> None:
        """The last session (or --session FILE), then what the command line asks for on top."""
        options = self.options
        session = None
        if options.session:
            try:
                session = load_session(options.session)
                self.sessions.named_path, self.sessions.named_settings = Path(options.session), session.settings
            except SessionError as e:
                self.note(str(e))
        elif self.sessions.autosave:
            session, why = self.sessions.restore_default()
            if why:
                self.note(why)
        if session is not None:
            self.restore_session(session)
        models = [str(m) for m in options.models]
        for model in reversed(models[1:]):
            if Path(model).expanduser().exists():
                self.recent.add(model)
        if models:
            self.model.open(models[0])
        if not (self.model.pending or self.model.path) and options.default_model:
            self.model.open(options.default_model)
        if options.seed is not None:
            self.latent.set_seed(options.seed)
        if options.layer:
            self.layer.name = options.layer
        if options.fft:
            self.layer.fft_show = True

    def open_session(self, path: str) -> None:
        try:
            session = load_session(path)
        except SessionError as e:
            self.note(str(e))
            return
        self.restore_session(session)
        self.sessions.named_path, self.sessions.named_settings = Path(path).expanduser(), session.settings
        self.history.reset(self.settings())
        self.note(f"opened the session {Path(path).name}")

    def save_session(self, path: str) -> None:
        session = self.session()
        try:
            saved = save_session(path, session)
        except OSError as e:
            self.note(f"could not save the session to {path}: {e}")
            return
        self.sessions.named_path, self.sessions.named_settings = saved, session.settings
        self.note(f"saved the session to {saved}")

    def frame_settings_document(self, args: RenderArgs) -> dict | None:
        """The settings that produced the frame of `args` (stored with a saved image), if known."""
        settings = self._settings_of.get(args)
        return settings_document(settings) if settings is not None else None

    def open_frame_state(self, path: str) -> None:
        """Restore exactly the frame saved in a PNG or its JSON sidecar."""
        try:
            settings, args, exact = frame_settings(path, self.settings())
        except FrameStateError as e:
            self.note(str(e))
            return
        self.restore_settings(settings)
        self._expected = (args, exact, Path(path).name)

    def jump_to_keyframe(self, key: Keyframe) -> None:
        current = self.settings()
        settings = settings_from_args(key.args, current)
        eq = settings.equivariance
        settings = settings.frame(current)
        settings = replace(settings, latent=replace(settings.latent, x=key.position[0], y=key.position[1]),
                           equivariance=replace(settings.equivariance, translate=key.translate, rotate=key.rotate,
                                                round=False, untransform=eq.untransform))
        self.restore_settings(settings)

    def open_path(self, path: str) -> None:
        """A file dropped onto the window: a saved frame (.png, .json sidecar), a session (.json), or a model."""
        suffix = Path(path).suffix.lower()
        if self.explore.take_drop(path):
            return
        if suffix == ".png":
            self.open_frame_state(path)
        elif suffix == ".json":
            try:
                document = read_json(path)
            except SessionError as e:
                self.note(str(e))
                return
            (self.open_session if is_session_document(document) else self.open_frame_state)(path)
        else:
            self.model.open(path)

    def _check_restored_frame(self) -> None:
        if self._expected is None or self.model.pending is not None:
            return
        args, exact, name = self._expected
        self._expected = None
        if self.args == args:
            self.note(f"opened the frame saved in {name}")
        else:
            how = "as saved by the visualizer" if exact else "worked out from its render state"
            self.note(f"opened {name} ({how}); this frame may differ from the saved one")

    def _autosave(self, changed: bool) -> None:
        now = time.monotonic()
        if changed and self._autosave_at is None:
            self._autosave_at = now + AUTOSAVE_S
        if self._autosave_at is not None:
            if now >= self._autosave_at:
                self._autosave_at = None
                why = self.sessions.write_default(self.session())
                if why:
                    self.note(why)
            else:
                self.wake_after(self._autosave_at - now)

    # Quitting -------------------------------------------------------------------------------

    def unsaved_work(self) -> list[str]:
        """What quitting now would lose (or leave undone), in words for the user."""
        reasons = []
        if self.clip.busy:
            reasons.append("a clip is being exported (it would be left unfinished)")
        if self.analysis.avg_job is not None:
            reasons.append("the average spectrum is still being computed")
        keys = self.clip.unexported_keyframes
        if keys:
            reasons.append(f"{keys} keyframes have not been exported as a clip (they stay in the session)")
        if self.sessions.unsaved_named_changes(self.settings()):
            reasons.append(f"changes to the session {self.sessions.named_path.name} are not saved")
        return reasons

    def ask_to_quit(self) -> None:
        """Esc with nothing to close, or File > Quit: quit, asking first if there is unsaved work."""
        reasons = self.unsaved_work()
        if reasons:
            self.quit_dialog.ask(reasons)
        else:
            self.request_close()

    def on_close_request(self) -> None:
        reasons = self.unsaved_work()
        if reasons:
            self.keep_open()
            self.quit_dialog.ask(reasons)

    # Frame loop -----------------------------------------------------------------------------

    def _scale(self) -> float:
        size = self.size
        density = self.framebuffer_size[0] / max(1, size[0])       # > 1 where screen units are logical points
        content = max(1.0, self.content_scale / max(1.0, density))
        return auto_scale(content, size) * self.user_scale

    def _before_new_frame(self) -> None:
        """Runs after the input is taken, before ImGui's new frame (which closes popups on Esc)."""
        io = imgui.get_io()
        popup = imgui.is_popup_open("", imgui.PopupFlags_.any_popup_id | imgui.PopupFlags_.any_popup_level)
        self.escape_taken = io.want_text_input or popup or imgui.is_any_item_active()

    def _wait_time(self) -> float:
        script = self.script
        moving = self.animation().moves or (script is not None and script.wants_frames) or not self.input.idle
        waiting = (self.client is not None and self.client.is_busy) or self.analysis.busy or self.clip.busy \
            or self.equivariance.readout.job is not None or self.explore.busy
        return self.redraw.wait(moving, waiting, imgui.get_io().want_text_input)

    def frame(self) -> None:
        wait = self._wait_time()
        if self._pending_ini is not None:
            imgui.load_ini_settings_from_memory(self._pending_ini)
            self._pending_ini = None
        self.set_ui_scale(self._scale())
        self.begin_frame(wait)
        if self.input_seen:
            self.redraw.saw_input()
        now = time.perf_counter()
        self.frame_dt, self._last_frame = min(MAX_FRAME_DT, now - self._last_frame), now
        self.layout = Layout(self.ui_scale)
        if self.escape_taken and imgui.is_key_pressed(imgui.Key.escape, False):
            imgui.internal.close_popups_except_modals()     # Esc closes a combo or menu (modals close themselves)
        for path in self.take_dropped_paths():
            self.open_path(path)
        self._poll_result()
        if self.script is not None:
            self.script.before_frame()

        self.menu()
        self.status_bar(True)
        area = self.dock.dock_space(self.layout.default_pane_width)
        self.image_view(area)
        self._draw_controls()
        self._draw_analysis_panel()
        self.shortcuts(True)
        self.dialog.draw(self.layout.overlay_width)
        self.quit_dialog.draw(self.layout.overlay_width)

        self.args = self.build_args()
        actions, self._deferred = self._deferred, []
        for action in actions:
            action(self.args)
        if self.args != self.sent_args:
            self.client.set_args(self.args)
            self.sent_args = self.args
        self._check_restored_frame()

        current = self.settings()
        if self.args not in self._settings_of:
            self._settings_of[self.args] = current
            while len(self._settings_of) > SETTINGS_OF_FRAMES:
                self._settings_of.popitem(last=False)
        committed = self.history.committed
        if self._automatic:
            self.history.amend(current)
            self._automatic = False
        else:
            self.history.observe(current, editing=imgui.is_any_item_active())
        self._autosave(self.history.committed != committed or imgui.get_io().want_save_ini_settings)

        items.end_frame()
        self.end_frame(self.image_view.draw_scene, after_draw=self._after_draw)
        self.gui_times.append(time.perf_counter() - now)
        self.frames_drawn += 1
        if wait == 0:
            self._limit_fps(now)

    def _draw_controls(self) -> None:
        imgui.begin(CONTROLS, None, imgui.WindowFlags_.no_collapse)
        items.record_window(CONTROLS)
        self.layout = Layout(self.ui_scale, imgui.get_window_width())
        lay = self.layout
        imgui.push_item_width(lay.item_width)
        for title, widget in self.sections:
            if self._set_sections:
                imgui.set_next_item_open(title in self.open_sections, imgui.Cond_.always)
            expanded = collapsing_header(title, default_open=title in self.open_sections)
            (self.open_sections.add if expanded else self.open_sections.discard)(title)
            if expanded:
                imgui.indent()
            widget(expanded)
            if expanded:
                if widget is not self.model:
                    if button(f"Reset##{title}", lay.button_width * 0.7):
                        widget.reset()
                    if imgui.is_item_hovered():
                        imgui.set_tooltip(f"Every setting of {title} back to its default")
                imgui.unindent()
                imgui.spacing()
        self._set_sections = False
        imgui.pop_item_width()
        imgui.end()
        self.layout = Layout(self.ui_scale)

    def _draw_analysis_panel(self) -> None:
        if not self.show_analysis:
            self.analysis.panel_hidden()
            return
        imgui.set_next_window_class(self._one_close_button)
        expanded, self.show_analysis = imgui.begin(ANALYSIS, True)
        items.record_window(ANALYSIS)
        if expanded:
            self.analysis.draw_panel()
        else:
            self.analysis.panel_hidden()
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
        if self.handle and self.sessions.autosave:
            why = self.sessions.write_default(self.session())
            if why:
                print(why, file=sys.stderr)
        if self.clip is not None:
            self.clip.cancel()
        self.analysis.cancel()
        self.equivariance.readout.cancel()
        self.explore.close()
        if self.client is not None:
            self.client.close()
            self.client = None
        self.texture.delete()
        self.quad.delete()
        super().close()
