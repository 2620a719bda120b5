"""Inspect pixels: with it on, a magnifying loupe follows the cursor over the frame and says what lies
under it: the layer's channel values at that pixel, or on the spectrum half the frequency and the
power in dB. The values come from the worker (a pixel probe of the frame on screen)."""

from __future__ import annotations

from dataclasses import dataclass, field

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import checkbox
from renderer.protocol import PixelProbeRequest, PixelValues
from viz.state import InspectState

LOUPE_SIZE = 160              # px at scale 1
MIN_ZOOM, MAX_ZOOM = 2, 32    # the loupe's magnification
SHOWN_CHANNELS = 8            # channel values listed (the first ones; the count says how many there are)
ENABLE_LABEL = "Inspect pixels under the cursor"


@dataclass
class InspectDrawn:
    """What the loupe shows (for scripted tests and the state dump)."""
    enabled: bool = False
    pixel: list[int] | None = None
    part: str | None = None
    values: list[float] = field(default_factory=list)
    frequency: list[float] | None = None
    power_db: float | None = None
    error: str | None = None


class InspectWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.enabled = False
        self.restore(InspectState())
        self.job = None
        self.values: PixelValues | None = None
        self._asked: tuple | None = None       # (args, x, y) of the probe running or answered
        self.drawn = InspectDrawn()

    def state(self) -> InspectState:
        return InspectState(magnification=int(self.magnification))

    def restore(self, state: InspectState) -> None:
        self.magnification = min(max(state.magnification, MIN_ZOOM), MAX_ZOOM)

    def reset(self) -> None:
        self.enabled = False
        self.restore(InspectState())

    @property
    def busy(self) -> bool:
        return self.job is not None

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def pixel_under_cursor(self) -> tuple[int, int] | None:
        """The frame pixel under the mouse, or None off the frame."""
        viz = self.viz
        rect, tex = viz.image_view.rect, viz.texture
        if rect is None or not tex.width:
            return None
        scale_x = viz.framebuffer_size[0] / max(1, viz.size[0])
        scale_y = viz.framebuffer_size[1] / max(1, viz.size[1])
        x0, y0, w, h = rect[0] / scale_x, rect[1] / scale_y, rect[2] / scale_x, rect[3] / scale_y
        mouse = imgui.get_mouse_pos()
        if not (x0 <= mouse.x < x0 + w and y0 <= mouse.y < y0 + h) or not viz.image_view.contains(mouse.x, mouse.y):
            return None
        return int((mouse.x - x0) * tex.width // w), int((mouse.y - y0) * tex.height // h)

    def _poll(self, pixel: tuple[int, int] | None) -> None:
        job = self.job
        if job is not None and job.done:
            self.job = None
            if job.error:
                self.drawn.error = job.error
            elif isinstance(job.value, PixelValues):
                self.values, self.drawn.error = job.value, None
        args = self.viz.image_args
        if pixel is None or args is None or self.job is not None:
            return
        wanted = (args, *pixel)
        if wanted != self._asked:
            self._asked = wanted
            self.job = self.viz.client.submit(PixelProbeRequest(args, pixel[0], pixel[1]))

    def _update_state(self, pixel: tuple[int, int] | None) -> None:
        st, v = self.drawn, self.values
        st.enabled = self.enabled
        st.pixel = list(pixel) if pixel is not None else st.pixel
        st.part = v.part if v is not None else None
        st.values = [float(x) for x in v.values] if v is not None and v.values is not None else []
        st.frequency = list(v.frequency) if v is not None and v.frequency is not None else None
        st.power_db = v.power_db if v is not None else None

    # Drawing ------------------------------------------------------------------------------

    def __call__(self, show: bool) -> None:
        pixel = self.pixel_under_cursor() if self.enabled else None
        if self.enabled:
            self._poll(pixel)
        self._update_state(pixel)
        if show:
            _, self.enabled = checkbox(ENABLE_LABEL, self.enabled)
            with imgui_utils.item_width(self.viz.layout.small_input_width * 2):
                _, self.magnification = imgui.slider_int("Loupe zoom", self.magnification, MIN_ZOOM, MAX_ZOOM)
            view = self.viz.image_view
            imgui.text(f"Image zoom {view.view_zoom:.2g}x")
            imgui_utils.help_marker("The mouse wheel over the image zooms about the cursor (up to 64x); the right or "
                                    "middle button drags the zoomed view; a right double-click fits the frame again.")
            imgui.same_line()
            if imgui_utils.button("Fit image", enabled=view.view_zoom != 1.0):
                view.fit_view()
            if self.drawn.error:
                imgui.text_wrapped(self.drawn.error)
        if pixel is not None:
            self._draw_loupe(pixel)

    def _describe(self) -> str:
        v = self.values
        if v is None:
            return "..."
        if v.part == "spectrum":
            fx, fy = v.frequency
            return f"spectrum of {v.layer}\nf = ({fx:.3g}, {fy:.3g}) cycles per unit\n{v.power_db:.1f} dB (re mean)"
        shown = ", ".join(f"{x:.4g}" for x in v.values[:SHOWN_CHANNELS])
        more = f" ... ({len(v.values)} channels)" if len(v.values) > SHOWN_CHANNELS else ""
        return f"{v.layer} at ({v.column}, {v.row})\n{shown}{more}"

    def _draw_loupe(self, pixel: tuple[int, int]) -> None:
        tex = self.viz.texture
        half = max(1.0, LOUPE_SIZE / self.magnification / 2)
        u0, v0 = (pixel[0] + 0.5 - half) / tex.width, (pixel[1] + 0.5 - half) / tex.height
        u1, v1 = (pixel[0] + 0.5 + half) / tex.width, (pixel[1] + 0.5 + half) / tex.height
        size = self.viz.layout.px(LOUPE_SIZE)
        imgui.begin_tooltip()
        imgui.image(imgui.ImTextureRef(tex.id), imgui.ImVec2(size, size), imgui.ImVec2(u0, v0), imgui.ImVec2(u1, v1))
        lo = imgui.get_item_rect_min()
        centre = imgui.ImVec2(lo.x + size / 2, lo.y + size / 2)
        cell = size / (2 * half)
        draw = imgui.get_window_draw_list()
        draw.add_rect(imgui.ImVec2(centre.x - cell / 2, centre.y - cell / 2),
                      imgui.ImVec2(centre.x + cell / 2, centre.y + cell / 2),
                      imgui.get_color_u32(imgui.ImVec4(1, 0.2, 0.2, 1)), 0.0, self.viz.layout.line_thickness)
        imgui.text(f"pixel ({pixel[0]}, {pixel[1]})")
        imgui.text(self._describe())
        imgui.end_tooltip()
