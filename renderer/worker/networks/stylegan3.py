"""The alias-free generator (StyleGAN3, Karras et al. 2021), configurations T and R.

Signals are treated as band-limited continuous functions represented by discrete samples
(paper, Section 2). Each layer has a sampling rate s, a cutoff f_c and a stopband f_t chosen by
the flexible layer schedule (Section 3.2, "Flexible layer specifications"); the
nonlinearity runs at a temporarily higher rate between an upsampling and a low-pass
downsampling filter (Section 3.2, "Filtered nonlinearities"). Constructor arguments and
state-dict names are those of the official implementation, so its pickles load as they are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from renderer.worker.networks.common import FullyConnectedLayer, MappingNetwork
from torch_utils.ops import paths
from torch_utils.ops.filtered_lrelu import filtered_lrelu

# ---------------------------------------------------------------------------------------------
# Filter design (Section 3.2, "Filtered nonlinearities"; Kaiser window design as in Kaiser 1974).


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Stopband attenuation (dB) of a Kaiser filter with `numtaps` taps and transition `width`
    (as a fraction of the Nyquist frequency): A = 2.285 (numtaps - 1) pi width + 7.95."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(attenuation: float) -> float:
    """Kaiser window shape parameter beta for a stopband attenuation in dB (Kaiser's formula)."""
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel function of the first kind, order 1: J1(x) = 1/(2 pi) integral over one period of
    cos(t - x sin t). The trapezoid rule on a periodic analytic integrand converges exponentially,
    so a few more points than |x| give double precision."""
    x = np.asarray(x, dtype=np.float64)
    points = 64 + 2 * int(np.ceil(np.abs(x).max(initial=0.0)))
    t = np.arange(points) * (2 * np.pi / points)
    return np.cos(t - x[..., None] * np.sin(t)).mean(axis=-1)


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR filter, normalised to unit DC gain; None when numtaps == 1.

    Separable: a windowed sinc with cutoff `cutoff` and transition band `width` (Hz at sampling
    rate `fs`), a 1-D filter applied along x and y. Radial (R config, Section 3.2, "Rotation
    equivariance"): a 2-D jinc, the ideal circularly symmetric low-pass, times the outer product
    of the same Kaiser window.
    """
    if numtaps == 1:
        return None
    nyquist = fs / 2
    beta = kaiser_beta(kaiser_attenuation(numtaps, width / nyquist))
    window = np.kaiser(numtaps, beta)
    offsets = np.arange(numtaps) - (numtaps - 1) / 2  # tap positions in samples, centred
    if not radial:
        taps = (cutoff / nyquist) * np.sinc((cutoff / nyquist) * offsets) * window
    else:
        r = np.hypot(*np.meshgrid(offsets / fs, offsets / fs))
        safe_r = np.where(r > 0, r, 1.0)
        jinc = np.where(r > 0, bessel_j1(2 * np.pi * cutoff * safe_r) / (np.pi * safe_r), cutoff)
        taps = jinc * np.outer(window, window)
    return torch.as_tensor(taps / taps.sum(), dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# Modulated convolution (StyleGAN2 paper, Section 2.2, Equations 1-3).


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, padding: int = 0,
                     demodulate: bool = True, input_gain: torch.Tensor | None = None,
                     modulate_input: bool = False, row_bands: int = 0) -> torch.Tensor:
    """Convolve each batch element with the weights scaled by its styles (Eq. 1), optionally
    demodulated to unit expected output variance (Eq. 3), as one grouped convolution; or, with
    `modulate_input`, as one shared-weight convolution of the modulated input (same result, see
    below: cheaper to differentiate at training batch sizes). `row_bands` >= 1 (batch 1, fast CPU path)
    runs the convolution a band of output rows at a time, to bound its working memory, and a 1x1
    convolution as one matrix product (see torch_utils/ops/cpu/conv.py); 0 is plain conv2d."""
    batch, in_channels = x.shape[0], x.shape[1]
    out_channels, _, kh, kw = weight.shape

    # RMS pre-normalisation of weights and styles: keeps fp16 in range; demodulation undoes the scale.
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()

    if modulate_input:
        # Every factor of w''_oik = d_o s_i g_i w_oik is per input or per output channel, so
        # conv(x, w'') = d * conv(x * s * g, w): one weight for the whole batch, whose gradient is
        # one large product instead of `batch` small ones.
        scale = styles if input_gain is None else styles * input_gain.expand(in_channels)
        y = torch.nn.functional.conv2d(x * scale.reshape(batch, in_channels, 1, 1).to(x.dtype), weight.to(x.dtype),
                                       padding=padding)
        if demodulate:
            dcoefs = ((weight.unsqueeze(0) * styles.reshape(batch, 1, in_channels, 1, 1)).square().sum(dim=[2, 3, 4])
                      + 1e-8).rsqrt()
            y = y * dcoefs.reshape(batch, out_channels, 1, 1).to(y.dtype)
        return y

    # Modulation (Eq. 1): w'_ijk = s_i w_ijk, one weight tensor per batch element.
    w = weight.unsqueeze(0) * styles.reshape(batch, 1, in_channels, 1, 1)

    # Demodulation (Eq. 3): w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps).
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()

    # Input normalisation by the running magnitude, folded into the weights.
    if input_gain is not None:
        w = w * input_gain.expand(in_channels).reshape(1, 1, in_channels, 1, 1)

    x = x.reshape(1, batch * in_channels, *x.shape[2:])
    w = w.reshape(batch * out_channels, in_channels, kh, kw).to(x.dtype)
    if row_bands >= 1 and batch == 1:  # same convolution, in row bands or as one matrix product
        from torch_utils.ops.cpu.conv import conv2d_batch1  # only on the fast CPU path

        x = conv2d_batch1(x, w, padding, row_bands)
    else:
        x = torch.nn.functional.conv2d(x, w, padding=padding, groups=batch)
    return x.reshape(batch, out_channels, *x.shape[2:])


# ---------------------------------------------------------------------------------------------
# Fourier-feature input (Section 3.2, "Fourier features" and "Transformed Fourier features").


class SynthesisInput(nn.Module):
    """A spatially infinite map of sinusoids with frequencies inside a disc of radius `bandwidth`,
    sampled on a `size` grid at `sampling_rate`, rotated and translated by w, then mixed by a
    learned linear layer. `transform` (3x3, buffer) is the user's inverse input transform."""

    def __init__(self, w_dim: int, channels: int, size: int | tuple[int, int], sampling_rate: float,
                 bandwidth: float) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = tuple(int(v) for v in np.broadcast_to(np.asarray(size), [2]))  # [width, height]
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)

        # Random directions, radii pushed towards the centre of the disc (radius bandwidth * exp(-r^2/4)).
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5

        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        transform = self.transform if transform is None else transform.to(self.transform)
        if transform.shape[-2:] != (3, 3) or transform.ndim not in (2, 3):
            raise ValueError(f"input transform must be 3x3 (or [batch, 3, 3]), got {tuple(transform.shape)}")
        batch = w.shape[0]

        # w -> rotation (r_c, r_s) and translation (t_x, t_y); the rotation is normalised to unit length.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        rotation = torch.eye(3, device=w.device).repeat(batch, 1, 1)
        rotation[:, 0, 0], rotation[:, 0, 1] = t[:, 0], -t[:, 1]
        rotation[:, 1, 0], rotation[:, 1, 1] = t[:, 1], t[:, 0]
        translation = torch.eye(3, device=w.device).repeat(batch, 1, 1)
        translation[:, 0, 2], translation[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = rotation @ translation @ transform.expand(batch, 3, 3)

        # Transforming the features: a translation shifts phases, a rotation turns frequencies.
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]

        # Fade out frequencies approaching Nyquist, so rotation cannot alias them.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Sample sin(2 pi (f . x + phase)) at pixel centres; size/s units wide, centred on the origin.
        width, height = self.size
        xs = (torch.arange(width, device=w.device, dtype=torch.float32) + 0.5 - width / 2) / self.sampling_rate
        ys = (torch.arange(height, device=w.device, dtype=torch.float32) + 0.5 - height / 2) / self.sampling_rate
        arguments = (xs.reshape(1, 1, width, 1) * freqs[:, :, 0].reshape(batch, 1, 1, -1)
                     + ys.reshape(1, height, 1, 1) * freqs[:, :, 1].reshape(batch, 1, 1, -1)
                     + phases.reshape(batch, 1, 1, -1))
        x = torch.sin(arguments * (2 * np.pi)) * amplitudes.reshape(batch, 1, 1, -1)

        # Learned channel mixing (a 1x1 convolution with equalised learning rate).
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={list(self.size)}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


