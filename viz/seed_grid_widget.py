"""Seed grid: columns x rows cells around the current seed on the latent plane, or along a direction's
steps, rendered by the worker one cell at a time between frames; click a cell to jump there."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.gl_utils import Texture
from gui_utils.imgui_utils import button, grayed_out
from renderer.directions import DirectionMove
from renderer.protocol import GridCell, RenderArgs, SeedGridRequest
from viz.state import SeedGridState

CELL_PIXELS = 96              # thumbnail size the worker renders, and the cell size on screen at scale 1
GRID_LABEL = "##seed grid"
START_LABEL = "Render grid"
MODES = ("seeds", "direction")


@dataclass
class SeedGridDrawn:
    """What the section shows (for scripted tests and the state dump)."""
    cells: int = 0
    total: int = 0
    mode: str = "seeds"
    seeds: list[int | None] = field(default_factory=list)
    clicked: int | None = None
    error: str | None = None


class SeedGridWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.reset()                  # columns x rows; mode; direction and its step (W units between cells)
        self.job = None
        self.spec: SeedGridRequest | None = None
        self.cells: dict[int, GridCell] = {}
        self._mosaic: np.ndarray | None = None
        self._texture = Texture()
        self._dirty = False
        self.drawn = SeedGridDrawn()

    def state(self) -> SeedGridState:
        return SeedGridState(columns=int(self.columns), rows=int(self.rows), mode=self.mode,
                             direction_index=int(self.direction_index), step=float(self.step))

    def restore(self, state: SeedGridState) -> None:
        self.columns, self.rows = max(1, state.columns), max(1, state.rows)
        self.mode = state.mode if state.mode in MODES else "seeds"
        self.direction_index, self.step = max(0, state.direction_index), state.step

    def reset(self) -> None:
        self.restore(SeedGridState())

    @property
    def busy(self) -> bool:
        return self.job is not None

    def start(self, args: RenderArgs) -> None:
        if self.job is not None:
            self.job.cancel()
        latent = self.viz.latent
        direction = None
        if self.mode == "direction":
            d = self.viz.explore.directions
            if not d.ready:
                self.drawn.error = "Compute directions first (Directions section)."
                return
            index = min(self.direction_index, len(d.strengths) - 1)
            direction = DirectionMove(d.source, index, d.strengths[index])
        self.spec = SeedGridRequest(args, columns=int(self.columns), rows=int(self.rows), x=round(latent.x),
                                    y=round(latent.y), direction=direction, step=float(self.step),
                                    cell_size=CELL_PIXELS)
        self.cells, self._mosaic = {}, None
        self.drawn = SeedGridDrawn(total=self.columns * self.rows, mode=self.mode)
        self.job = self.viz.client.submit(self.spec)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _poll(self) -> None:
        job = self.job
        if job is None:
            return
        for cell in job.take_outputs():
            if isinstance(cell, GridCell):
                self._place(cell)
        if job.done:
            self.job = None
            if job.error:
                self.drawn.error = job.error
                self.viz.note(f"Seed grid: {job.error}")

    def _place(self, cell: GridCell) -> None:
        h, w = cell.image.shape[:2]
        if self._mosaic is None:
            self._mosaic = np.zeros((h * self.spec.rows, w * self.spec.columns, 3), dtype=np.uint8)
        self._mosaic[cell.row * h:(cell.row + 1) * h, cell.column * w:(cell.column + 1) * w] = cell.image
        self.cells[cell.index] = cell
        self._dirty = True
        self.drawn.cells = len(self.cells)
        self.drawn.seeds = [self.cells[i].seed if i in self.cells else None for i in range(self.drawn.total)]

    def jump(self, index: int) -> None:
        """Make cell `index` the current latent (its seed, or its direction strength)."""
        cell = self.cells.get(index)
        if cell is None:
            return
        self.drawn.clicked = index
        if cell.position is not None:
            self.viz.latent.x, self.viz.latent.y = float(cell.position[0]), float(cell.position[1])
            self.viz.latent.w_file = None
        elif cell.strength is not None and self.spec.direction is not None:
            d = self.viz.explore.directions
            if d.ready and d.source == self.spec.direction.source:
                d.strengths[self.spec.direction.index] = float(cell.strength)

    # Drawing ------------------------------------------------------------------------------

    def __call__(self, show: bool) -> None:
        self._poll()
        if show:
            self._draw()

    def _draw(self) -> None:
        viz, lay = self.viz, self.viz.layout
        with grayed_out(not viz.model_info.family):
            with imgui_utils.item_width(lay.small_input_width):
                _, c = imgui.input_int("columns##grid", self.columns, 1, 2)
                imgui.same_line()
                _, r = imgui.input_int("rows##grid", self.rows, 1, 2)
            self.columns, self.rows = int(np.clip(c, 1, 20)), int(np.clip(r, 1, 20))
            changed, index = imgui.combo("Grid of##grid", MODES.index(self.mode),
                                         ["seeds around the current one", "a direction's steps"])
            imgui_utils.items.record("Grid of##grid")
            if changed:
                self.mode = MODES[index]
            if self.mode == "direction":
                with imgui_utils.item_width(lay.small_input_width):
                    _, i = imgui.input_int("direction##grid", self.direction_index, 1, 1)
                    imgui.same_line()
                    _, self.step = imgui.input_float("W units apart##grid", self.step, 0.0, 0.0, "%.2f")
                self.direction_index = max(0, int(i))
            if button(START_LABEL, lay.button_width, enabled=bool(viz.model_info.family)):
                viz.defer(self.start)
        if self.job is not None:
            imgui.same_line()
            imgui.progress_bar(self.job.progress, imgui.ImVec2(-1, 0), f"{self.drawn.cells} of {self.drawn.total}")
        if self.drawn.error:
            imgui.text_wrapped(self.drawn.error)
        self._draw_grid()

    def _draw_grid(self) -> None:
        if self._mosaic is None:
            return
        if self._dirty:
            self._texture.upload(self._mosaic)
            self._dirty = False
        lay = self.viz.layout
        cell = lay.px(CELL_PIXELS) * min(1.0, (lay.pane_width - lay.px(40)) / (lay.px(CELL_PIXELS) * self.spec.columns))
        size = imgui.ImVec2(cell * self.spec.columns, cell * self.spec.rows)
        imgui.image(imgui.ImTextureRef(self._texture.id), size)
        imgui_utils.items.record(GRID_LABEL)
        if imgui.is_item_hovered():
            lo, mouse = imgui.get_item_rect_min(), imgui.get_mouse_pos()
            column, row = int((mouse.x - lo.x) // cell), int((mouse.y - lo.y) // cell)
            index = row * self.spec.columns + column
            hovered = self.cells.get(index)
            if hovered is not None:
                imgui.set_tooltip(f"seed {hovered.seed}" if hovered.seed is not None
                                  else f"strength {hovered.strength:.2f}")
                if imgui.is_mouse_clicked(0):
                    self.jump(index)

    def close(self) -> None:
        self.cancel()
        self._texture.delete()
