"""Feeds synthetic mouse clicks and key presses into Dear ImGui's input queue, one event group per
frame, exactly as the GLFW backend would: for tests and scripted documentation screenshots."""

from __future__ import annotations

from collections import deque

from imgui_bundle import imgui

from gui_utils.imgui_utils import items

_MODIFIERS = {
    "ctrl": (imgui.Key.left_ctrl, imgui.Key.mod_ctrl),
    "shift": (imgui.Key.left_shift, imgui.Key.mod_shift),
    "alt": (imgui.Key.left_alt, imgui.Key.mod_alt),
}


def key_by_name(name: str) -> imgui.Key:
    """'right_arrow', 'space', 'f1', 's', 'escape', ... -> imgui.Key."""
    lookup = {"left": "left_arrow", "right": "right_arrow", "up": "up_arrow", "down": "down_arrow"}
    return getattr(imgui.Key, lookup.get(name, name))


SETTLE_FRAMES = 2   # Dear ImGui trickles queued events over frames: let them land before `idle`


class ScriptedInput:
    """Queue input; call `feed()` once per frame before imgui.new_frame()."""

    def __init__(self) -> None:
        self._frames: deque[list] = deque()

    @property
    def idle(self) -> bool:
        return not self._frames

    def click(self, x: float, y: float, button: int = 0, count: int = 1) -> None:
        """`count` clicks of mouse button `button` (0 left, 1 right, 2 middle) at (x, y)."""
        self._frames.append([("pos", x, y)])
        for _ in range(count):
            self._frames.append([("pos", x, y), ("button", True, button)])
            self._frames.append([("button", False, button)])
        self._settle()

    def wheel(self, x: float, y: float, notches: float) -> None:
        """Turn the mouse wheel by `notches` (positive: away from the user) with the mouse at (x, y)."""
        self._frames.append([("pos", x, y)])
        self._frames.append([("wheel", notches)])
        self._settle()

    def _settle(self) -> None:
        self._frames.extend([] for _ in range(SETTLE_FRAMES))

    def click_item(self, label: str, at: tuple[float, float] = (0.5, 0.5)) -> bool:
        """Click the item drawn with `label` (at its centre, or at fractions `at` of its width and height);
        False (and a scroll request) if it is not visible."""
        rect = items.rects.get(label)
        if rect is None or not rect.visible:
            items.scroll_to = label
            return False
        self.click(rect.x0 + at[0] * (rect.x1 - rect.x0), rect.y0 + at[1] * (rect.y1 - rect.y0))
        return True

    def move(self, x: float, y: float) -> None:
        """Move the mouse to (x, y) and leave it there."""
        self._frames.append([("pos", x, y)])
        self._settle()

    def type_text(self, text: str) -> None:
        """Type characters into the focused text field, one per frame."""
        for char in text:
            self._frames.append([("char", char)])
        self._settle()

    def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 4, button: int = 0) -> None:
        self._frames.append([("pos", *start)])
        self._frames.append([("button", True, button)])
        for i in range(1, steps + 1):
            t = i / steps
            self._frames.append([("pos", start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))])
        self._frames.append([("button", False, button)])
        self._settle()

    def press(self, key: str, modifiers: tuple[str, ...] = ()) -> None:
        code = key_by_name(key)
        down = [("key", m, True) for name in modifiers for m in _MODIFIERS[name]]
        up = [("key", m, False) for name in modifiers for m in _MODIFIERS[name]]
        self._frames.append(down + [("key", code, True)])
        self._frames.append([("key", code, False)] + up)
        self._settle()

    def feed(self) -> None:
        if not self._frames:
            return
        io = imgui.get_io()
        for event in self._frames.popleft():
            if event[0] == "pos":
                io.add_mouse_pos_event(event[1], event[2])
            elif event[0] == "button":
                io.add_mouse_button_event(event[2], event[1])
            elif event[0] == "wheel":
                io.add_mouse_wheel_event(0.0, event[1])
            elif event[0] == "char":
                io.add_input_character(ord(event[1]))
            else:
                io.add_key_event(event[1], event[2])
