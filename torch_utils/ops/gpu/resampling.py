"""upfirdn2d on the torch-ops GPU path: pad once, two depthwise polyphase passes, interleave."""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F

from torch_utils.ops.gpu.passes import interleave, run_passes, separable_plan, sum_terms
from torch_utils.ops.gpu.taps import separable_terms
from torch_utils.ops.reference.upfirdn2d import Padding, parse_padding, parse_scaling, upfirdn2d_ref


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Union[int, Sequence[int]] = 1,
    down: Union[int, Sequence[int]] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """upfirdn2d with the same arguments and result as the reference, without zero insertion:
    upsampling as polyphase convolutions, downsampling as strided ones, 2-D filters as exact sums
    of separable terms. Differentiable through autograd (convolutions and reshapes only)."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects an NCHW tensor, got shape {tuple(x.shape)}")
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape
    plan = separable_plan(separable_terms(f, flip_filter, gain), (upy, downy, py0, py1), (upx, downx, px0, px1), h, w)
    if plan.h_out <= 0 or plan.w_out <= 0:  # an empty result: the reference says what is wrong
        return upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    pads = plan.padding()
    t = run_passes(F.pad(x, pads) if any(pads) else x, plan)
    bx, by = plan.phases
    out = interleave(sum_terms(t, c, plan.terms), c, bx, by)
    if out.shape[2:] != (plan.h_out, plan.w_out):
        out = out[:, :, : plan.h_out, : plan.w_out]
    return out
