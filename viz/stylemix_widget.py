"""Style mixing: the chosen ws rows come from the mix seed's W; Anim walks the mix seed."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, checkbox, grayed_out
from renderer.animation import MixMotion
from renderer.protocol import RenderArgs
from viz.state import StyleMixState


class StyleMixWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.seed = 0
        self.rows: set[int] = set()
        self.anim = False
        self.speed = 1.0           # mix seeds per second
        self._anim_pos = 0.0

    def state(self) -> StyleMixState:
        return StyleMixState(seed=int(self.seed), rows=tuple(sorted(self.rows)), anim=self.anim, speed=float(self.speed),
                             phase=float(self._anim_pos))

    def restore(self, state: StyleMixState) -> None:
        self.seed, self.rows, self.anim, self.speed = max(0, state.seed), {r for r in state.rows if r >= 0}, \
            state.anim, state.speed
        self._anim_pos = min(max(state.phase, 0.0), 1.0)

    def reset(self) -> None:
        self.restore(StyleMixState())

    @property
    def motion(self) -> MixMotion:
        return MixMotion(self.seed, self.anim, self.speed, self._anim_pos)

    def active_rows(self) -> tuple[int, ...]:
        """The chosen rows that the model has (all of them until its size is known)."""
        num_ws = self.viz.model_info.num_ws
        return tuple(sorted(r for r in self.rows if not num_ws or r < num_ws))

    def contribute(self, args: RenderArgs) -> RenderArgs:
        """The rows; the mix seed comes from `motion` (main_window.build_args)."""
        rows = self.active_rows()
        return args.replace(mix_rows=rows) if rows else args

    def __call__(self, show: bool) -> None:
        viz = self.viz
        num_ws = viz.model_info.num_ws
        if self.anim:
            advanced = self.motion.advanced(viz.frame_dt)
            self.seed, self._anim_pos = max(0, advanced.seed), advanced.phase
        if show:
            self._draw(num_ws)

    def _draw(self, num_ws: int) -> None:
        lay = self.viz.layout
        with grayed_out(num_ws == 0):
            with imgui_utils.item_width(lay.small_input_width * 1.5):
                changed, seed = imgui.input_int("Mix seed", self.seed)
            imgui_utils.items.record("Mix seed")
            if changed:
                self.seed = max(0, seed)
            imgui.same_line()
            _, self.anim = checkbox("Anim##mix", self.anim)
            imgui.same_line()
            with imgui_utils.item_width(lay.small_input_width):
                _, self.speed = imgui.input_float("seeds/s##mix", self.speed, 0.0, 0.0, "%.1f")
            imgui.text("Rows from the mix seed:")
            per_line = max(1, int((lay.pane_width - lay.px(40)) // lay.px(56)))
            for row in range(num_ws):
                if row % per_line:
                    imgui.same_line()
                changed, on = checkbox(f"{row}##mixrow", row in self.rows)
                if changed:
                    (self.rows.add if on else self.rows.discard)(row)
            if button("All rows", lay.button_width):
                self.rows = set(range(num_ws))
            imgui.same_line()
            if button("No rows", lay.button_width):
                self.rows = set()
            imgui_utils.help_marker("Each checked row of ws (one per layer, coarse to fine) takes the mix seed's W.")
