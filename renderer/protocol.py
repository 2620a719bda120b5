"""The contract between the GUI (viz/) and the render worker: every request and every result.

- Frames: RenderArgs -> RenderResult (the latest request wins).
- Background jobs: a job request (layer analysis, filter responses, average spectrum, equivariance
  readout, clip frames) -> progress, outputs (clip frames) and one result, computed in slices between
  frames by the same worker and its one model cache.
- Envelopes: the messages the client and the worker exchange (FrameRequest, JobRequest, ...).

No torch, no imgui: both sides import this module. Requests are frozen and hashable, so
`args != last_args` is the change detection; results are plain numpy data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from renderer.animation import Animation
from renderer.conventions import IDENTITY, Matrix3, WeightedSeeds
from renderer.directions import DirectionMove, DirectionSource

NOISE_MODES = ("const", "random", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")
OP_PATHS = ("auto", "reference", "cpu", "gpu", "triton")
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class RenderArgs:
    # Model and where it runs.
    model: str = ""                       # official pickle, native .safetensors, or a training run directory
    device: str = "auto"                  # auto = CUDA, else MPS, else CPU; or "cuda:1" etc.
    op_path: str = "auto"                 # custom-op implementation; auto = fastest available
    precision: str = "float32"            # "bfloat16" is a labelled low-precision preview
    force_fp32: bool = False              # True: the official fp16 layers in float32 (fp16 only ever runs on CUDA)

    # Latent: weighted seeds (renderer.conventions.weighted_seeds), or an explicit W from a .npy file.
    latent: WeightedSeeds = ((0, 1.0),)
    w_file: str | None = None             # .npy of shape [num_ws, w_dim], [1, num_ws, w_dim] or [w_dim]
    w_npy: bytes | None = None            # the same file's bytes, sent in place of its path to a remote worker
    class_idx: int | None = None          # conditional models: None = drawn from the seed as the official tools do
    mix_seed: int = 0                     # style mixing: these ws rows come from mix_seed's W
    mix_rows: tuple[int, ...] = ()
    directions: tuple[DirectionMove, ...] = ()   # moves along latent directions, after the style mix
    direction_rows: str = "all"           # ws rows they move: renderer.directions.ROW_RANGES
    direction_custom_rows: tuple[int, ...] = ()  # the rows of "custom"
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
    radial: bool = False                  # the band limit is a disc (StyleGAN3-R's radial filters, the
                                          # Fourier-feature input), not a square (separable filters)


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
    source: str = ""                      # project whose code wrote the file, e.g. "NVlabs/stylegan2-ada-pytorch"
    kind: str = ""                        # "training snapshot", "bare generator", "native checkpoint", ...
    pickle_protocol: int | None = None    # official pickles: the pickle protocol the file was written with
    fp16_layers: int = 0                  # synthesis layers (StyleGAN2: blocks) built to run in float16 on CUDA


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
    op_path: str = ""                     # the op path that ran: "reference", "cpu", "gpu", "triton"
    op_path_note: str | None = None       # why faster paths were not used (e.g. "triton: no C compiler")
    fp16_layers: int = 0                  # layers that ran in float16 (the official fp16 layers, on CUDA)
    precision: str = "float32"
    error: str | None = None              # what went wrong, in words for the user
    message: str | None = None            # something the user should know (renderer restarted, ...)




# ---------------------------------------------------------------------------------------------
# Background jobs: requests.

READOUT_SAMPLES = 4           # random transforms of the latent in the live equivariance readout


@dataclass(frozen=True)
class LayerAnalysisRequest:
    """Every StyleGAN3 layer's radial spectrum and energy above f_c / f_t, and its filter responses,
    for the latent and input transform in `args`."""
    args: RenderArgs
    pad: int = 2                          # zero padding of the per-layer spectra


@dataclass(frozen=True)
class FilterRequest:
    """Up/down filter responses of one synthesis layer (None: every layer)."""
    args: RenderArgs
    layer: str | None = None


@dataclass(frozen=True)
class AverageSpectrumRequest:
    """The model's average spectrum over seeds first_seed .. first_seed + num_images - 1, as the
    official spectrum tool computes it."""
    args: RenderArgs                      # model, device, op path, truncation psi
    num_images: int
    first_seed: int = 0
    beta: float = 8.0
    pad: int = 4
    mean: float | None = None             # whitening; None: from the model's first images
    std: float | None = None


@dataclass(frozen=True)
class EquivarianceRequest:
    """EQ-T, EQ-T frac and EQ-R of the latent in `args` over a few random transforms, and the error
    image of the user's transform."""
    args: RenderArgs                      # model, device, latent, input transform (the user's M)
    num_samples: int = READOUT_SAMPLES
    error_map: bool = True


