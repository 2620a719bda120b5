"""Capture: Save image (PNG at native resolution, render state in its metadata and a JSON sidecar) and
Save GUI (the whole window), into the capture directory."""

from __future__ import annotations

import itertools
from pathlib import Path

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button
from viz.frame_state import GUI_STATE_KEY
from viz.state import CaptureState


def next_free(directory: Path, stem: str, suffix: str) -> Path:
    """directory/stem-00000.suffix with the first number not taken."""
    for n in itertools.count():
        path = directory / f"{stem}-{n:05d}{suffix}"
        if not path.exists():
            return path
    raise AssertionError("unreachable")


class CaptureWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.default = CaptureState(directory=str(viz.options.capture_dir or CaptureState().directory))
        self.directory = self.default.directory
        self.last_saved: str | None = None
        self._save_gui_pending: Path | None = None
        viz.after_draw_hooks.append(self._after_draw)

    def state(self) -> CaptureState:
        return CaptureState(directory=self.directory)

    def restore(self, state: CaptureState) -> None:
        self.directory = state.directory or self.default.directory

    def reset(self) -> None:
        self.restore(self.default)

    def _stem(self) -> str:
        model = self.viz.args.model
        name = Path(model).stem if model else "frame"
        return f"{name}-seed{self.viz.latent.seed:04d}"

    def save_image(self) -> Path | None:
        """Save the frame on screen with the args and model that produced it."""
        from renderer.capture import save_png

        viz = self.viz
        result = viz.result
        if result.image is None or result.error is not None:
            viz.note("nothing to save: no frame on screen")
            return None
        directory = Path(self.directory).expanduser()
        path = next_free(directory, self._stem(), ".png")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            saved = save_png(path, result.image, result.args, result.model,
                             extra={"device": result.device, "op_path": result.op_path,
                                    GUI_STATE_KEY: viz.frame_settings_document(result.args)})
        except OSError as err:
            viz.note(f"could not save the image: {err}")
            return None
        self.last_saved = str(saved)
        viz.note(f"saved {saved}")
        return Path(saved)

    def save_gui(self) -> Path:
        """Save the window as drawn at the end of this frame."""
        self._save_gui_pending = next_free(Path(self.directory).expanduser(), "gui", ".png")
        return self._save_gui_pending

    def _after_draw(self) -> None:
        if self._save_gui_pending is not None:
            path, self._save_gui_pending = self._save_gui_pending, None
            try:
                self.viz.save_gui(path)
            except OSError as err:
                self.viz.note(f"could not save the window: {err}")
                return
            self.last_saved = str(path)
            self.viz.note(f"saved {path}")

    def __call__(self, show: bool) -> None:
        if not show:
            return
        lay = self.viz.layout
        _, self.directory = imgui.input_text("Capture dir", self.directory)
        imgui_utils.items.record("Capture dir")
        if button("Save image", lay.button_width):
            self.save_image()
        imgui.same_line()
        if button("Save GUI", lay.button_width):
            self.save_gui()
        if self.last_saved:
            imgui.same_line()
            imgui.text_disabled(Path(self.last_saved).name)
