"""Small synthetic images for projection tests and the documentation's screenshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_emoji_like(path: Path) -> None:
    """A yellow disc with two dark eyes on white, 96 x 80 (wider than high: the crop is shown)."""
    yy, xx = np.mgrid[:80, :96]
    image = np.full((80, 96, 3), 255, dtype=np.uint8)
    image[(yy - 40) ** 2 + (xx - 48) ** 2 < 30 ** 2] = (250, 200, 40)
    for eye_x in (38, 58):
        image[(yy - 32) ** 2 + (xx - eye_x) ** 2 < 4 ** 2] = (60, 40, 20)
    Image.fromarray(image).save(path)
