"""Separable polyphase passes over images stored as [H, W, C] (channels innermost).

With channels innermost both spatial axes are "rows" of a matrix: a pass along H left-multiplies
rows of W*C values, a pass along W left-multiplies rows of C values. polyphase.apply_windows then
does a whole pass as one batched matrix product over overlapping windows of a zero-padded buffer.
Along W, the windows run across the whole buffer as one long sequence; the few windows that
straddle two image rows compute columns nobody reads ("spill" columns, kept finite and ignored).

`filter_lrelu_filter` is the fused, tiled form of filtered leaky ReLU: the intermediate
(upsampled) image is produced a band of rows at a time, each row computed once, and consumed by
the downsampling pass while it is still in cache; it is never materialised whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from torch_utils.ops.cpu.polyphase import AxisOp, Blocks, apply_windows, blocks, round_block
from torch_utils.ops.cpu.threads import run_parallel, single_threaded_ops, split


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class WidthPlan:
    """Column layout of one W pass: input column j sits at padded column j + offset; each padded row
    holds `count` windows (`count * step` columns); output rows hold count * block columns."""

    blk: Blocks
    offset: int
    first: int  # padded column where window 0 starts
    count: int

    @property
    def in_width(self) -> int:
        return self.count * self.blk.step

    @property
    def out_width(self) -> int:
        return self.count * self.blk.block


def width_plan(op: AxisOp, n_in: int, n_out: int, block: int, dtype: torch.dtype, min_out_width: int = 0,
               out_multiple: int = 1) -> WidthPlan:
    blk = blocks(op, round_block(op, block), dtype)
    offset = max(0, -blk.start)
    first = blk.start + offset
    needed = _ceil_div(n_out, blk.block)
    count = max(_ceil_div(offset + n_in, blk.step), _ceil_div(first + (needed - 1) * blk.step + blk.length, blk.step),
                _ceil_div(min_out_width, blk.block), 1)
    while (count * blk.block) % out_multiple:
        count += 1
    return WidthPlan(blk, offset, first, count)


def pass_w(src: torch.Tensor, rows: int, plan: WidthPlan, out: torch.Tensor | None = None,
           accumulate: bool = False) -> torch.Tensor:
    """One W pass over the first `rows` padded rows of `src` [R, plan.in_width, C] (R > rows: windows
    near the end spill into the next row): returns [rows, plan.out_width, C]. The channels may be a
    slice of a wider buffer."""
    c = src.shape[-1]
    flat = src.as_strided((src.shape[0] * src.shape[1], c), (src.stride(1), src.stride(2)))
    res = apply_windows(flat, plan.first, rows * plan.count, plan.blk,
                        None if out is None else out.view(rows * plan.count, plan.blk.block, c), accumulate)
    return res.view(rows, plan.out_width, c)


def pass_h(src: torch.Tensor, first: int, count: int, blk: Blocks, out: torch.Tensor | None = None) -> torch.Tensor:
    """`count` blocks of an H pass over rows of `src` [R, W, C] starting at row `first`: [count*block, W, C]."""
    r, w, c = src.shape
    res = apply_windows(src.view(r, w * c), first, count, blk, None if out is None else out.view(count, blk.block, w * c))
    return res.view(count * blk.block, w, c)


def padded(x: torch.Tensor, top: int, rows: int, left: int, width: int, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [H, W, C] placed at (top, left) in a zero buffer of `rows` x `width` (+1 spill row), plus bias."""
    h, w, c = x.shape
    buf, inner = zero_border(h, w, c, x.dtype, top, rows, left, width)
    if bias is None:
        inner.copy_(x)
    else:
        torch.add(x, bias, out=inner)
    return buf


