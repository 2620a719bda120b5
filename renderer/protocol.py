"""The only contract between the GUI (viz/) and the renderer: what to render, and what came back.

No torch, no imgui: both sides import this module. RenderArgs is frozen and hashable, so
`args != last_args` is the change detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from renderer.conventions import IDENTITY, Matrix3, WeightedSeeds

NOISE_MODES = ("const", "random", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")
OP_PATHS = ("auto", "reference", "cpu")
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class RenderArgs:
    # Model and where it runs.
    model: str = ""                       # official pickle, native .safetensors, or a training run directory
    device: str = "auto"                  # auto = CUDA, else MPS, else CPU; or "cuda:1" etc.
    op_path: str = "auto"                 # custom-op implementation; auto = fastest available
    precision: str = "float32"            # "bfloat16" is a labelled low-precision preview
    force_fp32: bool = True               # official fp16 layers off (fp16 only ever runs on CUDA)

    # Latent: weighted seeds (renderer.conventions.weighted_seeds), or an explicit W from a .npy file.
    latent: WeightedSeeds = ((0, 1.0),)
    w_file: str | None = None             # .npy of shape [num_ws, w_dim], [1, num_ws, w_dim] or [w_dim]
    class_idx: int | None = None          # conditional models: None = drawn from the seed as the official tools do
    mix_seed: int = 0                     # style mixing: these ws rows come from mix_seed's W
    mix_rows: tuple[int, ...] = ()
    trunc_psi: float = 1.0
    trunc_cutoff: int | None = None       # rows truncated; None = all
    noise_mode: str = "const"             # StyleGAN2 only: const / random / none
    noise_seed: int = 0

    # Input transform (StyleGAN3 only): the user's matrix M; the network receives inv(M).
    input_transform: Matrix3 = IDENTITY
    untransform: bool = False             # resample the output by the inverse transform (band-limited)

    # What to show.
    layer: str | None = None              # None = the network output
    sel_channels: int = 3                 # 3 = RGB from channels base..base+2, 1 = one channel as grey
    base_channel: int = 0
    img_normalize: bool = False           # divide each channel by its max |value|
    img_gain_db: float = 0.0              # uint8 = clamp(x * 127.5 * 10^(dB/20) + 128)
    fft_show: bool = False                # power spectrum placed beside the image
    fft_all: bool = True                  # spectrum over all channels (else the selection)
    fft_range_db: float = 50.0
    fft_beta: float = 8.0                 # Kaiser window beta

    def replace(self, **changes) -> "RenderArgs":
        """A copy with some fields changed."""
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class LayerInfo:
    name: str                             # "input", "L3_52_1024", "b8.conv1", "output", ...
    shape: tuple[int, ...]                # N C H W
    dtype: str                            # "float32", "float16", ...
    sampling_rate: float | None = None    # StyleGAN3 layers: s, f_c, f_h of the layer's design
    cutoff: float | None = None
    half_width: float | None = None


@dataclass(frozen=True)
class ChannelStats:
    mean: float = float("nan")
    std: float = float("nan")
    max: float = float("nan")


@dataclass(frozen=True)
class ModelInfo:
    path: str = ""
    family: str = ""                      # "stylegan3-t", "stylegan3-r", "stylegan2"
    img_resolution: int = 0
    img_channels: int = 0
    z_dim: int = 0
    w_dim: int = 0
    c_dim: int = 0
    num_ws: int = 0
    num_params: int = 0
    has_noise: bool = False               # StyleGAN2: noise inputs
    has_input_transform: bool = False     # StyleGAN3: synthesis.input.transform
    untrained: bool = False               # randomly initialised, no training
    trained_kimg: float | None = None     # thousands of images the snapshot was trained on, where recorded
    snapshot: str = ""                    # file actually loaded (newest snapshot of a run directory)


@dataclass
class RenderResult:
    stamp: int = 0                        # the request this answers; older stamps are never shown
    args: RenderArgs | None = None
    image: np.ndarray | None = None       # uint8 H x W x 3 (W doubled when the spectrum is shown)
    w: np.ndarray | None = None           # float32 [num_ws, w_dim]: the W that was rendered (for Save W)
    layers: tuple[LayerInfo, ...] = ()
    stats_all: ChannelStats = field(default_factory=ChannelStats)
    stats_sel: ChannelStats = field(default_factory=ChannelStats)
    model: ModelInfo = field(default_factory=ModelInfo)
    render_time: float = 0.0              # seconds, in the renderer
    device: str = ""                      # e.g. "cpu", "cuda:0 (NVIDIA H100)"
    op_path: str = ""                     # the op path that ran: "reference", "cpu", ...
    precision: str = "float32"
    error: str | None = None              # what went wrong, in words for the user
    message: str | None = None            # something the user should know (renderer restarted, ...)


CLIP_FORMATS = ("mp4", "gif", "png")


@dataclass(frozen=True)
class ClipSpec:
    """An offline, frame-exact clip: one RenderArgs per frame (the GUI computes them from its
    animation or keyframes), encoded to MP4 (H.264), GIF, or a folder of PNGs."""

    out_path: str
    frames: tuple[RenderArgs, ...]
    fps: float = 30.0
    format: str = "mp4"                   # one of CLIP_FORMATS; "png" writes OUT_PATH/frame_00000.png ...
    size: int | None = None               # output height in pixels (width follows the aspect); None = native
