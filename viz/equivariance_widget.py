"""Equivariance (StyleGAN3 only): translate and rotate the generator's input, drag to move it, Anim,
round to whole pixels, Untransform (resample the output back by the inverse transform), and the live
EQ-T / EQ-T frac / EQ-R readout with the error image of the current transform (viz.equivariance_readout)."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, checkbox, grayed_out
from renderer.conventions import as_matrix3, round_translation, user_transform
from viz.equivariance_readout import EquivarianceReadout

DRAG_SPEED = {"fast": 1 / 200, "slow": 1 / 4000}   # image widths per pixel dragged


class EquivarianceWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.translate = [0.0, 0.0]     # image widths
        self.rotate = 0.0               # turns
        self.anim = False
        self.anim_speed = 0.02          # turns per second; the translation circles at the same rate
        self.anim_radius = 0.1          # image widths
        self.round = False
        self.untransform = False
        self._anim_phase = 0.0
        self.readout = EquivarianceReadout(viz)

    def transform_at(self, t: float) -> tuple[tuple[float, float], float]:
        tx, ty = self.translate
        rot = self.rotate
        if self.anim:
            phase = self._anim_phase + self.anim_speed * t
            angle = 2 * math.pi * phase
            tx, ty, rot = tx + self.anim_radius * math.cos(angle), ty + self.anim_radius * math.sin(angle), rot + phase
        if self.round:
            tx, ty = round_translation((tx, ty), max(1, self.viz.model_info.img_resolution))
        return (tx, ty), rot

    def args_at(self, args, t: float):
        if not self.viz.model_info.has_input_transform:
            return args
        translate, rot = self.transform_at(t)
        return args.replace(input_transform=as_matrix3(user_transform(translate, rot)))

    def __call__(self, show: bool) -> None:
        viz = self.viz
        available = viz.model_info.has_input_transform
        if self.anim:
            self._anim_phase += self.anim_speed * viz.frame_dt
        if available:
            translate, rot = self.transform_at(0.0)
            viz.set_args(input_transform=as_matrix3(user_transform(translate, rot)), untransform=self.untransform)
        self.readout.poll()
        if not show:
            return
        if viz.model_info.family and not available:
            self.readout.draw_not_applicable()
        with grayed_out(not available):
            self._draw()
            imgui.separator()
            self.readout.draw()

    def _draw(self) -> None:
        lay = self.viz.layout
        changed, xy = imgui.drag_float2("Translate x/y", self.translate, 1e-3, format="%.4f")
        imgui_utils.items.record("Translate x/y")
        if changed:
            self.translate = list(xy)
        imgui_utils.help_marker("In image widths.")
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
        if button("Reset##eq", lay.button_width):
            self.translate, self.rotate, self.anim, self._anim_phase = [0.0, 0.0], 0.0, False, 0.0
        _, self.anim = checkbox("Anim##eq", self.anim)
        imgui.same_line()
        with imgui_utils.item_width(lay.small_input_width):
            _, self.anim_speed = imgui.input_float("turns/s", self.anim_speed, 0.0, 0.0, "%.3f")
        _, self.round = checkbox("Round to whole pixels", self.round)
        imgui.same_line()
        _, self.untransform = checkbox("Untransform", self.untransform)
        imgui.same_line()
        self.readout.draw_error_toggle()
