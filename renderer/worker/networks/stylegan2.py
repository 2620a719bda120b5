"""The StyleGAN2 generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN"), as the official StyleGAN3 repository ships it: mapping z -> w, then a synthesis
network of blocks b4, b8, ..., b{resolution}, each made of modulated convolutions with per-pixel
noise and a to-RGB layer whose outputs are upsampled and summed ('skip', the paper's Figure 7).

Constructor arguments, state-dict names and shapes follow the official pickles, so a pickle's
init kwargs and tensors rebuild the same network.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from renderer.worker.networks.common import FullyConnectedLayer, MappingNetwork
from torch_utils.ops import paths
from torch_utils.ops.bias_act import ACTIVATIONS, bias_act
from torch_utils.ops.upfirdn2d import filter_size, setup_filter, upfirdn2d, upsample2d

ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("const", "random", "none")


# --- Convolution with optional x2 upsampling --------------------------------------------------

def conv2d_resample(
    x: torch.Tensor,
    weight: torch.Tensor,
    resample_filter: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """Convolve x with weight [out, in / groups, k, k]; with up > 1, upsample first.

    Upsampling is a transposed convolution with stride `up` followed by the FIR low-pass filter
    (gain up^2), which together equal zero insertion, filtering and convolution (StyleGAN2
    paper, Appendix B). The output is up times the input size (with the usual padding k // 2).
    """
    if up == 1:
        return F.conv2d(x, weight, padding=padding, groups=groups)

    out_channels, in_per_group, kh, kw = weight.shape
    # conv_transpose2d wants [in, out / groups, k, k]: swap the channel axes inside each group.
    weight = weight.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
    weight = weight.reshape(groups * in_per_group, out_channels // groups, kh, kw)
    x = F.conv_transpose2d(x, weight, stride=up, groups=groups)

    # The transposed convolution grew each side by k - 1 (low) and k - up (high); pad or crop so
    # that the FIR filter leaves exactly up * size samples, centred as upsample2d centres them.
    fw, fh = filter_size(resample_filter)
    px0 = padding + (fw + up - 1) // 2 - (kw - 1)
    px1 = padding + (fw - up) // 2 - (kw - up)
    py0 = padding + (fh + up - 1) // 2 - (kh - 1)
    py1 = padding + (fh - up) // 2 - (kh - up)
    return upfirdn2d(x, resample_filter, padding=[px0, px1, py0, py1], gain=up * up)


# --- Modulated convolution (StyleGAN2 paper, Section 2.2, Equations 1-3) -----------------------

def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    fused: bool = True,
) -> torch.Tensor:
    """x [N, in, H, W], weight [out, in, k, k], styles [N, in] -> [N, out, H*up, W*up] (+ noise).

    Modulation scales the input channels of the weights by the style s (Eq. 1:
    w'_ijk = s_i w_ijk); demodulation rescales each output channel to unit expected standard
    deviation (Eq. 2 and 3: w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps), eps = 1e-8).
    `fused` runs one grouped convolution with per-sample weights; otherwise the styles scale the
    activations before a shared convolution and the demodulation scales its output, which is
    the same function.
    """
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape

    # In float16, bring weights and styles to unit scale first so that the products cannot
    # overflow; demodulation removes the scale again.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    per_sample = None
    demod = None
    if demodulate or fused:
        per_sample = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)  # Eq. 1
    if demodulate:
        demod = (per_sample.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # Eq. 3

    if not fused:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
        if demod is not None and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, demod.to(x.dtype).reshape(batch, -1, 1, 1))
        if demod is not None:
            return x * demod.to(x.dtype).reshape(batch, -1, 1, 1)
        if noise is not None:
            return x + noise.to(x.dtype)
        return x

    if demod is not None:
        per_sample = per_sample * demod.reshape(batch, -1, 1, 1, 1)  # Eq. 2
    x = x.reshape(1, -1, *x.shape[2:])
    per_sample = per_sample.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, per_sample.to(x.dtype), resample_filter, up=up, padding=padding, groups=batch)
    x = x.reshape(batch, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


# --- Layers ------------------------------------------------------------------------------------

class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling x2), per-pixel noise B scaled by a learned
    strength, bias and leaky ReLU (the paper's Figure 2c), clamped to +-conv_clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.w_dim, self.resolution, self.kernel_size, self.up = w_dim, resolution, kernel_size, up
        self.use_noise, self.activation, self.conv_clamp = use_noise, activation, conv_clamp
        self.channels_last = channels_last
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].default_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "const",
        fused_modconv: bool = True,
        gain: float = 1.0,
    ) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode {noise_mode!r}; choose one of {', '.join(NOISE_MODES)}")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            size = [x.shape[0], 1, self.resolution, self.resolution]
            noise = torch.randn(size, device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, fused=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, resolution={self.resolution}, "
                f"up={self.up}, activation={self.activation}")


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation (the paper's tRGB)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.conv_clamp, self.channels_last = conv_clamp, channels_last
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        # Equalised learning rate for the convolution, folded into the styles.
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused_modconv)
        return bias_act(x, self.bias, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}"


class Conv2dLayer(nn.Module):
    """Plain convolution with equalised learning rate; here only the resnet blocks' 1x1 skip."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.up = in_channels, out_channels, up
        self.activation, self.conv_clamp = activation, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act_gain = ACTIVATIONS[activation].default_gain
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        weight = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, weight, self.resample_filter, up=self.up, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


# --- Blocks and the synthesis network ----------------------------------------------------------

class SynthesisBlock(nn.Module):
    """One resolution: (learned constant at 4x4 | conv0 upsampling x2), conv1, and to-RGB.

    forward(x, img, ws) -> (x, img): features at this resolution and the image so far, the
    previous image upsampled with the FIR filter plus this block's to-RGB output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = 256,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        fused_modconv_default: bool | str = True,
        **layer_kwargs,
    ) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution, self.img_channels, self.is_last = resolution, img_channels, is_last
        self.architecture, self.use_fp16, self.conv_clamp = architecture, use_fp16, conv_clamp
        self.channels_last = use_fp16 and fp16_channels_last
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    resample_filter=resample_filter, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        force_fp32: bool = True,
        fused_modconv: bool | None = None,
        update_emas: bool = False,
        noise_mode: str = "const",
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_rows = iter(ws.unbind(dim=1))
        # float16 only on CUDA, only in the blocks built for it, and never when forced to fp32; else the
        # selected precision (bfloat16 preview on the CPU).
        use_fp16 = self.use_fp16 and not force_fp32 and ws.device.type == "cuda"
        dtype = torch.float16 if use_fp16 else paths.compute_dtype(ws.device)
        memory_format = torch.channels_last if self.channels_last and use_fp16 else torch.contiguous_format
        if fused_modconv is None:
            fused_modconv = self.fused_modconv_default
        if fused_modconv == "inference_only":
            fused_modconv = not self.training
        layer_args = dict(noise_mode=noise_mode, fused_modconv=bool(fused_modconv))

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_rows), **layer_args)
        elif self.architecture == "resnet":
            # Residual block scaled by 1/sqrt(2) to keep the variance (StyleGAN2 paper, Section 4.1).
            x = x.to(dtype=dtype, memory_format=memory_format)
            shortcut = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_rows), **layer_args)
            x = self.conv1(x, next(w_rows), gain=np.sqrt(0.5), **layer_args)
            x = shortcut + x
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)
            x = self.conv0(x, next(w_rows), **layer_args)
            x = self.conv1(x, next(w_rows), **layer_args)

        # Skip generator: sum of the to-RGB outputs at every resolution, each upsampled to the next.
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            rgb = self.torgb(x, next(w_rows), fused_modconv=bool(fused_modconv))
            rgb = rgb.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = rgb if img is None else img + rgb
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}, use_fp16={self.use_fp16}"


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, res, res], through blocks b4 ... b{res}."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 4,
        **block_kwargs,
    ) -> None:
        super().__init__()
        log2_res = int(np.log2(img_resolution))
        if img_resolution < 4 or 2 ** log2_res != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, log2_res + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        # The highest num_fp16_res resolutions run in float16 (on CUDA), but never below 8x8.
        fp16_resolution = max(2 ** (log2_res + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim,
                                   resolution=res, img_channels=img_channels, is_last=is_last,
                                   use_fp16=res >= fp16_resolution, **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        force_fp32: bool = True,
        fused_modconv: bool | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        # Block k reads its conv rows and the row after them for its to-RGB layer, which is the
        # next block's first conv row (ws are shared between tRGB and the next conv).
        x = img = None
        first_row = 0
        for block in self.blocks():
            block_ws = ws.narrow(1, first_row, block.num_conv + block.num_torgb).to(torch.float32)
            first_row += block.num_conv
            x, img = block(x, img, block_ws, force_fp32=force_fp32, fused_modconv=fused_modconv,
                           update_emas=update_emas, noise_mode=noise_mode)
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}"


class Generator(nn.Module):
    """z, c -> image: MappingNetwork (8 layers by default) then SynthesisNetwork."""

    family = "stylegan2"

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,
        **synthesis_kwargs,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **{"num_layers": 8, **(mapping_kwargs or {})})

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        force_fp32: bool = True,
        update_emas: bool = False,
        fused_modconv: bool | None = None,
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32, fused_modconv=fused_modconv,
                              update_emas=update_emas)
