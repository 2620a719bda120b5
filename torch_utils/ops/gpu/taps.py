"""Filter taps for the torch-ops GPU path, read once per filter tensor.

The ops need a filter's taps on the host (to build polyphase matrices and separable factors), and
the networks keep their filters as buffers on the device: reading one waits for the device. So the
taps are read once per filter tensor and kept against that tensor object (until it is freed or
changed in place); the frames after the first never wait for the device on a filter.
"""

from __future__ import annotations

import functools
import weakref

import torch

from torch_utils.ops.cpu.polyphase import separable_factors

Taps = tuple[float, ...]

_read: dict[int, tuple[weakref.ref, int, Taps, tuple[int, ...]]] = {}


def _version(f: torch.Tensor) -> int | None:
    try:
        return f._version
    except RuntimeError:  # an inference-mode tensor has no version counter: never cached
        return None


def read_taps(f: torch.Tensor) -> tuple[Taps, tuple[int, ...]]:
    """(the filter's values in row-major order, its shape), read from the device at most once."""
    key, version = id(f), _version(f)
    hit = _read.get(key)
    if hit is not None and version is not None and hit[0]() is f and hit[1] == version:
        return hit[2], hit[3]
    taps = tuple(f.detach().to(torch.float64).cpu().reshape(-1).tolist())
    shape = tuple(f.shape)
    if version is not None:
        _read[key] = (weakref.ref(f, lambda _, key=key: _read.pop(key, None)), version, taps, shape)
    return taps, shape


def correlation_taps(f: torch.Tensor, flip_filter: bool, gain: float = 1.0) -> tuple[Taps, tuple[int, ...]]:
    """The taps conv2d correlates with: the reference convolves (flips the filter) unless flip_filter.
    Reversing the row-major values of a 2-D filter flips both of its axes."""
    taps, shape = read_taps(f)
    if not flip_filter:
        taps = taps[::-1]
    return tuple(t * gain for t in taps), shape


@functools.lru_cache(maxsize=256)
def factor_taps(taps: Taps, shape: tuple[int, int]) -> tuple[tuple[Taps, Taps], ...]:
    """A 2-D filter as exact separable terms ((y taps, x taps), ...) (see polyphase.separable_factors)."""
    f = torch.tensor(taps, dtype=torch.float64).reshape(shape)
    return tuple((tuple(fy.tolist()), tuple(fx.tolist())) for fy, fx in separable_factors(f))


def separable_terms(f: torch.Tensor | None, flip_filter: bool, gain: float) -> tuple[tuple[Taps, Taps], ...]:
    """upfirdn2d's filter (None, 1-D separable or 2-D) and gain as separable terms (y taps, x taps)."""
    if f is None:
        return (((float(gain),), (1.0,)),)
    if f.ndim == 1:  # the gain split over the two axes (its sign on the y axis)
        taps, _ = correlation_taps(f, flip_filter, abs(float(gain)) ** 0.5)
        return ((tuple(t if gain >= 0 else -t for t in taps), taps),)
    if f.ndim != 2:
        raise ValueError(f"upfirdn2d's filter must be 1-D or 2-D, got shape {tuple(f.shape)}")
    taps, shape = correlation_taps(f, flip_filter, float(gain))
    return factor_taps(taps, shape)
