"""The image distance projection minimises, in pixel space (no network weights needed):

    distance(x, y) = mean over Laplacian bands of mean |L_j(x) - L_j(y)|
                     + SSIM_WEIGHT * (1 - mean over scales of SSIM(x, y))

Laplacian pyramid L1 (the loss of Bojanowski et al. 2018, "Optimizing the Latent Space of
Generative Networks", Section 3): band-pass images L_j = G_j - up(G_{j+1}) of a Gaussian pyramid
(5-tap binomial blur, halving down to 8 px) plus the last low-pass G_J. Every octave of detail gets
the same weight, so edges and texture pull as hard as colour, and L1 does not blur as L2 does; the
low-pass band keeps colours and shading.

SSIM (Wang et al. 2004, Equation 13: 11-tap Gaussian window, sigma 1.5, C1 = (0.01 L)^2,
C2 = (0.03 L)^2, L = 2 for images in [-1, 1]) at SSIM_SCALES scales (full, 1/2, 1/4 by 2x2
averaging, as in multi-scale SSIM), each down to at least 16 px: it compares local structure
(correlation) separately from brightness and contrast, which the L1 terms alone trade against
each other, and the coarser scales see structure larger than the 11 px window.

Images are [N, C, H, W] in [-1, 1]. The target's pyramid is computed once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)
LAPLACIAN_MIN_SIZE = 8
SSIM_SCALES = 3
SSIM_MIN_SIZE = 16
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_WEIGHT = 1.0
DYNAMIC_RANGE = 2.0


def _separable_blur(x: torch.Tensor, taps: torch.Tensor, padding: str | None) -> torch.Tensor:
    c = x.shape[1]
    k = taps.numel()
    if padding == "reflect":
        x = F.pad(x, [k // 2] * 4, mode="reflect")
    x = F.conv2d(x, taps.reshape(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, taps.reshape(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def _taps(values, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return t / t.sum()


def laplacian_pyramid(x: torch.Tensor, min_size: int = LAPLACIAN_MIN_SIZE) -> list[torch.Tensor]:
    """Band-pass images from fine to coarse, then the low-pass residual."""
    taps = _taps(BINOMIAL_5, x)
    bands = []
    while min(x.shape[-2:]) >= 2 * min_size and min(x.shape[-2:]) > len(BINOMIAL_5):
        low = _separable_blur(x, taps, "reflect")[..., ::2, ::2]
        up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        bands.append(x - up)
        x = low
    bands.append(x)
    return bands


def _gaussian_window(like: torch.Tensor) -> torch.Tensor:
    offsets = torch.arange(SSIM_WINDOW, dtype=like.dtype, device=like.device) - (SSIM_WINDOW - 1) / 2
    return _taps(torch.exp(-offsets.square() / (2 * SSIM_SIGMA ** 2)), like)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of x and y over channels and valid window positions, per batch element [N]."""
    window = _gaussian_window(x)
    mu_x, mu_y = _separable_blur(x, window, None), _separable_blur(y, window, None)
    var_x = _separable_blur(x * x, window, None) - mu_x.square()
    var_y = _separable_blur(y * y, window, None) - mu_y.square()
    cov = _separable_blur(x * y, window, None) - mu_x * mu_y
    c1, c2 = (0.01 * DYNAMIC_RANGE) ** 2, (0.03 * DYNAMIC_RANGE) ** 2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return value.mean(dim=[1, 2, 3])


def ssim_scales(size: int) -> int:
    """How many SSIM scales an image of `size` px gets (each at least SSIM_MIN_SIZE px)."""
    return max(1, min(SSIM_SCALES, int(math.log2(max(size, 1) / SSIM_MIN_SIZE)) + 1))


class PixelDistance:
    """distance(x) to a fixed target, per batch element [N] (see the module docstring)."""

    def __init__(self, target: torch.Tensor) -> None:
        if target.ndim != 4:
            raise ValueError(f"target must be [N, C, H, W], got {list(target.shape)}")
        self.target = target.detach()
        self.target_bands = laplacian_pyramid(self.target)
        self.scales = ssim_scales(min(target.shape[-2:]))

    def laplacian_l1(self, x: torch.Tensor) -> torch.Tensor:
        bands = laplacian_pyramid(x)
        terms = [(a - b).abs().mean(dim=[1, 2, 3]) for a, b in zip(bands, self.target_bands)]
        return torch.stack(terms).mean(dim=0)

    def ssim(self, x: torch.Tensor) -> torch.Tensor:
        y = self.target
        values = []
        for scale in range(self.scales):
            if scale:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
            values.append(ssim(x, y))
        return torch.stack(values).mean(dim=0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.laplacian_l1(x) + SSIM_WEIGHT * (1 - self.ssim(x))


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of two images in [-1, 1] (peak-to-peak 2): 20 log10(2) - 10 log10(MSE)."""
    mse = float((x.detach().cpu().double() - y.detach().cpu().double()).square().mean())
    return math.inf if mse == 0 else 20 * math.log10(DYNAMIC_RANGE) - 10 * math.log10(mse)
