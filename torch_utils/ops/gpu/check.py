"""Whether the torch-ops GPU path runs, and computes the right values, on a device.

Backends differ in which convolutions and strided writes they support, and a few have returned
wrong values for some (grouped convolutions on MPS have, in past releases). So before the path is
chosen for a device it runs each op once on small inputs there, forward and backward, and compares
with the reference ops in float64 on the CPU: tens of milliseconds, once per device.
"""

from __future__ import annotations

import math

import torch

from torch_utils.ops.gpu.activation import bias_act
from torch_utils.ops.gpu.filtered_nonlinearity import filtered_lrelu
from torch_utils.ops.gpu.resampling import upfirdn2d
from torch_utils.ops.reference import bias_act_ref, filtered_lrelu_ref, upfirdn2d_ref

TOLERANCE = 1e-2  # relative to the largest value: catches wrong results, not TF32 or float32 rounding


def _cases(gen: torch.Generator) -> list[tuple[str, object, object, tuple[torch.Tensor, ...]]]:
    """(name, gpu op, reference op, float64 CPU inputs) with the other arguments bound."""
    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    fu = torch.sinc(torch.arange(12, dtype=torch.float64) / 2 - 2.75)
    fu = fu / fu.sum()
    fd = sum(torch.outer(randn(12), randn(12)) for _ in range(3))  # rank 3, like a radial filter's terms
    f4 = torch.outer(randn(4), randn(4)) + torch.outer(randn(4), randn(4))
    lrelu = dict(up=2, down=2, padding=[11, 10, 11, 10], gain=math.sqrt(2), slope=0.2, clamp=0.8)
    fu4 = torch.sinc(torch.arange(24, dtype=torch.float64) / 4 - 2.875)
    fu4 = fu4 / fu4.sum()
    crop = dict(up=4, down=2, padding=[-2, -5, -2, -5], gain=math.sqrt(2), slope=0.2, clamp=None)
    return [
        ("filtered_lrelu", lambda x, b: filtered_lrelu(x, fu.to(x), fd.to(x), b, **lrelu),
         lambda x, b: filtered_lrelu_ref(x, fu, fd, b, **lrelu), (randn(2, 3, 9, 9), randn(3))),
        ("filtered_lrelu (up 4, cropped)", lambda x, b: filtered_lrelu(x, fu4.to(x), fu.to(x), b, **crop),
         lambda x, b: filtered_lrelu_ref(x, fu4, fu, b, **crop), (randn(1, 2, 12, 12), randn(2))),
        ("upfirdn2d", lambda x: upfirdn2d(x, f4.to(x), up=2, padding=[2, 1, 2, 1], gain=4),
         lambda x: upfirdn2d_ref(x, f4, up=2, padding=[2, 1, 2, 1], gain=4), (randn(2, 3, 7, 6),)),
        ("bias_act", lambda x, b: bias_act(x, b, act="lrelu", clamp=0.5),
         lambda x, b: bias_act_ref(x, b, act="lrelu", clamp=0.5), (randn(2, 3, 5, 4), randn(3))),
    ]


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    if got.shape != want.shape:
        return math.inf
    return float((got.detach().cpu().double() - want).abs().max() / want.abs().max().clamp_min(1e-30))


def gpu_unavailable_reason(device: torch.device | str) -> str | None:
    """None when the torch-ops GPU path gives the reference's values on `device`, forward and
    backward; otherwise why not, in a sentence for the status line."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    try:
        for name, op, ref, inputs in _cases(gen):
            with torch.no_grad():
                error = _relative_error(op(*(t.to(device, torch.float32) for t in inputs)), ref(*inputs))
            if not error <= TOLERANCE:
                return f"the torch-ops GPU path computed wrong values on {device} ({name}: relative error {error:.2g})"
            ours = [t.to(device, torch.float32).requires_grad_(True) for t in inputs]
            theirs = [t.clone().requires_grad_(True) for t in inputs]
            weight = torch.randn(ref(*inputs).shape, generator=gen, dtype=torch.float64)
            (op(*ours) * weight.to(device, torch.float32)).sum().backward()
            (ref(*theirs) * weight).sum().backward()
            for a, b in zip(ours, theirs):
                error = _relative_error(a.grad, b.grad)
                if not error <= TOLERANCE:
                    return (f"the torch-ops GPU path computed wrong gradients on {device} "
                            f"({name}: relative error {error:.2g})")
    except (RuntimeError, NotImplementedError, TypeError) as error:  # an op this backend lacks
        return f"the torch-ops GPU path cannot run on {device} ({type(error).__name__}: {error})"
    return None
