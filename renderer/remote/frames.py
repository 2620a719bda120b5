"""Frames compressed for the link: lossless by default, JPEG for slow links.

"zstd": each row stored as its difference from the row above (mod 256), then Zstandard at level 1:
lossless, and on smooth images half the size of zstd on the pixels themselves or less. "jpeg":
libjpeg through Pillow at the chosen quality (images with 1 or 3 channels; others go lossless).
"raw": the pixels as they are. Decoding checks the claimed shape against the data before it
allocates anything, so a hostile server cannot make the GUI decompress a bomb.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
import zstandard
from PIL import Image

from renderer.remote.codec import MessageError
from renderer.remote.messages import EncodedImage

FRAME_CODECS = ("zstd", "jpeg", "raw")
ZSTD_LEVEL = 1
MAX_FRAME_BYTES = 192 * 1024 * 1024     # decoded H * W * C
MAX_SIDE = 32768
CHANNELS = (1, 3, 4)


class FrameError(MessageError):
    """An encoded frame that does not decode to the image it claims to be."""


@dataclass(frozen=True)
class FrameCodec:
    """How the server should encode frames for this client."""

    name: str = "zstd"
    jpeg_quality: int = 85              # 1..100

    def __post_init__(self) -> None:
        if self.name not in FRAME_CODECS:
            raise ValueError(f"unknown frame codec {self.name!r}; choose one of {', '.join(FRAME_CODECS)}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality {self.jpeg_quality} is outside 1..100")

    @property
    def label(self) -> str:
        """In words for the status line: "lossless", "JPEG q85", "raw"."""
        return {"zstd": "lossless", "jpeg": f"JPEG q{self.jpeg_quality}"}.get(self.name, self.name)


LOSSLESS = FrameCodec("zstd")


def encode_image(image: np.ndarray, codec: FrameCodec) -> EncodedImage:
    """`image` (uint8 H x W x C) as it crosses the link."""
    start = time.perf_counter()
    image = np.ascontiguousarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.dtype != np.uint8 or image.ndim != 3:
        raise FrameError(f"a frame must be uint8 H x W x C, not {image.dtype} {list(image.shape)}")
    name = codec.name
    if name == "jpeg" and image.shape[2] not in (1, 3):
        name = "zstd"
    if name == "zstd":
        data = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(_row_differences(image))
    elif name == "jpeg":
        buffer = io.BytesIO()
        pixels = image[:, :, 0] if image.shape[2] == 1 else image
        Image.fromarray(pixels).save(buffer, "JPEG", quality=codec.jpeg_quality)
        data = buffer.getvalue()
    else:
        data = image.tobytes()
    return EncodedImage(codec=name, shape=tuple(image.shape), data=data, encode_seconds=time.perf_counter() - start)


def decode_image(encoded: EncodedImage, max_bytes: int = MAX_FRAME_BYTES) -> np.ndarray:
    """The uint8 H x W x C image; FrameError if the data is not that image."""
    shape = encoded.shape
    if len(shape) != 3 or not (1 <= shape[0] <= MAX_SIDE and 1 <= shape[1] <= MAX_SIDE) or shape[2] not in CHANNELS:
        raise FrameError(f"a frame of shape {list(shape)[:8]} is not an image (H x W x 1, 3 or 4)")
    nbytes = shape[0] * shape[1] * shape[2]
    if nbytes > max_bytes:
        raise FrameError(f"a frame of {nbytes} bytes is over the limit of {max_bytes}")
    if encoded.codec == "raw":
        if len(encoded.data) != nbytes:
            raise FrameError(f"a raw frame of shape {list(shape)} needs {nbytes} bytes, not {len(encoded.data)}")
        return np.frombuffer(encoded.data, np.uint8).reshape(shape).copy()
    if encoded.codec == "zstd":
        return _undo_row_differences(_unzstd(encoded.data, nbytes).reshape(shape))
    if encoded.codec == "jpeg":
        return _unjpeg(encoded.data, shape)
    raise FrameError(f"unknown frame codec {encoded.codec[:20]!r}")


def _row_differences(image: np.ndarray) -> np.ndarray:
    out = np.empty_like(image)
    out[0] = image[0]
    np.subtract(image[1:], image[:-1], out=out[1:])
    return out


def _undo_row_differences(rows: np.ndarray) -> np.ndarray:
    for i in range(1, rows.shape[0]):  # a row at a time: numpy's cumsum over uint8 is ten times slower
        np.add(rows[i - 1], rows[i], out=rows[i])
    return rows


def _unzstd(data: bytes, nbytes: int) -> np.ndarray:
    try:
        declared = zstandard.frame_content_size(data)
        if declared != nbytes:
            raise FrameError(f"a zstd frame that declares {declared} bytes where the image needs {nbytes}")
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=nbytes)
    except zstandard.ZstdError as e:
        raise FrameError(f"a zstd frame that does not decompress: {e}") from None
    if len(out) != nbytes:
        raise FrameError(f"a zstd frame that decompresses to {len(out)} bytes, not {nbytes}")
    return np.frombuffer(out, np.uint8).copy()


def _unjpeg(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    mode = "L" if shape[2] == 1 else "RGB"
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
            found = (im.size, im.mode)
            pixels = np.array(im, dtype=np.uint8) if found == ((shape[1], shape[0]), mode) else None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise FrameError(f"a JPEG frame that does not decode: {e}") from None
    if pixels is None:
        raise FrameError(f"a JPEG of {found[0][0]} x {found[0][1]} {found[1]} where the frame is "
                         f"{shape[1]} x {shape[0]} {mode}")
    return pixels.reshape(shape)
