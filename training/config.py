"""The settings of a training run (what the trainer, the quality back-fill and the release read)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Settings that may differ between the runs of one training (the rest is fixed at the start).
RUNTIME_FIELDS = ("data", "total_kimg", "snapshot_kimg", "threads", "device", "progress_seconds")
# Settings a resumed run may change: the adaptive augmentation can be switched on (or retuned) when
# the discriminator starts to overfit.
RESUMABLE_FIELDS = RUNTIME_FIELDS + ("ada_target", "ada_kimg")


@dataclass
class TrainConfig:
    """Everything that defines a training run. Generator fields use the official names."""

    data: str = ""
    # Generator: StyleGAN3-T (conv_kernel 3, separable filters), reduced for a CPU.
    z_dim: int = 256  # official 512
    w_dim: int = 256  # official 512
    mapping_layers: int = 2
    g_channel_base: int = 4096  # official 32768: channels = min(channel_base / 2 / f_c, channel_max)
    g_channel_max: int = 128  # official 512
    g_num_layers: int = 8  # official 14 (plus the input and ToRGB)
    g_margin_size: int = 4  # official 10: the feature maps' border beyond the image
    # Discriminator: StyleGAN2 residual.
    d_channel_base: int = 4096
    d_channel_max: int = 128
    mbstd_group: int = 4
    # Optimisation.
    batch: int = 16
    g_lr: float = 0.0025
    d_lr: float = 0.002
    adam_betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 0.1  # about 0.0002 res^2 / batch, the official automatic choice at 64 px
    r1_interval: int = 16
    ema_kimg: float = 5.0  # half-life of G_ema in thousands of images (official: batch * 10 / 32)
    ema_rampup: float | None = 0.05  # early on, half-life at most this fraction of the images seen
    # Augmentation.
    xflip: bool = True
    translate_p: float = 0.5
    translate_max: int = 4  # pixels
    # Adaptive discriminator augmentation (training/augment.py): 0 = off; the paper's target is 0.6.
    ada_target: float = 0.0
    ada_kimg: float = 10.0  # p can move from 0 to 1 in this many thousand images (paper: 500, for long runs)
    ada_interval: int = 4  # steps between adjustments of p
    # Schedule, snapshots, measurement.
    total_kimg: float = 30.0
    snapshot_kimg: float = 1.0
    grid_seeds: int = 64  # seeds 0 .. grid_seeds-1, the official z convention
    quality_samples: int = 128  # seeds 0 .. quality_samples-1 for the quality numbers (at least 2)
    seed: int = 0
    # Runtime.
    threads: int = 0  # 0: leave torch's default
    device: str = "cpu"
    progress_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.quality_samples < 2:
            raise ValueError(f"quality_samples must be at least 2 (edge_fd fits a covariance), got {self.quality_samples}")

    def generator_kwargs(self, img_resolution: int, img_channels: int) -> dict[str, Any]:
        return dict(z_dim=self.z_dim, c_dim=0, w_dim=self.w_dim, img_resolution=img_resolution,
                    img_channels=img_channels, mapping_kwargs=dict(num_layers=self.mapping_layers),
                    channel_base=self.g_channel_base, channel_max=self.g_channel_max,
                    num_layers=self.g_num_layers, margin_size=self.g_margin_size, conv_kernel=3)

    def discriminator_kwargs(self, img_resolution: int, img_channels: int) -> dict[str, Any]:
        return dict(img_resolution=img_resolution, img_channels=img_channels, channel_base=self.d_channel_base,
                    channel_max=self.d_channel_max, mbstd_group_size=self.mbstd_group)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        data = dict(data)
        if "adam_betas" in data:
            data["adam_betas"] = tuple(data["adam_betas"])
        return cls(**data)


PRESETS: dict[str, dict[str, Any]] = {
    # The proposed demo model at 64x64: G 1.36 M parameters (layers 24-72 px, 128-64 channels), D 1.47 M.
    # Measured on this 2-core machine (shared, so the quietest steps count), 1 thread, batch 16:
    # 9.4 s a step on the reference ops, 8.9 s on the fast CPU ops (1.7-1.8 images/s; steps under
    # load took up to twice as long): about 60 kimg in 10 hours. g_num_layers=6 makes G's forward
    # and backward about 0.6x as long, at some cost in capacity.
    "demo": {},
    # A network small enough for a test to run a few steps in seconds.
    "tiny": dict(z_dim=16, w_dim=16, g_channel_base=256, g_channel_max=16, g_num_layers=4, g_margin_size=2,
                 d_channel_base=128, d_channel_max=16, batch=4, ema_kimg=0.01, r1_interval=2,
                 grid_seeds=4, quality_samples=8),
}
