"""An RGB texture and a tiny shader that draws it into a rectangle of the window (OpenGL 3.3 core)."""

from __future__ import annotations

import numpy as np
import OpenGL.GL as gl

_VERTEX_SHADER = """
#version 330 core
uniform vec4 rect;   // x0, y0, x1, y1 in normalised device coordinates
out vec2 uv;
void main() {
    vec2 corner = vec2(gl_VertexID & 1, gl_VertexID >> 1);   // triangle strip over the unit square
    uv = corner;
    gl_Position = vec4(mix(rect.xy, rect.zw, corner), 0.0, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330 core
uniform sampler2D image;
in vec2 uv;
out vec4 color;
void main() {
    color = vec4(texture(image, uv).rgb, 1.0);
}
"""


def _compile(kind: int, source: str) -> int:
    shader = gl.glCreateShader(kind)
    gl.glShaderSource(shader, source)
    gl.glCompileShader(shader)
    if not gl.glGetShaderiv(shader, gl.GL_COMPILE_STATUS):
        raise RuntimeError(f"shader compile failed: {gl.glGetShaderInfoLog(shader).decode(errors='replace')}")
    return shader


class Texture:
    """A 2-D RGB texture holding the newest uint8 H x W x 3 image."""

    def __init__(self) -> None:
        self.id = int(gl.glGenTextures(1))
        self.width = 0
        self.height = 0

    def upload(self, image: np.ndarray) -> None:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected H x W x 3 uint8, got shape {image.shape}")
        height, width = image.shape[:2]
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.id)
        gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
        gl.glPixelStorei(gl.GL_UNPACK_ROW_LENGTH, 0)
        if (width, height) != (self.width, self.height):
            gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB8, width, height, 0, gl.GL_RGB, gl.GL_UNSIGNED_BYTE, image)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_S, gl.GL_CLAMP_TO_EDGE)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_T, gl.GL_CLAMP_TO_EDGE)
            # No mipmaps: without this filter the texture is incomplete where ImGui draws it (TextureQuad sets its own).
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, gl.GL_NEAREST)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_NEAREST)
            self.width, self.height = width, height
        else:
            gl.glTexSubImage2D(gl.GL_TEXTURE_2D, 0, 0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE, image)

    def delete(self) -> None:
        if self.id:
            gl.glDeleteTextures([self.id])
            self.id = 0


class TextureQuad:
    """Draws a texture into a pixel rectangle of the framebuffer."""

    def __init__(self) -> None:
        vertex = _compile(gl.GL_VERTEX_SHADER, _VERTEX_SHADER)
        fragment = _compile(gl.GL_FRAGMENT_SHADER, _FRAGMENT_SHADER)
        self.program = int(gl.glCreateProgram())
        gl.glAttachShader(self.program, vertex)
        gl.glAttachShader(self.program, fragment)
        gl.glLinkProgram(self.program)
        gl.glDeleteShader(vertex)
        gl.glDeleteShader(fragment)
        if not gl.glGetProgramiv(self.program, gl.GL_LINK_STATUS):
            raise RuntimeError(f"shader link failed: {gl.glGetProgramInfoLog(self.program).decode(errors='replace')}")
        self._rect = gl.glGetUniformLocation(self.program, "rect")
        self._image = gl.glGetUniformLocation(self.program, "image")
        self._vao = int(gl.glGenVertexArrays(1))   # core profile needs a bound VAO even without attributes

    def draw(self, texture: Texture, rect: tuple[float, float, float, float], framebuffer_size: tuple[int, int],
             smooth: bool, clip: tuple[int, int, int, int] | None = None) -> None:
        """Draw `texture` into rect = (x, y, width, height) in framebuffer pixels, origin top left; nothing
        outside `clip` (x, y, width, height, the same pixels) when it is given."""
        fb_w, fb_h = framebuffer_size
        x, y, w, h = rect
        x0, x1 = 2 * x / fb_w - 1, 2 * (x + w) / fb_w - 1
        y0, y1 = 1 - 2 * y / fb_h, 1 - 2 * (y + h) / fb_h        # texture row 0 is the image's top row
        gl.glViewport(0, 0, fb_w, fb_h)
        gl.glDisable(gl.GL_BLEND)
        if clip is None:
            gl.glDisable(gl.GL_SCISSOR_TEST)
        else:
            cx, cy, cw, ch = clip
            gl.glEnable(gl.GL_SCISSOR_TEST)
            gl.glScissor(int(cx), int(fb_h - cy - ch), int(cw), int(ch))    # GL's origin is bottom left
        gl.glUseProgram(self.program)
        gl.glActiveTexture(gl.GL_TEXTURE0)
        gl.glBindTexture(gl.GL_TEXTURE_2D, texture.id)
        flt = gl.GL_LINEAR if smooth else gl.GL_NEAREST
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, flt)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, flt)
        gl.glUniform1i(self._image, 0)
        gl.glUniform4f(self._rect, x0, y0, x1, y1)
        gl.glBindVertexArray(self._vao)
        gl.glDrawArrays(gl.GL_TRIANGLE_STRIP, 0, 4)
        gl.glBindVertexArray(0)
        gl.glUseProgram(0)
        gl.glDisable(gl.GL_SCISSOR_TEST)

    def delete(self) -> None:
        gl.glDeleteVertexArrays(1, [self._vao])
        gl.glDeleteProgram(self.program)
