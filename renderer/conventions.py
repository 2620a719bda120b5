"""The conventions that must agree with the official StyleGAN3 tools, in one place.

Pure numpy (no torch): the GUI, the CLI, the renderer and the tests all import these.
"""

from __future__ import annotations

import math
import re

import numpy as np

# A training run directory holds its snapshots under these names (the official training loop's, or
# our trainer's native ones); a folder of other model files is a folder, not a run.
SNAPSHOT_NAME = re.compile(r"network-snapshot-(\d+)\.(pkl|safetensors)")

SEED_ROW_STRIDE = 100  # neighbour (sx, sy) of a fractional latent position is seed sx + 100 * sy
IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

Matrix3 = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
WeightedSeeds = tuple[tuple[int, float], ...]


def latent_draw(seed: int, z_dim: int, c_dim: int = 0) -> tuple[np.ndarray, int | None, np.random.RandomState]:
    """z and class for a seed exactly as the official tools draw them (RandomState(seed).randn(z_dim), then
    for a conditional model the class from the same generator), and that generator, positioned after
    them (the equivariance metrics draw their random transforms from it)."""
    rnd = np.random.RandomState(seed % (1 << 32))
    z = rnd.randn(z_dim)
    class_idx = int(rnd.randint(c_dim)) if c_dim > 0 else None
    return z, class_idx, rnd


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """z for a seed, exactly as the official tools draw it: RandomState(seed).randn(z_dim)."""
    return latent_draw(seed, z_dim)[0]


def class_from_seed(seed: int, z_dim: int, c_dim: int) -> int:
    """The class index the official tools draw for a seed of a conditional model."""
    class_idx = latent_draw(seed, z_dim, c_dim)[1]
    if class_idx is None:
        raise ValueError("an unconditional model (c_dim 0) has no class to draw")
    return class_idx


def seed_from_cell(sx: int, sy: int) -> int:
    """The seed of integer latent cell (sx, sy)."""
    return (sx + SEED_ROW_STRIDE * sy) % (1 << 32)


def weighted_seeds(x: float, y: float) -> WeightedSeeds:
    """The four seeds around fractional latent position (x, y), with bilinear weights.

    Neighbour (floor(x) + i, floor(y) + j) gets weight (1 - |x - sx|) * (1 - |y - sy|); the
    renderer blends their (truncated) W as w_avg + sum weight * (W_seed - w_avg).
    Neighbours of zero weight are left out.
    """
    out = []
    for j in range(2):
        for i in range(2):
            sx, sy = math.floor(x) + i, math.floor(y) + j
            weight = (1 - abs(x - sx)) * (1 - abs(y - sy))
            if weight > 0:
                out.append((seed_from_cell(sx, sy), float(weight)))
    return tuple(out)


def displayed_seed(x: float, y: float) -> int:
    """The seed shown for a fractional position: round(x) + 100 * round(y)."""
    return seed_from_cell(round(x), round(y))


def user_transform(translate: tuple[float, float] = (0.0, 0.0), rotate_turns: float = 0.0) -> np.ndarray:
    """The user's input transform M = [[cos a, sin a, x], [-sin a, cos a, y], [0, 0, 1]],
    a = 2 pi * turns, translation in image widths. The network receives inv(M)."""
    a = rotate_turns * 2 * math.pi
    return np.array(
        [[math.cos(a), math.sin(a), translate[0]], [-math.sin(a), math.cos(a), translate[1]], [0.0, 0.0, 1.0]]
    )


def round_translation(translate: tuple[float, float], img_resolution: int) -> tuple[float, float]:
    """Snap a translation (image widths) to whole output pixels."""
    return (round(translate[0] * img_resolution) / img_resolution, round(translate[1] * img_resolution) / img_resolution)


def as_matrix3(m) -> Matrix3:
    """A 3x3 array-like as a hashable tuple of tuples (for RenderArgs)."""
    a = np.asarray(m, dtype=np.float64).reshape(3, 3)
    return tuple(tuple(float(v) for v in row) for row in a)  # type: ignore[return-value]


def db_to_gain(db: float) -> float:
    """Display gain 10^(dB/20)."""
    return 10.0 ** (db / 20.0)


# --- Frame layout: the layer image, with its power spectrum beside it when asked for -------------

def frame_parts(frame_width: int, frame_height: int, fft_show: bool) -> tuple[tuple[int, int, int, int], ...]:
    """Where the parts of a frame lie, as (x, y, width, height) in frame pixels: the layer image, then
    the spectrum (resized to the image's height, placed on its right) when the frame shows one. The
    spectrum spans -s/2 .. s/2 of the layer's sampling rate s on both axes, DC at its centre."""
    if not fft_show:
        return ((0, 0, frame_width, frame_height),)
    half = frame_width // 2
    return (0, 0, half, frame_height), (half, 0, frame_width - half, frame_height)


# --- Colours: one for each quantity, in the image overlays, the GUI's plots and the figures -------

CUTOFF_RGB = (255, 217, 51)          # f_c, the layer's cutoff
STOPBAND_RGB = (90, 170, 255)        # f_t, the stopband edge
NYQUIST_RGB = (77, 217, 255)         # s / 2
ERROR_RGB = (255, 115, 102)          # messages about failures
SERIES_RGB = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75))

# Colour map anchors (dark purple -> red -> yellow -> pale yellow), interpolated linearly.
_COLORMAP_ANCHORS = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                              [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float64)


def rgba(rgb: tuple[int, int, int], alpha: float = 1.0) -> tuple[float, float, float, float]:
    """An 8-bit RGB colour as the floats (0..1) a GUI toolkit takes."""
    return rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, alpha


def colormap(t: np.ndarray) -> np.ndarray:
    """t in [0, 1] -> uint8 RGB [..., 3] (spectra, error images, series)."""
    t = np.clip(np.nan_to_num(t), 0, 1) * (len(_COLORMAP_ANCHORS) - 1)
    i = np.minimum(np.floor(t).astype(np.int64), len(_COLORMAP_ANCHORS) - 2)
    f = (t - i)[..., None]
    return np.rint(_COLORMAP_ANCHORS[i] * (1 - f) + _COLORMAP_ANCHORS[i + 1] * f).astype(np.uint8)
