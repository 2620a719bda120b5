"""Latent: seed, fractional x/y, drag on the image, Anim (seeds per second), Snap, Reset, class picker,
load and save W (.npy)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, checkbox, grayed_out
from renderer.animation import LatentMotion
from renderer.conventions import SEED_ROW_STRIDE, displayed_seed
from renderer.files import write_atomic
from renderer.protocol import RenderArgs
from viz.state import LatentState

DRAG_SEEDS_PER_PIXEL = 0.01       # dragging on the image
INT32_LIMIT = 1 << 31


class LatentWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.x = float(viz.options.seed or 0)
        self.y = 0.0
        self.anim = False
        self.speed = 0.25          # seeds per second along x
        self.class_from_seed = True
        self.class_idx = 0
        self.w_file: str | None = None
        self.w_path_field = ""

    def state(self) -> LatentState:
        return LatentState(x=float(self.x), y=float(self.y), anim=self.anim, speed=float(self.speed),
                           class_from_seed=self.class_from_seed, class_idx=int(self.class_idx), w_file=self.w_file)

    def restore(self, state: LatentState) -> None:
        self.x, self.y, self.anim, self.speed = state.x, state.y, state.anim, state.speed
        self.class_from_seed, self.class_idx, self.w_file = state.class_from_seed, max(0, state.class_idx), state.w_file

    def reset(self) -> None:
        self.restore(LatentState())

    @property
    def seed(self) -> int:
        return displayed_seed(self.x, self.y)

    def set_seed(self, seed: int) -> None:
        self.x, self.y = float(seed), 0.0

    def step(self, dx: int = 0, dy: int = 0) -> None:
        """Step to a neighbouring whole seed (arrow keys)."""
        self.x, self.y = float(round(self.x) + dx), float(round(self.y) + dy)
        self.w_file = None

    def drag(self, dx_pixels: float, dy_pixels: float) -> None:
        self.x += dx_pixels * DRAG_SEEDS_PER_PIXEL
        self.y += dy_pixels * DRAG_SEEDS_PER_PIXEL
        self.w_file = None

    @property
    def motion(self) -> LatentMotion:
        return LatentMotion(self.x, self.y, self.anim, self.speed)

    def contribute(self, args: RenderArgs) -> RenderArgs:
        """The W file and class; the latent position itself comes from `motion` (main_window.build_args)."""
        info = self.viz.model_info
        class_idx = None if (info.c_dim == 0 or self.class_from_seed) else min(self.class_idx, info.c_dim - 1)
        return args.replace(w_file=self.w_file, class_idx=class_idx)

    def __call__(self, show: bool) -> None:
        if self.anim:
            self.x, self.y = self.motion.position_at(self.viz.frame_dt)
        if show:
            self._draw()

    def _draw(self) -> None:
        viz, lay = self.viz, self.viz.layout
        with grayed_out(self.w_file is not None):
            seed = self.seed
            shown = seed if seed < INT32_LIMIT else seed - 2 * INT32_LIMIT    # ImGui's int box is 32-bit signed
            changed, shown = imgui.input_int("Seed", shown, 1, SEED_ROW_STRIDE)
            imgui_utils.items.record("Seed")
            if changed:
                self.set_seed(shown % (2 * INT32_LIMIT))
            changed, xy = imgui.drag_float2("Position x/y", [self.x, self.y], 0.01, format="%.3f")
            imgui_utils.items.record("Position x/y")
            if changed:
                self.x, self.y = xy
            imgui_utils.help_marker("Fractional seeds: bilinear blend of the four neighbouring seeds' W.\n"
                                    "Drag on the image to move through seeds.")
            _, self.anim = checkbox("Anim", self.anim)
            imgui.same_line()
            with imgui_utils.item_width(lay.small_input_width):
                _, self.speed = imgui.input_float("Speed (seeds/s)", self.speed, 0.05, 0.5, "%.2f")
            if button("Snap", lay.button_width):
                self.x, self.y = float(round(self.x)), float(round(self.y))
            imgui_utils.help_marker("Snap: round the position to the nearest whole seed.")

        info = viz.model_info
        if info.c_dim:
            _, self.class_from_seed = checkbox("Class from seed", self.class_from_seed)
            imgui.same_line()
            with grayed_out(self.class_from_seed), imgui_utils.item_width(lay.small_input_width):
                changed, idx = imgui.input_int("Class", self.class_idx)
                if changed:
                    self.class_idx = int(np.clip(idx, 0, info.c_dim - 1))
        self._w_file_row()

    def _w_file_row(self) -> None:
        viz, lay = self.viz, self.viz.layout
        with imgui_utils.item_width(lay.item_width - 2 * lay.button_width - lay.px(16)):
            _, self.w_path_field = imgui.input_text_with_hint("##w path", "W file (.npy)", self.w_path_field)
        imgui_utils.items.record("##w path")
        imgui.same_line()
        if button("Load W", lay.button_width):
            path = Path(self.w_path_field).expanduser()
            if path.is_file():
                self.w_file = str(path)
            else:
                viz.note(f"no such W file: {path}")
        imgui.same_line()
        w = getattr(viz.result, "w", None)
        if button("Save W", lay.button_width, enabled=w is not None):
            self.save_w(w)
        if w is None and imgui.is_item_hovered(imgui.HoveredFlags_.allow_when_disabled):
            imgui.set_tooltip("The renderer has not sent this frame's W.")
        if self.w_file is not None:
            imgui.text_disabled(f"W from {Path(self.w_file).name}")
            imgui.same_line()
            if button("Use seeds", lay.button_width):
                self.w_file = None

    def save_w(self, w: np.ndarray) -> None:
        path = Path(self.w_path_field or Path(self.viz.capture.directory) / f"w-seed{self.seed:04d}.npy").expanduser()
        if path.suffix != ".npy":
            path = path.with_suffix(".npy")
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(w, dtype=np.float32))
        write_atomic(path, buffer.getvalue())
        self.w_path_field = str(path)
        self.viz.note(f"saved W to {path}")

