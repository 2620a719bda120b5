"""The Triton kernels: upfirdn2d, filtered leaky ReLU (forward and backward) and bias_act.

Each resampling kernel program owns one tile of one (sample, channel) plane. It loads its input
block once (rows and columns masked at the image borders, loads coalesced along the width), and
applies each separable term of a filter as  A_y X A_x^T  with tl.dot on small host-built matrices
(tiling.py), accumulating in float32 whatever the input dtype. The filtered leaky ReLU keeps its
upsampled intermediate in registers: it is formed, activated and filtered down inside the program
and never written to memory. Plane offsets are int64 (a batch can exceed 2^31 elements).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _load_block(base, y0, x0, H, W, stride_h, stride_w, BY: tl.constexpr, BX: tl.constexpr):
    """Rows y0 .. y0+BY-1 and columns x0 .. x0+BX-1 of an H x W plane as float32 (zero outside),
    and the mask of the entries inside the plane."""
    ys = y0 + tl.arange(0, BY)
    xs = x0 + tl.arange(0, BX)
    inside = ((ys >= 0) & (ys < H))[:, None] & ((xs >= 0) & (xs < W))[None, :]
    offsets = ys.to(tl.int64)[:, None] * stride_h + xs.to(tl.int64)[None, :] * stride_w
    return tl.load(base + offsets, mask=inside, other=0.0).to(tl.float32), inside


@triton.jit
def _store_block(base, value, y0, x0, valid_y, valid_x, H, W, BY: tl.constexpr, BX: tl.constexpr):
    """Store the first valid_y x valid_x entries of a block at (y0, x0) of a contiguous H x W plane."""
    ry = tl.arange(0, BY)
    rx = tl.arange(0, BX)
    ys = y0 + ry
    xs = x0 + rx
    keep = ((ry < valid_y) & (ys < H))[:, None] & ((rx < valid_x) & (xs < W))[None, :]
    offsets = ys.to(tl.int64)[:, None] * W + xs[None, :]
    tl.store(base + offsets, value.to(base.dtype.element_ty), mask=keep)


@triton.jit
def _matrix(base, term, R: tl.constexpr, C: tl.constexpr):
    """Matrix `term` of a contiguous [terms, R, C] float32 stack."""
    offsets = term * (R * C) + tl.arange(0, R)[:, None] * C + tl.arange(0, C)[None, :]
    return tl.load(base + offsets)


@triton.jit
def _separable(block, left, right_t, TERMS: tl.constexpr, R: tl.constexpr, K: tl.constexpr,
               KX: tl.constexpr, CX: tl.constexpr, DOT: tl.constexpr):
    """The sum over terms t of left[t] @ block @ right_t[t]  (left [R, K], right_t [KX, CX])."""
    acc = tl.full((R, CX), 0.0, tl.float32)
    for t in tl.static_range(TERMS):
        inner = tl.dot(block, _matrix(right_t, t, KX, CX), input_precision=DOT)
        acc = tl.dot(_matrix(left, t, R, K), inner, acc, input_precision=DOT)
    return acc


@triton.jit
def _tile(tiles, tiles_x):
    """This program's (sample, channel) plane (int64) and tile row and column: programs run
    through the `tiles` tiles of one plane, then the next plane's (one grid axis: no 65535 limit)."""
    program = tl.program_id(0)
    plane = program // tiles
    tile = program - plane * tiles
    ty = tile // tiles_x
    return plane.to(tl.int64), ty, tile - ty * tiles_x


@triton.jit
def _plane(program, C, stride_n, stride_c):
    """Offset of the (sample, channel) plane of `program` in a tensor with the given strides."""
    n = program // C
    return n * stride_n + (program - n * C) * stride_c