CLIP_FORMATS = ("mp4", "gif", "png")


@dataclass(frozen=True)
class Keyframe:
    """A recorded frame of a keyframe clip: its settings, and the values interpolated between keyframes."""
    args: RenderArgs
    position: tuple[float, float]         # latent x, y
    translate: tuple[float, float]        # image widths
    rotate: float                         # turns


@dataclass(frozen=True)
class ClipSpec:
    """An offline, frame-exact clip of `num_frames` frames, described rather than listed: either the
    GUI's animation from `base` (its latent, style-mix and transform motions) or a path through
    keyframes. renderer.clips.frame_args(spec, i) gives frame i; the client encodes the frames to MP4
    (H.264), GIF, or a folder of PNGs at out_path."""

    out_path: str
    base: RenderArgs
    num_frames: int
    motion: Animation | None = None       # None: through the keyframes
    keyframes: tuple[Keyframe, ...] = ()
    fps: float = 30.0
    format: str = "mp4"                   # one of CLIP_FORMATS; "png" writes OUT_PATH/frame_00000.png ...
    size: int | None = None               # output height in pixels (width follows the aspect); None = native


@dataclass(frozen=True)
class DirectionsRequest:
    """A set of latent directions of the model in `args` (GANSpace or SeFa computed, or a file checked);
    the result is a renderer.directions.Directions with the first `count` of them."""
    args: RenderArgs
    source: DirectionSource
    count: int = 16


PROJECTION_SPACES = ("w", "w+")
PROJECTION_DISTANCES = ("auto", "pixels", "discriminator", "lpips")   # renderer.worker.analysis.distances
MAX_TARGET_SIDE = 2048        # pixels of a projection target's side (models are at most 1024 px)


@dataclass(frozen=True, eq=False)
class ProjectionTarget:
    """The image to project, aligned where it was opened (renderer.image_align.projection_target): its
    centred square resized to the model's resolution. Pixels travel, never a path, so a remote worker
    projects the GUI's own file."""
    pixels: np.ndarray                    # uint8 [resolution, resolution, channels]
    crop_box: tuple[int, int, int, int]   # left, top, right, bottom in the source image's pixels
    source_size: tuple[int, int]          # width, height of the source image
    name: str = ""                        # the file's name, for messages


@dataclass(frozen=True)
class ProjectionRequest:
    """Find the W (one w for every row) or W+ (one per row) from which the model in `args` reproduces
    `target` (which must be aligned to that model's resolution and channels). Progress outputs are
    ProjectionPreview every `preview_every` steps; the result is a ProjectionResult."""
    args: RenderArgs
    target: ProjectionTarget
    space: str = "w"
    steps: int = 300
    preview_every: int = 10
    w_noise: float = 0.05                 # exploration noise on w early in the run, times sigma_w
    seed: int = 0
    distance: str = "auto"                # "pixels", "discriminator" (D's features + pixels: the model's
                                          # snapshot or training run must hold D), "lpips" (VGG16 + pixels:
                                          # needs vgg_path), or "auto": lpips if vgg_path, else D, else pixels
    vgg_path: str = ""                    # torchvision's VGG16 weights (the worker's path), for "lpips"
    lpips_path: str = ""                  # LPIPS's linear weights for VGG (optional; the worker's path)


@dataclass(frozen=True)
class SeedGridRequest:
    """columns x rows cells rendered with the settings of `args`, one cell per slice, handed out as
    GridCell outputs. Without `direction`: the latent plane around (x, y), cell (c, r) at
    (x + c - columns // 2, y + r - rows // 2) (renderer.conventions' seed of a position). With
    `direction`: its strength stepped by `step` per cell around `direction.strength`, in reading order."""
    args: RenderArgs
    columns: int = 4
    rows: int = 3
    x: int = 0
    y: int = 0
    direction: DirectionMove | None = None
    step: float = 1.0
    cell_size: int = 128                  # pixels of a cell's longer side (never more than the frame)


