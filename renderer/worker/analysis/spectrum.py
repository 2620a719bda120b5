"""Power spectra: each StyleGAN3 layer's against its own filter design, and the average spectrum
of many images (a model's or a dataset's) as the official spectrum tool computes it.

Frequency convention: cycles per unit of the synthesis coordinate system, in which the output
image is one unit wide. A layer sampled at rate s (samples per unit) has Nyquist frequency s/2 in
these units, and its design cutoff f_c and stopband f_t (StyleGAN3 paper, Section 3.2, "Flexible
layer specifications") are in the same units, so they can be drawn on its spectrum directly. For
output images s = resolution, so the unit reads "cycles per image width".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from torch import nn

from renderer.spectra import AverageSpectrum
from renderer.worker import layer_hooks
from renderer.worker.latents import mapped_ws

# ---------------------------------------------------------------------------------------------
# Shared maths.


def frequency_axis(num_bins: int, sampling_rate: float) -> np.ndarray:
    """Centred frequencies (cycles per unit) of an FFT of `num_bins` samples taken at
    `sampling_rate`; index num_bins // 2 is DC, as after np.fft.fftshift."""
    return np.fft.fftshift(np.fft.fftfreq(num_bins, d=1.0 / sampling_rate))


def _kaiser(n: int, beta: float, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.kaiser(n, beta), dtype=torch.float32, device=device)


