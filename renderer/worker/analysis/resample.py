"""Band-limited affine resampling of a rendered frame: Untransform, and the rotations of EQ-R.

As the official tools do it: upsample the frame by `up` (4) with a Lanczos-windowed sinc
low-pass, then sample the upsampled frame bilinearly where each output pixel comes from. At 4x
the bilinear step adds little error, and the low-pass keeps the result free of aliasing.

Coordinates are those of the StyleGAN3 input (DESIGN.md): x along the columns, y along the rows,
origin at the frame centre, in units where `pixels_per_unit` pixels span one unit (the output
image spans one unit: pixels_per_unit = resolution; an inner layer of sampling rate s: s).
A network given the transform T = inv(M) shows at point g what the untransformed network shows
at T g, so sampling the transformed frame at M g undoes it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from torch_utils.ops.upfirdn2d import upfirdn2d

UPSAMPLING = 4
LANCZOS_LOBES = 3


def lanczos(t: torch.Tensor, lobes: int) -> torch.Tensor:
    """sinc(t) * sinc(t / a) inside |t| < a: the ideal low-pass at the Nyquist frequency of a
    unit grid (t in grid steps), windowed to `lobes` zero crossings each side."""
    return torch.where(t.abs() < lobes, torch.sinc(t) * torch.sinc(t / lobes), torch.zeros_like(t))


def normalize_phases(f: torch.Tensor, up: int) -> torch.Tensor:
    """Scale the taps of an odd, centred upsampling filter (1-D or 2-D) so that each polyphase
    component sums to 1 / up per axis: a constant frame stays constant at every upsampled position,
    and the samples at the original grid points keep their values."""
    phase = [((torch.arange(n) - n // 2) % up) for n in f.shape]
    out = f.clone()
    if f.ndim == 1:
        for p in range(up):
            out[phase[0] == p] /= f[phase[0] == p].sum() * up
        return out
    for py in range(up):
        for px in range(up):
            sel = (phase[0] == py)[:, None] & (phase[1] == px)[None, :]
            out[sel] /= f[sel].sum() * up * up
    return out


def grid_lowpass_1d(up: int = UPSAMPLING, lobes: int = LANCZOS_LOBES) -> torch.Tensor:
    """Separable low-pass for upsampling by `up`: taps at 1/up pixel steps, each phase summing to 1 / up."""
    radius = lobes * up - 1
    f = lanczos(torch.arange(-radius, radius + 1, dtype=torch.float64) / up, lobes)
    return normalize_phases(f, up).to(torch.float32)


def rotated_grid_lowpass_2d(axes: np.ndarray, up: int = UPSAMPLING, lobes: int = LANCZOS_LOBES) -> torch.Tensor:
    """2-D low-pass, at 1/up pixel steps, band-limiting to both the input grid and a grid whose axes
    (unit vectors, the columns of `axes`) are rotated against it: the convolution of the two grids'
    separable Lanczos low-passes, each polyphase component summing to 1 / up^2."""
    radius = math.ceil(lobes * math.sqrt(2) * up)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64) / up
    y, x = torch.meshgrid(t, t, indexing="ij")
    a = torch.as_tensor(axes, dtype=torch.float64)
    along_u = (a[0, 0] * x + a[1, 0] * y)
    along_v = (a[0, 1] * x + a[1, 1] * y)
    f_out = lanczos(along_u, lobes) * lanczos(along_v, lobes)
    f_in = grid_lowpass_1d(up, lobes).to(torch.float64)
    f_in = f_in[:, None] * f_in[None, :]
    f = F.conv2d(f_out[None, None], f_in[None, None], padding=f_in.shape[0] - 1)[0, 0]
    return normalize_phases(f, up).to(torch.float32)


def _output_axes(linear: np.ndarray) -> np.ndarray | None:
    """Unit vectors of the output grid's axes in source coordinates, or None when they are the
    source grid's own axes (a pure translation needs only the separable low-pass)."""
    axes = linear / np.linalg.norm(linear, axis=0, keepdims=True)
    if np.allclose(np.abs(axes), np.eye(2), atol=1e-9):
        return None
    return axes


