"""Equivariance metrics EQ-T, EQ-T frac and EQ-R (StyleGAN3 paper, Appendix E), a quick readout for
one latent, and an error image for the GUI.

Each sample renders a reference with the identity input transform and the same latent with the
input transformed by a random amount, then moves the reference by that amount in image space and
compares over the pixels both sides can fill. Over a whole run the squared errors and the mask are
summed across all samples, MSE = sum / mask sum, and PSNR = 20 log10(2) - 10 log10(MSE): images span
[-1, 1], a peak-to-peak range of 2.

Runs shard batches of samples across the processes of a torch.distributed group (torchrun; gloo on
CPU, nccl on GPU) and all-reduce the partial sums. Sample i always uses seed `seed + i` for its
latent and its transforms and always falls in the same batch, so any number of processes computes
the same numbers as one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from renderer.conventions import latent_draw
from renderer.worker.analysis.resample import affine_resample, rotation_matrix

TRANSLATE_MAX = 0.125   # translations uniform in [-0.125, 0.125]^2 image widths (Appendix E)
ROTATE_MAX = 1.0        # rotations uniform in [-pi, pi] * ROTATE_MAX
LANCZOS_A = 3           # EQ-T frac reference shift: Lanczos window a = 3, 2a = 6 taps
METRIC_NAMES = ("EQ-T", "EQ-T frac", "EQ-R")

Progress = Callable[[int, int], None]  # (samples done, samples total)


class NotApplicableError(ValueError):
    """The model has no input transform, so the equivariance metrics do not apply."""


def check_applicable(G: nn.Module) -> None:
    """Raise NotApplicableError, with a message for the user, unless G is a StyleGAN3 generator."""
    has_transform = getattr(getattr(getattr(G, "synthesis", None), "input", None), "transform", None) is not None
    if getattr(G, "family", "") != "stylegan3" or not has_transform:
        family = getattr(G, "family", "") or type(G).__name__
        raise NotApplicableError(
            f"The equivariance metrics (EQ-T, EQ-T frac, EQ-R) do not apply to this {family} model: it has no "
            "input transform (synthesis.input.transform), so its output cannot be translated or rotated "
            "through its input. They measure StyleGAN3 generators.")


def psnr(squared_error: float, mask: float) -> float:
    """20 log10(2) - 10 log10(MSE) with MSE = squared_error / mask (inf for a perfect match)."""
    if mask <= 0:
        return float("nan")
    mse = squared_error / mask
    return math.inf if mse <= 0 else 20 * math.log10(2) - 10 * math.log10(mse)


# ---------------------------------------------------------------------------------------------
# Moving the reference in image space.


def integer_shift(x: torch.Tensor, dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """out[..., r, c] = x[..., r - dy, c - dx], zeros shifted in; mask (shape of x) = 1 where out came from x."""
    h, w = x.shape[-2:]
    out, mask = torch.zeros_like(x), torch.zeros_like(x)
    if abs(dx) < w and abs(dy) < h:
        dst = (..., slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0)))
        src = (..., slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0)))
        out[dst] = x[src]
        mask[dst] = 1
    return out, mask


def lanczos_taps(frac: float, a: int = LANCZOS_A) -> np.ndarray:
    """Weights of in[p - k] for k = -(a-1) .. a that interpolate in at p - frac, frac in [0, 1):
    L(k - frac) with L(t) = sinc(t) sinc(t / a), normalised to sum 1."""
    t = np.arange(-(a - 1), a + 1) - frac
    taps = np.sinc(t) * np.sinc(t / a)
    return taps / taps.sum()


def fractional_shift(x: torch.Tensor, dx: float, dy: float, a: int = LANCZOS_A) -> tuple[torch.Tensor, torch.Tensor]:
    """out(p) = x(p - d) for a sub-pixel shift d (pixels), interpolated with separable Lanczos taps.

    With d = i + f (i integer, f in [0, 1)): out[p] = sum_k w_k x[p - i - k], k = -(a-1) .. a, which
    needs p - i - a >= 0 and p - i + a - 1 <= size - 1; the mask keeps exactly those pixels.
    """
    h, w = x.shape[-2:]
    out = x
    mask = torch.ones_like(x)
    for d, dim, size in ((dx, -1, w), (dy, -2, h)):
        i = math.floor(d)
        taps = lanczos_taps(d - i, a)
        acc = torch.zeros_like(out)
        for k, weight in zip(range(-(a - 1), a + 1), taps):
            shifted, _ = integer_shift(out, i + k if dim == -1 else 0, i + k if dim == -2 else 0)
            acc += float(weight) * shifted
        out = acc
        valid = torch.zeros(size, dtype=x.dtype, device=x.device)
        valid[max(i + a, 0): max(min(size - a + i + 1, size), 0)] = 1
        mask = mask * (valid if dim == -1 else valid[:, None])
    return out, mask


# ---------------------------------------------------------------------------------------------
# Sums over samples.


@dataclass
class EquivarianceSums:
    """Squared-error and mask sums of EQ-T, EQ-T frac and EQ-R (in METRIC_NAMES order)."""

    squared_error: np.ndarray = field(default_factory=lambda: np.zeros(3))
    mask: np.ndarray = field(default_factory=lambda: np.zeros(3))
    num_samples: int = 0

    def __iadd__(self, other: "EquivarianceSums") -> "EquivarianceSums":
        self.squared_error = self.squared_error + other.squared_error
        self.mask = self.mask + other.mask
        self.num_samples += other.num_samples
        return self

    def as_tensor(self) -> torch.Tensor:
        return torch.as_tensor(np.concatenate([self.squared_error, self.mask, [self.num_samples]]), dtype=torch.float64)

    @staticmethod
    def from_tensor(t: torch.Tensor) -> "EquivarianceSums":
        v = t.detach().cpu().double().numpy()
        return EquivarianceSums(squared_error=v[:3].copy(), mask=v[3:6].copy(), num_samples=int(round(v[6])))

    def result(self) -> "EquivarianceResult":
        eqt, eqt_frac, eqr = (psnr(float(s), float(m)) for s, m in zip(self.squared_error, self.mask))
        return EquivarianceResult(eqt=eqt, eqt_frac=eqt_frac, eqr=eqr, num_samples=self.num_samples)


@dataclass(frozen=True)
class EquivarianceResult:
    """PSNR in dB; higher is more equivariant."""

    eqt: float
    eqt_frac: float
    eqr: float
    num_samples: int

    def values(self) -> tuple[float, float, float]:
        return self.eqt, self.eqt_frac, self.eqr

    def format(self) -> str:
        return "  ".join(f"{name} {value:.2f} dB" for name, value in zip(METRIC_NAMES, self.values()))


@dataclass(frozen=True)
class SampleDraw:
    """What sample `seed` uses: z and class as the official tools draw them for that seed, then the
    three random transforms from the same generator (translations in image widths, angle in radians)."""

    seed: int
    z: np.ndarray
    class_idx: int | None
    translate_int: tuple[float, float]    # rounded to whole pixels
    translate_frac: tuple[float, float]
    angle: float


def draw_sample(seed: int, z_dim: int, c_dim: int, resolution: int) -> SampleDraw:
    z, class_idx, rng = latent_draw(seed, z_dim, c_dim)
    t_int = np.round(rng.uniform(-TRANSLATE_MAX, TRANSLATE_MAX, 2) * resolution) / resolution
    t_frac = rng.uniform(-TRANSLATE_MAX, TRANSLATE_MAX, 2)
    angle = float(rng.uniform(-1, 1) * math.pi * ROTATE_MAX)
    return SampleDraw(seed, z, class_idx, (float(t_int[0]), float(t_int[1])),
                      (float(t_frac[0]), float(t_frac[1])), angle)


def _translation(t: tuple[float, float]) -> np.ndarray:
    m = np.eye(3)
    m[:2, 2] = t
    return m


def _render(G: nn.Module, ws: torch.Tensor, transforms: Sequence[np.ndarray]) -> torch.Tensor:
    """The network output with a per-sample input transform (what synthesis.input receives)."""
    t = torch.as_tensor(np.stack(transforms), dtype=torch.float32, device=ws.device)
    with torch.no_grad():
        return G.synthesis(ws, noise_mode="const", force_fp32=True, transform=t).to(torch.float32)


def _masked_sums(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    mask = mask.expand_as(a).double()
    return float(((a.double() - b.double()).square() * mask).sum()), float(mask.sum())


def batch_sums(G: nn.Module, ws: torch.Tensor, draws: Sequence[SampleDraw]) -> EquivarianceSums:
    """Sums of all three metrics for ws [N, num_ws, w_dim] (row i uses the transforms of draws[i])."""
    res = G.img_resolution
    n = len(draws)
    sums = EquivarianceSums(num_samples=n)
    ref = _render(G, ws, [np.eye(3)] * n)

    # EQ-T: the input translated by -t; the reference shifted by t (whole pixels).
    img = _render(G, ws, [_translation((-d.translate_int[0], -d.translate_int[1])) for d in draws])
    for i, d in enumerate(draws):
        shifted, mask = integer_shift(ref[i], round(d.translate_int[0] * res), round(d.translate_int[1] * res))
        se, ms = _masked_sums(shifted, img[i], mask)
        sums.squared_error[0] += se
        sums.mask[0] += ms

    # EQ-T frac: the same with sub-pixel t; the reference shifted with Lanczos (a = 3) interpolation.
    img = _render(G, ws, [_translation((-d.translate_frac[0], -d.translate_frac[1])) for d in draws])
    for i, d in enumerate(draws):
        shifted, mask = fractional_shift(ref[i], d.translate_frac[0] * res, d.translate_frac[1] * res)
        se, ms = _masked_sums(shifted, img[i], mask)
        sums.squared_error[1] += se
        sums.mask[1] += ms

    # EQ-R: the network gets T = rotation by -angle, the reference is rotated by the band-limited
    # resampler (output at g = reference at T g), and the rendered image goes through the same band
    # limit without moving ("pseudo-rotation"), so both sides carry the same spectrum.
    inverse = [rotation_matrix(-d.angle) for d in draws]
    img = _render(G, ws, inverse)
    for i, t in enumerate(inverse):
        rotated, ref_mask = affine_resample(ref[i:i + 1], t)
        pseudo, img_mask = affine_resample(img[i:i + 1], np.eye(3), filter_matrix=t)
        se, ms = _masked_sums(rotated, pseudo, ref_mask * img_mask)
        sums.squared_error[2] += se
        sums.mask[2] += ms
    return sums


def _mapped(G: nn.Module, draws: Sequence[SampleDraw], truncation_psi: float, device: torch.device) -> torch.Tensor:
    z = torch.as_tensor(np.stack([d.z for d in draws]), dtype=torch.float32, device=device)
    c = torch.zeros([len(draws), G.c_dim], device=device)
    for row, d in enumerate(draws):
        if d.class_idx is not None:
            c[row, d.class_idx] = 1
    with torch.no_grad():
        return G.mapping(z, c, truncation_psi=truncation_psi)


def _process_group() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def compute_equivariance(G: nn.Module, num_samples: int, seed: int = 0, batch_size: int = 4,
                         truncation_psi: float = 1.0, progress: Progress | None = None) -> EquivarianceResult:
    """EQ-T, EQ-T frac and EQ-R over samples seed .. seed + num_samples - 1.

    Inside an initialised torch.distributed group, batch k runs on rank k % world_size and the sums
    are all-reduced: every rank returns the same result, equal to a single process's.
    """
    check_applicable(G)
    device = next(G.parameters()).device
    rank, world = _process_group()
    resolution = G.img_resolution
    starts = list(range(0, num_samples, batch_size))
    sums = EquivarianceSums()
    for done, start in enumerate(starts[rank::world]):
        draws = [draw_sample(seed + i, G.z_dim, G.c_dim, resolution)
                 for i in range(start, min(start + batch_size, num_samples))]
        sums += batch_sums(G, _mapped(G, draws, truncation_psi, device), draws)
        if progress is not None:
            progress(min((done + 1) * world * batch_size, num_samples), num_samples)
    if world > 1:
        on_gpu = torch.distributed.get_backend() == "nccl"
        total = sums.as_tensor().to(device if on_gpu else "cpu")
        torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
        sums = EquivarianceSums.from_tensor(total)
    return sums.result()


def latent_readout(G: nn.Module, ws: torch.Tensor, num_samples: int = 4, seed: int = 0) -> EquivarianceResult:
    """Quick readout for the current latent ws [1, num_ws, w_dim] (the GUI's live numbers): a few random
    transforms of the same latent, drawn from seeds seed .. seed + num_samples - 1."""
    check_applicable(G)
    draws = [draw_sample(seed + i, G.z_dim, G.c_dim, G.img_resolution) for i in range(num_samples)]
    return batch_sums(G, ws[:1].expand(num_samples, -1, -1), draws).result()


# ---------------------------------------------------------------------------------------------
# Error image for the GUI: how far the current transform is from exact equivariance.


@dataclass(frozen=True)
class ErrorMap:
    """For the user's transform M: the reference moved by M in image space and the network's output
    with inv(M), aligned and band-limited alike; their |difference| and the validity mask."""

    expected: np.ndarray    # [C, H, W] the untransformed render moved by M (an equivariant network's output)
    rendered: np.ndarray    # [C, H, W] the output rendered with the transform
    error: np.ndarray       # [H, W] |expected - rendered| averaged over channels, 0 outside the mask
    mask: np.ndarray        # [H, W] 1 where both sides are valid
    psnr: float             # dB over the mask
    method: str             # "integer shift", "Lanczos shift" or "band-limited resampling"


def error_map(G: nn.Module, ws: torch.Tensor, user_matrix: np.ndarray) -> ErrorMap:
    """Compare the render of ws [1, num_ws, w_dim] with the user's input transform M (DESIGN.md's
    convention: the network receives inv(M)) against the identity render moved by M.

    A pure translation uses the metric's reference shifts (whole pixels: exact; sub-pixel: Lanczos);
    anything with a rotation uses the band-limited resampler on the reference and the same band limit
    (no motion) on the render, as EQ-R does."""
    check_applicable(G)
    m = np.asarray(user_matrix, dtype=np.float64).reshape(3, 3)
    inverse = np.linalg.inv(m)
    ws = ws[:1]
    ref = _render(G, ws, [np.eye(3)])
    img = _render(G, ws, [inverse])
    res = G.img_resolution
    if np.allclose(m[:2, :2], np.eye(2), atol=1e-9):
        dx, dy = m[0, 2] * res, m[1, 2] * res
        if abs(dx - round(dx)) < 1e-6 and abs(dy - round(dy)) < 1e-6:
            expected, mask, method = *integer_shift(ref[0], round(dx), round(dy)), "integer shift"
        else:
            expected, mask, method = *fractional_shift(ref[0], dx, dy), "Lanczos shift"
        rendered = img[0]
    else:
        expected, ref_mask = affine_resample(ref, inverse)
        rendered, img_mask = affine_resample(img, np.eye(3), filter_matrix=inverse)
        expected, rendered = expected[0], rendered[0]
        mask = (ref_mask * img_mask)[0].expand_as(rendered)
        method = "band-limited resampling"
    se, ms = _masked_sums(expected, rendered, mask)
    error = ((expected - rendered).abs() * mask).mean(dim=0)
    return ErrorMap(expected=expected.cpu().numpy(), rendered=rendered.cpu().numpy(), error=error.cpu().numpy(),
                    mask=mask[0].cpu().numpy(), psnr=psnr(se, ms), method=method)
