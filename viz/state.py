"""Everything the user sets, section by section, as frozen values with their defaults: what a session
saves, what undo and redo step between, and what each section's Reset returns to. A widget's
`state()` gives its part and `restore()` takes it back; the frame's RenderArgs are built from the
widgets (main_window.build_args), so restoring the settings restores the frame."""

from __future__ import annotations

from dataclasses import dataclass, replace

from renderer.animation import TransformMotion
from renderer.directions import DEFAULT_SAMPLES, GANSPACE, DirectionSource
from renderer.protocol import Keyframe

CLIP_SOURCES = ("Current animation", "Keyframes")


@dataclass(frozen=True)
class ModelState:
    path: str = ""                  # a model file or a training run directory
    follow: bool = False            # load each new snapshot of the run


@dataclass(frozen=True)
class LatentState:
    x: float = 0.0                  # fractional latent position (seed x + 100 * y)
    y: float = 0.0
    anim: bool = False
    speed: float = 0.25             # seeds per second along x (signed)
    class_from_seed: bool = True
    class_idx: int = 0
    w_file: str | None = None       # an explicit W (.npy) instead of the seeds


@dataclass(frozen=True)
class StyleMixState:
    seed: int = 0
    rows: tuple[int, ...] = ()      # ws rows taken from the mix seed's W
    anim: bool = False
    speed: float = 1.0              # mix seeds per second (signed)
    phase: float = 0.0              # fraction of a step travelled while animating


@dataclass(frozen=True)
class TruncNoiseState:
    psi: float = 1.0
    cutoff: int | None = None       # None: every row
    noise_mode: str = "const"
    noise_seed: int = 0


@dataclass(frozen=True)
class EquivarianceState:
    translate: tuple[float, float] = (0.0, 0.0)   # image widths (the circle's start while it animates)
    rotate: float = 0.0                           # turns
    translate_anim: bool = False
    translate_speed: float = 0.05                 # turns of the circle per second (signed)
    translate_radius: float = 0.1                 # image widths
    translate_phase: float = 0.0                  # turns of the circle travelled
    rotate_anim: bool = False
    rotate_speed: float = 0.02                    # turns per second (signed)
    round: bool = False
    untransform: bool = False
    readout_auto: bool = False
    error_image: bool = False


@dataclass(frozen=True)
class LayerState:
    name: str | None = None         # None: the network output
    rgb: bool = True
    base_channel: int = 0
    normalize: bool = False
    gain_db: float = 0.0
    fft_show: bool = False
    fft_all: bool = True
    fft_range_db: float = 50.0
    fft_beta: float = 8.0


@dataclass(frozen=True)
class AnalysisSettings:
    avg_num: int = 64
    overlay_path: str = ""
    show_overlay_image: bool = False


@dataclass(frozen=True)
class CaptureState:
    directory: str = "captures"


@dataclass(frozen=True)
class ClipState:
    source: str = CLIP_SOURCES[0]
    keyframes: tuple[Keyframe, ...] = ()
    duration: float = 2.0
    fps: float = 10.0
    height: int = 0                 # 0: native
    format: str = "mp4"


@dataclass(frozen=True)
class PerformanceState:
    device: str = "auto"
    op_path: str = "auto"
    precision: str = "float32"
    force_fp32: bool = False
    fps_limit: int = 60
    vsync: bool = True


@dataclass(frozen=True)
class DirectionsState:
    method: str = GANSPACE          # what Compute directions computes next
    num_samples: int = DEFAULT_SAMPLES
    sefa_rows: str = "all"
    file_path: str = ""
    source: DirectionSource | None = None   # the set the sliders move along (None: none computed)
    strengths: tuple[float, ...] = ()       # W units along each of its directions
    rows: str = "all"               # the ws rows they move (renderer.directions.ROW_RANGES)
    custom_rows: str = ""
    sweep: bool = False
    sweep_index: int = 0
    sweep_amplitude: float = 0.0
    sweep_period: float = 4.0
    sweep_phase: float = 0.0


