"""Filtered leaky ReLU (StyleGAN3 paper, Section 3.2 and Figure 4) on the selected op path. The
definition is in reference/filtered_lrelu.py."""

from __future__ import annotations

import math

import torch

from torch_utils.ops import paths
from torch_utils.ops.reference.upfirdn2d import Padding

__all__ = ["filtered_lrelu"]


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
    """filtered_lrelu on the selected op path (see torch_utils.ops.paths)."""
    return paths.implementation("filtered_lrelu", x.device)(x, fu, fd, b, up=up, down=down, padding=padding,
                                                            gain=gain, slope=slope, clamp=clamp,
                                                            flip_filter=flip_filter)
