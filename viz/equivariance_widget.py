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

DRAG_SPEED = {"fast": 1 / 200, "slow": 1 / 4000}   # image widths (or turns) per pixel dragged
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
        return min(max(speed, -SPEED_LIMIT), SPEED_LIMIT) if changed else value

    def _draw(self) -> None:
        lay = self.viz.layout
        live, _ = self.motion.at(0.0, 1) if not self.round else self.transform_at(0.0)
        offset = (live[0] - self.translate[0], live[1] - self.translate[1])
        changed, xy = imgui.drag_float2("Translate x/y", list(live), 1e-3, format="%.4f")
        imgui_utils.items.record("Translate x/y")
        if changed:
            self.translate = [xy[0] - offset[0], xy[1] - offset[1]]
        imgui_utils.help_marker("In image widths. While the translation animates, the values move with it.")
        changed, rot = imgui.drag_float("Rotate (turns)", self.rotate, 1e-3, format="%.4f")
        imgui_utils.items.record("Rotate (turns)")
        if changed:
            self.rotate = rot
        for kind in DRAG_SPEED:
            label = f"Drag {kind}"
            imgui.button(label, imgui.ImVec2(lay.button_width, 0))
            imgui_utils.items.record(label)
            if imgui.is_item_active():
                delta = imgui.get_io().mouse_delta
                self.translate[0] += delta.x * DRAG_SPEED[kind]
                self.translate[1] += delta.y * DRAG_SPEED[kind]
            if imgui.is_item_hovered():
                imgui.set_tooltip("Hold and move the mouse to translate the input")
            imgui.same_line()
        imgui.button("Drag rotate", imgui.ImVec2(lay.button_width, 0))
        imgui_utils.items.record("Drag rotate")
        if imgui.is_item_active():
            self.rotate += imgui.get_io().mouse_delta.x * DRAG_SPEED["slow"]
        if imgui.is_item_hovered():
            imgui.set_tooltip("Hold and move the mouse left or right to rotate the input")
        imgui.same_line()
        if button("Reset##eq", lay.button_width):
            self.translate, self.rotate, self._phase = [0.0, 0.0], 0.0, 0.0
            self.translate_anim = self.rotate_anim = False
        changed, on = checkbox("Anim translate", self.translate_anim)
        if changed:
            if not on:
                self._pause_translation()
            self.translate_anim = on
        imgui.same_line()
        self.translate_speed = self._speed("circles/s", self.translate_speed)
        imgui_utils.help_marker("The translation runs round a circle that starts where it stands; a negative speed "
                                "runs the other way. Unticking leaves it where it is.")
        changed, on = checkbox("Anim rotate", self.rotate_anim)
        if changed:
            self.rotate_anim = on
        imgui.same_line()
        self.rotate_speed = self._speed("turns/s", self.rotate_speed)
        _, self.round = checkbox("Round to whole pixels", self.round)
        imgui.same_line()
        _, self.untransform = checkbox("Untransform", self.untransform)
        imgui.same_line()
        self.readout.draw_error_toggle()
