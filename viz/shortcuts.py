"""Keyboard shortcuts and the F1 overlay that lists them."""

from __future__ import annotations

from imgui_bundle import imgui

SHORTCUTS = (
    ("Left / Right", "previous / next seed"),
    ("Up / Down", "seed +100 / -100 (next / previous row of the latent grid)"),
    ("Space", "start / stop the latent animation"),
    ("Ctrl+S", "save the image (PNG with metadata) to the capture directory"),
    ("Ctrl+G", "save the whole window (Save GUI)"),
    ("Ctrl+Z", "undo the last change of a setting"),
    ("Ctrl+Shift+Z, Ctrl+Y", "redo"),
    ("[ / ]", "previous / next channel of the layer"),
    ("F", "spectrum view on / off"),
    ("F1", "show / hide this list"),
    ("Esc", "close a popup or dialog, leave a text field; else quit (asks if there is unsaved work)"),
    ("Drag on image", "move through seeds"),
    ("Wheel on image", "zoom about the cursor; right- or middle-drag pans, right double-click fits"),
    ("Drop a file", "a model or run: open it; a saved .png or its .json: restore that frame; a session .json: open it"),
)


class Shortcuts:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.show_overlay = False

    def _handle_keys(self) -> None:
        viz = self.viz
        io = imgui.get_io()
        pressed = imgui.is_key_pressed
        if pressed(imgui.Key.f1, False):
            self.show_overlay = not self.show_overlay
        if pressed(imgui.Key.escape, False):
            if self.show_overlay:
                self.show_overlay = False
            elif not (viz.escape_taken or viz.dialog.is_open or viz.quit_dialog.is_open):
                viz.ask_to_quit()
        if io.want_text_input or viz.dialog.is_open or viz.quit_dialog.is_open:
            return                     # typing in a field: letters and arrows belong to it
        if io.key_ctrl:
            if pressed(imgui.Key.s, False):
                viz.capture.save_image()
            if pressed(imgui.Key.g, False):
                viz.capture.save_gui()
            if pressed(imgui.Key.z) and not io.key_shift:
                viz.undo()
            if (pressed(imgui.Key.z) and io.key_shift) or pressed(imgui.Key.y):
                viz.redo()
            return
        steps = {imgui.Key.right_arrow: (1, 0), imgui.Key.left_arrow: (-1, 0),
                 imgui.Key.up_arrow: (0, 1), imgui.Key.down_arrow: (0, -1)}
        for key, (dx, dy) in steps.items():
            if pressed(key):
                viz.latent.step(dx, dy)
        if pressed(imgui.Key.space, False):
            viz.latent.anim = not viz.latent.anim
        if pressed(imgui.Key.left_bracket):
            viz.layer.step_channel(-1)
        if pressed(imgui.Key.right_bracket):
            viz.layer.step_channel(1)
        if pressed(imgui.Key.f, False):
            viz.layer.fft_show = not viz.layer.fft_show

    def __call__(self, show: bool) -> None:
        self._handle_keys()
        if not (show and self.show_overlay):
            return
        viz, lay = self.viz, self.viz.layout
        win_w, win_h = viz.size
        imgui.set_next_window_pos(imgui.ImVec2(win_w / 2, win_h / 2), imgui.Cond_.always, imgui.ImVec2(0.5, 0.5))
        imgui.set_next_window_bg_alpha(0.92)
        flags = (imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_collapse
                 | imgui.WindowFlags_.always_auto_resize | imgui.WindowFlags_.no_resize)
        imgui.begin("Keyboard shortcuts (F1 to close)", None, flags)
        if imgui.begin_table("##shortcuts", 2, imgui.TableFlags_.row_bg | imgui.TableFlags_.borders_inner_v):
            imgui.table_setup_column("Key", imgui.TableColumnFlags_.width_fixed, lay.px(180))
            imgui.table_setup_column("Action", imgui.TableColumnFlags_.width_fixed, lay.overlay_width)
            imgui.table_headers_row()
            for key, action in SHORTCUTS:
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.push_font(viz.fonts.bold, 0.0)
                imgui.text(key)
                imgui.pop_font()
                imgui.table_next_column()
                imgui.text_wrapped(action)
            imgui.end_table()
        imgui.end()
