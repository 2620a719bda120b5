"""The status line at the bottom: the newest error or note on the left, timings on the right."""

from __future__ import annotations

from imgui_bundle import imgui

from viz.image_view import ERROR_COLOR


class StatusBar:
    def __init__(self, viz) -> None:
        self.viz = viz

    def text(self) -> tuple[str, bool]:
        """(text, is_error)."""
        viz = self.viz
        if viz.result.error:
            return viz.result.error.splitlines()[0], True
        note = viz.current_note
        if note:
            return note, False
        if viz.client is not None and viz.client.is_busy:
            return "rendering ...", False
        return "ready (F1: shortcuts)", False

    def __call__(self, show: bool) -> None:
        """A bar along the bottom of the window (drawn before the dock space, which it makes room for)."""
        viz, lay = self.viz, self.viz.layout
        win_w = imgui.get_main_viewport().size.x
        flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_saved_settings
                 | imgui.WindowFlags_.no_scroll_with_mouse)
        height = imgui.get_frame_height()
        if not imgui.internal.begin_viewport_side_bar("##status", imgui.get_main_viewport(), imgui.Dir.down, height,
                                                      flags):
            imgui.end()
            return
        result = viz.result
        fp16 = ", fp16" if result.fp16_layers else ""
        right = f"render {result.render_time * 1e3:.0f} ms | {result.device or '-'} | ops {result.op_path or '-'}{fp16}"
        if viz.texture.width:
            right = f"{viz.texture.width}x{viz.texture.height} | " + right
        right_width = imgui.calc_text_size(right).x
        text, is_error = self.text()
        text = fit_text(f"Error: {text}" if is_error else text, win_w - right_width - lay.px(40))
        if is_error:
            imgui.text_colored(imgui.ImVec4(*ERROR_COLOR), text)
        else:
            imgui.text(text)
        imgui.same_line(win_w - right_width - lay.px(12))
        imgui.text_disabled(right)
        imgui.end()


def fit_text(text: str, width: float) -> str:
    """`text`, shortened with an ellipsis to fit `width` pixels in the current font."""
    if imgui.calc_text_size(text).x <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:                     # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if imgui.calc_text_size(text[:mid] + " ...").x <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + " ..."
