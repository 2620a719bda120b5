"""The image area (the dock space's central area): the newest frame scaled to fit (whole-number zoom
when it is smaller than the area), drag to move through seeds, the spectrum's cutoff (a circle where
the layer's filters are radial, as in StyleGAN3-R) and Nyquist drawn over the spectrum half, and
errors as readable text over the image. Another model's frame is never shown under this one's name.
The mouse wheel zooms about the cursor (image and spectrum alike), the right or middle button drags
the zoomed view, and a right double-click fits the frame to the area again."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from gui_utils.imgui_utils import items
from renderer.conventions import CUTOFF_RGB, ERROR_RGB, NYQUIST_RGB, frame_parts, rgba

ERROR_COLOR = rgba(ERROR_RGB)
CUTOFF_COLOR = rgba(CUTOFF_RGB, 0.9)
NYQUIST_COLOR = rgba(NYQUIST_RGB, 0.9)
IMAGE_AREA_LABEL = "##image"
MAX_VIEW_ZOOM = 64.0          # times the fitted size
WHEEL_STEP = 2 ** 0.5         # zoom factor per wheel notch


class ImageView:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.rect: tuple[int, int, int, int] | None = None   # where the image is drawn, framebuffer pixels
        self._area = (0.0, 0.0, 1.0, 1.0)
        self.cutoff_shape: str | None = None                 # "circle" or "square" as last drawn (tests)
        self.view_zoom = 1.0                                 # times the fitted size (wheel)
        self.pan = (0.0, 0.0)                                # offset of the zoomed frame, screen pixels
        self._fitted_size: tuple[int, int] | None = None     # texture size the view was set for

    def fit_view(self) -> None:
        """Back to the whole frame fitted to the area."""
        self.view_zoom, self.pan = 1.0, (0.0, 0.0)

    def contains(self, x: float, y: float) -> bool:
        ax, ay, aw, ah = self.area()
        return ax <= x < ax + aw and ay <= y < ay + ah

    def area(self) -> tuple[float, float, float, float]:
        """The image area (x, y, w, h) in screen coordinates."""
        return self._area

    def _zoom(self, view_zoom: float) -> float:
        """Screen pixels per frame pixel at `view_zoom` times the fitted size."""
        tex = self.viz.texture
        x, y, w, h = self.area()
        m = self.viz.layout.margin
        zoom = min((w - 2 * m) / tex.width, (h - 2 * m) / tex.height)
        if zoom >= 1:
            zoom = math.floor(zoom)            # whole-number zoom keeps pixels square and crisp
        zoom *= view_zoom
        return math.floor(zoom) if zoom >= 1 else zoom

    def _fit(self) -> tuple[float, float, float, float] | None:
        tex = self.viz.texture
        if tex.width == 0:
            return None
        if self._fitted_size != (tex.width, tex.height):      # another layer or model: the whole frame again
            self._fitted_size = (tex.width, tex.height)
            self.fit_view()
        x, y, w, h = self.area()
        zoom = self._zoom(self.view_zoom)
        iw, ih = tex.width * zoom, tex.height * zoom
        return round(x + (w - iw) / 2 + self.pan[0]), round(y + (h - ih) / 2 + self.pan[1]), round(iw), round(ih)

    def _zoom_about(self, mouse, notches: float) -> None:
        """Zoom by WHEEL_STEP per notch, keeping the frame point under the mouse where it is."""
        fit = self._fit()
        if fit is None:
            return
        x0, y0, iw, ih = fit
        u, v = (mouse.x - x0) / max(1, iw), (mouse.y - y0) / max(1, ih)
        self.view_zoom = min(MAX_VIEW_ZOOM, max(1.0, self.view_zoom * WHEEL_STEP ** notches))
        if self.view_zoom == 1.0:
            self.pan = (0.0, 0.0)
            return
        tex = self.viz.texture
        x, y, w, h = self.area()
        zoom = self._zoom(self.view_zoom)
        iw, ih = tex.width * zoom, tex.height * zoom
        self.pan = (mouse.x - u * iw - (x + (w - iw) / 2), mouse.y - v * ih - (y + (h - ih) / 2))
        self._keep_in_view(iw, ih)

    def _keep_in_view(self, iw: float, ih: float) -> None:
        """Pan no further than leaves half the area showing the frame."""
        _, _, w, h = self.area()
        limit_x, limit_y = max(0.0, (iw - w / 2) / 2 + w / 4), max(0.0, (ih - h / 2) / 2 + h / 4)
        self.pan = (min(limit_x, max(-limit_x, self.pan[0])), min(limit_y, max(-limit_y, self.pan[1])))

    def _view_input(self) -> None:
        """Wheel, right/middle drag and right double-click over the image area (the button just drawn)."""
        io = imgui.get_io()
        if imgui.is_item_hovered() and io.mouse_wheel:
            self._zoom_about(io.mouse_pos, io.mouse_wheel)
        if imgui.is_item_hovered() and imgui.is_mouse_double_clicked(imgui.MouseButton_.right):
            self.fit_view()
        elif imgui.is_item_active() and (imgui.is_mouse_dragging(imgui.MouseButton_.right, 0.0)
                                         or imgui.is_mouse_dragging(imgui.MouseButton_.middle, 0.0)):
            delta = io.mouse_delta
            if (delta.x or delta.y) and self.view_zoom > 1.0:
                self.pan = (self.pan[0] + delta.x, self.pan[1] + delta.y)
                fit = self._fit()
                if fit is not None:
                    self._keep_in_view(fit[2], fit[3])

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
        imgui.invisible_button(IMAGE_AREA_LABEL, imgui.ImVec2(w, h),
                               imgui.ButtonFlags_.mouse_button_left | imgui.ButtonFlags_.mouse_button_right
                               | imgui.ButtonFlags_.mouse_button_middle)
        items.record(IMAGE_AREA_LABEL)
        self._view_input()
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
            viz = self.viz
            zoom = self.rect[2] / viz.texture.width
            scale_x = viz.framebuffer_size[0] / max(1, viz.size[0])
            scale_y = viz.framebuffer_size[1] / max(1, viz.size[1])
            x, y, w, h = self.area()
            clip = (round(x * scale_x), round(y * scale_y), round(w * scale_x), round(h * scale_y))
            viz.quad.draw(viz.texture, self.rect, viz.framebuffer_size, smooth=zoom < 1, clip=clip)
