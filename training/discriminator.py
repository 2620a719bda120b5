"""The discriminator: StyleGAN2's residual architecture (Karras et al. 2020, "Analyzing and
Improving the Image Quality of StyleGAN", Section 4.1 and Figure 7c), sized by channel_base /
channel_max like the generators.

    image -> FromRGB (1x1) -> residual blocks, each halving the resolution, down to 4x4
          -> minibatch standard deviation -> 3x3 conv -> fully connected -> score (one logit)

All weights use the equalised learning rate (ProGAN, Section 4.1): stored N(0, 1), scaled by
1/sqrt(fan_in) at run time. Downsampling low-pass filters with the binomial [1, 3, 3, 1]
kernel before decimating (StyleGAN2, Section 4.1, following Zhang 2019, "Making convolutional
networks shift-invariant again").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from renderer.worker.networks.common import FullyConnectedLayer
from torch_utils.ops.bias_act import bias_act
from torch_utils.ops.upfirdn2d import downsample2d, setup_filter, upfirdn2d

BLUR_TAPS = (1, 3, 3, 1)
SKIP_GAIN = math.sqrt(0.5)  # keeps the variance of (skip + residual) equal to one branch's


class Conv2dLayer(nn.Module):
    """Equalised-learning-rate convolution, optionally halving the resolution, then bias and
    activation. Odd kernels only; the output of a non-downsampling layer has the input's size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", down: int = 1) -> None:
        super().__init__()
        if kernel_size % 2 != 1 or down not in (1, 2):
            raise ValueError("Conv2dLayer needs an odd kernel and down in (1, 2)")
        self.activation = activation
        self.down = down
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.register_buffer("blur", setup_filter(list(BLUR_TAPS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.down == 1:
            x = F.conv2d(x, w, padding=self.kernel_size // 2)
        elif self.kernel_size == 1:
            x = F.conv2d(downsample2d(x, self.blur), w)
        else:
            # Blur, then a strided convolution (cheaper than convolving at full resolution and
            # decimating after, and the same operator away from the borders). With t blur taps
            # and kernel k, padding the blur by (t - 2 + k - 1) in total makes the strided
            # convolution land on H / 2 outputs.
            taps = self.blur.shape[-1]
            pad = taps - 2 + self.kernel_size - 1
            x = upfirdn2d(x, self.blur, padding=[(pad + 1) // 2, pad // 2, (pad + 1) // 2, pad // 2])
            x = F.conv2d(x, w, stride=2)
        return bias_act(x, self.bias, act=self.activation)


class ResidualBlock(nn.Module):
    """One resolution of the residual discriminator: two 3x3 convolutions (the second one
    halving the resolution) plus a 1x1 downsampling skip, summed with gain sqrt(1/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * SKIP_GAIN


def minibatch_stddev(x: torch.Tensor, group_size: int, num_channels: int = 1) -> torch.Tensor:
    """Append the standard deviation across small groups of the minibatch as extra feature maps
    (ProGAN, Section 3), so D can see when G's samples lack variety. The group size shrinks to a
    divisor of the batch when needed."""
    n, c, h, w = x.shape
    g = math.gcd(min(group_size, n), n)
    f = num_channels
    y = x.reshape(g, n // g, f, c // f, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over each group
    y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [n/g, f]: average over channels and pixels
    y = y.reshape(n // g, f, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """D(image) -> one real/fake logit per image. Images are NCHW in [-1, 1]."""

    def __init__(self, img_resolution: int = 64, img_channels: int = 3, channel_base: int = 4096,
                 channel_max: int = 128, mbstd_group_size: int = 4, mbstd_num_channels: int = 1) -> None:
        super().__init__()
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 8, got {img_resolution}")
        self.init_kwargs = dict(img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
                                channel_max=channel_max, mbstd_group_size=mbstd_group_size,
                                mbstd_num_channels=mbstd_num_channels)
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.mbstd_group_size = mbstd_group_size
        self.mbstd_num_channels = mbstd_num_channels

        def channels(res: int) -> int:
            return min(channel_base // res, channel_max)

        self.from_rgb = Conv2dLayer(img_channels, channels(img_resolution), 1, activation="lrelu")
        resolutions = [2 ** i for i in range(int(math.log2(img_resolution)), 2, -1)]  # e.g. 64, 32, 16, 8
        self.blocks = nn.ModuleList(ResidualBlock(channels(r), channels(r // 2)) for r in resolutions)
        c4 = channels(4)
        self.conv = Conv2dLayer(c4 + mbstd_num_channels, c4, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(c4 * 4 * 4, c4, activation="lrelu")
        self.out = FullyConnectedLayer(c4, 1)

    def stage_features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """What D sees at each stage: from_rgb's output, then each residual block's (the projection's
        discriminator distance, renderer.worker.analysis.d_distance)."""
        x = self.from_rgb(img.to(torch.float32))
        features = [x]
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.from_rgb(img.to(torch.float32))
        for block in self.blocks:
            x = block(x)
        x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        return self.out(x)
