"""Latent directions in W: where a direction comes from (part of RenderArgs), what GANSpace and SeFa
return, moving a latent along them, and their files.

Part of the torch-free contract (the GUI saves and loads direction files; the worker applies them
to frames). A direction file is a plain .npy array, no sidecar: one unit vector [w_dim] or several
as rows [k, w_dim], float, read with allow_pickle=False.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from renderer.files import write_atomic

GANSPACE = "ganspace"
SEFA = "sefa"
FILE = "file"
METHODS = (GANSPACE, SEFA, FILE)
ROW_RANGES = ("all", "coarse", "middle", "fine", "custom")   # the ws rows a move applies to
DEFAULT_SAMPLES = 4096        # GANSpace: W samples the covariance is estimated from


@dataclass(frozen=True)
class DirectionSource:
    """Which set of directions: GANSpace over `num_samples` seeds from `first_seed`, SeFa of the style
    affines reading `rows` (empty: the rows of `row_range`, one of ROW_RANGES but custom), or the
    directions in the .npy file at `path`. The worker computes a set once per model and keeps it."""

    method: str = GANSPACE
    num_samples: int = DEFAULT_SAMPLES
    first_seed: int = 0
    rows: tuple[int, ...] = ()
    row_range: str = "all"
    path: str = ""

    def label(self) -> str:
        if self.method == GANSPACE:
            return f"GANSpace ({self.num_samples} seeds)"
        if self.method == SEFA:
            return f"SeFa (rows {', '.join(map(str, self.rows))})" if self.rows else f"SeFa ({self.row_range} rows)"
        return Path(self.path).name or "file"


@dataclass(frozen=True)
class DirectionMove:
    """Move the latent by `strength` W units along direction `index` of `source`."""

    source: DirectionSource
    index: int
    strength: float = 0.0


def moves_from_json(stored: Sequence[Mapping[str, Any]]) -> tuple[DirectionMove, ...]:
    """RenderArgs.directions back from a saved frame's JSON (dataclasses.asdict of the moves)."""
    moves = []
    try:
        for move in stored:
            source = dict(move["source"])
            source["rows"] = tuple(int(r) for r in source.get("rows", ()))
            moves.append(DirectionMove(source=DirectionSource(**source), index=int(move["index"]),
                                       strength=float(move["strength"])))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"the saved latent directions cannot be read ({type(e).__name__}: {e}); "
                         "save the frame again with this version") from None
    return tuple(moves)


class DirectionFileError(ValueError):
    """A direction file that cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True, eq=False)
class Directions:
    """Orthonormal directions in W, strongest first.

    `eigenvalues`: GANSpace, the variance of W along each direction (W units squared); SeFa, the
    eigenvalue of A^T A. `explained`: each eigenvalue over the sum of all w_dim of them (GANSpace:
    the explained-variance fraction). `rows`: the ws rows whose style affines SeFa factorised.
    """

    method: str                       # GANSPACE, SEFA or FILE
    vectors: np.ndarray               # [k, w_dim] float32, unit rows
    eigenvalues: np.ndarray           # [k] float64
    explained: np.ndarray             # [k] float64, fractions in [0, 1]
    rows: tuple[int, ...] = ()
    num_samples: int = 0              # GANSpace: W samples the covariance was estimated from
    first_seed: int = 0

    @property
    def count(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def spread(self) -> np.ndarray:
        """GANSpace: the standard deviation of W along each direction (a natural slider unit)."""
        return np.sqrt(np.maximum(self.eigenvalues, 0.0))


def sorted_eigenvectors(matrix: np.ndarray, count: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvectors (rows) of a symmetric matrix by decreasing eigenvalue, with the eigenvalues and
    each one's share of their sum. Each vector's sign is fixed (its largest-magnitude entry positive)
    so that the same matrix always gives the same directions."""
    matrix = np.asarray(matrix, dtype=np.float64)
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order].T
    biggest = np.abs(vectors).argmax(axis=1)
    vectors *= np.sign(vectors[np.arange(len(vectors)), biggest])[:, None]
    total = float(np.maximum(values, 0).sum())
    shares = np.maximum(values, 0) / total if total > 0 else np.zeros_like(values)
    count = len(values) if count is None else max(0, min(int(count), len(values)))
    return vectors[:count], values[:count], shares[:count]


# --- Moving a latent ------------------------------------------------------------------------------