# ---------------------------------------------------------------------------------------------
# One synthesis layer: modulated conv + filtered leaky ReLU (Section 3.2, "Filtered nonlinearities").


class SynthesisLayer(nn.Module):
    """Modulated convolution, then bias, upsampling to tmp_sampling_rate, leaky ReLU, clamp and
    low-pass downsampling to out_sampling_rate. The last layer (ToRGB) is a linear 1x1 layer."""

    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        use_fp16: bool,
        in_channels: int,
        out_channels: int,
        in_size: int | tuple[int, int],
        out_size: int | tuple[int, int],
        in_sampling_rate: float,
        out_sampling_rate: float,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = bool(is_torgb)
        self.is_critically_sampled = bool(is_critically_sampled)
        self.use_fp16 = bool(use_fp16)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.in_size = tuple(int(v) for v in np.broadcast_to(np.asarray(in_size), [2]))
        self.out_size = tuple(int(v) for v in np.broadcast_to(np.asarray(out_size), [2]))
        self.in_sampling_rate, self.out_sampling_rate = float(in_sampling_rate), float(out_sampling_rate)
        self.in_cutoff, self.out_cutoff = float(in_cutoff), float(out_cutoff)
        self.in_half_width, self.out_half_width = float(in_half_width), float(out_half_width)
        self.conv_kernel = 1 if self.is_torgb else int(conv_kernel)
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        # Temporary rate for the nonlinearity: lrelu_upsampling x the higher of the two rates.
        self.tmp_sampling_rate = max(self.in_sampling_rate, self.out_sampling_rate) * (1 if self.is_torgb else lrelu_upsampling)

        # Parameters: styles from w, convolution weight and bias, running input magnitude.
        self.affine = FullyConnectedLayer(w_dim, self.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([self.out_channels, self.in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([self.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Upsampling filter: keeps the input band (cutoff in_cutoff, transition 2 x in_half_width).
        self.up_factor = int(np.rint(self.tmp_sampling_rate / self.in_sampling_rate))
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(
            self.up_taps, self.in_cutoff, self.in_half_width * 2, self.tmp_sampling_rate))

        # Downsampling filter: removes what the nonlinearity added above the output band; radial
        # (rotation-equivariant) in the R config except in the critically sampled layers.
        self.down_factor = int(np.rint(self.tmp_sampling_rate / self.out_sampling_rate))
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not self.is_torgb else 1
        self.down_radial = bool(use_radial_filters) and not self.is_critically_sampled
        self.register_buffer("down_filter", design_lowpass_filter(
            self.down_taps, self.out_cutoff, self.out_half_width * 2, self.tmp_sampling_rate, radial=self.down_radial))

        # Padding that makes (conv output, upsampled, filtered, decimated) land exactly on out_size.
        pad_total = (np.asarray(self.out_size) - 1) * self.down_factor + 1
        pad_total -= (np.asarray(self.in_size) + self.conv_kernel - 1) * self.up_factor
        pad_total += self.up_taps + self.down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x: torch.Tensor, w: torch.Tensor, force_fp32: bool = True,
                update_emas: bool = False) -> torch.Tensor:
        expected = (self.in_channels, self.in_size[1], self.in_size[0])
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"layer expects input [N, {expected[0]}, {expected[1]}, {expected[2]}], got {list(x.shape)}")

        # Magnitude normalisation: track E[x^2] during training, divide the input by its root.
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        # Styles; ToRGB has no demodulation, so it gets the equalised-learning-rate gain instead.
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel ** 2))

        dtype = torch.float16 if self.use_fp16 and not force_fp32 and x.device.type == "cuda" else paths.compute_dtype(x.device)
        # Fast CPU path at batch > 1 (training): modulate the input, not one weight copy per sample.
        fast_cpu = x.device.type == "cpu" and paths.active(x.device) == "cpu"
        modulate_input = fast_cpu and x.shape[0] > 1
        # Fast CPU path at batch 1: large convolutions in bands of rows (peak memory), 1x1 ones as a matmul.
        row_bands = 0
        if fast_cpu and x.shape[0] == 1 and not torch.is_grad_enabled():
            from torch_utils.ops.cpu.conv import bands_for  # only on the fast CPU path

            row_bands = bands_for(self.out_channels * x.shape[2] * x.shape[3] * torch.empty((), dtype=dtype).element_size())
        x = modulated_conv2d(x.to(dtype), self.weight, styles, padding=self.conv_kernel - 1,
                             demodulate=not self.is_torgb, input_gain=input_gain, modulate_input=modulate_input,
                             row_bands=row_bands)

        # Filtered leaky ReLU (ToRGB: linear, no resampling).
        gain = 1.0 if self.is_torgb else np.sqrt(2)
        slope = 1.0 if self.is_torgb else 0.2
        x = filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype), up=self.up_factor,
                           down=self.down_factor, padding=self.padding, gain=gain, slope=slope, clamp=self.conv_clamp)
        return x

    def extra_repr(self) -> str:
        return "\n".join([
            f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled}, "
            f"use_fp16={self.use_fp16},",
            f"in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g},",
            f"in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g},",
            f"in_half_width={self.in_half_width:g}, out_half_width={self.out_half_width:g},",
            f"in_size={list(self.in_size)}, out_size={list(self.out_size)},",
            f"in_channels={self.in_channels}, out_channels={self.out_channels}"])


