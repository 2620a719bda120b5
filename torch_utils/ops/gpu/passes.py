"""Separable polyphase passes as depthwise convolutions: the resampling engine of the GPU path.

One axis of upfirdn in block form (cpu/polyphase.py) writes output block b, `block` outputs, from
the L inputs start + b*step + (0..L-1) through one [block, L] matrix. That is a depthwise
convolution with stride `step`, kernel L and `block` output channels per input channel (the
phases): upsampling reads only the real samples (no zero insertion) and downsampling computes only
the samples it keeps (the stride). A separable term is an x pass (kernel 1 x Lx) then a y pass
(Ly x 1). A 2-D filter is a few exact separable terms (taps.factor_taps), computed by the same two
convolutions as extra channels and then summed, so every pass stays depthwise: the convolution
every backend has a dedicated kernel for.

Channel layout after both passes: (c, k, rx, ry) for image channel c, term k and the x and y
phases, i.e. output pixel (hb * By + ry, wb * Bx + rx) of term k is at [c, k, rx, ry, hb, wb].
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from torch_utils.ops.cpu.polyphase import AxisOp, Blocks, blocks
from torch_utils.ops.gpu.taps import Taps


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def axis_blocks(op: AxisOp) -> Blocks:
    """The smallest block form of one axis (fewest taps per phase)."""
    return blocks(op, op.min_block(), torch.float64)


def _is_identity(op: AxisOp) -> bool:
    return op.taps == (1.0,) and op.up == 1 and op.down == 1


@dataclass(frozen=True)
class Separable:
    """sum_k ys[k] (along H) (x) xs[k] (along W) from an h_in x w_in input: one upfirdn2d. All terms
    share up, down and padding, hence one block pattern per axis."""

    ys: tuple[AxisOp, ...]
    xs: tuple[AxisOp, ...]
    h_in: int
    w_in: int
    h_out: int
    w_out: int

    @property
    def terms(self) -> int:
        return len(self.ys)

    @property
    def phases(self) -> tuple[int, int]:
        """(Bx, By): output phases per axis."""
        return axis_blocks(self.xs[0]).block, axis_blocks(self.ys[0]).block

    def padding(self) -> list[int]:
        """F.pad's [x low, x high, y low, y high] (negative: crop) that makes the two passes, as
        valid convolutions, produce exactly ceil(out / phases) blocks per axis."""
        pads = []
        for op, n_in, n_out in ((self.xs[0], self.w_in, self.w_out), (self.ys[0], self.h_in, self.h_out)):
            blk = axis_blocks(op)
            end = blk.start + (_ceil_div(n_out, blk.block) - 1) * blk.step + blk.length
            pads += [-blk.start, end - n_in]
        return pads


def separable_plan(terms: tuple[tuple[Taps, Taps], ...], y: tuple[int, int, int, int], x: tuple[int, int, int, int],
                   h_in: int, w_in: int) -> Separable:
    """The plan for correlation taps `terms` ((y taps, x taps), ...) with per-axis (up, down, pad low,
    pad high) `y` and `x` on an h_in x w_in input."""
    uy, dy, y0, y1 = y
    ux, dx, x0, x1 = x
    ys = tuple(AxisOp(ty, uy, dy, y0) for ty, _ in terms)
    xs = tuple(AxisOp(tx, ux, dx, x0) for _, tx in terms)
    return Separable(ys, xs, h_in, w_in, ys[0].out_size(h_in, y1), xs[0].out_size(w_in, x1))


@functools.lru_cache(maxsize=512)
def _weights(ys: tuple[AxisOp, ...], xs: tuple[AxisOp, ...], channels: int, dtype: torch.dtype,
             device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Depthwise weights of the x pass [C*r*Bx, 1, 1, Lx] and the y pass [C*r*Bx*By, 1, Ly, 1]
    (None: an identity pass, skipped)."""
    r = len(xs)
    mx = torch.stack([axis_blocks(op).matrix for op in xs])  # [r, Bx, Lx]
    my = torch.stack([axis_blocks(op).matrix for op in ys])  # [r, By, Ly]
    bx, lx = mx.shape[1:]
    by, ly = my.shape[1:]
    wx = None if r == 1 and _is_identity(xs[0]) else mx.expand(channels, r, bx, lx).reshape(-1, 1, 1, lx)
    wy = None if r == 1 and _is_identity(ys[0]) else my[:, None].expand(channels, r, bx, by, ly).reshape(-1, 1, ly, 1)
    return tuple(None if w is None else w.to(device=device, dtype=dtype).contiguous() for w in (wx, wy))


def run_passes(x: torch.Tensor, plan: Separable) -> torch.Tensor:
    """Both passes over an already padded input [N, C, H', W'] (see Separable.padding, or any larger
    extent on the high sides: extra blocks come out at the ends): [N, C*r*Bx*By, blocks y, blocks x]."""
    wx, wy = _weights(plan.ys, plan.xs, x.shape[1], x.dtype, x.device)
    if wx is not None:
        x = F.conv2d(x, wx, stride=(1, axis_blocks(plan.xs[0]).step), groups=x.shape[1])
    if wy is not None:
        x = F.conv2d(x, wy, stride=(axis_blocks(plan.ys[0]).step, 1), groups=x.shape[1])
    return x


def phase_view(t: torch.Tensor, channels: int, terms: int = 1) -> torch.Tensor:
    """run_passes' output [N, C*r*Bx*By, h, w] as [N, C, r, Bx*By, h, w]."""
    n, ct, h, w = t.shape
    return t.view(n, channels, terms, ct // (channels * terms), h, w)


def sum_terms(t: torch.Tensor, channels: int, terms: int) -> torch.Tensor:
    """Add up the separable terms: [N, C*r*P, h, w] -> [N, C*P, h, w]."""
    if terms == 1:
        return t
    summed = phase_view(t, channels, terms).sum(2)
    return summed.view(t.shape[0], -1, *t.shape[2:])


def interleave(t: torch.Tensor, channels: int, bx: int, by: int) -> torch.Tensor:
    """Phases [N, C*Bx*By, h, w] (channel (c, rx, ry)) -> image [N, C, h*By, w*Bx] (one copy)."""
    if bx == by == 1:
        return t
    n, _, h, w = t.shape
    return t.view(n, channels, bx, by, h, w).permute(0, 1, 4, 3, 5, 2).reshape(n, channels, h * by, w * bx)


def interleaved_view(image: torch.Tensor, bx: int, by: int) -> torch.Tensor:
    """An image [N, C, h*By, w*Bx] seen as its phases [N, C, Bx, By, h, w] (a view, for writing into)."""
    n, c, hh, ww = image.shape
    return image.view(n, c, hh // by, by, ww // bx, bx).permute(0, 1, 5, 3, 2, 4)
