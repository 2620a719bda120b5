"""Filter tensors -> correlation taps on the host, remembered per filter tensor.

The kernels take their filters as small host-built matrices, so the taps must be read on the host.
For a filter on the GPU that read waits for every kernel queued before it; the networks' filters
are buffers that never change, so each is read once and remembered for as long as that tensor
lives and is not modified in place (its version counter)."""

from __future__ import annotations

import weakref

import torch

Taps = tuple[tuple[int, ...], tuple[float, ...]]  # (shape, flat taps)

_cache: dict[int, tuple[weakref.ref, int, bool, Taps]] = {}


def correlation_taps(f: torch.Tensor, flip_filter: bool) -> Taps:
    """The taps the kernels correlate with: the reference convolves (flips the filter) unless
    flip_filter. Returns (shape, taps in row-major order)."""
    key, version = id(f), f._version  # single dict reads and writes: safe between threads
    hit = _cache.get(key)
    if hit is not None and hit[0]() is f and hit[1] == version and hit[2] == flip_filter:
        return hit[3]
    g = f.detach() if flip_filter else f.detach().flip(list(range(f.ndim)))
    taps = (tuple(f.shape), tuple(g.to(torch.float64).cpu().reshape(-1).tolist()))
    _cache[key] = (weakref.ref(f, lambda _, key=key: _forget(key)), version, flip_filter, taps)
    return taps


def _forget(key: int) -> None:
    # A race with a new entry under the same id drops it: that costs one more read of the taps.
    entry = _cache.get(key)
    if entry is not None and entry[0]() is None:
        _cache.pop(key, None)