# ---------------------------------------------------------------------------------------------
# The synthesis network: layer schedule (Section 3.2, "Flexible layer specifications").


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution]."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2,
        first_stopband: float = 2 ** 2.1,
        last_stopband_rel: float = 2 ** 0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        num_fp16_res: int = 4,
        **layer_kwargs: Any,
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        # Cutoff f_c and stopband f_t grow geometrically from the first layer to the last
        # num_critical + 1 layers, which are critically sampled at the output resolution.
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents

        # Sampling rate: smallest power of two >= 2 f_t (at most the output resolution);
        # transition half width f_h = max(f_t, s/2) - f_c.
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs

        # Feature maps carry a margin around the image (Section 3.2, "Boundaries and upsampling").
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.input = SynthesisInput(w_dim, int(channels[0]), int(sizes[0]), sampling_rates[0], cutoffs[0])
        # Non-critical sampling (Section 3.2, "Non-critical sampling"): all but the last
        # num_critical layers and ToRGB keep f_c < s/2, leaving a transition band for the filters.
        self.layer_names: list[str] = []
        for index in range(num_layers + 1):
            prev = max(index - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim,
                is_torgb=index == num_layers,
                is_critically_sampled=index >= num_layers - num_critical,
                use_fp16=bool(sampling_rates[index] * 2 ** num_fp16_res > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[index]),
                in_size=int(sizes[prev]), out_size=int(sizes[index]),
                in_sampling_rate=sampling_rates[prev], out_sampling_rate=sampling_rates[index],
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[index],
                in_half_width=half_widths[prev], out_half_width=half_widths[index],
                **layer_kwargs)
            name = f"L{index}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)
        self.conv_kernel = getattr(self, self.layer_names[0]).conv_kernel

    def layers(self) -> list[SynthesisLayer]:
        """The synthesis layers L0 .. ToRGB, in order."""
        return [getattr(self, name) for name in self.layer_names]

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool = True,
                update_emas: bool = False, transform: torch.Tensor | None = None) -> torch.Tensor:
        """`noise_mode` is accepted for compatibility (this network has no noise inputs);
        `transform`, if given, replaces the input transform buffer for this call only."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0], transform=transform)
        for layer, w in zip(self.layers(), ws[1:]):
            x = layer(x, w, force_fp32=force_fp32, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}, num_critical={self.num_critical}, "
                f"margin_size={self.margin_size}, num_fp16_res={self.num_fp16_res}")


# ---------------------------------------------------------------------------------------------
# The generator: mapping z -> w, then synthesis.


class Generator(nn.Module):
    """StyleGAN3 generator; constructor arguments as the official ones (and as pickles record them)."""

    family = "stylegan3"

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict[str, Any] | None = None, **synthesis_kwargs: Any) -> None:
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        self.init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                img_channels=img_channels, mapping_kwargs=dict(mapping_kwargs), **synthesis_kwargs)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, noise_mode: str = "const", force_fp32: bool = True,
                update_emas: bool = False, transform: torch.Tensor | None = None) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_emas,
                              transform=transform)
