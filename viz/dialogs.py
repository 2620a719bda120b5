"""Small modal dialogs: asking before quitting with unsaved work, and a path to open or save (sessions,
saved frames). Esc cancels either; Enter confirms."""

from __future__ import annotations

from typing import Callable

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button

QUIT_TITLE = "Quit the visualizer?###quit dialog"
QUIT_LABEL = "Quit##confirm"
CANCEL_QUIT_LABEL = "Cancel##quit"
PATH_FIELD = "##dialog path"
PATH_OK = "OK##path dialog"
PATH_CANCEL = "Cancel##path dialog"
MODAL_FLAGS = imgui.WindowFlags_.always_auto_resize | imgui.WindowFlags_.no_saved_settings


def _centre_next_window() -> None:
    viewport = imgui.get_main_viewport()
    centre = imgui.ImVec2(viewport.pos.x + viewport.size.x / 2, viewport.pos.y + viewport.size.y / 2)
    imgui.set_next_window_pos(centre, imgui.Cond_.appearing, imgui.ImVec2(0.5, 0.5))


def _pressed(key: imgui.Key) -> bool:
    return imgui.is_key_pressed(key, False)


class QuitDialog:
    """'There is unsaved work: ...' with Quit and Cancel."""

    def __init__(self, quit_now: Callable[[], None]) -> None:
        self._quit_now = quit_now
        self.reasons: tuple[str, ...] = ()
        self.is_open = False
        self._opening = False

    def ask(self, reasons: list[str]) -> None:
        self.reasons, self.is_open, self._opening = tuple(reasons), True, True

    def draw(self, width: float) -> None:
        if not self.is_open:
            return
        fresh = self._opening          # the key that asked (Esc) must not answer too
        if fresh:
            imgui.open_popup(QUIT_TITLE)
            self._opening = False
        _centre_next_window()
        opened, _ = imgui.begin_popup_modal(QUIT_TITLE, None, MODAL_FLAGS)
        if not opened:
            self.is_open = False
            return
        imgui.text("There is unsaved work:")
        for reason in self.reasons:
            imgui.bullet_text(reason)
        imgui.spacing()
        if button(QUIT_LABEL, width / 4) or (_pressed(imgui.Key.enter) and not fresh):
            self._close()
            self._quit_now()
        imgui.same_line()
        if button(CANCEL_QUIT_LABEL, width / 4) or (_pressed(imgui.Key.escape) and not fresh):
            self._close()
        imgui.end_popup()

    def _close(self) -> None:
        imgui.close_current_popup()
        self.is_open = False


class PathDialog:
    """Asks for a path, then calls `action(path)`."""

    def __init__(self) -> None:
        self.is_open = False
        self.title = ""
        self.path = ""
        self._action: Callable[[str], None] | None = None
        self._opening = False
        self._typing = False             # the path field had the keyboard last frame (Esc leaves it first)

    def ask(self, title: str, initial: str, action: Callable[[str], None]) -> None:
        self.title, self.path, self._action = title, initial, action
        self.is_open = self._opening = True

    def draw(self, width: float) -> None:
        if not self.is_open:
            return
        label = f"{self.title}###path dialog"
        if self._opening:
            imgui.open_popup(label)
        _centre_next_window()
        opened, _ = imgui.begin_popup_modal(label, None, MODAL_FLAGS)
        if not opened:
            self.is_open = False
            return
        if self._opening:
            imgui.set_keyboard_focus_here()
            self._opening = False
        imgui.set_next_item_width(width)
        was_typing = self._typing
        entered, self.path = imgui.input_text(PATH_FIELD, self.path, imgui.InputTextFlags_.enter_returns_true)
        self._typing = imgui.is_item_active()
        imgui_utils.items.record(PATH_FIELD)
        if button(PATH_OK, width / 4) or entered:
            action, path = self._action, self.path.strip()
            self._close()
            if action is not None and path:
                action(path)
        imgui.same_line()
        if button(PATH_CANCEL, width / 4) or (_pressed(imgui.Key.escape) and not was_typing):
            self._close()
        imgui.end_popup()

    def _close(self) -> None:
        imgui.close_current_popup()
        self.is_open = False