def radial_profile(power: np.ndarray, freqs_y: np.ndarray, freqs_x: np.ndarray,
                   bin_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthal mean of a centred 2-D power spectrum in rings `bin_width` wide.
    Returns (ring centre radii, mean power per ring); empty rings are dropped."""
    radius = np.hypot(freqs_y[:, None], freqs_x[None, :])
    ring = np.floor(radius / bin_width + 0.5).astype(np.int64).ravel()
    total = np.bincount(ring, weights=power.ravel().astype(np.float64))
    count = np.bincount(ring)
    keep = count > 0
    return np.flatnonzero(keep) * bin_width, total[keep] / count[keep]


# ---------------------------------------------------------------------------------------------
# (a) Per-layer spectra, annotated with each layer's design.


@dataclass(frozen=True)
class LayerDesign:
    """A StyleGAN3 layer's frequency design, in cycles per unit (see the module docstring)."""

    name: str                   # "input", "L0_36_512", ...
    sampling_rate: float        # s: samples per unit
    cutoff: float               # f_c: top of the passband
    stopband: float             # f_t: where the design demands full attenuation
    half_width: float | None    # f_h = max(f_t, s/2) - f_c (None for the input layer)
    radial: bool                # passband is a disc (R config's radial filters, Fourier input), else a square
    critically_sampled: bool

    @property
    def nyquist(self) -> float:
        return self.sampling_rate / 2


@dataclass(frozen=True)
class LayerSpectrum:
    """One layer's power spectrum (all channels, each with its mean removed, Kaiser-windowed,
    |FFT|^2 summed over channels), centred: power[i, j] is at (freqs_y[i], freqs_x[j])."""

    design: LayerDesign
    freqs_x: np.ndarray         # [W'] cycles per unit
    freqs_y: np.ndarray         # [H']
    power: np.ndarray           # [H', W'] float64
    radii: np.ndarray           # radial profile: ring centres, cycles per unit
    profile: np.ndarray         # mean power per ring
    energy_above_cutoff: float  # fraction of the energy outside the passband (|f| > f_c in the design's norm)
    energy_above_stopband: float  # fraction outside the stopband f_t (what aliasing would be made of)

    def power_db(self) -> np.ndarray:
        """10 log10 of the power relative to its mean (the display convention of DESIGN.md)."""
        return 10 * np.log10(np.maximum(self.power, 1e-30) / max(float(self.power.mean()), 1e-30))

    def profile_db(self) -> np.ndarray:
        """The radial profile in dB relative to the spectrum's mean power."""
        return 10 * np.log10(np.maximum(self.profile, 1e-30) / max(float(self.power.mean()), 1e-30))


def power_spectrum(x: torch.Tensor, beta: float = 8.0, pad: int = 1) -> torch.Tensor:
    """Power spectrum of a layer's activations x [C, H, W]: each channel's mean removed, a separable
    Kaiser window (beta) so the borders do not smear energy over the whole spectrum, zero-padded to
    pad x the size, |FFT|^2 summed over channels, centred (DC at (H' // 2, W' // 2)). float32, on x's device."""
    if x.ndim != 3:
        raise ValueError(f"expected activations [C, H, W], got {list(x.shape)}")
    x = x.detach().to(torch.float32)
    _, h, w = x.shape
    x = x - x.mean(dim=(1, 2), keepdim=True)
    x = x * _kaiser(h, beta, x.device)[:, None] * _kaiser(w, beta, x.device)[None, :]
    return torch.fft.fftshift(torch.fft.fft2(x, s=(h * pad, w * pad)).abs().square().sum(dim=0))


def layer_power_spectrum(x: torch.Tensor, sampling_rate: float, beta: float = 8.0,
                         pad: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """power_spectrum of x [C, H, W] sampled at `sampling_rate`, with its axes: (freqs_y, freqs_x, power)."""
    power = power_spectrum(x, beta, pad).double().cpu().numpy()
    return frequency_axis(power.shape[0], sampling_rate), frequency_axis(power.shape[1], sampling_rate), power


def annotate_spectrum(x: torch.Tensor, design: LayerDesign, beta: float = 8.0, pad: int = 2) -> LayerSpectrum:
    """The spectrum of one layer's activations [C, H, W] with its design and energy fractions.

    "Above" a frequency f means outside the passband shape: a square max(|fx|, |fy|) > f for
    separable filters, a disc |f| > f for radial ones. Window leakage spreads energy over about
    sqrt(1 + (beta / pi)^2) bins either side of a peak, so near-cutoff content leaks a little
    above f_c even in a perfectly band-limited layer; the smallest layers show it most.
    """
    freqs_y, freqs_x, power = layer_power_spectrum(x, design.sampling_rate, beta=beta, pad=pad)
    fy, fx = np.abs(freqs_y)[:, None], np.abs(freqs_x)[None, :]
    norm = np.hypot(fy, fx) if design.radial else np.maximum(fy, fx)
    total = max(float(power.sum()), 1e-30)
    bin_width = design.sampling_rate / (pad * min(x.shape[1], x.shape[2]))
    radii, profile = radial_profile(power, freqs_y, freqs_x, bin_width)
    return LayerSpectrum(
        design=design, freqs_x=freqs_x, freqs_y=freqs_y, power=power, radii=radii, profile=profile,
        energy_above_cutoff=float(power[norm > design.cutoff].sum() / total),
        energy_above_stopband=float(power[norm > design.stopband].sum() / total))


def layer_designs(G: nn.Module) -> list[LayerDesign]:
    """The design of the input and every synthesis layer of a StyleGAN3 generator.

    f_c and f_t follow the layer schedule (paper, Section 3.2 and Figure 4b): with
    e_i = min(i / (N - num_critical), 1), f_c = first_cutoff (res/2 / first_cutoff)^e_i and f_t from
    first_stopband to res/2 * last_stopband_rel likewise. Only f_t is recomputed (layers store s,
    f_c and f_h), from the hyperparameters the generator was built with.
    """
    synthesis = G.synthesis
    if getattr(G, "family", "") != "stylegan3":
        raise ValueError(_NOT_STYLEGAN3)
    kwargs = getattr(G, "init_kwargs", {})
    res = synthesis.img_resolution
    first_stopband = float(kwargs.get("first_stopband", 2 ** 2.1))
    last_stopband = res / 2 * float(kwargs.get("last_stopband_rel", 2 ** 0.3))
    layers = synthesis.layers()
    exponents = np.minimum(np.arange(len(layers)) / (synthesis.num_layers - synthesis.num_critical), 1)
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents

    inp = synthesis.input
    designs = [LayerDesign(name="input", sampling_rate=inp.sampling_rate, cutoff=inp.bandwidth,
                           stopband=float(stopbands[0]), half_width=None, radial=True, critically_sampled=False)]
    for name, layer, stopband in zip(synthesis.layer_names, layers, stopbands):
        designs.append(LayerDesign(
            name=name, sampling_rate=layer.out_sampling_rate, cutoff=layer.out_cutoff, stopband=float(stopband),
            half_width=layer.out_half_width, radial=bool(getattr(layer, "down_radial", False)),
            critically_sampled=layer.is_critically_sampled))
    return designs


_NOT_STYLEGAN3 = ("per-layer design spectra need a StyleGAN3 generator: StyleGAN2 layers have no "
                  "designed sampling rate, cutoff or stopband")


def capture_layers(G: nn.Module, ws: torch.Tensor, transform: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Activations of synthesis.input and every synthesis layer (in layer_designs order) for ws [1, num_ws, w_dim]."""
    synthesis = G.synthesis
    names = ["input", *synthesis.layer_names]
    with torch.no_grad():
        return layer_hooks.capture_layers(synthesis, names, lambda: synthesis(ws, transform=transform))


def model_layer_spectra(G: nn.Module, ws: torch.Tensor, transform: torch.Tensor | None = None,
                        beta: float = 8.0, pad: int = 2) -> list[LayerSpectrum]:
    """Annotated spectra of every layer of a StyleGAN3 generator for one latent ws [1, num_ws, w_dim]
    (the GUI plots `profile` against `radii` and a bar chart of `energy_above_cutoff`)."""
    designs = layer_designs(G)
    activations = capture_layers(G, ws[:1], transform=transform)
    return [annotate_spectrum(x[0], design, beta=beta, pad=pad) for x, design in zip(activations, designs)]


def ws_for_seed(G: nn.Module, seed: int, truncation_psi: float = 1.0, device: torch.device | str = "cpu") -> torch.Tensor:
    """ws [1, num_ws, w_dim] for a seed, with the official z and class conventions."""
    return mapped_ws(G, [seed], device, truncation_psi)


# ---------------------------------------------------------------------------------------------
# (b) Average spectrum over many images, as the official spectrum tool computes it.


class SpectrumAccumulator:
    """Accumulates the average spectrum batch by batch (the GUI runs it in the background and shows
    `count` as progress). Images are [N, C, H, W] in the uint8 value range [0, 255], H = W = resolution.

    Each image: x' = (x - mean) / std, times a 2-D Kaiser window (outer product, beta) scaled to unit
    energy (sum of squares 1), FFT zero-padded to pad x resolution, |FFT|^2 averaged over channels
    and images. A white image of unit variance then has a flat spectrum at 0 dB.
    """

    def __init__(self, resolution: int, mean: float, std: float, beta: float = 8.0, pad: int = 4,
                 device: torch.device | str = "cpu", label: str = "") -> None:
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.resolution, self.mean, self.std, self.beta, self.pad, self.label = resolution, mean, std, beta, pad, label
        self.device = torch.device(device)
        window = torch.outer(_kaiser(resolution, beta, self.device), _kaiser(resolution, beta, self.device))
        self._window = window / window.square().sum().sqrt()
        self._sum = torch.zeros([resolution * pad] * 2, dtype=torch.float64, device=self.device)
        self.count = 0

    def add(self, images: torch.Tensor | np.ndarray) -> None:
        x = torch.as_tensor(images).to(self.device, torch.float32)
        if x.ndim != 4 or x.shape[2:] != (self.resolution, self.resolution):
            raise ValueError(f"expected images [N, C, {self.resolution}, {self.resolution}], got {list(x.shape)}")
        x = (x - self.mean) / self.std * self._window
        size = self.resolution * self.pad
        power = torch.fft.fft2(x, s=(size, size)).abs().square().mean(dim=1)
        self._sum += power.sum(dim=0).double()
        self.count += x.shape[0]

    def result(self) -> AverageSpectrum:
        if self.count == 0:
            raise ValueError("no images were added")
        power = torch.fft.fftshift(self._sum / self.count).cpu().numpy()
        return AverageSpectrum(power=power, freqs=frequency_axis(self.resolution * self.pad, self.resolution),
                               resolution=self.resolution, num_images=self.count, mean=self.mean, std=self.std,
                               beta=self.beta, pad=self.pad, label=self.label)


def image_stats(batches: Iterable[np.ndarray]) -> tuple[float, float]:
    """Mean and standard deviation over every pixel value of the given image batches (the
    whitening constants; the official tool takes them from the training data)."""
    total = total_sq = 0.0
    n = 0
    for batch in batches:
        x = np.asarray(batch, dtype=np.float64)
        total += float(x.sum())
        total_sq += float(np.square(x).sum())
        n += x.size
    if n == 0:
        raise ValueError("no images to compute statistics from")
    mean = total / n
    return mean, math.sqrt(max(total_sq / n - mean * mean, 0.0))
