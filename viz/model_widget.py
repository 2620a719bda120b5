"""Model: path field (its tooltip gives the full path loaded), Recent list, a browser of models and
training runs, follow a training run, the info line.

A path is checked before it is tried (a missing path or a folder that is not a training run is
refused with a note and changes nothing) and enters Recent only once the worker has loaded it; when
loading fails, the model that was loaded stays, and Path and Recent keep showing it.

Against a remote worker (--connect) the paths are the server's, relative to its --root: the server
checks them, and the browser and follow run list its folders through RenderClient.list_models."""

from __future__ import annotations

import os.path
import posixpath
import time
from pathlib import Path

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, checkbox, grayed_out, selectable
from renderer.protocol import RenderArgs, RenderResult
from viz.model_browser import ModelBrowser, is_run
from viz.state import ModelState

FOLLOW_POLL_SECONDS = 2.0
BROWSER_ROWS = 12
BROWSE_LABEL = "Browse"
SERVER_ROOT_LABEL = "(the server's folder)"


def describe(info, device: str, op_path: str, precision: str) -> str:
    """The model info line: family, resolution, parameters, device, op path, training progress."""
    parts = [info.family.upper().replace("STYLEGAN", "StyleGAN") or "?", f"{info.img_resolution} px"]
    if info.num_params:
        parts.append(f"{info.num_params / 1e6:.2f} M params")
    if info.c_dim:
        parts.append(f"{info.c_dim} classes")
    parts.append(device or "?")
    parts.append(f"ops: {op_path or '?'}")
    if precision and precision != "float32":
        parts.append(f"{precision} preview")
    if info.untrained:
        parts.append("untrained")
    elif info.trained_kimg is not None:
        parts.append(f"{info.trained_kimg:g} kimg")
    return " | ".join(parts)


def origin(info) -> str:
    """What the file is: the project that wrote it, its kind, pickle protocol and float16 layers."""
    parts = [": ".join(part for part in (info.source, info.kind) if part)]
    if info.pickle_protocol is not None:
        parts.append(f"pickle protocol {info.pickle_protocol}")
    if info.fp16_layers:
        unit = "blocks" if info.family == "stylegan2" else "layers"
        parts.append(f"{info.fp16_layers} float16 {unit} on CUDA")
    return ", ".join(part for part in parts if part)


def path_once(error: str, path: str) -> str:
    """The worker's 'Could not load P: P: why' as 'Could not load P: why'."""
    return error.replace(f"{path}: {path}: ", f"{path}: ") if path else error


def refusal(path: Path) -> str | None:
    """Why `path` cannot be opened as a model, before trying it (None: try it)."""
    if not path.exists():
        return f"No such file or folder: {path}"
    if path.is_dir() and not is_run(path):
        return (f"{path} is a folder, not a training run (no network-snapshot-* files): pick a model from it "
                "in the browser")
    return None


class ModelWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.path = ""                 # the model loaded (or, before any has loaded, the one tried)
        self.pending: str | None = None   # being loaded; becomes `path` once the worker has loaded it
        self.loaded = False            # `path` has been loaded by the worker
        self.path_field = ""
        self.follow = False
        self.followed: str | None = None   # newest snapshot of the run while following
        self._last_poll = 0.0
        self._previous_size: dict[str, int] = {}
        browse_dir = viz.options.browse_dir
        self.show_browser = bool(browse_dir)
        self.browser = ModelBrowser(Path(browse_dir).expanduser() if browse_dir else Path.cwd())
        self._browser_placed = bool(browse_dir)
        self.tooltip_shown: str | None = None      # the path field's tooltip as last shown (tests)
        self.origin_shown = ""                      # the model's origin line as last drawn (tests)
        self.remote = viz.client.remote is not None
        self._paths = posixpath if self.remote else os.path    # the server's paths are "/"-separated
        self._run_listing = None                    # the listing of the run that _poll_run last looked at
        self.browse_dir = ""                        # the server's folder shown by its browser (remote)

    # Settings -----------------------------------------------------------------------------

    def state(self) -> ModelState:
        return ModelState(path=self.pending or self.path, follow=self.follow)

    def restore(self, state: ModelState) -> None:
        """Take the model of a session, an undo step or a saved frame (no note, keyframes kept)."""
        self.follow = state.follow
        if state.path and state.path != (self.pending or self.path):
            self._try(state.path, quiet=True)

    def reset(self) -> None:
        self.follow = False

    # Opening ------------------------------------------------------------------------------

    def open(self, path: str) -> bool:
        """The user opens a model file or a training-run directory (its newest snapshot). False (with a
        note) when the path is refused before trying it."""
        path = str(path).strip()
        if not path:
            return False
        return self._try(path, quiet=False)

    def _try(self, path: str, quiet: bool) -> bool:
        viz = self.viz
        if self.remote:
            chosen = path              # the server's path: the server checks it, and says why it refuses
        else:
            target = Path(path).expanduser()
            why = refusal(target)
            if why is not None:
                viz.note(why)
                self.path_field = self.pending or self.path
                if target.is_dir():
                    self.show_browser, self.browser.directory = True, target
                return False
            if not target.is_dir():
                self.follow = False    # a single file: there is no run to follow
            chosen = str(target)
        if not quiet and chosen != (self.pending or self.path):
            viz.clip.clear_keyframes("they were recorded with another model")
        self.pending = self.path_field = chosen
        self.followed = None
        self._previous_size = {}
        return True

    def on_result(self, result: RenderResult) -> None:
        """A frame came back: a pending model has loaded (Recent, title) or failed (back to the loaded one)."""
        viz = self.viz
        if self.pending is None or result.args is None or result.args.model != self._model_arg():
            return
        pending, self.pending = self.pending, None
        if result.model.family:
            self.path, self.loaded = pending, True
            viz.recent.add(pending)
            viz.set_title(f"StyleGAN visualizer - {Path(pending).name}")
            self._place_browser()
        elif self.loaded:
            error = path_once(result.error or "the model could not be loaded", pending)
            viz.note(error if pending in error else f"Could not open {pending}: {error}")
            self.path_field = self.path
            viz.automatic_change()
        else:
            self.path = pending        # nothing loaded yet: the error stays on screen, the path to fix it

    def _place_browser(self) -> None:
        """The browser starts in the loaded model's folder unless the user has been browsing."""
        if not self._browser_placed and self.path and not self.remote:
            path = Path(self.path)
            self.browser.directory = path.parent if path.is_file() or is_run(path) else path

    # Following a run ----------------------------------------------------------------------

    def _is_folder(self, path: str) -> bool:
        """`path` is a folder (a training run's) where the worker is."""
        if not self.remote:
            return bool(path) and Path(path).is_dir()
        listing = self.viz.client.list_models(path) if path else None
        return listing is not None and listing.error is None

    def _poll_run(self) -> None:
        """While following a run directory, pick its newest snapshot once its size stops changing
        between two listings."""
        now = time.monotonic()
        self.viz.wake_after(FOLLOW_POLL_SECONDS - (now - self._last_poll))
        if now - self._last_poll < FOLLOW_POLL_SECONDS:
            return
        self._last_poll = now
        listing = self.viz.client.list_models(self.path)
        if listing is None or listing is self._run_listing:
            return  # no newer listing yet
        self._run_listing = listing
        snaps = sorted((e for e in listing.entries if e.kind == "model"), key=lambda e: (e.modified, e.name))
        if not snaps:
            return
        newest = snaps[-1]
        path = self._paths.join(self.path, newest.name)
        stable = self._previous_size.get(path) == newest.size
        self._previous_size[path] = newest.size
        if stable and path != self.followed:
            if self.followed is not None:
                self.viz.note(f"following run: loading {newest.name}")
            self.followed = path

    def _model_arg(self) -> str:
        if self.pending is not None:
            return self.pending
        if self.follow and self._is_folder(self.path):
            self._poll_run()
            return self.followed or self.path
        return self.path

    def contribute(self, args: RenderArgs) -> RenderArgs:
        remote = self.viz.client.remote
        if not (self.path or self.pending) and remote is not None and remote.server_model:
            self.open(remote.server_model)  # no model named: the one the server was started with
        return args.replace(model=self._model_arg())

    # Drawing ------------------------------------------------------------------------------

    def __call__(self, show: bool) -> None:
        viz = self.viz
        if not show:
            return
        lay = viz.layout
        with imgui_utils.item_width(lay.item_width - lay.button_width):
            entered, self.path_field = imgui.input_text("##model path", self.path_field,
                                                        imgui.InputTextFlags_.enter_returns_true)
        imgui_utils.items.record("##model path")
        if imgui.is_item_hovered() and not imgui.is_item_active():
            self.tooltip_shown = self._path_tooltip()
            imgui.set_tooltip(self.tooltip_shown)
        imgui.same_line()
        if button("Load", lay.button_width) or entered:
            self.open(self.path_field)
        imgui.same_line()
        imgui.text("Path")

        recent = viz.recent.paths
        with grayed_out(not recent):
            if imgui.begin_combo("Recent", Path(self.path).name if self.path else "", imgui.ComboFlags_.height_large):
                for path in recent:
                    if selectable(path, path == self.path):
                        self.open(path)
                imgui.end_combo()
        imgui_utils.items.record("Recent")

        chosen_path = self.pending or self.path
        is_dir_run = self._is_folder(chosen_path)
        with grayed_out(not is_dir_run):
            changed, follow = checkbox("Follow run", self.follow and is_dir_run)
            if changed:
                self.follow = follow
        imgui_utils.help_marker("Load each new snapshot as the training run in this directory writes it.")
        if self.follow and self.followed:
            imgui.same_line()
            imgui.text_disabled(Path(self.followed).name)
        if self.remote:
            self._server_browser()
        else:
            self._local_browser()

        info = viz.model_info
        if self.pending is not None:
            imgui.text_disabled(f"loading {Path(self.pending).name} ...")
        elif info.family:
            imgui.text_wrapped(describe(info, viz.result.device, viz.result.op_path, viz.result.precision))
            self.origin_shown = origin(info)
            if self.origin_shown:
                imgui.push_text_wrap_pos(0.0)
                imgui.text_disabled(self.origin_shown)
                imgui.pop_text_wrap_pos()
        elif viz.args.model:
            imgui.text_disabled("loading ..." if viz.result.error is None else "model failed to load")

    def _local_browser(self) -> None:
        lay = self.viz.layout
        imgui.same_line()
        changed, self.show_browser = checkbox(BROWSE_LABEL, self.show_browser)
        if changed and self.show_browser:
            self._place_browser()
        if self.show_browser:
            height = BROWSER_ROWS * imgui.get_text_line_height_with_spacing() + lay.px(8)
            chosen = self.browser.draw(imgui.ImVec2(lay.item_width + lay.label_width, height),
                                       self.pending or self.path)
            if chosen is not None:
                self._browser_placed = True
                self.open(str(chosen))
            elif imgui.is_item_clicked():
                self._browser_placed = True

    def _server_browser(self) -> None:
        """The server's folders under its --root, as it lists them."""
        lay = self.viz.layout
        imgui.text(f"Browse: {self.browse_dir or SERVER_ROOT_LABEL}")
        height = BROWSER_ROWS * imgui.get_text_line_height_with_spacing() + lay.px(8)
        if imgui.begin_child("##server browser", imgui.ImVec2(lay.item_width + lay.label_width, height),
                             imgui.ChildFlags_.borders):
            if self.browse_dir and selectable(".. (up)", False):
                self.browse_dir = posixpath.dirname(self.browse_dir)
            listing = self.viz.client.list_models(self.browse_dir)
            if listing is None:
                imgui.text_disabled("listing ...")
            elif listing.error:
                imgui.text_colored(imgui.ImVec4(1, 0.5, 0.4, 1), f"cannot list: {listing.error}")
            current = self.pending or self.path
            for entry in listing.entries if listing is not None else ():
                path = posixpath.join(self.browse_dir, entry.name)
                if entry.kind in ("run", "folder"):
                    if selectable(f"[{'run' if entry.kind == 'run' else 'dir'}] {entry.name}", path == current):
                        if entry.kind == "run":
                            self.open(path)            # its newest snapshot; its files are listed below
                        self.browse_dir = path
                elif selectable(entry.name, path == current):
                    self.open(path)
        imgui.end_child()

    def _path_tooltip(self) -> str:
        lines = [f"Loaded: {self.path}" if self.loaded else (self.path or "no model")]
        snapshot = self.viz.model_info.snapshot
        if snapshot and snapshot != self.path:
            lines.append(f"Snapshot: {snapshot}")
        if self.pending:
            lines.append(f"Loading: {self.pending}")
        return "\n".join(lines)
