"""The menu bar: File (models, saved frames, sessions, quit), Edit (undo, redo, reset), View (the
analysis panel, the shortcut list, UI scale, the default layout), and Undo / Redo at hand."""

from __future__ import annotations

from imgui_bundle import imgui

from gui_utils.imgui_utils import items
from viz.layout import USER_SCALE_RANGE

UNDO_LABEL = "Undo##bar"
REDO_LABEL = "Redo##bar"


def _item(label: str, shortcut: str = "", enabled: bool = True) -> bool:
    clicked = imgui.menu_item(label, shortcut, False, enabled)[0]
    items.record(label)
    return clicked


def _menu(label: str) -> bool:
    opened = imgui.begin_menu(label)
    items.record(label)
    return opened


class MenuBar:
    def __init__(self, viz) -> None:
        self.viz = viz

    def __call__(self) -> None:
        viz = self.viz
        if not imgui.begin_main_menu_bar():
            return
        if _menu("File"):
            if _item("Open model ..."):
                viz.dialog.ask("Open a model file or a training run", viz.model.path, viz.model.open)
            if _item("Open saved frame (.png / .json) ..."):
                viz.dialog.ask("Open a frame saved by the visualizer", viz.capture.directory, viz.open_frame_state)
            imgui.separator()
            if _item("Open session ..."):
                viz.dialog.ask("Open a session file", str(viz.sessions.named_path or viz.sessions.default_path),
                               viz.open_session)
            if _item("Save session", enabled=viz.sessions.named_path is not None):
                viz.save_session(str(viz.sessions.named_path))
            if _item("Save session as ..."):
                viz.dialog.ask("Save the session as", str(viz.sessions.named_path or "session.json"),
                               viz.save_session)
            imgui.separator()
            if _item("Quit", "Esc"):
                viz.ask_to_quit()
            imgui.end_menu()
        if _menu("Edit"):
            if _item("Undo", "Ctrl+Z", viz.history.can_undo):
                viz.undo()
            if _item("Redo", "Ctrl+Shift+Z", viz.history.can_redo):
                viz.redo()
            imgui.separator()
            if _item("Reset every section"):
                viz.reset_all()
            imgui.end_menu()
        if _menu("View"):
            _, viz.show_analysis = imgui.menu_item("Analysis panel", "", viz.show_analysis)
            items.record("Analysis panel")
            if _item("Keyboard shortcuts", "F1"):
                viz.shortcuts.show_overlay = not viz.shortcuts.show_overlay
            imgui.separator()
            imgui.set_next_item_width(viz.layout.px(160))
            changed, percent = imgui.slider_int("UI scale", round(viz.user_scale * 100),
                                                round(USER_SCALE_RANGE[0] * 100), round(USER_SCALE_RANGE[1] * 100),
                                                "%d %%")
            if changed:
                viz.user_scale = percent / 100
            if _item("Default layout"):
                viz.dock.rebuild = True
            imgui.end_menu()
        if _item(UNDO_LABEL, enabled=viz.history.can_undo):
            viz.undo()
        if _item(REDO_LABEL, enabled=viz.history.can_redo):
            viz.redo()
        imgui.end_main_menu_bar()
