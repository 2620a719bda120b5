"""Upsample, FIR-filter, downsample: the resampling primitive of both generator families.

The reference implementation below reads like the definition:
    1. upsample by inserting (up - 1) zeros after every sample along each axis,
    2. pad (or crop, for negative padding) the borders,
    3. convolve every channel with the FIR filter f (scaled by `gain`),
    4. keep every `down`-th sample.
A 1-D filter is separable (applied along x, then y); a 2-D filter is applied as is.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F

Padding = Union[int, Sequence[int]]


def parse_scaling(scaling: Union[int, Sequence[int]]) -> tuple[int, int]:
    """An int or (sx, sy) -> (sx, sy)."""
    if isinstance(scaling, int):
        return scaling, scaling
    sx, sy = scaling
    return int(sx), int(sy)


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """An int, (px, py) or (x0, x1, y0, y1) -> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    if len(padding) != 4:
        raise ValueError(f"padding must have 1, 2 or 4 entries, got {len(padding)}")
    x0, x1, y0, y1 = padding
    return x0, x1, y0, y1


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Taps of a filter along (x, y); a missing filter has one tap."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[-1], f.shape[-2]


def upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Union[int, Sequence[int]] = 1,
    down: Union[int, Sequence[int]] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Reference upfirdn2d on an NCHW tensor. `f` is 1-D (separable), 2-D, or None (identity)."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects an NCHW tensor, got shape {tuple(x.shape)}")
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape

    # 1. Zero insertion: each sample followed by (up - 1) zeros.
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # 2. Pad with zeros (positive) and crop (negative).
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    # 3. FIR filter, as a true convolution (conv2d correlates, so flip unless asked not to).
    if f is not None:
        f = f.to(device=x.device, dtype=x.dtype) * (gain ** (f.ndim / 2))
        if not flip_filter:
            f = f.flip(list(range(f.ndim)))
        if f.ndim == 1:
            fx = f.reshape(1, 1, 1, -1).expand(c, 1, 1, f.shape[0])
            fy = f.reshape(1, 1, -1, 1).expand(c, 1, f.shape[0], 1)
            x = F.conv2d(x, fx, groups=c)
            x = F.conv2d(x, fy, groups=c)
        else:
            x = F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c)
    elif gain != 1:
        x = x * gain

    # 4. Decimate.
    return x[:, :, ::downy, ::downx]


def setup_filter(f, normalize: bool = True, flip_filter: bool = False, gain: float = 1.0,
                 separable: bool | None = None, device=None) -> torch.Tensor:
    """Turn a list of taps into a float32 filter tensor; a 1-D list is outer-multiplied to 2-D unless separable."""
    f = torch.as_tensor([1.0] if f is None else f, dtype=torch.float32, device=device)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))
