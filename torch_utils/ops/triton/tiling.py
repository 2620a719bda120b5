"""Tile plans for the Triton kernels, built on the host.

One axis of upfirdn in polyphase form (cpu/polyphase.py) is out[k] = sum_i x[i] taps[i*up + pad0 - k*down].
Inside a tile it is a small banded matrix, outputs x inputs. When consecutive tiles start a whole
number of polyphase periods apart (a tile's outputs advance its inputs by out_step * down / up, an
integer), every tile has the same matrix: it is built here once, and a kernel applies a 2-D
separable term as  Y = A_y X A_x^T  with two tl.dot products on power-of-two blocks.

A plan says, along one axis, where tile t's operands start (start + t * step) and how large a
block the kernel loads or computes for each; matrices are the blocks' local maps. Blocks have at
least 16 entries (tl.dot's smallest) and at most MAX_BLOCK (registers); a configuration whose
windows do not fit (very long filters, large factors) has no plan, and the op falls back to the
reference.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Callable

import torch

from torch_utils.ops.cpu.polyphase import AxisOp

MIN_BLOCK = 16
MAX_BLOCK = 64
MAX_OUT_STEP = 64


@dataclass(frozen=True)
class Operand:
    """Along one axis, tile t covers indices start + t * step + (0 .. block - 1) of this operand."""

    start: int
    step: int
    block: int


def block_for(size: int) -> int | None:
    """The smallest allowed power-of-two block holding `size` entries (None: too large)."""
    block = MIN_BLOCK
    while block < size:
        block *= 2
    return block if block <= MAX_BLOCK else None


def input_shift(op: AxisOp, out_shift: int) -> int | None:
    """How far the inputs of `op` move when its outputs move by out_shift (None: not a whole number)."""
    q, r = divmod(out_shift * op.down, op.up)
    return None if r else q


def local_matrix(op: AxisOp, out_start: int, in_start: int, n_out: int, n_in: int) -> torch.Tensor:
    """[n_out, n_in] float64: outputs out_start + r from inputs in_start + c."""
    taps = torch.tensor(op.taps, dtype=torch.float64)
    r = torch.arange(n_out)[:, None] + out_start
    c = torch.arange(n_in)[None, :] + in_start
    t = c * op.up + op.pad0 - r * op.down
    inside = (t >= 0) & (t < len(op.taps))
    return torch.where(inside, taps[t.clamp(0, len(op.taps) - 1)], torch.zeros((), dtype=torch.float64))


def _operand(window: tuple[int, int], step: int | None) -> Operand | None:
    block = block_for(window[1] - window[0])
    if step is None or block is None:
        return None
    return Operand(window[0], step, block)


# ---------------------------------------------------------------------------------------------
# Axis plans: one per kernel.

@dataclass(frozen=True)
class ResampleAxis:
    """upfirdn along one axis: inputs x -> outputs out (out.step valid outputs per tile)."""

    x: Operand
    out: Operand


@dataclass(frozen=True)
class FusedAxis:
    """Filtered leaky ReLU forward along one axis: inputs x -> intermediate mid -> outputs out."""

    x: Operand
    mid: Operand
    out: Operand


@dataclass(frozen=True)
class FusedGradAxis:
    """Filtered leaky ReLU backward along one axis: the input gradient gx (gx.step valid per tile)
    from the intermediate mid, which takes the output gradient g and the input x (its mask)."""

    gx: Operand
    mid: Operand
    g: Operand
    x: Operand


def resample_axis(op: AxisOp, count: int) -> ResampleAxis | None:
    x = _operand(op.input_range(0, count), input_shift(op, count))
    out = _operand((0, count), count)
    return None if x is None or out is None else ResampleAxis(x, out)


def fused_axis(up: AxisOp, down: AxisOp, count: int) -> FusedAxis | None:
    mid_window = down.input_range(0, count)
    mid_step = input_shift(down, count)
    mid = _operand(mid_window, mid_step)
    x = _operand(up.input_range(*mid_window), None if mid_step is None else input_shift(up, mid_step))
    out = _operand((0, count), count)
    return None if x is None or mid is None or out is None else FusedAxis(x, mid, out)


def fused_grad_axis(up: AxisOp, down: AxisOp, count: int) -> FusedGradAxis | None:
    up_t, down_t = up.transpose(), down.transpose()
    mid_window = up_t.input_range(0, count)
    mid_step = input_shift(up_t, count)
    mid = _operand(mid_window, mid_step)
    if mid is None:
        return None
    g = _operand(down_t.input_range(*mid_window), input_shift(down_t, mid_step))
    x = _operand(up.input_range(*mid_window), input_shift(up, mid_step))
    gx = _operand((0, count), count)
    return None if g is None or x is None or gx is None else FusedGradAxis(gx, mid, g, x)


def _candidates(make: Callable[[int], object | None], n_out: int, key: Callable[[object], tuple]) -> list:
    """For each distinct set of blocks, the plan with the most valid outputs per tile."""
    best: dict[tuple, tuple[int, object]] = {}
    for count in range(1, min(n_out, MAX_OUT_STEP) + 1):
        plan = make(count)
        if plan is not None:
            best[key(plan)] = (count, plan)
    return [plan for _, plan in best.values()]


def _tiles(n: int, step: int) -> int:
    return -(-n // step)


# Cost of a tile: multiply-adds of its dot products, plus LOAD_COST for each element it loads (its
# input blocks and matrices), a rough exchange rate between tensor-core arithmetic and memory
# traffic that keeps tiles from shrinking to where loads dominate. Unmeasured: tune on a GPU.
LOAD_COST = 16


def _term_cost(ry: int, ky: int, kx: int, cx: int) -> int:
    """One separable term  left [ry, ky] @ block [ky, kx] @ right [kx, cx]: its multiply-adds and
    loads of the two matrices."""
    return ky * kx * cx + ry * ky * cx + LOAD_COST * (ry * ky + kx * cx)


@dataclass(frozen=True)
class Plan2d:
    """A plan along y and x and the number of tiles along each."""

    y: object
    x: object
    tiles_y: int
    tiles_x: int

    @property
    def tiles(self) -> int:
        return self.tiles_y * self.tiles_x


def _best(ys: list, xs: list, n_y: int, n_x: int, step: Callable[[object], int],
          tile_cost: Callable[[object, object], int]) -> Plan2d | None:
    best, best_cost = None, None
    for py, px in itertools.product(ys, xs):
        ty, tx = _tiles(n_y, step(py)), _tiles(n_x, step(px))
        cost = ty * tx * tile_cost(py, px)
        if best_cost is None or cost < best_cost:
            best, best_cost = Plan2d(py, px, ty, tx), cost
    return best


@functools.lru_cache(maxsize=512)
def resample_plan(op_y: AxisOp, op_x: AxisOp, h_out: int, w_out: int, terms: int) -> Plan2d | None:
    """Tiles for upfirdn2d (None: no block fits)."""
    key = lambda p: (p.x.block, p.out.block)  # noqa: E731
    ys = _candidates(lambda n: resample_axis(op_y, n), h_out, key)
    xs = _candidates(lambda n: resample_axis(op_x, n), w_out, key)

    def cost(py: ResampleAxis, px: ResampleAxis) -> int:
        return (LOAD_COST * py.x.block * px.x.block
                + terms * _term_cost(py.out.block, py.x.block, px.x.block, px.out.block))

    return _best(ys, xs, h_out, w_out, lambda p: p.out.step, cost)


@functools.lru_cache(maxsize=512)
def fused_plan(up_y: AxisOp, up_x: AxisOp, down_y: AxisOp, down_x: AxisOp, h_out: int, w_out: int,
               up_terms: int, down_terms: int) -> Plan2d | None:
    """Tiles for the filtered leaky ReLU forward (None: no block fits)."""
    key = lambda p: (p.x.block, p.mid.block, p.out.block)  # noqa: E731
    ys = _candidates(lambda n: fused_axis(up_y, down_y, n), h_out, key)
    xs = _candidates(lambda n: fused_axis(up_x, down_x, n), w_out, key)

    def cost(py: FusedAxis, px: FusedAxis) -> int:
        return (LOAD_COST * py.x.block * px.x.block
                + up_terms * _term_cost(py.mid.block, py.x.block, px.x.block, px.mid.block)
                + down_terms * _term_cost(py.out.block, py.mid.block, px.mid.block, px.out.block))

    return _best(ys, xs, h_out, w_out, lambda p: p.out.step, cost)


@functools.lru_cache(maxsize=512)
def fused_grad_plan(up_y: AxisOp, up_x: AxisOp, down_y: AxisOp, down_x: AxisOp, h_in: int, w_in: int,
                    up_terms: int, down_terms: int) -> Plan2d | None:
    """Tiles for the filtered leaky ReLU backward, over the input gradient (None: no block fits)."""
    key = lambda p: (p.gx.block, p.mid.block, p.g.block, p.x.block)  # noqa: E731
    ys = _candidates(lambda n: fused_grad_axis(up_y, down_y, n), h_in, key)
    xs = _candidates(lambda n: fused_grad_axis(up_x, down_x, n), w_in, key)

    def cost(py: FusedGradAxis, px: FusedGradAxis) -> int:
        return (LOAD_COST * (py.x.block * px.x.block + py.g.block * px.g.block)
                + up_terms * _term_cost(py.mid.block, py.x.block, px.x.block, px.mid.block)
                + down_terms * _term_cost(py.mid.block, py.g.block, px.g.block, px.mid.block)
                + up_terms * _term_cost(py.gx.block, py.mid.block, px.mid.block, px.gx.block))

    return _best(ys, xs, h_in, w_in, lambda p: p.gx.step, cost)
