"""A GLFW window running Dear ImGui (with docking) and ImPlot, drawn with imgui-bundle's OpenGL 3 backend.

The frame loop may wait for input instead of spinning: `begin_frame(wait)` sleeps in
glfw.wait_events_timeout until an event arrives or `wait` seconds pass, and `input_seen` says whether
any input (mouse, keys, resize, focus, drops) has arrived since the last frame."""

from __future__ import annotations

from typing import Callable

import glfw
import OpenGL.GL as gl
from imgui_bundle import imgui, implot
from imgui_bundle.python_backends.glfw_backend import GlfwRenderer

from gui_utils.fonts import Fonts
from gui_utils.window import GlfwWindow

# The backend's input callbacks, each chained so that an event also marks the window as having had input.
_CHAINED_CALLBACKS = (glfw.set_key_callback, glfw.set_cursor_pos_callback, glfw.set_mouse_button_callback,
                      glfw.set_window_size_callback, glfw.set_char_callback, glfw.set_scroll_callback)
# ImPlot's sizes that follow the UI scale (read once at scale 1).
_PLOT_SIZES = ("annotation_padding", "label_padding", "legend_inner_padding", "legend_padding", "legend_spacing",
               "major_tick_len", "minor_tick_len", "mouse_pos_padding", "plot_default_size", "plot_min_size",
               "plot_padding")
_OWN_CALLBACKS = (glfw.set_window_focus_callback, glfw.set_window_refresh_callback, glfw.set_cursor_enter_callback,
                  glfw.set_framebuffer_size_callback, glfw.set_window_iconify_callback)


class ImguiWindow(GlfwWindow):
    """`begin_frame()`, draw widgets, then `end_frame(draw_scene)`; the scene (raw OpenGL) is drawn
    under the ImGui windows. `set_ui_scale()` scales fonts and sizes (dynamic fonts: text stays sharp)."""

    def __init__(self, title: str, size: tuple[int, int], font_size: float, vsync: bool = True,
                 ini_path: str | None = None) -> None:
        super().__init__(title, size, vsync)
        imgui.create_context()
        implot.create_context()
        io = imgui.get_io()
        io.set_ini_filename(ini_path)          # None: no imgui.ini written into the working directory
        io.config_flags |= imgui.ConfigFlags_.docking_enable
        self.font_size = float(font_size)
        self.ui_scale = 0.0
        plot_style = implot.get_style()
        self._plot_sizes = {name: (getattr(plot_style, name).x, getattr(plot_style, name).y) for name in _PLOT_SIZES}
        self.fonts = Fonts(font_size * self.content_scale)
        self.set_ui_scale(1.0)
        self._backend = GlfwRenderer(self.handle)
        self.frame_hooks: list[Callable[[], None]] = []   # run after input polling, before widgets
        self.input_seen = True
        self._watch_input()

    def _watch_input(self) -> None:
        def mark(previous):
            def callback(*event):
                self.input_seen = True
                if previous is not None:
                    previous(*event)
            return callback

        for setter in _CHAINED_CALLBACKS:
            previous = setter(self.handle, None)
            setter(self.handle, mark(previous))
        for setter in _OWN_CALLBACKS:
            setter(self.handle, mark(None))

    def _on_drop(self, window, paths) -> None:
        self.input_seen = True
        super()._on_drop(window, paths)

    def set_ui_scale(self, scale: float) -> None:
        """Fonts and every size of the style at `scale` times their size at scale 1 (call between frames)."""
        if abs(scale - self.ui_scale) < 1e-3:
            return
        style = imgui.Style()
        imgui.style_colors_dark(style)
        style.scale_all_sizes(scale)
        style.font_size_base = self.font_size
        style.font_scale_main = scale
        imgui.get_current_context().style = style
        plot_style = implot.get_style()
        for name, (x, y) in self._plot_sizes.items():
            setattr(plot_style, name, imgui.ImVec2(x * scale, y * scale))
        self.ui_scale = scale

    def begin_frame(self, wait: float = 0.0) -> None:
        """Take the input that has arrived, waiting up to `wait` seconds for some if there is none."""
        self.input_seen = False
        if wait > 0:
            glfw.wait_events_timeout(wait)
        else:
            glfw.poll_events()
        self._backend.process_inputs()
        for hook in self.frame_hooks:
            hook()
        imgui.new_frame()
        imgui.push_font(self.fonts.regular, 0.0)

    def end_frame(self, draw_scene: Callable[[], None] | None = None, clear_color=(0.1, 0.1, 0.12),
                  after_draw: Callable[[], None] | None = None) -> None:
        """Render: clear, draw the scene, ImGui on top; `after_draw` sees the finished back buffer."""
        imgui.pop_font()
        imgui.render()
        gl.glViewport(0, 0, *self.framebuffer_size)
        gl.glClearColor(*clear_color, 1.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        if draw_scene is not None:
            draw_scene()
        self._backend.render(imgui.get_draw_data())
        if after_draw is not None:
            after_draw()
        self.swap_buffers()

    def close(self) -> None:
        if self.handle:
            self._backend.shutdown()
            implot.destroy_context()
            imgui.destroy_context()
        super().close()
