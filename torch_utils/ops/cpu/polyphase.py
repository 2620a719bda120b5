"""Polyphase form of one axis of upfirdn: the linear map behind upsample -> FIR -> downsample.

Along one axis, upfirdn with correlation taps g (the FIR filter flipped, so that the reference's
true convolution becomes a correlation; gain folded in), zero insertion by `up`, padding `pad0` on
the low side and decimation by `down` is

    out[k] = sum_i x[i] * g[i * up + pad0 - k * down]          (g[t] = 0 outside 0 <= t < K)

so each output reads only about K / up inputs: the zero-inserted samples are never touched, and
decimation computes only the kept samples. Grouping `block` consecutive outputs (a multiple of
up / gcd(up, down)) makes every group read the same pattern of L consecutive inputs, `step` inputs
further along for each group: the group is one small matrix (block x L) applied to a window, and
all windows together are one batched matrix product over an overlapping strided view (no copies).

The transpose of this map (its gradient) has the same form: swap up and down, reverse the taps
and use pad0' = K - 1 - pad0.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AxisOp:
    """out[k] = sum_i x[i] * taps[i * up + pad0 - k * down] along one axis."""

    taps: tuple[float, ...]
    up: int = 1
    down: int = 1
    pad0: int = 0

    def transpose(self) -> AxisOp:
        """The adjoint map (out <-> in): what backpropagation through this axis applies."""
        return AxisOp(self.taps[::-1], self.down, self.up, len(self.taps) - 1 - self.pad0)

    def scaled(self, gain: float) -> AxisOp:
        return AxisOp(tuple(t * gain for t in self.taps), self.up, self.down, self.pad0)

    def out_size(self, n_in: int, pad1: int) -> int:
        """Outputs of the reference for an input of n_in samples and high-side padding pad1."""
        return -(-(n_in * self.up + self.pad0 + pad1 - len(self.taps) + 1) // self.down)

    def input_range(self, k0: int, k1: int) -> tuple[int, int]:
        """Inputs [i0, i1) that outputs k0 .. k1-1 read (before clipping to the real input)."""
        return -((self.pad0 - k0 * self.down) // self.up), ((k1 - 1) * self.down - self.pad0 + len(self.taps) - 1) // self.up + 1

    def dense(self, n_in: int, n_out: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The map as an (n_out, n_in) matrix (for tests and tiny inputs)."""
        taps = torch.tensor(self.taps, dtype=dtype)
        t = torch.arange(n_in)[None, :] * self.up + self.pad0 - torch.arange(n_out)[:, None] * self.down
        inside = (t >= 0) & (t < len(self.taps))
        return torch.where(inside, taps[t.clamp(0, len(self.taps) - 1)], torch.zeros((), dtype=dtype))

    def min_block(self) -> int:
        """Smallest group of outputs whose input pattern repeats."""
        return self.up // math.gcd(self.up, self.down)


@dataclass(frozen=True)
class Blocks:
    """`block` outputs at a time: outputs b*block + r (r < block) = matrix[r] . inputs[start + b*step + (0..L-1)]."""

    start: int
    step: int
    matrix: torch.Tensor  # [block, L]

    @property
    def block(self) -> int:
        return self.matrix.shape[0]

    @property
    def length(self) -> int:
        return self.matrix.shape[1]


@functools.lru_cache(maxsize=512)
def blocks(op: AxisOp, block: int, dtype: torch.dtype) -> Blocks:
    """The polyphase block form of `op` for groups of `block` outputs."""
    if (block * op.down) % op.up:
        raise ValueError(f"block {block} is not a multiple of {op.min_block()} for up={op.up}, down={op.down}")
    start, end = op.input_range(0, block)
    r = torch.arange(block)[:, None]
    i = start + torch.arange(end - start)[None, :]
    t = i * op.up + op.pad0 - r * op.down
    taps = torch.tensor(op.taps, dtype=torch.float64)
    inside = (t >= 0) & (t < len(op.taps))
    matrix = torch.where(inside, taps[t.clamp(0, len(op.taps) - 1)], torch.zeros((), dtype=torch.float64))
    return Blocks(start, block * op.down // op.up, matrix.to(dtype))


def round_block(op: AxisOp, target: int) -> int:
    """A valid block size near `target`."""
    m = op.min_block()
    return max(m, (target // m) * m)


def apply_windows(src: torch.Tensor, first: int, count: int, blk: Blocks, out: torch.Tensor | None = None,
                  accumulate: bool = False) -> torch.Tensor:
    """Apply `blk` to `count` windows of the rows of `src` (2-D, unit column stride): window b is rows
    first + b*step .. + L-1. Returns [count, block, columns] (written into, or added to, `out`)."""
    rows, cols = src.shape
    if src.stride(1) != 1:
        raise ValueError("apply_windows needs rows with unit column stride")
    last = first + (count - 1) * blk.step + blk.length
    if first < 0 or last > rows:
        raise IndexError(f"windows read rows {first}..{last} of {rows}")
    rs = src.stride(0)
    windows = src.as_strided((count, blk.length, cols), (blk.step * rs, rs, 1), src.storage_offset() + first * rs)
    matrix = blk.matrix.to(src.dtype).expand(count, blk.block, blk.length)
    if out is None:
        return torch.bmm(matrix, windows)
    if accumulate:
        return out.baddbmm_(matrix, windows)
    return torch.bmm(matrix, windows, out=out)


def separable_factors(f: torch.Tensor, rel_tol: float = 1e-6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Write a 2-D filter exactly as a sum of outer products f = sum_k fy_k fx_k^T (its SVD, keeping
    every singular value above rel_tol * the largest: the dropped part, at most a few 1e-7 of the
    filter's norm, is below the float32 rounding of its 144-tap sums; StyleGAN3-R's 12x12 radial
    filters keep 2-4 terms instead of 3-5, and the frame's error against the reference did not grow).
    A radial filter with mirror symmetry has rank K/2, so this halves its 2-D cost and makes it
    separable passes; a general filter keeps full rank and stays exact."""
    u, s, vh = torch.linalg.svd(f.to(torch.float64))
    keep = int((s > rel_tol * s[0]).sum().item()) if s[0] > 0 else 1
    return [(u[:, k] * s[k].sqrt(), vh[k] * s[k].sqrt()) for k in range(keep)]