def zero_border(h: int, w: int, c: int, dtype: torch.dtype, top: int, rows: int, left: int,
                width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A `rows` x `width` (+1 spill row) buffer whose border around the h x w interior at (top, left)
    is zero: (buffer, interior view), the interior left for the caller to fill."""
    buf = torch.empty(rows + 1, width, c, dtype=dtype)
    # Zero only the border; the interior is overwritten.
    buf[:top].zero_()
    buf[top + h:].zero_()
    inner = buf[top: top + h]
    inner[:, :left].zero_()
    inner[:, left + w:].zero_()
    return buf, inner[:, left: left + w]


def separable_input(h: int, w: int, c: int, xop: AxisOp, w_out: int, dtype: torch.dtype,
                    block: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The padded input buffer separable(..., padded_input=buffer) reads, and its [h, w, c] interior:
    a producer can write straight into the interior, and the pass copies nothing."""
    wp = width_plan(xop, w, w_out, block, dtype)
    return zero_border(h, w, c, dtype, 0, h, wp.offset, wp.in_width)


def separable(x: torch.Tensor, yop: AxisOp, h_out: int, xop: AxisOp, w_out: int, block: int = 8,
              bias: torch.Tensor | None = None, padded_input: torch.Tensor | None = None) -> torch.Tensor:
    """Apply yop along H and xop along W to x [H, W, C] (+ bias [C] first): [h_out, w_out, C], whole
    image at once. The result is a view into a slightly larger buffer that the caller owns. With
    `padded_input` (from separable_input(), x its interior, no bias) the input is not copied."""
    h, w, c = x.shape
    dtype = x.dtype
    wp = width_plan(xop, w, w_out, block, dtype)
    yb = blocks(yop, round_block(yop, block), dtype)
    top = max(0, -yb.start)
    n_y = _ceil_div(h_out, yb.block)
    rows = max(top + h, yb.start + top + (n_y - 1) * yb.step + yb.length)
    # Pass along W on the input rows that hold data, writing straight into an H-padded buffer.
    if padded_input is None:
        xin = padded(x, 0, h, wp.offset, wp.in_width, bias)
    else:
        if bias is not None or padded_input.shape != (h + 1, wp.in_width, c):
            raise ValueError("padded_input must come from separable_input() for this pass, without bias")
        xin = padded_input
    mid = torch.empty(rows, wp.out_width, c, dtype=dtype)
    mid[:top].zero_()  # only the H padding needs zeros: the W pass writes every column of its rows
    mid[top + h:].zero_()
    pass_w(xin, h, wp, out=mid[top: top + h])
    res = pass_h(mid, yb.start + top, n_y, yb)
    return res[:h_out, :w_out]


@dataclass(frozen=True)
class FusedPlan:
    """Everything filter_lrelu_filter needs for one shape; built once per configuration."""

    chunk: int  # channels per group

    up_w: WidthPlan
    up_h: Blocks  # one block = the intermediate rows one tile adds
    down_w: tuple[WidthPlan, ...]
    down_h: tuple[Blocks, ...]  # a few output rows per block; a tile is tile // block windows
    down_stack: Blocks  # every term's down_h matrix stacked (term-major rows): one product for all
    top: int  # zero rows above the input in the padded buffer
    in_rows: int  # rows of the padded input buffer
    h_out: int
    w_out: int
    tiles: int
    tile: int  # output rows per tile
    tile_step: int  # intermediate rows from one tile to the next
    tile_len: int  # intermediate rows one tile reads

    @property
    def up_gain(self) -> float:
        """max |U x| / max |x|: the largest absolute row sum of U = up_h (x) up_w."""
        return float(self.up_h.matrix.double().abs().sum(1).max() * self.up_w.blk.matrix.double().abs().sum(1).max())


def fused_plan(up_y: AxisOp, up_x: AxisOp, downs: list[tuple[AxisOp, AxisOp]], h_in: int, w_in: int,
               h_mid: int, w_mid: int, h_out: int, w_out: int, c: int, dtype: torch.dtype) -> FusedPlan:
    itemsize = torch.empty((), dtype=dtype).element_size()
    chunk, tile = tiling(w_mid, h_mid, c, itemsize)
    dy0 = downs[0][0]
    # The y-down pass works in blocks of DOWN_BLOCK output rows: a block of b rows reads 2b + K - 2
    # intermediate rows (down 2, K taps), of which K per output row are taps, the rest multiplied
    # zeros; one block for a whole tile would be mostly zeros. Measured (2 threads, whole frames):
    # 4 rather than 8 made StyleGAN3-R 256 15% faster (its 2-4 stacked radial terms), T-1024 3%;
    # 2 was no faster than 4.
    hb = round_block(dy0, DOWN_BLOCK)
    unit = math.lcm(hb, up_y.up // math.gcd(up_y.up, dy0.down))  # tile * down % up == 0
    tile = _ceil_div(max(min(tile, h_out), 1), unit) * unit
    down_h = tuple(blocks(dy, hb, dtype) for dy, _ in downs)
    if len({(d.start, d.step, d.length) for d in down_h}) != 1:
        raise ValueError("all terms of the down filter must share one window pattern")
    d0 = down_h[0]
    down_stack = Blocks(d0.start, d0.step, torch.cat([d.matrix for d in down_h]))
    tile_step = (tile // hb) * d0.step
    tile_len = (tile // hb - 1) * d0.step + d0.length
    # Each tile needs tile_step new intermediate rows, made in up_h blocks of about 8 rows.
    ub = up_y.min_block()
    up_h = blocks(up_y, max(b for b in range(ub, max(ub, 8) + 1, ub) if tile_step % b == 0), dtype)
    # Width of the intermediate rows: enough for the x-up output and for the x-down windows.
    probe = [width_plan(dx, w_mid, w_out, DOWN_W_BLOCK, dtype) for _, dx in downs]
    need = max(p.first + (_ceil_div(w_out, p.blk.block) - 1) * p.blk.step + p.blk.length for p in probe)
    up_w = width_plan(up_x, w_in, w_mid, UP_W_BLOCK, dtype, min_out_width=need, out_multiple=probe[0].blk.step)
    down_w = tuple(WidthPlan(p.blk, 0, p.first, up_w.out_width // p.blk.step) for p in probe)
    tiles = _ceil_div(h_out, tile)
    mid_rows = d0.start + (tiles - 1) * tile_step + tile_len
    n_up = _ceil_div(mid_rows, up_h.block)
    top = max(0, -up_h.start)
    in_rows = max(top + h_in, up_h.start + top + (n_up - 1) * up_h.step + up_h.length)
    return FusedPlan(chunk, up_w, up_h, down_w, down_h, down_stack, top, in_rows, h_out, w_out, tiles, tile, tile_step, tile_len)


class _Rows:
    """Rows [first, end) of a tall virtual image, kept in a fixed buffer; old rows are dropped by
    moving the still-needed ones to the front."""

    def __init__(self, capacity: int, width: int, c: int, dtype: torch.dtype, spill: int = 0) -> None:
        self.buf = torch.empty(capacity + spill, width, c, dtype=dtype)
        if spill:
            self.buf[capacity:].zero_()
        self.capacity = capacity
        self.first = self.end = 0

    def reset(self, start: int) -> None:
        self.first = self.end = start

    def view(self, a: int, b: int) -> torch.Tensor:
        return self.buf[a - self.first: b - self.first]

    def extend(self, keep_from: int, new_end: int) -> torch.Tensor:
        """Make room for rows [end, new_end), keeping rows >= keep_from; returns the space to fill."""
        keep_from = min(max(keep_from, self.first), self.end)
        if new_end - self.first > self.capacity:
            if new_end - keep_from > self.capacity:
                raise RuntimeError("row buffer too small")
            n = self.end - keep_from
            src = self.buf[keep_from - self.first: self.end - self.first]
            self.buf[:n] = src if keep_from - self.first >= n else src.clone()
            self.first = keep_from
        space = self.view(self.end, new_end)
        self.end = new_end
        return space


STACK_DOWN = True  # one H product for all terms of a 2-D down filter (False: one per term)
DOWN_BLOCK = 4  # output rows per block of the y-down pass (see fused_plan)
UP_W_BLOCK = 16  # output columns per block of the x-up pass
DOWN_W_BLOCK = 4  # output columns per block of the x-down pass
TILE_BYTES = 4 << 20  # intermediate rows kept per tile: about one core's L2 cache


def tiling(plan_width: int, h_mid: int, c: int, itemsize: int) -> tuple[int, int]:
    """(channels per chunk, output rows per tile) so that a tile's intermediate rows (about
    2 * tile + 10 rows of plan_width x chunk values) stay near TILE_BYTES."""
    budget = TILE_BYTES
    row = plan_width * itemsize
    if h_mid * row * c <= budget:
        return c, 1 << 30  # the whole image at once
    for chunk in (c, 128, 64, 32, 16, 8):
        if chunk <= c and 26 * row * chunk <= budget:
            rows = budget // (row * chunk)
            return chunk, max(8, (rows - 10) // 2)
    return min(c, 8), 8


CLAMP_MARGIN = 1.25  # bound * margin < clamp: far beyond the rounding of float32 and bfloat16 products


def clamp_can_bite(x: torch.Tensor, bias: torch.Tensor | None, plan: FusedPlan, slope: float, clamp: float) -> bool:
    """False when no intermediate value can reach the clamp: |lrelu(U (x + b))| <= max(1, |slope|) *
    up_gain * (max |x| + max |b|). One read of the input (a quarter of the intermediate's size)
    instead of a read and a write of every intermediate row; with the networks' clamp of 256 and
    activations of order 1-10 it almost always skips."""
    lo, hi = (float(v) for v in torch.aminmax(x))
    peak = max(abs(lo), abs(hi)) + (0.0 if bias is None else float(bias.abs().max()))
    if not math.isfinite(peak):
        return True
    return peak * plan.up_gain * max(1.0, abs(slope)) * CLAMP_MARGIN >= clamp


def channel_chunks(n: int, c: int, chunk: int, workers: int) -> list[tuple[int, int, int]]:
    """(sample, first channel, end channel) pieces of an [N, C] batch, at most `chunk` channels each,
    and enough of them to keep `workers` threads busy."""
    if workers > 1 and n * _ceil_div(c, chunk) < workers and c >= 2 * workers:
        chunk = _ceil_div(c, workers)
    return [(i, lo, min(c, lo + chunk)) for i in range(n) for lo in range(0, c, chunk)]


def effective_clamp(x: torch.Tensor, bias: torch.Tensor | None, plan: FusedPlan, slope: float,
                    clamp: float | None) -> float | None:
    """`clamp`, or None where clamp_can_bite shows that no intermediate value can reach it: the
    forward then skips its clamp pass, and the backward its clamp mask (both would change nothing)."""
    if clamp is None or clamp < 0 or not clamp_can_bite(x, bias, plan, slope, clamp):
        return None
    return clamp


def filter_lrelu_filter(x: torch.Tensor, bias: torch.Tensor | None, plan: FusedPlan, slope: float,
                        clamp: float | None, chunk: int) -> torch.Tensor:
    """D clamp(lrelu(U (x + bias)), -clamp, clamp) for x [H, W, N, C] (any strides with unit
    channel stride: for an NHWC batch, x.permute(1, 2, 0, 3) is free), where U = up_h (x) up_w and
    D = sum_k down_h[k] (x) down_w[k]; bias [C]. Returns [N, h_out, w_out, C] (NHWC). Runs over
    chunks of channels of one sample and tiles of output rows so that the intermediate rows of a
    tile stay in cache; every intermediate row is computed once. A chunk writes its slice of the
    output directly (no regrouping copies). The small per-tile ops run single-threaded; chunks are
    shared out between the threads torch was allowed (see threads.py). `clamp` as effective_clamp()
    decided it (None: no clamp pass)."""
    n, c_all, dtype = x.shape[2], x.shape[3], x.dtype
    with single_threaded_ops() as workers:
        chunks = channel_chunks(n, c_all, chunk, workers)
        out = torch.empty(n, plan.h_out, plan.w_out, c_all, dtype=dtype)
        run_parallel(lambda part: _fused_groups(x, bias, out, [chunks[j] for j in part], plan, slope, clamp),
                     split(len(chunks), workers), workers)
    return out


def _fused_groups(x: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor, chunks: list[tuple[int, int, int]],
                  plan: FusedPlan, slope: float, clamp: float | None) -> None:
    """The fused op for `chunks` (sample, first channel, end channel): x [H, W, N, C] ->
    out [N, h_out, w_out, C]. A chunk is copied (+ bias) into a zero-bordered padded buffer of its
    own, reused from chunk to chunk: the padded copy never exists for all channels at once. Each
    call owns its buffers, so calls for disjoint chunks can run at the same time."""
    h, w = x.shape[:2]
    dtype = x.dtype
    uw, uh, d0 = plan.up_w, plan.up_h, plan.down_h[0]
    new_rows = plan.tile_step  # intermediate rows each tile adds
    n_up = _ceil_div(new_rows, uh.block) + 1  # most up_h blocks one tile computes
    buffers: dict[int, tuple[torch.Tensor, _Rows, _Rows, _Rows, torch.Tensor]] = {}

    for i, lo, hi in chunks:
        xs = x[:, :, i, lo:hi]
        bs = None if bias is None else bias[lo:hi]
        fresh = hi - lo not in buffers
        if fresh:  # at most two widths: chunk, and the last chunk's remainder
            c = hi - lo
            buffers[c] = (padded(xs, plan.top, plan.in_rows, uw.offset, uw.in_width, bs),
                          _Rows(2 * ((n_up - 1) * uh.step + uh.length), uw.out_width, c, dtype),
                          _Rows(2 * plan.tile_len + uh.block, uw.out_width, c, dtype),
                          _Rows(plan.tile * len(plan.down_h), uw.out_width, c, dtype, spill=1),
                          torch.empty(plan.tile, plan.down_w[0].out_width, c, dtype=dtype))
        src, xu, mid, yd, xd = buffers[hi - lo]
        interior = src[plan.top: plan.top + h, uw.offset: uw.offset + w]  # the zero borders stay
        if fresh:
            pass  # padded() has just copied this chunk in
        elif bs is None:
            interior.copy_(xs)
        else:
            torch.add(xs, bs, out=interior)
        xu.reset(uh.start + plan.top)
        mid.reset(0)
        for t in range(plan.tiles):
            m_lo = d0.start + t * plan.tile_step
            m_hi = m_lo + plan.tile_len
            if mid.end < m_hi:  # the next intermediate rows, in up_h blocks
                n_up = _ceil_div(m_hi - mid.end, uh.block)
                r_lo = uh.start + plan.top + (mid.end // uh.block) * uh.step
                r_hi = r_lo + (n_up - 1) * uh.step + uh.length
                if r_hi > xu.end:
                    old_end = xu.end
                    space = xu.extend(r_lo, r_hi)
                    pass_w(src[old_end:], r_hi - old_end, uw, out=space)
                new = mid.extend(m_lo, mid.end + n_up * uh.block)
                pass_h(xu.view(xu.first, xu.end), r_lo - xu.first, n_up, uh, out=new)
                F.leaky_relu_(new, slope)
                if clamp is not None and clamp >= 0:
                    new.clamp_(-clamp, clamp)
            rows = mid.view(mid.first, mid.end)
            terms = len(plan.down_w)
            if terms == 1 or not STACK_DOWN:
                for k, (dh, dw) in enumerate(zip(plan.down_h, plan.down_w)):
                    pass_h(rows, m_lo - mid.first, plan.tile // dh.block, dh, out=yd.buf[: plan.tile])
                    pass_w(yd.buf, plan.tile, dw, out=xd, accumulate=k > 0)
            else:
                # All terms' H passes as one product (the intermediate rows are read once, not once
                # per term): block b of term k lands in rows (b * terms + k) * hb .. + hb of yd.
                hb = d0.block
                pass_h(rows, m_lo - mid.first, plan.tile // hb, plan.down_stack, out=yd.buf[: plan.tile * terms])
                for b in range(plan.tile // hb):
                    dst = xd[b * hb: (b + 1) * hb]
                    for k, dw in enumerate(plan.down_w):
                        pass_w(yd.buf[(b * terms + k) * hb:], hb, dw, out=dst, accumulate=k > 0)
            n = min(plan.tile, plan.h_out - t * plan.tile)
            out[i, t * plan.tile: t * plan.tile + n, :, lo:hi] = xd[:n, : plan.w_out]
