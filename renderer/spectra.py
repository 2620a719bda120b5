"""The average spectrum of a model or an image set as data: the full spectrum (what is saved as .npz
and compared), and the view the GUI shows (a colour-mapped dB image and its 0 and 45 degree slices).
Torch-free: the worker computes an AverageSpectrum, the client saves, loads and shows it."""

from __future__ import annotations

import io
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from renderer.conventions import colormap
from renderer.files import write_atomic

VIEW_MAX = 512                # side of the spectrum image shown (block-averaged if larger)
VIEW_RANGE_DB = 80.0          # dB below the peak that the image spans
MAX_FILE_BYTES = 2 << 30      # a saved spectrum larger than this is refused


class SpectrumFileError(ValueError):
    """A file is not a readable saved average spectrum; the message says why."""


@dataclass(frozen=True)
class AverageSpectrum:
    """Mean over images (and channels) of |FFT|^2 of whitened, Kaiser-windowed, zero-padded images.
    power[i, j] is at (freqs[i], freqs[j]) in cycles per image width, centred (DC at index P // 2)."""

    power: np.ndarray           # [P, P] float64, P = resolution * pad
    freqs: np.ndarray           # [P]
    resolution: int
    num_images: int
    mean: float
    std: float
    beta: float
    pad: int
    label: str = ""

    def power_db(self) -> np.ndarray:
        return 10 * np.log10(np.maximum(self.power, 1e-30))

    def slice_0deg(self) -> tuple[np.ndarray, np.ndarray]:
        """Horizontal profile through DC: (frequency >= 0, power)."""
        c = self.power.shape[0] // 2
        return self.freqs[c:], self.power[c, c:]

    def slice_45deg(self) -> tuple[np.ndarray, np.ndarray]:
        """Diagonal profile from DC: (|f| = sqrt(2) * f_x, power), the mean of the four diagonals."""
        p, c = self.power, self.power.shape[0] // 2
        k = np.arange(p.shape[0] - c)
        lo = np.minimum(k, c)  # the negative side reaches one bin less far
        quads = (p[c + k, c + k] + p[c - lo, c - lo] + p[c + k, c - lo] + p[c - lo, c + k]) / 4
        return self.freqs[c:] * math.sqrt(2), quads

    def save(self, path: str | os.PathLike) -> None:
        """Write a .npz atomically (a half-written file never appears under the name)."""
        buffer = io.BytesIO()
        np.savez(buffer, power=self.power, freqs=self.freqs, resolution=self.resolution, num_images=self.num_images,
                 mean=self.mean, std=self.std, beta=self.beta, pad=self.pad, label=self.label)
        write_atomic(path, buffer.getvalue())

    @staticmethod
    def load(path: str | os.PathLike) -> "AverageSpectrum":
        """A saved spectrum (.npz of `visualizer.py spectrum` or of the GUI); SpectrumFileError if it is not one."""
        path = Path(path)
        try:
            if not path.is_file():
                raise SpectrumFileError(f"{path}: no such file")
            if path.stat().st_size > MAX_FILE_BYTES:
                raise SpectrumFileError(f"{path}: too large for a saved spectrum")
            with np.load(path, allow_pickle=False) as d:
                power, freqs = np.asarray(d["power"], dtype=np.float64), np.asarray(d["freqs"], dtype=np.float64)
                spectrum = AverageSpectrum(power=power, freqs=freqs, resolution=int(d["resolution"]),
                                           num_images=int(d["num_images"]), mean=float(d["mean"]),
                                           std=float(d["std"]), beta=float(d["beta"]), pad=int(d["pad"]),
                                           label=str(d["label"]))
        except SpectrumFileError:
            raise
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as e:
            raise SpectrumFileError(f"{path} is not a saved average spectrum ({type(e).__name__}: {e})") from None
        if power.ndim != 2 or power.shape[0] != power.shape[1] or freqs.shape != (power.shape[0],):
            raise SpectrumFileError(f"{path}: the spectrum has shape {list(power.shape)}, not a square matching its "
                                    f"{freqs.shape[0] if freqs.ndim == 1 else '?'} frequencies")
        return spectrum


@dataclass(frozen=True)
class SpectrumSlice:
    freqs: np.ndarray           # cycles per image width, from 0
    power_db: np.ndarray


@dataclass(frozen=True)
class SpectrumView:
    """An average spectrum ready to show: a colour-mapped dB image and its 0 and 45 degree slices."""

    label: str
    resolution: int
    num_images: int
    mean: float                 # whitening constants
    std: float
    freq_limit: float           # the image spans -freq_limit .. freq_limit on both axes
    image: np.ndarray           # uint8 [S, S, 3], row 0 at -freq_limit (fy), column 0 at -freq_limit (fx)
    peak_db: float              # the image spans peak_db - range_db .. peak_db
    range_db: float
    slice_0deg: SpectrumSlice
    slice_45deg: SpectrumSlice
    path: str | None            # the .npz it was saved to or loaded from


def _block_mean(power: np.ndarray, limit: int) -> np.ndarray:
    """Average non-overlapping blocks so that the side is at most `limit` (edge rows/columns dropped)."""
    factor = max(1, math.ceil(power.shape[0] / limit))
    if factor == 1:
        return power
    n = power.shape[0] // factor
    return power[:n * factor, :n * factor].reshape(n, factor, n, factor).mean(axis=(1, 3))


def _db(p: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.maximum(np.asarray(p, dtype=np.float64), 1e-30))


def spectrum_view(spectrum: AverageSpectrum, path: str | None = None) -> SpectrumView:
    """The view of a spectrum: colour-mapped dB image (at most VIEW_MAX wide) spanning VIEW_RANGE_DB
    below the peak, and the slices in dB."""
    db = _db(_block_mean(np.asarray(spectrum.power, dtype=np.float64), VIEW_MAX))
    peak = float(db.max())
    image = colormap((db - (peak - VIEW_RANGE_DB)) / VIEW_RANGE_DB)
    f0, p0 = spectrum.slice_0deg()
    f45, p45 = spectrum.slice_45deg()
    return SpectrumView(
        label=spectrum.label, resolution=int(spectrum.resolution), num_images=int(spectrum.num_images),
        mean=float(spectrum.mean), std=float(spectrum.std), freq_limit=float(spectrum.resolution) / 2,
        image=np.ascontiguousarray(image), peak_db=peak, range_db=VIEW_RANGE_DB,
        slice_0deg=SpectrumSlice(np.asarray(f0, dtype=np.float64), _db(p0)),
        slice_45deg=SpectrumSlice(np.asarray(f45, dtype=np.float64), _db(p45)), path=path)