def affine_resample(
    x: torch.Tensor,
    matrix: np.ndarray,
    pixels_per_unit: float | None = None,
    filter_matrix: np.ndarray | None = None,
    up: int = UPSAMPLING,
    lobes: int = LANCZOS_LOBES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Output pixel at g takes the value of x at matrix @ g, band-limited.

    x: [N, C, H, W]. matrix: 3x3 affine map from output to source coordinates (units as in the
    module docstring; pixels_per_unit defaults to the frame width). filter_matrix: whose grid the
    low-pass is made for (default `matrix`; EQ-R's pseudo-rotation passes a rotation here and an
    identity `matrix`). Returns the resampled frame and a validity mask [N, 1, H, W]: 1 where the
    source point lies inside the frame by at least the filter's reach.
    """
    n, c, h, w = x.shape
    ppu = float(w if pixels_per_unit is None else pixels_per_unit)
    m = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
    fm = m if filter_matrix is None else np.asarray(filter_matrix, dtype=np.float64).reshape(3, 3)
    axes = _output_axes(fm[:2, :2])
    f = grid_lowpass_1d(up, lobes) if axes is None else rotated_grid_lowpass_2d(axes, up, lobes)
    f = f.to(x.device)
    reach = f.shape[-1] // 2  # in upsampled steps
    pad = math.ceil(reach / up) + 1  # input pixels of zeros around the frame

    # Zero-insertion upsampling of the zero-padded frame; upsampled index j sits at padded index j / up.
    xp = F.pad(x.to(torch.float32), [pad, pad, pad, pad])
    y = upfirdn2d(xp, f, up=up, padding=[reach, reach, reach, reach], gain=up * up)

    # Where each output pixel comes from, in input pixel indices (pixel centres at integers).
    cols = (torch.arange(w, dtype=torch.float64) + 0.5 - w / 2) / ppu
    rows = (torch.arange(h, dtype=torch.float64) + 0.5 - h / 2) / ppu
    gy, gx = torch.meshgrid(rows, cols, indexing="ij")
    sx = m[0, 0] * gx + m[0, 1] * gy + m[0, 2]
    sy = m[1, 0] * gx + m[1, 1] * gy + m[1, 2]
    src_col = sx * ppu + w / 2 - 0.5
    src_row = sy * ppu + h / 2 - 0.5

    # Bilinear sampling of the upsampled frame (align_corners: -1 and +1 are the first and last samples).
    up_w, up_h = y.shape[3], y.shape[2]
    grid = torch.stack([(src_col + pad) * up * 2 / (up_w - 1) - 1, (src_row + pad) * up * 2 / (up_h - 1) - 1], dim=-1)
    grid = grid.to(device=x.device, dtype=torch.float32)[None].expand(n, -1, -1, -1)
    out = F.grid_sample(y, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    margin = reach / up
    inside = (src_col >= margin - 0.5) & (src_col <= w - 0.5 - margin) & (src_row >= margin - 0.5) & (src_row <= h - 0.5 - margin)
    mask = inside.to(device=x.device, dtype=torch.float32)[None, None].expand(n, 1, -1, -1)
    return out.to(x.dtype), mask


def untransform(x: torch.Tensor, user_matrix: np.ndarray, pixels_per_unit: float | None = None) -> torch.Tensor:
    """Undo the user's input transform M on a frame rendered with it (the network got inv(M)), so the
    frame lines up with the untransformed render. x: [N, C, H, W]."""
    out, _ = affine_resample(x, user_matrix, pixels_per_unit)
    return out


def rotation_matrix(angle: float) -> np.ndarray:
    """The StyleGAN3 input rotation by `angle` radians, as in DESIGN.md's M."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
