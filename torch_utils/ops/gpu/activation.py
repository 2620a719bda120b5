"""bias_act on the torch-ops GPU path: without autograd, three passes over one fresh tensor."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from torch_utils.ops.reference.bias_act import ACTIVATIONS, bias_act_ref

# act(g z) = g act(z) for g > 0: the gain can be applied before the activation, with the bias.
POSITIVELY_HOMOGENEOUS = ("linear", "relu", "lrelu")


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Same arguments and result as the reference. Without autograd, y = gain * x + gain * b in one
    pass (the gain moved in front of the activation), then the activation and the clamp in place;
    with autograd (or another activation), the reference's differentiable ops."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; known: {', '.join(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    alpha = spec.default_alpha if alpha is None else float(alpha)
    gain = spec.default_gain if gain is None else float(gain)
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    if needs_grad or act not in POSITIVELY_HOMOGENEOUS or gain <= 0:
        return bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        y = torch.add(b.to(x.dtype).reshape(shape) * gain, x, alpha=gain)
    else:
        y = x * gain
    if act == "lrelu":
        F.leaky_relu_(y, alpha)
    elif act == "relu":
        y.relu_()
    if clamp is not None and clamp >= 0:
        y.clamp_(-clamp, clamp)
    return y