@dataclass(frozen=True)
class RunTimelineRequest:
    """Each snapshot of the training run directory `run_dir`, oldest first, with the kimg and quality
    numbers the run logged, rendered with the latent and settings of `args` (RunSnapshot outputs)."""
    args: RenderArgs
    run_dir: str


@dataclass(frozen=True)
class CompareRequest:
    """The frame of `args` from args.model and from model_b, and their difference (a Comparison)."""
    args: RenderArgs
    model_b: str


@dataclass(frozen=True)
class PixelProbeRequest:
    """The values under frame pixel (x, y) of the frame of `args`: the layer's channel values there, or,
    on the spectrum half, the frequency and the power in dB (a PixelValues)."""
    args: RenderArgs
    x: int
    y: int


# ---------------------------------------------------------------------------------------------
# Background jobs: results.


@dataclass(frozen=True)
class LayerSpectrumData:
    """One layer's radial spectrum profile and design, in cycles per unit (output image = 1 unit wide)."""
    name: str
    sampling_rate: float
    cutoff: float                         # f_c
    stopband: float                       # f_t
    nyquist: float                        # s / 2
    half_width: float | None
    radial: bool
    critically_sampled: bool
    radii: np.ndarray                     # ring centres
    profile_db: np.ndarray                # mean power per ring, dB relative to the spectrum's mean
    energy_above_cutoff: float            # fractions of the total energy
    energy_above_stopband: float


@dataclass(frozen=True)
class FilterCurve:
    kind: str                             # "up" or "down"
    sampling_rate: float                  # the rate the filter runs at
    cutoff: float
    stopband_edge: float                  # f_c + f_h
    radial: bool
    freqs: np.ndarray                     # along one axis (separable filters) or ring radii (radial ones)
    magnitude_db: np.ndarray              # 0 dB at DC


@dataclass(frozen=True)
class LayerFilterData:
    layer: str
    up: FilterCurve | None                # None where the layer does not resample
    down: FilterCurve | None


@dataclass(frozen=True)
class LayerAnalysis:
    model: str
    spectra: tuple[LayerSpectrumData, ...]
    filters: tuple[LayerFilterData, ...]

    def spectrum(self, name: str) -> LayerSpectrumData | None:
        return next((s for s in self.spectra if s.name == name), None)

    def filters_of(self, name: str) -> LayerFilterData | None:
        return next((f for f in self.filters if f.layer == name), None)


@dataclass(frozen=True)
class EquivarianceData:
    eqt: float                            # PSNR in dB
    eqt_frac: float
    eqr: float
    num_samples: int
    error_image: np.ndarray | None        # uint8 [H, W, 3]: |expected - rendered| for the user's transform
    error_max: float                      # the |difference| at full brightness, in image units ([-1, 1] images)
    error_psnr: float
    error_method: str
    transform_is_identity: bool           # then the error image is trivially zero


@dataclass(frozen=True)
class ClipFrame:
    """One rendered frame of a clip job, in order (an output of the job, not its result)."""
    index: int
    image: np.ndarray                     # uint8 H x W x 3, native size
    op_path: str = ""                     # what rendered it (RenderResult.op_path, .precision)
    precision: str = ""


@dataclass(frozen=True, eq=False)
class ProjectionPreview:
    """The projection's current W and its image (an output of the job, every few steps)."""
    step: int
    total: int
    distance: float                       # the image distance being minimised (lower is closer)
    image: np.ndarray                     # uint8 H x W x 3: the model's image of the current W
    w: np.ndarray                         # float32 [num_ws, w_dim]
    target: np.ndarray | None = None      # the first preview: the aligned image being fitted (uint8 H x W x 3)
    crop_box: tuple[int, int, int, int] | None = None  # the first preview: where it was cut from the source


