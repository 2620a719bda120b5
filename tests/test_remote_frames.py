"""Frames on the link: lossless codecs give the exact pixels back, JPEG close ones, and an encoded
frame that is not the image it claims to be is refused before anything big is allocated."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
import zstandard
from PIL import Image

from renderer.remote.frames import FrameCodec, FrameError, decode_image, encode_image
from renderer.remote.messages import EncodedImage


def smooth_image(h: int = 96, w: int = 128, channels: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    planes = [128 + 100 * np.sin(x / (9 + c) + y / 17) for c in range(channels)]
    noise = np.random.default_rng(1).integers(-2, 3, (h, w, channels))
    return np.clip(np.stack(planes, -1) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("codec", ["zstd", "raw"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_lossless_codecs_return_the_exact_pixels(codec, channels):
    image = smooth_image(channels=channels)
    encoded = encode_image(image, FrameCodec(codec))
    assert encoded.codec == codec and encoded.shape == image.shape and encoded.encode_seconds >= 0
    out = decode_image(encoded)
    assert out.dtype == np.uint8 and np.array_equal(out, image) and out.flags.writeable


def test_zstd_of_row_differences_beats_zstd_of_the_pixels():
    image = smooth_image(256, 256)
    size = len(encode_image(image, FrameCodec("zstd")).data)
    assert size < 0.6 * image.nbytes and size < 0.75 * len(zstandard.ZstdCompressor(level=1).compress(image.tobytes()))


def test_jpeg_is_close_and_much_smaller():
    image = smooth_image(256, 256)
    encoded = encode_image(image, FrameCodec("jpeg", 90))
    out = decode_image(encoded)
    assert encoded.codec == "jpeg" and len(encoded.data) < image.nbytes / 5
    assert out.shape == image.shape and np.abs(out.astype(int) - image).mean() < 4


def test_jpeg_falls_back_to_lossless_for_four_channels():
    image = smooth_image(channels=4)
    encoded = encode_image(image, FrameCodec("jpeg"))
    assert encoded.codec == "zstd" and np.array_equal(decode_image(encoded), image)


def test_codec_options_are_checked():
    with pytest.raises(ValueError, match="unknown frame codec"):
        FrameCodec("png")
    with pytest.raises(ValueError, match="outside 1..100"):
        FrameCodec("jpeg", 0)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def test_encoded_frames_that_lie_are_refused():
    image = smooth_image(32, 32)
    jpeg = io.BytesIO()
    Image.fromarray(image).save(jpeg, "JPEG")
    png = io.BytesIO()
    Image.fromarray(image).save(png, "PNG")
    lies = [
        EncodedImage("raw", (32, 32, 3), image.tobytes()[:-1]),          # too few bytes
        EncodedImage("zstd", (32, 32, 3), _zstd(bytes(32 * 32 * 3 + 1))),  # decompresses to more than the shape
        EncodedImage("zstd", (32, 32, 3), b"not zstd at all"),
        EncodedImage("jpeg", (16, 32, 3), jpeg.getvalue()),               # another size than declared
        EncodedImage("jpeg", (32, 32, 1), jpeg.getvalue()),               # colour where grey is declared
        EncodedImage("jpeg", (32, 32, 3), png.getvalue()),                # not a JPEG
        EncodedImage("jpeg", (32, 32, 3), jpeg.getvalue()[:50]),          # cut short
        EncodedImage("lzma", (32, 32, 3), b""),
        EncodedImage("raw", (32, 32), b""),                               # not H x W x C
        EncodedImage("raw", (0, 32, 3), b""),
        EncodedImage("raw", (32, 32, 2), bytes(32 * 32 * 2)),
    ]
    for encoded in lies:
        with pytest.raises(FrameError):
            decode_image(encoded)


def test_a_decompression_bomb_is_refused_without_allocating_it():
    side = 16384
    bomb = _zstd(bytes(side * side * 3))  # 768 MiB of zeros in well under a MiB
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(FrameError, match="over the limit"):
            decode_image(EncodedImage("zstd", (side, side, 3), bomb))
        with pytest.raises(FrameError, match="declares"):
            decode_image(EncodedImage("zstd", (64, 64, 3), bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
