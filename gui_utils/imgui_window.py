"""A GLFW window running Dear ImGui (and ImPlot), drawn with imgui-bundle's OpenGL 3 backend."""

from __future__ import annotations

from typing import Callable

import OpenGL.GL as gl
from imgui_bundle import imgui, implot
from imgui_bundle.python_backends.glfw_backend import GlfwRenderer

from gui_utils.fonts import Fonts
from gui_utils.window import GlfwWindow


class ImguiWindow(GlfwWindow):
    """`begin_frame()`, draw widgets, then `end_frame(draw_scene)`; the scene (raw OpenGL) is drawn
    under the ImGui windows. Sizes scale with the monitor content scale (`self.content_scale`)."""

    def __init__(self, title: str, size: tuple[int, int], font_size: float, vsync: bool = True,
                 ini_path: str | None = None) -> None:
        super().__init__(title, size, vsync)
        imgui.create_context()
        implot.create_context()
        io = imgui.get_io()
        io.set_ini_filename(ini_path)          # None: no imgui.ini written into the working directory
        imgui.style_colors_dark()
        imgui.get_style().scale_all_sizes(self.content_scale)
        self.fonts = Fonts(font_size * self.content_scale)
        self._backend = GlfwRenderer(self.handle)
        self.frame_hooks: list[Callable[[], None]] = []   # run after input polling, before widgets

    def begin_frame(self) -> None:
        import glfw

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
