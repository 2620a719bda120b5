"""The fonts that ship with imgui-bundle (in its package assets); nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import imgui_bundle
from imgui_bundle import imgui

FONT_DIR = Path(imgui_bundle.__file__).resolve().parent / "assets" / "fonts"
REGULAR = FONT_DIR / "Roboto" / "Roboto-Regular.ttf"
BOLD = FONT_DIR / "Roboto" / "Roboto-Bold.ttf"
MONOSPACE = FONT_DIR / "Inconsolata-Medium.ttf"


class Fonts:
    """Regular, bold and monospace faces loaded into the current ImGui context at `size_px`."""

    def __init__(self, size_px: float) -> None:
        atlas = imgui.get_io().fonts
        self.size_px = size_px
        self.regular = atlas.add_font_from_file_ttf(str(REGULAR), size_px)
        self.bold = atlas.add_font_from_file_ttf(str(BOLD), size_px)
        self.monospace = atlas.add_font_from_file_ttf(str(MONOSPACE), size_px)
