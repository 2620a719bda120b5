"""Equivariance (StyleGAN3 only): translate and rotate the generator's input, drag to move or turn it,
animate the translation and the rotation each on its own with signed speeds, round to whole pixels,
Untransform (resample the output back by the inverse transform), and the live EQ-T / EQ-T frac / EQ-R
readout with the error image of the current transform (viz.equivariance_readout)."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, checkbox, grayed_out
from renderer.animation import TransformMotion
from renderer.protocol import RenderArgs
from viz.equivariance_readout import EquivarianceReadout
from viz.state import EquivarianceState

DRAG_PER_FONT_PIXEL = {"fast": 2e-2, "slow": 4e-4}   # image widths (or turns) per font-size of mouse travel
SPEED_LIMIT = 10.0                                   # turns per second, either sign


class EquivarianceWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.translate = [0.0, 0.0]     # image widths (the circle's start when the translation animates)
        self.rotate = 0.0               # turns
        self.translate_anim = False
        self.translate_speed = 0.05     # turns of the circle per second (signed)
        self.translate_radius = 0.1     # image widths
        self.rotate_anim = False
        self.rotate_speed = 0.02        # turns per second (signed)
        self.round = False
        self.untransform = False
        self._phase = 0.0               # turns of the translation circle travelled
        self.readout = EquivarianceReadout(viz)

    def state(self) -> EquivarianceState:
        return EquivarianceState(
            translate=(float(self.translate[0]), float(self.translate[1])), rotate=float(self.rotate),
            translate_anim=self.translate_anim, translate_speed=float(self.translate_speed),
            translate_radius=float(self.translate_radius), translate_phase=float(self._phase),
            rotate_anim=self.rotate_anim, rotate_speed=float(self.rotate_speed), round=self.round,
            untransform=self.untransform, readout_auto=self.readout.auto, error_image=self.readout.error_image)

    def restore(self, state: EquivarianceState) -> None:
        self.translate, self.rotate = list(state.translate), state.rotate
        self.translate_anim, self.translate_speed = state.translate_anim, _bounded(state.translate_speed)
        self.translate_radius, self._phase = state.translate_radius, state.translate_phase
        self.rotate_anim, self.rotate_speed = state.rotate_anim, _bounded(state.rotate_speed)
        self.round, self.untransform = state.round, state.untransform
        self.readout.auto, self.readout.error_image = state.readout_auto, state.error_image

    def reset(self) -> None:
        self.restore(EquivarianceState())

    @property
    def motion(self) -> TransformMotion:
        return TransformMotion(translate=(float(self.translate[0]), float(self.translate[1])), rotate=float(self.rotate),
                               translate_anim=self.translate_anim, translate_speed=self.translate_speed,
                               translate_radius=self.translate_radius, translate_phase=self._phase,
                               rotate_anim=self.rotate_anim, rotate_speed=self.rotate_speed, round_pixels=self.round)

    def transform_at(self, t: float) -> tuple[tuple[float, float], float]:
        return self.motion.at(t, max(1, self.viz.model_info.img_resolution))

    def contribute(self, args: RenderArgs) -> RenderArgs:
        """Untransform; the transform itself comes from `motion` (main_window.build_args)."""
        return args.replace(untransform=self.untransform) if self.viz.model_info.has_input_transform else args

    def _pause_translation(self) -> None:
        paused = self.motion.paused()
        self.translate, self._phase = list(paused.translate), 0.0

    def __call__(self, show: bool) -> None:
        viz = self.viz
        available = viz.model_info.has_input_transform
        if self.translate_anim or self.rotate_anim:
            advanced = self.motion.advanced(viz.frame_dt)
            self._phase, self.rotate = advanced.translate_phase, advanced.rotate
        self.readout.poll()
        if not show:
            return
        if viz.model_info.family and not available:
            self.readout.draw_not_applicable()
        with grayed_out(not available):
            self._draw()
            imgui.separator()
            self.readout.draw()

    def _speed(self, label: str, value: float) -> float:
        """A signed speed field, bounded."""
        with imgui_utils.item_width(self.viz.layout.small_input_width):
            changed, speed = imgui.input_float(label, value, 0.01, 0.1, "%.3f")
        imgui_utils.items.record(label)
        return _bounded(speed) if changed else value

    def _drag_buttons(self, what: str) -> tuple[float, float]:
        """The official tool's 'Drag fast' and 'Drag slow' buttons: hold one and move the mouse. The mouse
        travel (dx, dy) in image widths or turns, scaled by the font size so it feels the same at any scale."""
        lay = self.viz.layout
        moved = (0.0, 0.0)
        for kind, per_font_pixel in DRAG_PER_FONT_PIXEL.items():
            label = f"Drag {kind}##{what}"
            imgui.button(label, imgui.ImVec2(lay.button_width, 0))
            imgui_utils.items.record(label)
            if imgui.is_item_active():
                delta = imgui.get_io().mouse_delta
                step = per_font_pixel / lay.font_size
                moved = (delta.x * step, delta.y * step)
            if imgui.is_item_hovered():
                imgui.set_tooltip(f"Hold and move the mouse to {'translate' if what == 'translate' else 'rotate'} "
                                  f"the input ({kind})")
            imgui.same_line()
        return moved

    def _draw(self) -> None:
        lay = self.viz.layout
        live, _ = self.motion.at(0.0, 1) if not self.round else self.transform_at(0.0)
        offset = (live[0] - self.translate[0], live[1] - self.translate[1])
        changed, xy = imgui.drag_float2("Translate x/y", list(live), 1e-3, format="%.4f")
        imgui_utils.items.record("Translate x/y")
        if changed:
            self.translate = [xy[0] - offset[0], xy[1] - offset[1]]
        imgui_utils.help_marker("In image widths. While the translation animates, the values move with it.")
        dx, dy = self._drag_buttons("translate")
        self.translate = [self.translate[0] + dx, self.translate[1] + dy]
        if button("Reset##translate", lay.button_width * 0.7):
            self.translate, self._phase, self.translate_anim = [0.0, 0.0], 0.0, False
        changed, on = checkbox("Anim##translate", self.translate_anim)
        if changed:
            if not on:
                self._pause_translation()
            self.translate_anim = on
        imgui.same_line()
        self.translate_speed = self._speed("circles/s", self.translate_speed)
        imgui_utils.help_marker("The translation runs round a circle that starts where it stands; a negative speed "
                                "runs the other way. Unticking leaves it where it is.")

        changed, rot = imgui.drag_float("Rotate (turns)", self.rotate, 1e-3, format="%.4f")
        imgui_utils.items.record("Rotate (turns)")
        if changed:
            self.rotate = rot
        dx, _ = self._drag_buttons("rotate")
        self.rotate += dx
        if button("Reset##rotate", lay.button_width * 0.7):
            self.rotate, self.rotate_anim = 0.0, False
        _, self.rotate_anim = checkbox("Anim##rotate", self.rotate_anim)
        imgui.same_line()
        self.rotate_speed = self._speed("turns/s", self.rotate_speed)
        imgui_utils.help_marker("Turns per second; a negative speed turns the other way. Unticking leaves it where "
                                "it is.")

        _, self.round = checkbox("Round to whole pixels", self.round)
        imgui.same_line()
        _, self.untransform = checkbox("Untransform", self.untransform)
        imgui.same_line()
        self.readout.draw_error_toggle()


def _bounded(speed: float) -> float:
    return min(max(speed, -SPEED_LIMIT), SPEED_LIMIT)
