"""How a layer is shown: channel selection, normalisation and gain to uint8, statistics, and the
power spectrum placed beside the image (DESIGN.md, "Display").

Everything works on one layer output of shape [C, H, W] (a float tensor on any device) and
returns numpy uint8 frames of shape [H, W, 3].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from renderer.conventions import db_to_gain
from renderer.protocol import ChannelStats
from renderer.worker.analysis.spectrum import power_spectrum

UINT8_SCALE = 127.5   # x = +-1 spans the whole uint8 range
UINT8_OFFSET = 128.0


def clamp_base_channel(num_channels: int, sel_channels: int, base_channel: int) -> int:
    """The first shown channel, kept inside the layer (a stale base from another layer is clamped)."""
    return max(min(base_channel, num_channels - sel_channels), 0)


def select_channels(x: torch.Tensor, sel_channels: int, base_channel: int) -> torch.Tensor:
    """Channels base..base+sel-1 of a [C, H, W] layer (fewer where the layer has fewer)."""
    base = clamp_base_channel(x.shape[0], sel_channels, base_channel)
    return x[base: base + sel_channels]


def channel_stats(x: torch.Tensor) -> ChannelStats:
    """Mean, standard deviation and max |x| over every value of x."""
    x = x.to(torch.float32)
    values = torch.stack([x.mean(), x.std() if x.numel() > 1 else torch.zeros_like(x.mean()), x.abs().max()])
    mean, std, peak = (float(v) for v in values.cpu())
    return ChannelStats(mean=mean, std=std, max=peak)


def normalize_channels(x: torch.Tensor) -> torch.Tensor:
    """Divide each channel by its largest |value| (an all-zero channel stays zero)."""
    peak = x.abs().amax(dim=(1, 2), keepdim=True)
    return x / peak.clamp(min=1e-8)


def to_uint8(x: torch.Tensor, gain_db: float = 0.0) -> np.ndarray:
    """[C, H, W] -> uint8 [H, W, 3] as clamp(x * 127.5 * gain + 128); one channel becomes grey,
    two channels get a zero blue channel."""
    x = x.to(torch.float32) * db_to_gain(gain_db)
    x = (x * UINT8_SCALE + UINT8_OFFSET).clamp(0, 255).to(torch.uint8)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    elif x.shape[0] == 2:
        x = torch.cat([x, torch.zeros_like(x[:1])])
    return x[:3].permute(1, 2, 0).cpu().numpy()


def spectrum_to_uint8(power: torch.Tensor, range_db: float) -> np.ndarray:
    """A power spectrum in dB relative to its mean, +-range_db mapped to black..white, as uint8 [H, W, 3]."""
    db = 10 * torch.log10(power / power.mean().clamp(min=1e-30) + 1e-30)
    grey = ((db / max(range_db, 1e-6) + 1) / 2).clamp(0, 1)
    grey = (grey * 255 + 0.5).to(torch.uint8)
    return grey[:, :, None].expand(-1, -1, 3).cpu().numpy()


def resize_to_height(image: np.ndarray, height: int) -> np.ndarray:
    """Nearest-neighbour resize of a uint8 [H, W, 3] frame to `height` rows, keeping the aspect."""
    if image.shape[0] == height:
        return image
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=(height, width), mode="nearest")
    return t[0].permute(1, 2, 0).to(torch.uint8).numpy()


def layer_frame(
    x: torch.Tensor,
    sel_channels: int = 3,
    base_channel: int = 0,
    normalize: bool = False,
    gain_db: float = 0.0,
    fft_show: bool = False,
    fft_all: bool = True,
    fft_range_db: float = 50.0,
    fft_beta: float = 8.0,
) -> tuple[np.ndarray, ChannelStats, ChannelStats]:
    """The frame the GUI shows for a [C, H, W] layer, and statistics over all channels and the selection."""
    x = x.to(torch.float32)
    sel = select_channels(x, sel_channels, base_channel)
    stats_all, stats_sel = channel_stats(x), channel_stats(sel)
    shown = normalize_channels(sel) if normalize else sel
    image = to_uint8(shown, gain_db)
    if fft_show:
        spectrum = spectrum_to_uint8(power_spectrum(x if fft_all else sel, fft_beta), fft_range_db)
        image = np.concatenate([image, resize_to_height(spectrum, image.shape[0])], axis=1)
    return image, stats_all, stats_sel
