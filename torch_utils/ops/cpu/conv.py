"""conv2d in bands of output rows, to bound the working memory of large batch-1 convolutions.

oneDNN converts a large convolution's input and output to its own blocked layouts, which at
StyleGAN3-T 256's widest layers takes about twice the output's size on top of input and output
(measured: +150 MB for 512 channels at 150x150). Output rows r0..r1 of a stride-1 convolution
with kernel height k and symmetric padding p read input rows r0 - p .. r1 - 1 - p + k - 1 only, so
the convolution can run one band of rows at a time, each band's scratch proportionally smaller,
writing into one preallocated output. The arithmetic of every output pixel is unchanged.

A 1x1 convolution without padding (StyleGAN3-R's layers) is a plain matrix product of the
channels_last input, viewed as [H*W, C_in], with the weight: one product, no scratch and no
bands, through oneDNN where torch.mm would be slower (gemm.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torch_utils.ops.cpu.gemm import linear

BAND_BYTES = 16 << 20  # output bytes per band


def bands_for(out_bytes: int) -> int:
    """How many row bands a convolution with an output of `out_bytes` bytes should use."""
    return max(1, math.ceil(out_bytes / BAND_BYTES))


def pad_rows(x: torch.Tensor, top: int, bottom: int) -> torch.Tensor:
    """x [N, C, H, W] with `top` and `bottom` rows of zeros added, in channels_last layout. (F.pad
    returns a contiguous NCHW tensor, which oneDNN converts back, and whose output then needs a
    transposing copy into the channels_last result: measured 1.7x the convolution's own time for
    StyleGAN3-T 256's 512 -> 362 channel layer.)"""
    n, c, h, w = x.shape
    out = torch.empty((n, c, top + h + bottom, w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    out[:, :, :top].zero_()
    out[:, :, top + h:].zero_()
    out[:, :, top: top + h].copy_(x)
    return out


def conv2d_row_bands(x: torch.Tensor, weight: torch.Tensor, padding: int, bands: int) -> torch.Tensor:
    """F.conv2d(x, weight, padding=padding) (stride 1, no groups) computed in `bands` bands of output
    rows; the result is channels_last like oneDNN's own output for a channels_last input."""
    n, _, h, w = x.shape
    kh, kw = weight.shape[2:]
    h_out, w_out = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    bands = max(1, min(bands, h_out))
    if bands == 1:
        return F.conv2d(x, weight, padding=padding)
    out = torch.empty(n, weight.shape[0], h_out, w_out, dtype=x.dtype, memory_format=torch.channels_last)
    for i in range(bands):
        r0, r1 = h_out * i // bands, h_out * (i + 1) // bands
        lo, hi = r0 - padding, r1 - 1 - padding + kh  # input rows this band reads, [lo, hi)
        band = x[:, :, max(lo, 0): min(hi, h)]
        if lo < 0 or hi > h:  # the zero rows of the padding, above the first band or below the last
            band = pad_rows(band, max(-lo, 0), max(hi - h, 0))
        out[:, :, r0:r1] = F.conv2d(band, weight, padding=(0, padding))
    return out


def conv2d_batch1(x: torch.Tensor, weight: torch.Tensor, padding: int, bands: int) -> torch.Tensor:
    """F.conv2d(x, weight, padding=padding) for a batch-1 x (stride 1, no groups), channels_last result:
    a 1x1 convolution without padding as one matrix product, anything else in row bands."""
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    if n != 1 or kh != 1 or kw != 1 or padding != 0:
        return conv2d_row_bands(x, weight, padding, bands)
    rows = x.permute(0, 2, 3, 1).reshape(h * w, c_in)  # a view when x is channels_last
    out = linear(rows, weight.reshape(c_out, c_in))
    return out.view(1, h, w, c_out).permute(0, 3, 1, 2)
