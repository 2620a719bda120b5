"""Filtered leaky ReLU on the torch-ops GPU path.

    x + b -> pad -> U (polyphase x and y passes, phases as channels) -> leaky ReLU, clamp, written
    interleaved -> D (strided x and y passes; a radial filter as a few separable terms) -> out

The gain moves into U's y taps (lrelu(g z) = g lrelu(z) for g > 0). Without autograd the work runs
over chunks of channels (batch folded in) whose upsampled intermediate stays near CHUNK_BYTES, so
the intermediate never exists for the whole tensor at once, and the nonlinearity writes straight
into the interleaved image. With autograd everything is one differentiable chain of torch ops.

float16 works in float16 (the convolutions accumulate in float32), except with a radial down
filter: each of its separable terms would be rounded to float16 before they are summed, doubling
the error of the reference ops run in float16, so those layers work in float32 and round once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torch_utils.ops.gpu.activation import bias_act
from torch_utils.ops.gpu.passes import (Separable, interleave, interleaved_view, phase_view, run_passes,
                                        separable_plan, sum_terms)
from torch_utils.ops.gpu.taps import correlation_taps, separable_terms
from torch_utils.ops.gpu.resampling import upfirdn2d
from torch_utils.ops.reference.filtered_lrelu import filtered_lrelu_ref
from torch_utils.ops.reference.upfirdn2d import Padding, parse_padding

CHUNK_BYTES = 256 << 20  # upsampled intermediate per chunk of channels (inference)


def writes_into_views(device: torch.device) -> bool:
    """Whether an elementwise op's out= may be a permuted view on this device (the interleaving
    then costs nothing); elsewhere the interleave is one copy_ first."""
    return device.type in ("cuda", "cpu")


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Same arguments and result as the reference (reference/filtered_lrelu.py)."""
    if x.ndim != 4:
        return filtered_lrelu_ref(x, fu, fd, b, up=up, down=down, padding=padding, gain=gain, slope=slope,
                                  clamp=clamp, flip_filter=flip_filter)
    px0, px1, py0, py1 = parse_padding(padding)
    if fu is None and fd is None and up == 1 and down == 1:
        # No resampling (ToRGB): the padded border is lrelu(0) * gain = 0 either way.
        y = bias_act(x, b, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
        return F.pad(y, [px0, px1, py0, py1]) if any((px0, px1, py0, py1)) else y
    if fu is not None and fu.ndim != 1:
        return _composed(x, fu, fd, b, up, down, [px0, px1, py0, py1], gain, slope, clamp, flip_filter)

    n, c, h, w = x.shape
    fold = gain > 0
    tu = correlation_taps(fu, flip_filter, float(up))[0] if fu is not None else (float(up),)
    ty = tuple(t * gain for t in tu) if fold else tu
    u = separable_plan(((ty, tu),), (up, 1, py0, py1), (up, 1, px0, px1), h, w)
    d = separable_plan(separable_terms(fd, flip_filter, 1.0), (1, down, 0, 0), (1, down, 0, 0), u.h_out, u.w_out)
    if min(u.h_out, u.w_out, d.h_out, d.w_out) <= 0:  # an empty result: the reference says what is wrong
        return filtered_lrelu_ref(x, fu, fd, b, up=up, down=down, padding=padding, gain=gain, slope=slope,
                                  clamp=clamp, flip_filter=flip_filter)
    after = _Nonlinearity(slope, None if fold else float(gain), clamp)
    work = torch.float32 if x.dtype == torch.float16 and d.terms > 1 else x.dtype
    bias = None if b is None else b.to(work)
    if torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad)):
        return _differentiable(x.to(work), bias, u, d, after).to(x.dtype)
    return _chunked(x, bias, u, d, after, work)


