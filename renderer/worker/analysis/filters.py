"""Frequency responses of a StyleGAN3 layer's up- and downsampling filters, for plotting.

Both filters run at the layer's temporary rate (tmp_sampling_rate), where the nonlinearity is
evaluated (StyleGAN3 paper, Section 3.2, "Filtered nonlinearities"). The upsampling filter keeps
the input band (cutoff f_c of the previous layer), the downsampling filter the output band; each
is a Kaiser-windowed low-pass whose transition band spans f_c - f_h .. f_c + f_h. Frequencies are in
cycles per unit (the output image is one unit wide), as in renderer.worker.analysis.spectrum. The stored
filters are normalised to unit DC gain; the responses are too (0 dB at DC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from renderer.worker.analysis.spectrum import frequency_axis, radial_profile


@dataclass(frozen=True)
class FilterResponse:
    kind: str                   # "up" or "down"
    sampling_rate: float        # the rate the filter runs at
    taps: int
    radial: bool                # a 2-D radial filter (R config) rather than a separable 1-D one
    cutoff: float               # f_c the filter was designed for
    stopband_edge: float        # f_c + f_h: end of the designed transition band
    freqs: np.ndarray           # [K] 0 .. sampling_rate / 2
    magnitude: np.ndarray       # |H(f, 0)|: along one axis (the 1-D response of a separable filter)
    radii: np.ndarray           # azimuthal mean of |H| over rings of radius |f|
    radial_magnitude: np.ndarray
    freqs_2d: np.ndarray        # [M] centred axis of response_2d
    response_2d: np.ndarray     # [M, M] |H(fy, fx)|

    def magnitude_db(self) -> np.ndarray:
        return 20 * np.log10(np.maximum(self.magnitude, 1e-12))

    def radial_magnitude_db(self) -> np.ndarray:
        return 20 * np.log10(np.maximum(self.radial_magnitude, 1e-12))


@dataclass(frozen=True)
class LayerFilters:
    layer: str
    up: FilterResponse | None   # None where the layer does not resample (ToRGB, factor 1)
    down: FilterResponse | None


def filter_response(taps: torch.Tensor | np.ndarray, sampling_rate: float, kind: str, cutoff: float,
                    stopband_edge: float, bins: int = 512) -> FilterResponse:
    """Responses of a 1-D (separable) or 2-D FIR filter sampled on `bins` frequencies per axis."""
    f = np.asarray(taps.detach().cpu() if isinstance(taps, torch.Tensor) else taps, dtype=np.float64)
    if f.ndim == 1:
        h1 = np.abs(np.fft.fft(f, n=bins))
        h2 = np.outer(h1, h1)
    elif f.ndim == 2:
        h2 = np.abs(np.fft.fft2(f, s=(bins, bins)))
        h1 = h2[0]
    else:
        raise ValueError(f"a filter is 1-D or 2-D, got shape {list(f.shape)}")
    half = bins // 2 + 1
    freqs = np.arange(half) * sampling_rate / bins
    h2 = np.fft.fftshift(h2)
    axis = frequency_axis(bins, sampling_rate)
    radii, radial = radial_profile(h2, axis, axis, sampling_rate / bins)
    keep = radii <= sampling_rate / 2
    return FilterResponse(kind=kind, sampling_rate=sampling_rate, taps=f.shape[0], radial=f.ndim == 2, cutoff=cutoff,
                          stopband_edge=stopband_edge, freqs=freqs, magnitude=h1[:half], radii=radii[keep],
                          radial_magnitude=radial[keep], freqs_2d=axis, response_2d=h2)


def layer_filter_responses(layer: nn.Module, name: str = "", bins: int = 512) -> LayerFilters:
    """The up and down filter responses of a StyleGAN3 SynthesisLayer (its stored buffers)."""
    up = down = None
    if getattr(layer, "up_filter", None) is not None:
        up = filter_response(layer.up_filter, layer.tmp_sampling_rate, "up", layer.in_cutoff,
                             layer.in_cutoff + layer.in_half_width, bins)
    if getattr(layer, "down_filter", None) is not None:
        down = filter_response(layer.down_filter, layer.tmp_sampling_rate, "down", layer.out_cutoff,
                               layer.out_cutoff + layer.out_half_width, bins)
    return LayerFilters(layer=name, up=up, down=down)


def model_filter_responses(G: nn.Module, bins: int = 512) -> list[LayerFilters]:
    """Filter responses of every synthesis layer of a StyleGAN3 generator, named as in layer_names."""
    synthesis = G.synthesis
    return [layer_filter_responses(getattr(synthesis, name), name, bins) for name in synthesis.layer_names]
