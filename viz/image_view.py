"""The image area (the dock space's central area): the newest frame scaled to fit (whole-number zoom
when it is smaller than the area), drag to move through seeds, the spectrum's cutoff (a circle where
the layer's filters are radial, as in StyleGAN3-R) and Nyquist drawn over the spectrum half, and
errors as readable text over the image. Another model's frame is never shown under this one's name."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from gui_utils.imgui_utils import items
from renderer.conventions import CUTOFF_RGB, ERROR_RGB, NYQUIST_RGB, frame_parts, rgba

ERROR_COLOR = rgba(ERROR_RGB)
CUTOFF_COLOR = rgba(CUTOFF_RGB, 0.9)
NYQUIST_COLOR = rgba(NYQUIST_RGB, 0.9)
IMAGE_AREA_LABEL = "##image"


class ImageView:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.rect: tuple[int, int, int, int] | None = None   # where the image is drawn, framebuffer pixels
        self._area = (0.0, 0.0, 1.0, 1.0)
        self.cutoff_shape: str | None = None                 # "circle" or "square" as last drawn (tests)

    def area(self) -> tuple[float, float, float, float]:
        """The image area (x, y, w, h) in screen coordinates."""
        return self._area

    def _fit(self) -> tuple[float, float, float, float] | None:
        tex = self.viz.texture
        if tex.width == 0:
            return None
        x, y, w, h = self.area()
        m = self.viz.layout.margin
        zoom = min((w - 2 * m) / tex.width, (h - 2 * m) / tex.height)
        if zoom >= 1:
            zoom = math.floor(zoom)            # whole-number zoom keeps pixels square and crisp
        iw, ih = tex.width * zoom, tex.height * zoom
        return round(x + (w - iw) / 2), round(y + (h - ih) / 2), round(iw), round(ih)

    def __call__(self, area) -> None:
        viz = self.viz
        self._area = (area.x, area.y, max(1.0, area.w), max(1.0, area.h))
        x, y, w, h = self.area()
        imgui.set_next_window_pos(imgui.ImVec2(x, y))
        imgui.set_next_window_size(imgui.ImVec2(w, h))
        flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_background | imgui.WindowFlags_.no_move
                 | imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_bring_to_front_on_focus
                 | imgui.WindowFlags_.no_scroll_with_mouse | imgui.WindowFlags_.no_docking
                 | imgui.WindowFlags_.no_focus_on_appearing)
        imgui.push_style_var(imgui.StyleVar_.window_padding, imgui.ImVec2(0, 0))
        imgui.begin("Image", None, flags)
        imgui.invisible_button(IMAGE_AREA_LABEL, imgui.ImVec2(w, h))
        items.record(IMAGE_AREA_LABEL)
        if imgui.is_item_active() and not imgui.is_item_activated() and imgui.is_mouse_dragging(0, 0.0):
            delta = imgui.get_io().mouse_delta
            if delta.x or delta.y:
                viz.latent.drag(delta.x, delta.y)
        fit = None if viz.image_is_stale else self._fit()
        scale_x = viz.framebuffer_size[0] / max(1, viz.size[0])
        scale_y = viz.framebuffer_size[1] / max(1, viz.size[1])
        self.rect = None if fit is None else (round(fit[0] * scale_x), round(fit[1] * scale_y),
                                              round(fit[2] * scale_x), round(fit[3] * scale_y))
        if fit is not None and viz.image_args is not None and viz.image_args.fft_show:
            self._draw_spectrum_marks(fit)
        imgui.end()
        imgui.pop_style_var()
        self._draw_messages(x, y, w, h)

    def _layer_info(self):
        name = self.viz.image_args.layer
        for info in self.viz.layers:
            if info.name == name:
                return info
        return self.viz.layers[-1] if (name is None and self.viz.layers) else None

    def _draw_spectrum_marks(self, fit) -> None:
        """The spectrum half spans -s/2..s/2 (Nyquist at its border); the cutoff f_c sits at 2 f_c / s of
        the half-extent from the centre."""
        x, y, w, h = fit
        tex = self.viz.texture
        sx, sy, sw, sh = frame_parts(tex.width, tex.height, True)[1]
        zoom_x, zoom_y = w / max(1, tex.width), h / max(1, tex.height)
        hx, hy = sw * zoom_x / 2, sh * zoom_y / 2
        cx, cy = x + sx * zoom_x + hx, y + sy * zoom_y + hy
        draw = imgui.get_window_draw_list()
        lay = self.viz.layout
        nyq = imgui.get_color_u32(imgui.ImVec4(*NYQUIST_COLOR))
        draw.add_rect(imgui.ImVec2(cx - hx, cy - hy), imgui.ImVec2(cx + hx, cy + hy), nyq, 0.0, lay.line_thickness)
        info = self._layer_info()
        rate = info.sampling_rate if info is not None else None
        pad = lay.px(4)
        label = "Nyquist" + (f" {rate / 2:g}" if rate else "")
        draw.add_text(imgui.ImVec2(cx - hx + pad, cy - hy + pad), nyq, label)
        self.cutoff_shape = None
        if info is not None and rate and info.cutoff:
            r = min(1.0, 2 * info.cutoff / rate)
            cut = imgui.get_color_u32(imgui.ImVec4(*CUTOFF_COLOR))
            if info.radial:
                draw.add_ellipse(imgui.ImVec2(cx, cy), imgui.ImVec2(hx * r, hy * r), cut, 0.0, 0, lay.line_thickness)
                self.cutoff_shape = "circle"
            else:
                draw.add_rect(imgui.ImVec2(cx - hx * r, cy - hy * r), imgui.ImVec2(cx + hx * r, cy + hy * r), cut, 0.0,
                              lay.line_thickness)
                self.cutoff_shape = "square"
            label = f"cutoff f_c {info.cutoff:.2f}"
            size = imgui.calc_text_size(label)
            below = cy + hy * r + pad
            if below + size.y > cy + hy:            # no room under the cutoff: inside it instead
                below = cy + hy * r - size.y - pad
            draw.add_text(imgui.ImVec2(cx - size.x / 2, below), cut, label)

    def _draw_messages(self, x: float, y: float, w: float, h: float) -> None:
        viz = self.viz
        error = viz.result.error
        if error:
            text, color = error, ERROR_COLOR
        elif viz.image_args is None or viz.image_is_stale:
            text, color = ("Loading model ..." if viz.args.model else "No model: open one in the Model section,"
                           " drop a file onto the window, or pass it on the command line."), None
        else:
            return
        imgui.set_next_window_pos(imgui.ImVec2(x + w / 2, y + h / 2), imgui.Cond_.always, imgui.ImVec2(0.5, 0.5))
        imgui.set_next_window_size(imgui.ImVec2(viz.layout.overlay_width, 0))
        flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_saved_settings
                 | imgui.WindowFlags_.no_inputs | imgui.WindowFlags_.always_auto_resize)
        imgui.begin("##image message", None, flags)
        if color is not None:
            imgui.push_font(viz.fonts.bold, 0.0)
            imgui.text_colored(imgui.ImVec4(*color), "Error")
            imgui.pop_font()
            imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(*color))
            imgui.text_wrapped(text)
            imgui.pop_style_color()
        else:
            imgui.text_wrapped(text)
        imgui.end()

    def draw_scene(self) -> None:
        if self.rect is not None and self.viz.texture.width:
            zoom = self.rect[2] / self.viz.texture.width
            self.viz.quad.draw(self.viz.texture, self.rect, self.viz.framebuffer_size, smooth=zoom < 1)
