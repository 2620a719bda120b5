"""Small Dear ImGui helpers: disabled sections, item widths, and widgets whose screen rectangles
are recorded by label (so scripted input can find and click them)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from imgui_bundle import imgui


@contextlib.contextmanager
def grayed_out(disabled: bool = True) -> Iterator[None]:
    """Widgets inside are drawn greyed out and ignore input when `disabled`."""
    imgui.begin_disabled(disabled)
    try:
        yield
    finally:
        imgui.end_disabled()


@contextlib.contextmanager
def item_width(width: float) -> Iterator[None]:
    imgui.push_item_width(width)
    try:
        yield
    finally:
        imgui.pop_item_width()


@dataclass(frozen=True)
class ItemRect:
    x0: float
    y0: float
    x1: float
    y1: float
    visible: bool

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2


class ItemRegistry:
    """Where each labelled item was drawn in the last frame, and scroll requests by label."""

    def __init__(self) -> None:
        self.rects: dict[str, ItemRect] = {}
        self._frame: dict[str, ItemRect] = {}
        self.scroll_to: str | None = None

    def end_frame(self) -> None:
        self.rects, self._frame = self._frame, {}

    def record(self, label: str) -> None:
        """Call right after drawing the item; `visible` means wholly inside its window."""
        lo, hi = imgui.get_item_rect_min(), imgui.get_item_rect_max()
        win_lo, win_size = imgui.get_window_pos(), imgui.get_window_size()
        inside = (lo.x >= win_lo.x and lo.y >= win_lo.y and hi.x <= win_lo.x + win_size.x
                  and hi.y <= win_lo.y + win_size.y)
        visible = imgui.is_item_visible() and inside
        self._frame[label] = ItemRect(lo.x, lo.y, hi.x, hi.y, visible)
        if self.scroll_to == label:
            if not visible:
                imgui.set_scroll_here_y(0.5)
            self.scroll_to = None

    def record_window(self, label: str) -> None:
        """Call right after begin(): the window's whole rectangle, under `label`##window."""
        pos, size = imgui.get_window_pos(), imgui.get_window_size()
        self._frame[f"{label}##window"] = ItemRect(pos.x, pos.y, pos.x + size.x, pos.y + size.y, True)


items = ItemRegistry()


def button(label: str, width: float = 0.0, enabled: bool = True) -> bool:
    with grayed_out(not enabled):
        clicked = imgui.button(label, imgui.ImVec2(width, 0))
    items.record(label)
    return clicked and enabled


def checkbox(label: str, value: bool) -> tuple[bool, bool]:
    changed, value = imgui.checkbox(label, value)
    items.record(label)
    return changed, value


def selectable(label: str, selected: bool, span_columns: bool = False) -> bool:
    flags = imgui.SelectableFlags_.span_all_columns.value if span_columns else 0
    clicked, _ = imgui.selectable(label, selected, flags)
    items.record(label)
    return clicked


def collapsing_header(label: str, default_open: bool = True) -> bool:
    flags = imgui.TreeNodeFlags_.default_open.value if default_open else 0
    expanded = imgui.collapsing_header(label, flags)
    items.record(label)
    return expanded


def help_marker(text: str) -> None:
    """A '(?)' after the previous item that shows `text` on hover."""
    imgui.same_line()
    imgui.text_disabled("(?)")
    if imgui.is_item_hovered():
        imgui.set_tooltip(text)