@dataclass(frozen=True)
class ProjectionState:
    image_path: str = ""            # the image to project, on the GUI's machine
    space: str = "w"                # "w" or "w+"
    steps: int = 300
    distance: str = "auto"          # renderer.protocol.PROJECTION_DISTANCES
    vgg_path: str = ""              # torchvision's VGG16 weights for LPIPS (the worker's machine)
    lpips_path: str = ""            # LPIPS's linear weights (optional; the worker's machine)


@dataclass(frozen=True)
class SeedGridState:
    columns: int = 4
    rows: int = 3
    mode: str = "seeds"             # "seeds" (the latent plane) or "direction" (one direction's steps)
    direction_index: int = 0
    step: float = 1.0               # W units between cells (direction mode)


@dataclass(frozen=True)
class RunState:
    run_dir: str = ""               # a training run directory ("": the loaded model's)
    model_b: str = ""               # the model compared with the loaded one


@dataclass(frozen=True)
class InspectState:
    magnification: int = 8          # the loupe's zoom


@dataclass(frozen=True)
class Settings:
    """Every setting of the visualizer (what undo covers)."""
    model: ModelState = ModelState()
    latent: LatentState = LatentState()
    stylemix: StyleMixState = StyleMixState()
    trunc_noise: TruncNoiseState = TruncNoiseState()
    equivariance: EquivarianceState = EquivarianceState()
    layer: LayerState = LayerState()
    analysis: AnalysisSettings = AnalysisSettings()
    capture: CaptureState = CaptureState()
    clip: ClipState = ClipState()
    performance: PerformanceState = PerformanceState()
    directions: DirectionsState = DirectionsState()
    projection: ProjectionState = ProjectionState()     # these four do not change the frame
    seed_grid: SeedGridState = SeedGridState()
    run: RunState = RunState()
    inspect: InspectState = InspectState()

    def settled(self) -> "Settings":
        """The settings with what a running animation moves left out: two states that differ only
        there are the same step for undo."""
        s = self
        if s.latent.anim:
            s = replace(s, latent=replace(s.latent, x=0.0, y=0.0))
        if s.stylemix.anim:
            s = replace(s, stylemix=replace(s.stylemix, seed=0, phase=0.0))
        eq = s.equivariance
        if eq.translate_anim:
            eq = replace(eq, translate_phase=0.0)
        if eq.rotate_anim:
            eq = replace(eq, rotate=0.0)
        if s.directions.sweep:
            s = replace(s, directions=replace(s.directions, sweep_phase=0.0))
        return replace(s, equivariance=eq)

    def frame(self, base: "Settings") -> "Settings":
        """What makes a frame (model, latent, mixing, truncation, transform, layer and display, where
        it renders) from these settings, the rest from `base`; animations stopped where they stand."""
        eq = self.equivariance
        if eq.translate_anim:
            circle = TransformMotion(translate=eq.translate, translate_anim=True, translate_radius=eq.translate_radius,
                                     translate_phase=eq.translate_phase)
            eq = replace(eq, translate=circle.paused().translate, translate_phase=0.0)
        paused = replace(eq, translate_anim=False, rotate_anim=False)
        return replace(base, model=self.model, latent=replace(self.latent, anim=False),
                       stylemix=replace(self.stylemix, anim=False, phase=0.0), trunc_noise=self.trunc_noise,
                       equivariance=paused, layer=self.layer,
                       directions=replace(self.directions, sweep=False, sweep_phase=0.0),
                       performance=replace(base.performance, device=self.performance.device,
                                           op_path=self.performance.op_path, precision=self.performance.precision,
                                           force_fp32=self.performance.force_fp32))


@dataclass(frozen=True)
class ViewState:
    """How the window is arranged (saved with the session; not an undo step)."""
    open_sections: tuple[str, ...] = ("Model", "Latent", "Truncation & noise", "Layers", "Capture")
    analysis_panel: bool = False
    ui_scale: float = 1.0           # the user's factor on the automatic scale
    imgui_ini: str = ""             # Dear ImGui's window and docking layout


@dataclass(frozen=True)
class Session:
    settings: Settings = Settings()
    view: ViewState = ViewState()
