"""Model: path field, Recent list, a browser for --browse-dir, follow a training run, the info line."""

from __future__ import annotations

import time
from pathlib import Path

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, checkbox, grayed_out, selectable
from renderer.protocol import RenderArgs

MODEL_SUFFIXES = (".pkl", ".safetensors", ".pt")
FOLLOW_POLL_SECONDS = 2.0


def snapshots_in(directory: Path) -> list[Path]:
    """Model files directly in a directory (a training run's snapshots), oldest first."""
    try:
        files = [p for p in directory.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES]
    except OSError:
        return []
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


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


class ModelWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.path = ""                 # what the user chose: a model file or a run directory
        self.path_field = ""
        self.follow = False
        self.followed: str | None = None   # newest snapshot of the run while following
        self._last_poll = 0.0
        self._previous_size: dict[str, int] = {}
        self.browse_root = Path(viz.options.browse_dir) if viz.options.browse_dir else None
        self.browse_dir = self.browse_root
        models = viz.options.models
        for model in reversed(models):
            viz.recent.add(str(model))
        if models:
            self.open(models[0])

    def open(self, path: str) -> None:
        """Load a model file or training-run directory (renders its newest snapshot)."""
        path = str(path).strip()
        if not path:
            return
        self.path = self.path_field = path
        self.followed = None
        self._previous_size = {}
        self.viz.recent.add(path)
        self.viz.set_title(f"StyleGAN visualizer - {Path(path).name}")

    def _poll_run(self) -> None:
        """While following a run directory, pick its newest snapshot once its size stops changing."""
        now = time.monotonic()
        if now - self._last_poll < FOLLOW_POLL_SECONDS:
            return
        self._last_poll = now
        snaps = snapshots_in(Path(self.path))
        if not snaps:
            return
        newest = snaps[-1]
        size = newest.stat().st_size
        stable = self._previous_size.get(str(newest)) == size
        self._previous_size[str(newest)] = size
        if stable and str(newest) != self.followed:
            if self.followed is not None:
                self.viz.note(f"following run: loading {newest.name}")
            self.followed = str(newest)

    def _model_arg(self) -> str:
        if self.follow and self.path and Path(self.path).is_dir():
            self._poll_run()
            return self.followed or self.path
        return self.path

    def contribute(self, args: RenderArgs) -> RenderArgs:
        return args.replace(model=self._model_arg())

    def __call__(self, show: bool) -> None:
        viz = self.viz
        if not show:
            return
        lay = viz.layout
        with imgui_utils.item_width(lay.item_width - lay.button_width):
            entered, self.path_field = imgui.input_text("##model path", self.path_field,
                                                        imgui.InputTextFlags_.enter_returns_true)
        imgui_utils.items.record("##model path")
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

        is_run = bool(self.path) and Path(self.path).is_dir()
        with grayed_out(not is_run):
            _, self.follow = checkbox("Follow run", self.follow)
        imgui_utils.help_marker("Load each new snapshot as the training run in this directory writes it.")
        if self.follow and self.followed:
            imgui.same_line()
            imgui.text_disabled(Path(self.followed).name)

        if self.browse_root is not None:
            self._browser()

        info = viz.model_info
        if info.family:
            imgui.text_wrapped(describe(info, viz.result.device, viz.result.op_path, viz.result.precision))
        elif viz.args.model:
            imgui.text_disabled("loading ..." if viz.result.error is None else "model failed to load")

    def _browser(self) -> None:
        lay = self.viz.layout
        imgui.text(f"Browse: {self.browse_dir}")
        if imgui.begin_child("##browser", imgui.ImVec2(lay.item_width + lay.label_width, lay.list_height / 2),
                             imgui.ChildFlags_.borders):
            if self.browse_dir != self.browse_root and selectable(".. (up)", False):
                self.browse_dir = self.browse_dir.parent
            try:
                entries = sorted(self.browse_dir.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower()))
            except OSError as err:
                entries = []
                imgui.text_colored(imgui.ImVec4(1, 0.5, 0.4, 1), f"cannot list: {err.strerror}")
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    run = bool(snapshots_in(entry))
                    if selectable(f"[{'run' if run else 'dir'}] {entry.name}", str(entry) == self.path):
                        if run:
                            self.open(str(entry))      # its newest snapshot; its files are listed below
                        self.browse_dir = entry
                elif entry.suffix in MODEL_SUFFIXES:
                    if selectable(entry.name, str(entry) == self.path):
                        self.open(str(entry))
        imgui.end_child()
