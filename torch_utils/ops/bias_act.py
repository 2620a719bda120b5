"""bias_act (y = clamp(act(x + b) * gain, -clamp, clamp)) on the selected op path. The definition is in
reference/bias_act.py."""

from __future__ import annotations

import torch

from torch_utils.ops import paths
from torch_utils.ops.reference.bias_act import ACTIVATIONS

__all__ = ["ACTIVATIONS", "bias_act"]


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """bias_act on the selected op path (see torch_utils.ops.paths)."""
    return paths.implementation("bias_act", x.device)(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
