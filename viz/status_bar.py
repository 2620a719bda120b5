"""The status line at the bottom: the newest error or note on the left (a remote worker's link first,
while it is down), timings on the right (and the remote host, the frames' codec, the round trip and the bandwidth)."""

from __future__ import annotations

from imgui_bundle import imgui

from renderer.remote.client import LinkState, LinkStats, LinkStatus
from viz.image_view import ERROR_COLOR


class StatusBar:
    def __init__(self, viz) -> None:
        self.viz = viz

    def text(self) -> tuple[str, bool]:
        """(text, is_error)."""
        viz = self.viz
        link = self.link()
        if link is not None and link.state != LinkState.CONNECTED:
            return link_problem(link, viz.client.remote.address, kept_frame=bool(viz.texture.width)), \
                link.state != LinkState.CONNECTING
        if viz.result.error:
            return viz.result.error.splitlines()[0], True
        note = viz.current_note
        if note:
            return note, False
        if viz.client is not None and viz.client.is_busy:
            return "rendering ...", False
        return "ready (F1: shortcuts)", False

    def link(self) -> LinkStatus | None:
        client = self.viz.client
        return client.remote.status if client is not None and client.remote is not None else None

    def right_text(self) -> str:
        """Frame size, render time, device, op path; a remote worker's server, codec, round trip and bandwidth."""
        viz = self.viz
        result = viz.result
        fp16 = ", fp16" if result.fp16_layers else ""
        right = f"render {result.render_time * 1e3:.0f} ms | {result.device or '-'} | ops {result.op_path or '-'}{fp16}"
        if viz.texture.width:
            right = f"{viz.texture.width}x{viz.texture.height} | " + right
        link = self.link()
        if link is not None:
            remote = viz.client.remote
            rtt, rate = link_speed(remote.stats)
            right = f"remote {link.server or remote.address} | {remote.frame_codec.label} | rtt {rtt} | {rate} | " + right
        return right

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
        right = self.right_text()
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


def link_speed(stats: LinkStats) -> tuple[str, str]:
    """The link's round-trip time (ping) and bandwidth, in words ("-" until measured)."""
    rtt = f"{stats.round_trip_seconds * 1e3:.1f} ms" if stats.round_trip_seconds is not None else "-"
    rate = f"{stats.bytes_per_second / 1e6:.1f} MB/s" if stats.bytes_per_second else "-"
    return rtt, rate


def link_problem(link: LinkStatus, address: str, kept_frame: bool) -> str:
    """What the status line says while a remote worker's link is not up."""
    if link.state == LinkState.CONNECTING:
        return f"connecting to {address} ..."
    if link.state == LinkState.REFUSED:
        return link.message or f"{address} refused the connection"
    if link.state == LinkState.CLOSED:
        return f"disconnected from {address}"
    kept = "; the last frame stays on screen" if kept_frame else ""
    return f"Lost the server: {link.message}{kept}"


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
