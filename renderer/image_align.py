"""A real image brought to a model's frame, on the machine where the user opened it: the file read
(a regular file of bounded size, decoded by Pillow), its largest centred square resized to the
model's resolution, on white where the image is transparent (as the emoji training set is drawn).

The projection job gets the aligned pixels (renderer.protocol.ProjectionTarget), never a path, so a
remote worker projects the GUI's own image and decodes nothing it was sent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from renderer.protocol import ProjectionTarget
from torch_utils.regular_file import NotARegularFile, open_regular

WHITE = (255, 255, 255)
MAX_IMAGE_FILE_BYTES = 32 * 1024 * 1024
MAX_IMAGE_PIXELS = 64 * 1024 * 1024          # decoded: 8192 x 8192
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")


class ImageLoadError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class AlignedImage:
    pixels: np.ndarray                       # uint8 [resolution, resolution, channels]
    crop_box: tuple[int, int, int, int]      # left, top, right, bottom in the source image's pixels
    source_size: tuple[int, int]             # width, height of the source image


def load_image(path: str | os.PathLike) -> Image.Image:
    """An image file read with Pillow's decoders for IMAGE_FORMATS (nothing in the file runs): a
    regular file of at most MAX_IMAGE_FILE_BYTES holding at most MAX_IMAGE_PIXELS pixels."""
    path = Path(path)
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_IMAGE_FILE_BYTES:
                raise ImageLoadError(f"{path.name} holds {size:,} bytes; an image to project may have at most "
                                     f"{MAX_IMAGE_FILE_BYTES:,} (save a smaller copy)")
            with Image.open(f, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageLoadError(f"{path.name} is {width}x{height} pixels; an image to project may have at "
                                         f"most {MAX_IMAGE_PIXELS:,} (save a smaller copy)")
                image.load()
                return image.copy()
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: no such file.") from None
    except NotARegularFile as e:
        raise ImageLoadError(f"Could not read the image: {e}; give a PNG, JPEG or WebP file.") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
        raise ImageLoadError(f"Could not read {path.name} as an image ({e}); give a PNG, JPEG, WebP, BMP, GIF or "
                             "TIFF file.") from None


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


def projection_target(path: str | os.PathLike, resolution: int, channels: int) -> ProjectionTarget:
    """The image file at `path` on this machine, aligned to a model of `resolution` px and `channels`
    image channels, as a projection request carries it; ImageLoadError names what is wrong."""
    aligned = align_image(load_image(Path(path).expanduser()), resolution, channels)
    return ProjectionTarget(pixels=aligned.pixels, crop_box=aligned.crop_box, source_size=aligned.source_size,
                            name=Path(path).name[:200])