@dataclass(frozen=True, eq=False)
class ProjectionResult:
    w: np.ndarray                         # float32 [num_ws, w_dim]: what `render --w` and the GUI's W file take
    image: np.ndarray                     # uint8 H x W x 3: the model's image of w (noise 'const')
    target: np.ndarray                    # uint8 H x W x 3: the aligned image it was fitted to
    crop_box: tuple[int, int, int, int]   # left, top, right, bottom in the source image's pixels
    source_size: tuple[int, int]          # width, height of the source image
    distances: np.ndarray                 # float64 [steps]: the distance after each step
    psnr: float                           # dB, of `image` against `target`
    space: str                            # "w" or "w+"
    distance: str = "pixels"              # the distance minimised: "pixels", "discriminator" or "lpips"
    distance_note: str = ""               # why "auto" chose it when it fell back, or what it lacks


@dataclass(frozen=True, eq=False)
class GridCell:
    """One rendered cell of a seed grid (an output of the job)."""
    index: int                            # reading order: row * columns + column
    column: int
    row: int
    position: tuple[int, int] | None      # latent plane position (seed mode)
    seed: int | None                      # its seed
    strength: float | None                # direction mode: the strength of the stepped direction
    image: np.ndarray                     # uint8 thumbnail


@dataclass(frozen=True, eq=False)
class RunSnapshot:
    """One snapshot of a training run, rendered (an output of the run-timeline job)."""
    index: int
    file: str
    kimg: float | None
    metrics: tuple[tuple[str, float], ...]  # the quality numbers the run logged for this snapshot
    image: np.ndarray | None              # uint8 H x W x 3; None when it could not be rendered
    error: str | None = None


@dataclass(frozen=True, eq=False)
class RunTimeline:
    run_dir: str
    snapshots: tuple[RunSnapshot, ...]


@dataclass(frozen=True, eq=False)
class Comparison:
    image_a: np.ndarray                   # uint8 H x W x 3
    image_b: np.ndarray
    difference: np.ndarray                # uint8 H x W x 3: |a - b|, brightest = max_difference
    max_difference: float                 # in uint8 levels
    mean_difference: float
    model_a: str
    model_b: str


@dataclass(frozen=True, eq=False)
class PixelValues:
    """What lies under one frame pixel. part "image": the layer pixel (column, row) and its channel
    values (all channels, before display gain and normalisation). part "spectrum": the frequency
    (f_x, f_y) in cycles per unit and the power there in dB relative to the spectrum's mean, as shown."""
    part: str
    column: int
    row: int
    layer: str
    values: np.ndarray | None = None      # float32 [C]
    frequency: tuple[float, float] | None = None
    power_db: float | None = None


# The average spectrum's result is renderer.spectra.AverageSpectrum (numpy data the client can
# save and show without torch); a directions job's is renderer.directions.Directions.
JobSpec = Union[LayerAnalysisRequest, FilterRequest, AverageSpectrumRequest, EquivarianceRequest, ClipSpec,
                DirectionsRequest, ProjectionRequest, SeedGridRequest, RunTimelineRequest, CompareRequest,
                PixelProbeRequest]


# ---------------------------------------------------------------------------------------------
# Envelopes: client -> worker.


@dataclass(frozen=True)
class FrameRequest:
    stamp: int                            # increases with every request; older results are never shown
    args: RenderArgs


@dataclass(frozen=True)
class JobRequest:
    job_id: int
    spec: JobSpec


@dataclass(frozen=True)
class CancelJob:
    job_id: int


@dataclass(frozen=True)
class StatusRequest:
    """Asks for a WorkerStatus."""


@dataclass(frozen=True)
class StopWorker:
    """Asks the worker to finish: running jobs are cancelled."""


# Envelopes: worker -> client.


@dataclass(frozen=True)
class JobProgress:
    job_id: int
    done: int
    total: int
    output: ClipFrame | ProjectionPreview | GridCell | RunSnapshot | None = None  # a partial output, in order


@dataclass(frozen=True)
class JobDone:
    job_id: int
    value: object = None                  # the job's result (one of the result types above)
    error: str | None = None              # what went wrong, in words for the user
    cancelled: bool = False


@dataclass(frozen=True)
class WorkerStatus:
    pid: int
    model_loads: int                      # networks read from disk since the worker started
    models: tuple[str, ...]               # the files of the networks in the cache
    jobs: int                             # jobs running or waiting
