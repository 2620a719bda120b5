"""The official StyleGAN2 discriminator (as NVlabs/stylegan2-ada-pytorch, NVlabs/stylegan3 and
PDillis/stylegan3-fun train it) with the official module and tensor names, so that the D of a
training snapshot can be rebuilt from its tensors and used to measure images (the projection's
perceptual distance, renderer.worker.analysis.d_distance).

    img -> b{R} ... b8 (DiscriminatorBlock: fromrgb in the first, conv0, conv1 halving the size,
           a 1x1 skip halving it for 'resnet')
        -> b4 (DiscriminatorEpilogue: minibatch standard deviation, 3x3 conv, fc, out)
        -> one logit per image; for a conditional D the projection of `out` onto the class
           embedding (mapping, a MappingNetwork without z) divided by sqrt(cmap_dim)

Facts the names and numbers follow (StyleGAN2, Karras et al. 2020, Figure 7c and Appendix B;
the official code's layout): channels min(channel_base // res, channel_max); every convolution
uses the equalised learning rate, its activation gain (sqrt 2 for lrelu) times the layer's gain,
and clamps its output to +-conv_clamp times that gain; downsampling low-pass filters with the
[1, 3, 3, 1] binomial before decimating; the residual sum is skip * sqrt(1/2) + conv1 * sqrt(1/2).
The official code runs the highest num_fp16_res resolutions in float16 on CUDA; this one always
computes in float32 (the features it is used for need no speed, and float32 is what a CPU has).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from renderer.worker.networks.common import FullyConnectedLayer, MappingNetwork
from torch_utils.ops.bias_act import ACTIVATIONS, bias_act
from torch_utils.ops.upfirdn2d import downsample2d, filter_size, setup_filter, upfirdn2d

ARCHITECTURES = ("orig", "skip", "resnet")
RESIDUAL_GAIN = math.sqrt(0.5)
OFFICIAL_MAPPING_LAYERS = 8     # the official MappingNetwork's default, which D's mapping keeps


class Conv2dLayer(nn.Module):
    """Convolution with equalised learning rate, optionally halving the resolution (FIR filter, then
    a strided convolution), then bias, activation and clamp. Tensors: weight, bias, resample_filter."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", down: int = 1, resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act_gain = ACTIVATIONS[activation].default_gain
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        p = self.padding
        if self.down == 1:
            x = F.conv2d(x, w, padding=p)
        elif self.kernel_size == 1:
            x = F.conv2d(downsample2d(x, self.resample_filter, padding=p), w)
        else:
            # Filter with the padding the decimated output needs, then convolve with stride 2: the
            # same operator as convolving, filtering and keeping every other sample.
            fw, fh = filter_size(self.resample_filter)
            pad = [p + (fw - 1) // 2, p + (fw - 2) // 2, p + (fh - 1) // 2, p + (fh - 2) // 2]
            x = F.conv2d(upfirdn2d(x, self.resample_filter, padding=pad), w, stride=2)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, out={self.out_channels}, k={self.kernel_size}, down={self.down}, "
                f"activation={self.activation}")


class DiscriminatorBlock(nn.Module):
    """One resolution: features (and, for 'skip', the image) in, features at half the size out."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", activation: str = "lrelu", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        layer = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, **layer)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, **layer)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, down=2, resample_filter=resample_filter, **layer)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2, resample_filter=resample_filter)

    def from_image(self, x: torch.Tensor | None, img: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block's input features: the previous block's, plus fromrgb(img) where this block has one."""
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        return x, img

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, img = self.from_image(x, img)
        return self.convolve(x), img

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        if self.architecture == "resnet":
            y = self.skip(x, gain=RESIDUAL_GAIN)
            return y + self.conv1(self.conv0(x), gain=RESIDUAL_GAIN)
        return self.conv1(self.conv0(x))


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation over groups of the minibatch as `num_channels` feature maps
    (ProGAN, Section 3). The group is min(group_size, N); N must be a multiple of it."""

    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g:
            raise ValueError(f"the minibatch standard deviation needs a batch that is a multiple of {g}, got {n}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w).to(torch.float32)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 stage: (fromrgb for 'skip'), minibatch std, 3x3 conv, fc, out."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None) -> None:
        super().__init__()
        if mbstd_num_channels > 0 and in_channels % mbstd_num_channels:
            raise ValueError(f"mbstd_num_channels = {mbstd_num_channels} does not divide the {in_channels} channels "
                             "at 4x4")
        self.cmap_dim, self.architecture = cmap_dim, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        if self.architecture == "skip":
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """D(img, c) -> [N, 1] logits; images NCHW in [-1, 1]. Constructor arguments as the official
    Discriminator records them (num_fp16_res is accepted; everything runs in float32)."""

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 4,
                 conv_clamp: float | None = 256, cmap_dim: int | None = None, block_kwargs: dict | None = None,
                 mapping_kwargs: dict | None = None, epilogue_kwargs: dict | None = None) -> None:
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two of at least 4, got {img_resolution}")
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.num_fp16_res = num_fp16_res
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        block_kwargs = dict(block_kwargs or {})
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        for res in self.block_resolutions:
            in_channels = channels[res] if res < img_resolution else 0
            block = DiscriminatorBlock(in_channels, channels[res], channels[res // 2], resolution=res,
                                       **block_kwargs, **common)
            setattr(self, f"b{res}", block)
        if c_dim > 0:
            mapping = {"num_layers": OFFICIAL_MAPPING_LAYERS, **dict(mapping_kwargs or {})}
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, **mapping)
            del self.mapping.w_avg          # the official D's mapping keeps no average (w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **dict(epilogue_kwargs or {}),
                                        **common)

    def blocks(self) -> list[DiscriminatorBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x, img = None, img.to(torch.float32)
        for block in self.blocks():
            x, img = block(x, img)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def stage_features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """What D sees at each stage: the first block's input (fromrgb of the image), then every
        block's output down to 4x4."""
        features: list[torch.Tensor] = []
        x, img = None, img.to(torch.float32)
        for block in self.blocks():
            x, img = block.from_image(x, img)
            if not features:
                features.append(x)
            x = block.convolve(x)
            features.append(x)
        return features
