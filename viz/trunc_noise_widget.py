"""Truncation (psi, cutoff) and noise (mode, seed; greyed out when the model has no noise inputs)."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import grayed_out
from renderer.protocol import NOISE_MODES, RenderArgs
from viz.state import TruncNoiseState

PSI_RANGE = (-1.0, 2.0)


class TruncNoiseWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.psi = 1.0
        self.cutoff: int | None = None         # None: all rows
        self.noise_mode = "const"
        self.noise_seed = 0

    def state(self) -> TruncNoiseState:
        return TruncNoiseState(psi=float(self.psi), cutoff=self.cutoff, noise_mode=self.noise_mode,
                               noise_seed=int(self.noise_seed))

    def restore(self, state: TruncNoiseState) -> None:
        self.psi = min(max(state.psi, PSI_RANGE[0]), PSI_RANGE[1])
        self.cutoff = None if state.cutoff is None else max(0, state.cutoff)
        self.noise_mode = state.noise_mode if state.noise_mode in NOISE_MODES else NOISE_MODES[0]
        self.noise_seed = max(0, state.noise_seed)

    def reset(self) -> None:
        self.restore(TruncNoiseState())

    def _cutoff(self) -> int | None:
        num_ws = self.viz.model_info.num_ws
        return None if (self.cutoff is None or (num_ws and self.cutoff >= num_ws)) else self.cutoff

    def contribute(self, args: RenderArgs) -> RenderArgs:
        args = args.replace(trunc_psi=self.psi, trunc_cutoff=self._cutoff())
        if self.viz.model_info.has_noise:
            args = args.replace(noise_mode=self.noise_mode, noise_seed=self.noise_seed)
        return args

    def __call__(self, show: bool) -> None:
        info = self.viz.model_info
        num_ws = info.num_ws
        cutoff = self._cutoff()
        if not show:
            return
        _, self.psi = imgui.slider_float("Truncation psi", self.psi, *PSI_RANGE, "%.2f")
        imgui_utils.items.record("Truncation psi")
        with grayed_out(num_ws == 0):
            value = num_ws if cutoff is None else cutoff
            changed, value = imgui.slider_int("Cutoff (rows)", value, 0, max(num_ws, 1),
                                              "all" if cutoff is None and num_ws else "%d")
            if changed:
                self.cutoff = None if value >= num_ws else value
        with grayed_out(not info.has_noise):
            idx = NOISE_MODES.index(self.noise_mode)
            changed, idx = imgui.combo("Noise mode", idx, list(NOISE_MODES))
            if changed:
                self.noise_mode = NOISE_MODES[idx]
            with grayed_out(self.noise_mode != "random"):
                changed, seed = imgui.input_int("Noise seed", self.noise_seed)
                if changed:
                    self.noise_seed = max(0, seed)
        if info.family and not info.has_noise:
            imgui.text_disabled("This model has no noise inputs.")