@triton.jit
def upfirdn_kernel(
    x_ptr, y_ptr, ay_ptr, axt_ptr,
    C, H, W, OH, OW, sxn, sxc, sxh, sxw,
    x0_y, x0_x, xstep_y, xstep_x, ostep_y, ostep_x, tiles, tiles_x,
    TERMS: tl.constexpr, XB_Y: tl.constexpr, XB_X: tl.constexpr, OB_Y: tl.constexpr, OB_X: tl.constexpr,
    DOT: tl.constexpr,
):
    """y = sum_t A_y[t] x A_x[t]^T per tile: upsample, FIR filter and downsample in one step."""
    plane, ty, tx = _tile(tiles, tiles_x)
    x, _ = _load_block(x_ptr + _plane(plane, C, sxn, sxc), x0_y + ty * xstep_y, x0_x + tx * xstep_x, H, W,
                       sxh, sxw, XB_Y, XB_X)
    acc = _separable(x, ay_ptr, axt_ptr, TERMS, OB_Y, XB_Y, XB_X, OB_X, DOT)
    _store_block(y_ptr + plane * OH * OW, acc, ty * ostep_y, tx * ostep_x, ostep_y, ostep_x, OH, OW, OB_Y, OB_X)


@triton.jit
def _intermediate(x_ptr, b_ptr, plane, C, H, W, sxn, sxc, sxh, sxw, y0, x0, uy_ptr, uxt_ptr,
                  HAS_BIAS: tl.constexpr, UP_TERMS: tl.constexpr, XB_Y: tl.constexpr, XB_X: tl.constexpr,
                  MB_Y: tl.constexpr, MB_X: tl.constexpr, DOT: tl.constexpr):
    """The upsampled intermediate z = U (x + bias) of one tile (bias only inside the image: the
    reference adds it before padding)."""
    x, inside = _load_block(x_ptr + _plane(plane, C, sxn, sxc), y0, x0, H, W, sxh, sxw, XB_Y, XB_X)
    if HAS_BIAS:
        x = tl.where(inside, x + tl.load(b_ptr + plane % C).to(tl.float32), 0.0)
    return _separable(x, uy_ptr, uxt_ptr, UP_TERMS, MB_Y, XB_Y, XB_X, MB_X, DOT)


@triton.jit
def filtered_lrelu_kernel(
    x_ptr, b_ptr, y_ptr, uy_ptr, uxt_ptr, dy_ptr, dxt_ptr,
    C, H, W, OH, OW, sxn, sxc, sxh, sxw,
    x0_y, x0_x, xstep_y, xstep_x, ostep_y, ostep_x, tiles, tiles_x,
    gain, slope, clamp,
    HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr, UP_TERMS: tl.constexpr, DOWN_TERMS: tl.constexpr,
    XB_Y: tl.constexpr, XB_X: tl.constexpr, MB_Y: tl.constexpr, MB_X: tl.constexpr,
    OB_Y: tl.constexpr, OB_X: tl.constexpr, DOT: tl.constexpr,
):
    """y = D clamp(gain * lrelu(U (x + bias))), the intermediate kept in registers."""
    plane, ty, tx = _tile(tiles, tiles_x)
    z = _intermediate(x_ptr, b_ptr, plane, C, H, W, sxn, sxc, sxh, sxw, x0_y + ty * xstep_y, x0_x + tx * xstep_x,
                      uy_ptr, uxt_ptr, HAS_BIAS, UP_TERMS, XB_Y, XB_X, MB_Y, MB_X, DOT)
    a = tl.where(z > 0, z, z * slope) * gain
    if HAS_CLAMP:
        a = tl.clamp(a, -clamp, clamp, propagate_nan=tl.PropagateNan.ALL)
    acc = _separable(a, dy_ptr, dxt_ptr, DOWN_TERMS, OB_Y, MB_Y, MB_X, OB_X, DOT)
    _store_block(y_ptr + plane * OH * OW, acc, ty * ostep_y, tx * ostep_x, ostep_y, ostep_x, OH, OW, OB_Y, OB_X)


