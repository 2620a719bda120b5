"""The conventions that must agree with the official StyleGAN3 tools, in one place.

Pure numpy (no torch): the GUI, the CLI, the renderer and the tests all import these.
"""

from __future__ import annotations

import math

import numpy as np

SEED_ROW_STRIDE = 100  # neighbour (sx, sy) of a fractional latent position is seed sx + 100 * sy
IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

Matrix3 = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
WeightedSeeds = tuple[tuple[int, float], ...]


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """z for a seed, exactly as the official tools draw it: RandomState(seed).randn(z_dim)."""
    return np.random.RandomState(seed % (1 << 32)).randn(z_dim)


def class_from_seed(seed: int, z_dim: int, c_dim: int) -> int:
    """The class index the official tools draw for a seed of a conditional model: the same
    generator that drew z then draws the label."""
    rnd = np.random.RandomState(seed % (1 << 32))
    rnd.randn(z_dim)
    return int(rnd.randint(c_dim))


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
