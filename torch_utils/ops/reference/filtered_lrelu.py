"""Filtered leaky ReLU (StyleGAN3 paper, Section 3.2 and Figure 4): the alias-suppressing nonlinearity.

    x -> + bias -> upsample by `up` (FIR fu) -> leaky ReLU * gain, clamp -> FIR fd -> keep every `down`-th

The nonlinearity creates frequencies above the signal's band; running it at a temporarily higher
sampling rate and low-pass filtering before decimating keeps them from aliasing back.
"""

from __future__ import annotations

import math

import torch

from torch_utils.ops.reference.bias_act import bias_act_ref
from torch_utils.ops.reference.upfirdn2d import Padding, parse_padding, upfirdn2d_ref


def filtered_lrelu_ref(
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
    """Reference filtered_lrelu on NCHW input; `padding` applies before the upsampling filter."""
    px0, px1, py0, py1 = parse_padding(padding)
    x = bias_act_ref(x, b)
    x = upfirdn2d_ref(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)
    x = bias_act_ref(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d_ref(x, fd, down=down, flip_filter=flip_filter)
