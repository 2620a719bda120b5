"""A GLFW window with an OpenGL 3.3 core-profile context, sized to fit the monitor."""

from __future__ import annotations

import glfw
import numpy as np
import OpenGL.GL as gl


class WindowError(RuntimeError):
    """The window could not be opened (no display, no OpenGL 3.3)."""


def monitor_work_area() -> tuple[int, int] | None:
    """The primary monitor's work area (width, height) in screen coordinates (None if unknown);
    call after glfw.init()."""
    monitor = glfw.get_primary_monitor()
    if not monitor:
        return None
    _, _, width, height = glfw.get_monitor_workarea(monitor)
    return (int(width), int(height)) if width > 0 and height > 0 else None


def monitor_content_scale() -> float:
    """The primary monitor's content scale (at least 1); call after glfw.init()."""
    monitor = glfw.get_primary_monitor()
    if not monitor:
        return 1.0
    sx, sy = glfw.get_monitor_content_scale(monitor)
    return max(1.0, float(max(sx, sy)))


def init_glfw() -> None:
    if not glfw.init():
        raise WindowError("could not initialise GLFW: is there a display (DISPLAY unset or X server not running)?")


class GlfwWindow:
    """One top-level window. `dropped_paths` collects files dropped onto it until taken; the close
    button calls `on_close_request()`, which may keep the window open (`keep_open()`)."""

    def __init__(self, title: str, size: tuple[int, int], vsync: bool = True) -> None:
        init_glfw()
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.SCALE_TO_MONITOR, True)
        self.content_scale = monitor_content_scale()
        width, height = self._fit_to_monitor(size)
        self.handle = glfw.create_window(width, height, title, None, None)
        if not self.handle:
            glfw.terminate()
            raise WindowError("could not create an OpenGL 3.3 core-profile window")
        glfw.make_context_current(self.handle)
        self.vsync = vsync
        glfw.swap_interval(1 if vsync else 0)
        self.dropped_paths: list[str] = []
        glfw.set_drop_callback(self.handle, self._on_drop)
        glfw.set_window_close_callback(self.handle, lambda _window: self.on_close_request())

    def on_close_request(self) -> None:
        """The user pressed the window's close button (the window closes unless this calls keep_open)."""

    def keep_open(self) -> None:
        glfw.set_window_should_close(self.handle, False)

    @staticmethod
    def _fit_to_monitor(size: tuple[int, int]) -> tuple[int, int]:
        width, height = size
        area = monitor_work_area()
        if area is not None:
            width, height = min(width, area[0]), min(height, area[1])
        return int(width), int(height)

    def _on_drop(self, _window, paths) -> None:
        self.dropped_paths.extend(str(p) for p in paths)

    def take_dropped_paths(self) -> list[str]:
        paths, self.dropped_paths = self.dropped_paths, []
        return paths

    @property
    def size(self) -> tuple[int, int]:
        """Window size in screen coordinates."""
        return tuple(glfw.get_window_size(self.handle))  # type: ignore[return-value]

    @property
    def framebuffer_size(self) -> tuple[int, int]:
        return tuple(glfw.get_framebuffer_size(self.handle))  # type: ignore[return-value]

    def set_vsync(self, enabled: bool) -> None:
        if enabled != self.vsync:
            glfw.swap_interval(1 if enabled else 0)
            self.vsync = enabled

    def set_title(self, title: str) -> None:
        glfw.set_window_title(self.handle, title)

    @property
    def should_close(self) -> bool:
        return bool(glfw.window_should_close(self.handle))

    def request_close(self) -> None:
        glfw.set_window_should_close(self.handle, True)

    def read_pixels(self) -> np.ndarray:
        """The back buffer as uint8 H x W x 3, top row first (call after drawing, before swapping)."""
        width, height = self.framebuffer_size
        gl.glReadBuffer(gl.GL_BACK)
        gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
        data = gl.glReadPixels(0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
        return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)[::-1].copy()

    def swap_buffers(self) -> None:
        glfw.swap_buffers(self.handle)

    def close(self) -> None:
        if self.handle:
            glfw.destroy_window(self.handle)
            self.handle = None
        glfw.terminate()