class _Nonlinearity:
    """lrelu(z) (* gain where it was not folded into U), clamped to +-clamp."""

    def __init__(self, slope: float, gain: float | None, clamp: float | None) -> None:
        self.slope = float(slope)
        self.gain = gain
        self.clamp = None if clamp is None or clamp < 0 else float(clamp)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(z, self.slope)
        if self.gain is not None:
            y = y * self.gain
        return y if self.clamp is None else y.clamp(-self.clamp, self.clamp)

    def into(self, phases: torch.Tensor, image: torch.Tensor, bx: int, by: int) -> None:
        """The nonlinearity of run_passes' phases [N, C*Bx*By, h, w], written into the interleaved
        image [N, C, h*By, w*Bx] (in place, no autograd)."""
        src = phases.view(image.shape[0], image.shape[1], bx, by, *phases.shape[2:])
        dst = interleaved_view(image, bx, by)
        if writes_into_views(image.device):
            torch.ops.aten.leaky_relu.out(src, self.slope, out=dst)
        else:
            dst.copy_(src)
            F.leaky_relu_(image, self.slope)
        if self.gain is not None:
            image.mul_(self.gain)
        if self.clamp is not None:
            image.clamp_(-self.clamp, self.clamp)


def _padded_input(x: torch.Tensor, bias: torch.Tensor | None, u: Separable) -> torch.Tensor:
    """x + bias, zero-padded (or cropped) for U's passes; the padding stays zero (bias before padding)."""
    if bias is not None:
        x = x + bias.reshape(1, -1, 1, 1)
    pads = u.padding()
    return F.pad(x, pads) if any(pads) else x


def _down(mid: torch.Tensor, d: Separable, channels: int) -> torch.Tensor:
    """D on the interleaved intermediate (whole blocks of it: D's windows read only the valid part),
    terms summed: [N, C, h', w'] with h' >= h_out, w' >= w_out."""
    return sum_terms(run_passes(mid, d), channels, d.terms)


def _differentiable(x: torch.Tensor, bias: torch.Tensor | None, u: Separable, d: Separable,
                    after: _Nonlinearity) -> torch.Tensor:
    c = x.shape[1]
    bx, by = u.phases
    mid = after(interleave(run_passes(_padded_input(x, bias, u), u), c, bx, by))
    return _down(mid, d, c)[:, :, : d.h_out, : d.w_out]


def chunk_channels(u: Separable, channels: int, itemsize: int) -> int:
    """Channels per chunk: the chunk's upsampled intermediate near CHUNK_BYTES (at least one)."""
    bx, by = u.phases
    per_channel = (-(-u.h_out // by) * by) * (-(-u.w_out // bx) * bx) * itemsize
    return max(1, min(channels, CHUNK_BYTES // max(per_channel, 1)))


def _chunked(x: torch.Tensor, bias: torch.Tensor | None, u: Separable, d: Separable, after: _Nonlinearity,
             work: torch.dtype) -> torch.Tensor:
    """Inference, a chunk of channels at a time, each chunk in the `work` dtype (result in x's)."""
    n, c, h, w = x.shape
    rows = x.reshape(1, n * c, h, w)  # the batch folded into the channels: chunks may span samples
    bias = None if bias is None else bias.repeat(n)
    out = torch.empty(1, n * c, d.h_out, d.w_out, dtype=x.dtype, device=x.device)
    bx, by = u.phases
    step = chunk_channels(u, n * c, torch.empty((), dtype=work).element_size())
    for lo in range(0, n * c, step):
        hi = min(n * c, lo + step)
        phases = run_passes(_padded_input(rows[:, lo:hi].to(work), None if bias is None else bias[lo:hi], u), u)
        mid = torch.empty(1, hi - lo, phases.shape[2] * by, phases.shape[3] * bx, dtype=work, device=x.device)
        after.into(phases, mid, bx, by)
        del phases
        t = run_passes(mid, d)
        del mid
        if d.terms == 1:
            out[:, lo:hi] = t[:, :, : d.h_out, : d.w_out]
        else:  # D has one phase; the sum is rounded to x's dtype once
            out[:, lo:hi] = phase_view(t, hi - lo, d.terms)[:, :, :, 0, : d.h_out, : d.w_out].sum(2)
    return out.view(n, c, d.h_out, d.w_out)


def _composed(x: torch.Tensor, fu: torch.Tensor, fd: torch.Tensor | None, b: torch.Tensor | None, up: int, down: int,
              padding: list[int], gain: float, slope: float, clamp: float | None, flip_filter: bool) -> torch.Tensor:
    """A 2-D upsampling filter (no network uses one): the definition, op by op, on this path's ops."""
    x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up ** 2, flip_filter=flip_filter)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)
