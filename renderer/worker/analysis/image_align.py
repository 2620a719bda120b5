"""A real image brought to a model's frame: the largest centred square, resized to the model's
resolution, on white where the image is transparent (as the emoji training set is drawn)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

WHITE = (255, 255, 255)


class ImageLoadError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class AlignedImage:
    pixels: np.ndarray                       # uint8 [resolution, resolution, channels]
    crop_box: tuple[int, int, int, int]      # left, top, right, bottom in the source image's pixels
    source_size: tuple[int, int]             # width, height of the source image


def load_image(path: str | os.PathLike) -> Image.Image:
    """An image file read with Pillow (decoders only: nothing in the file runs)."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: no such file.") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
        raise ImageLoadError(f"Could not read {Path(path).name} as an image ({e}); give a PNG, JPEG or other "
                             "image file Pillow reads.") from None


def centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    """The largest square centred in a width x height image: (left, top, right, bottom)."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def align_image(image: Image.Image, resolution: int, channels: int = 3) -> AlignedImage:
    """Centre crop to a square and resize (Lanczos) to resolution x resolution; RGB for 3-channel
    models, greyscale for 1-channel ones; transparency composited over white."""
    if channels not in (1, 3):
        raise ImageLoadError(f"projection supports models with 1 or 3 image channels, this one has {channels}.")
    width, height = image.size
    if width == 0 or height == 0:
        raise ImageLoadError("the image is empty (0 pixels wide or high).")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE + (255,)), rgba)
    image = image.convert("RGB" if channels == 3 else "L")
    box = centre_square(width, height)
    square = image.crop(box)
    if square.size != (resolution, resolution):
        square = square.resize((resolution, resolution), Image.Resampling.LANCZOS)
    pixels = np.array(square, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return AlignedImage(pixels=np.ascontiguousarray(pixels), crop_box=box, source_size=(width, height))