def apply_directions(ws: np.ndarray, directions: np.ndarray, strengths: Sequence[float],
                     rows: Sequence[int] | None = None) -> np.ndarray:
    """ws [num_ws, w_dim] moved by sum_k strengths[k] * directions[k] on `rows` (None: every row).

    Strengths are in W units along each (unit) direction. A new array is returned; with every
    strength 0 (or no rows) it equals `ws` bit for bit.
    """
    ws = np.asarray(ws)
    directions = np.atleast_2d(np.asarray(directions))
    strengths = np.asarray(strengths, dtype=np.float64).reshape(-1)
    if ws.ndim != 2:
        raise ValueError(f"ws must be [num_ws, w_dim], got shape {list(ws.shape)}")
    if directions.ndim != 2 or directions.shape[1] != ws.shape[1]:
        raise ValueError(f"directions must be [k, {ws.shape[1]}] for this latent, got {list(directions.shape)}")
    if len(strengths) != directions.shape[0]:
        raise ValueError(f"{len(strengths)} strengths for {directions.shape[0]} directions")
    rows = list(range(ws.shape[0])) if rows is None else sorted({int(r) for r in rows})
    bad = [r for r in rows if not 0 <= r < ws.shape[0]]
    if bad:
        raise ValueError(f"ws rows {bad} do not exist: this latent has rows 0..{ws.shape[0] - 1}")
    moved = ws.copy()
    active = strengths != 0
    if not active.any() or not rows:
        return moved
    offset = strengths[active] @ directions[active].astype(np.float64)
    moved[rows] = (ws[rows].astype(np.float64) + offset).astype(ws.dtype)
    return moved


# --- Files ------------------------------------------------------------------------------------------

def direction_file_bytes(vectors: np.ndarray) -> bytes:
    """The .npy bytes of one direction [w_dim] or several [k, w_dim], as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim not in (1, 2) or vectors.shape[-1] == 0:
        raise ValueError(f"a direction is [w_dim] or [k, w_dim], got shape {list(vectors.shape)}")
    buffer = io.BytesIO()
    np.save(buffer, vectors, allow_pickle=False)
    return buffer.getvalue()


def save_directions(path: str | os.PathLike, vectors: np.ndarray) -> Path:
    """Write one direction [w_dim] or several [k, w_dim] to a .npy file, atomically."""
    path = Path(path)
    write_atomic(path, direction_file_bytes(vectors))
    return path


def load_directions(path: str | os.PathLike, w_dim: int | None = None) -> np.ndarray:
    """Unit directions [k, w_dim] (float32) from a .npy file of shape [w_dim] or [k, w_dim].

    Refused with DirectionFileError: anything but a plain float array (pickled objects are never
    read), non-finite values, a zero vector, or a width other than `w_dim`. Vectors that are not of
    unit length are normalised: strengths are always in W units along a unit vector.
    """
    name = Path(path).name
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DirectionFileError(f"{path}: no such file.") from None
    except (OSError, ValueError, EOFError) as e:
        raise DirectionFileError(f"{name} is not a direction file this tool reads (a plain .npy array of "
                                 f"floats, [w_dim] or [k, w_dim]): {e}") from None
    if not isinstance(array, np.ndarray):
        raise DirectionFileError(f"{name} holds several arrays (.npz); save one [k, w_dim] array as .npy.")
    if array.dtype.kind != "f":
        raise DirectionFileError(f"{name} holds {array.dtype} values; a direction file holds floats.")
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DirectionFileError(f"{name} has shape {list(np.shape(array))}; a direction file is [w_dim] or [k, w_dim].")
    if w_dim is not None and array.shape[1] != w_dim:
        raise DirectionFileError(f"{name} holds directions of width {array.shape[1]}, but this model's W has "
                                 f"{w_dim} dimensions: it was made for another model.")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise DirectionFileError(f"{name} contains NaN or infinite values.")
    norms = np.linalg.norm(array, axis=1)
    if (norms == 0).any():
        raise DirectionFileError(f"{name}: direction {int(np.argmin(norms))} is all zeros.")
    return (array / norms[:, None]).astype(np.float32)


def directions_from_file(path: str | os.PathLike, w_dim: int | None = None) -> Directions:
    """A loaded direction file as Directions (no eigenvalues: those are not stored)."""
    vectors = load_directions(path, w_dim)
    nothing = np.full(len(vectors), np.nan)
    return Directions(method=FILE, vectors=vectors, eigenvalues=nothing, explained=nothing)