@triton.jit
def filtered_lrelu_grad_kernel(
    x_ptr, b_ptr, g_ptr, gx_ptr, uy_ptr, uxt_ptr, dty_ptr, dtxt_ptr, uty_ptr, utxt_ptr,
    C, H, W, OH, OW, sxn, sxc, sxh, sxw, sgn, sgc, sgh, sgw,
    x0_y, x0_x, g0_y, g0_x, step_y, step_x, gstep_y, gstep_x, tiles, tiles_x,
    gain, slope, clamp,
    HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr, UP_TERMS: tl.constexpr, DOWN_TERMS: tl.constexpr,
    XB_Y: tl.constexpr, XB_X: tl.constexpr, MB_Y: tl.constexpr, MB_X: tl.constexpr,
    GB_Y: tl.constexpr, GB_X: tl.constexpr, IB_Y: tl.constexpr, IB_X: tl.constexpr, DOT: tl.constexpr,
):
    """dL/dx = U^T (mask * D^T g) per tile of the input, the intermediate z = U (x + bias) and its
    mask (the derivative of clamp(gain * lrelu(z))) recomputed in registers. Tile t covers inputs
    t * step .. + step - 1 along each axis; x from x0 + t * step, g from g0 + t * gstep."""
    plane, ty, tx = _tile(tiles, tiles_x)
    z = _intermediate(x_ptr, b_ptr, plane, C, H, W, sxn, sxc, sxh, sxw, x0_y + ty * step_y, x0_x + tx * step_x,
                      uy_ptr, uxt_ptr, HAS_BIAS, UP_TERMS, XB_Y, XB_X, MB_Y, MB_X, DOT)
    g, _ = _load_block(g_ptr + _plane(plane, C, sgn, sgc), g0_y + ty * gstep_y, g0_x + tx * gstep_x, OH, OW,
                       sgh, sgw, GB_Y, GB_X)
    gmid = _separable(g, dty_ptr, dtxt_ptr, DOWN_TERMS, MB_Y, GB_Y, GB_X, MB_X, DOT)
    slope_z = tl.where(z > 0, 1.0, slope)
    gmid = gmid * (slope_z * gain)
    if HAS_CLAMP:
        a = z * slope_z * gain
        gmid = tl.where((a >= -clamp) & (a <= clamp), gmid, 0.0)
    gx = _separable(gmid, uty_ptr, utxt_ptr, UP_TERMS, IB_Y, MB_Y, MB_X, IB_X, DOT)
    _store_block(gx_ptr + plane * H * W, gx, ty * step_y, tx * step_x, step_y, step_x, H, W, IB_Y, IB_X)


@triton.jit
def bias_act_kernel(
    x_ptr, b_ptr, g_ptr, y_ptr, numel, C, inner, alpha, gain, clamp,
    HAS_BIAS: tl.constexpr, LEAKY: tl.constexpr, HAS_CLAMP: tl.constexpr, GRAD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """y = clamp(gain * act(x + b)) with act linear or leaky ReLU (alpha), b along a dimension of
    `C` entries with `inner` elements after it; with GRAD, y = g * dy/dx instead."""
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    keep = offsets < numel
    z = tl.load(x_ptr + offsets, mask=keep, other=0.0).to(tl.float32)
    if HAS_BIAS:
        z += tl.load(b_ptr + (offsets // inner) % C, mask=keep, other=0.0).to(tl.float32)
    slope = 1.0
    if LEAKY:
        slope = tl.where(z > 0, 1.0, alpha)
    a = z * slope * gain
    if GRAD:
        out = tl.load(g_ptr + offsets, mask=keep, other=0.0).to(tl.float32) * (slope * gain)
        if HAS_CLAMP:
            out = tl.where((a >= -clamp) & (a <= clamp), out, 0.0)
    else:
        out = a
        if HAS_CLAMP:
            out = tl.clamp(out, -clamp, clamp, propagate_nan=tl.PropagateNan.ALL)
    tl.store(y_ptr + offsets, out.to(y_ptr.dtype.element_ty), mask=keep)
