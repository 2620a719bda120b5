"""upfirdn2d (upsample, FIR-filter, downsample) on the selected op path, and the centred
up/down/filter helpers both generator families use. The definition is in reference/upfirdn2d.py."""

from __future__ import annotations

from typing import Sequence, Union

import torch

from torch_utils.ops import paths
from torch_utils.ops.reference.upfirdn2d import Padding, filter_size, parse_padding, parse_scaling, setup_filter

__all__ = ["Padding", "downsample2d", "filter2d", "filter_size", "parse_padding", "parse_scaling", "setup_filter",
           "upfirdn2d", "upsample2d"]


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Union[int, Sequence[int]] = 1,
    down: Union[int, Sequence[int]] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """upfirdn2d on the selected op path (see torch_utils.ops.paths)."""
    return paths.implementation("upfirdn2d", x.device)(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, padding: Padding = 0,
               flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Upsample by `up` with filter f, keeping the image centred (StyleGAN2's convention)."""
    upx, upy = parse_scaling(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: Padding = 0,
                 flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Downsample by `down` with filter f, keeping the image centred."""
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, gain=gain)


def filter2d(x: torch.Tensor, f: torch.Tensor, padding: Padding = 0,
             flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Filter without resampling; output has the input's size (plus padding)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain)
