"""Projection: open (or drop) an image (read and aligned here, also against a remote worker); the worker fits W or W+ so that the model reproduces its centred
square, with a preview of the current W every few steps, the distance curve, a progress bar and
Cancel. The result is kept as a W file in the capture folder (written atomically) and shown."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from imgui_bundle import imgui, implot

from gui_utils import imgui_utils
from gui_utils.gl_utils import Texture
from gui_utils.imgui_utils import button, grayed_out
from renderer.files import write_atomic
from renderer.image_align import ImageLoadError, projection_target
from renderer.protocol import (PROJECTION_DISTANCES, PROJECTION_SPACES, ProjectionPreview, ProjectionRequest,
                               ProjectionResult, RenderArgs)
from viz.capture_widget import next_free
from viz.state import ProjectionState

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
PREVIEW_SIZE = 160            # px at scale 1: the target and the current W's image, side by side
PLOT_HEIGHT = 120
PREVIEW_EVERY = 5             # steps between previews
MAX_STEPS = 100_000
START_LABEL = "Project##projection"
CANCEL_LABEL = "Cancel##projection"


@dataclass
class ProjectionDrawn:
    """What the section shows (for scripted tests and the state dump)."""
    running: bool = False
    step: int = 0
    total: int = 0
    previews: int = 0
    distance: float | None = None         # the distance at the latest preview
    w_file: str | None = None
    psnr: float | None = None
    crop_box: list[int] | None = None
    distance_kind: str | None = None      # the distance minimised: "pixels", "discriminator" or "lpips"
    distance_note: str | None = None      # why (when "auto" fell back to pixels, or LPIPS is uncalibrated)
    error: str | None = None


class ProjectionWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.restore(ProjectionState())
        self.job = None
        self.preview: ProjectionPreview | None = None
        self.target: np.ndarray | None = None
        self.crop_box: tuple[int, int, int, int] | None = None
        self.result: ProjectionResult | None = None
        self.distances: list[tuple[int, float]] = []
        self._target = Texture()
        self._current = Texture()
        self._shown: tuple[object, object] = (None, None)
        self.drawn = ProjectionDrawn()

    def state(self) -> ProjectionState:
        return ProjectionState(image_path=self.image_path, space=self.space, steps=int(self.steps),
                               distance=self.distance, vgg_path=self.vgg_path, lpips_path=self.lpips_path)

    def restore(self, state: ProjectionState) -> None:
        self.image_path = state.image_path
        self.space = state.space if state.space in PROJECTION_SPACES else "w"
        self.steps = int(np.clip(state.steps, 1, MAX_STEPS))
        self.distance = state.distance if state.distance in PROJECTION_DISTANCES else "auto"
        self.vgg_path, self.lpips_path = state.vgg_path, state.lpips_path

    def reset(self) -> None:
        """The image, space and steps back to their defaults (a running projection goes on)."""
        self.restore(ProjectionState())

    @staticmethod
    def takes(path: str) -> bool:
        """Whether a dropped file is an image to project (not a model)."""
        return Path(path).suffix.lower() in IMAGE_SUFFIXES

    def open(self, path: str) -> None:
        self.image_path = str(path)

    @property
    def busy(self) -> bool:
        return self.job is not None

    def start(self, args: RenderArgs) -> None:
        if self.job is not None or not self.image_path.strip():
            return
        self.preview, self.result, self.distances, self.target, self.crop_box = None, None, [], None, None
        info = self.viz.model_info
        try:
            # Read here, on the GUI's machine: a remote worker gets the pixels, never the path.
            target = projection_target(self.image_path.strip(), info.img_resolution, info.img_channels)
        except ImageLoadError as e:
            self.drawn = ProjectionDrawn(error=str(e))
            self.viz.note(f"Projection: {e}")
            return
        self.drawn = ProjectionDrawn(running=True, total=self.steps)
        spec = ProjectionRequest(args.replace(directions=(), w_file=None), target, space=self.space,
                                 steps=int(self.steps), preview_every=PREVIEW_EVERY, distance=self.distance,
                                 vgg_path=self.vgg_path.strip(), lpips_path=self.lpips_path.strip())
        self.job = self.viz.client.submit(spec)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _poll(self) -> None:
        job = self.job
        if job is None:
            return
        for output in job.take_outputs():
            if isinstance(output, ProjectionPreview):
                self.preview = output
                if output.target is not None:
                    self.target, self.crop_box = output.target, output.crop_box
                    self.drawn.crop_box = list(output.crop_box)
                self.distances.append((output.step, output.distance))
                self.drawn.step, self.drawn.distance = output.step, float(output.distance)
                self.drawn.previews += 1
        if not job.done:
            return
        self.job = None
        self.drawn.running = False
        if job.error:
            self.drawn.error = job.error
            self.viz.note(f"Projection: {job.error}")
        elif job.cancelled:
            self.viz.note("Projection cancelled")
        elif isinstance(job.value, ProjectionResult):
            self._keep(job.value)

    def _keep(self, result: ProjectionResult) -> None:
        """Write the W file (atomically) and show it."""
        self.result = result
        self.drawn.psnr, self.drawn.crop_box = float(result.psnr), list(result.crop_box)
        self.drawn.distance_kind, self.drawn.distance_note = result.distance, result.distance_note or None
        directory = Path(self.viz.capture.directory).expanduser()   # the Capture section's folder
        path = next_free(directory, f"projected-{Path(self.image_path).stem or 'image'}", ".npy")
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(result.w, dtype=np.float32), allow_pickle=False)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            write_atomic(path, buffer.getvalue())
        except OSError as e:
            self.drawn.error = f"could not write the W file {path}: {e}"
            self.viz.note(self.drawn.error)
            return
        self.drawn.w_file = str(path)
        self.viz.latent.w_file = str(path)
        self.viz.note(f"projected W saved to {path} ({result.psnr:.1f} dB) and shown")

    # Drawing ------------------------------------------------------------------------------

    def __call__(self, show: bool) -> None:
        self._poll()
        if show:
            self._draw()

    def _draw(self) -> None:
        viz, lay = self.viz, self.viz.layout
        running = self.job is not None
        with grayed_out(running):
            _, self.image_path = imgui.input_text_with_hint("image##projection image", "to project (or drop one)",
                                                            self.image_path)
            imgui_utils.items.record("image##projection image")
            spaces = list(PROJECTION_SPACES)
            for i, space in enumerate(spaces):
                if i:
                    imgui.same_line()
                if imgui.radio_button(f"{space.upper()}##projection", self.space == space):
                    self.space = space
                imgui_utils.items.record(f"{space.upper()}##projection")
            imgui.same_line()
            with imgui_utils.item_width(lay.small_input_width):
                _, steps = imgui.input_int("steps##projection", self.steps, 50, 500)
            self.steps = int(np.clip(steps, 1, MAX_STEPS))
            imgui_utils.help_marker("W: one w for every row; W+: one per row (closer fits, less editable).")
            self._draw_distance()
            ready = bool(viz.model_info.family) and bool(self.image_path.strip()) and not running
            if button(START_LABEL, lay.button_width, enabled=ready):
                viz.defer(self.start)
        if running:
            imgui.same_line()
            if button(CANCEL_LABEL, lay.button_width):
                self.cancel()
            imgui.progress_bar(self.job.progress, imgui.ImVec2(-1, 0), f"step {self.drawn.step} of {self.drawn.total}")
        if self.drawn.error:
            imgui.text_wrapped(self.drawn.error)
        self._draw_images()
        self._draw_curve()

    def _draw_distance(self) -> None:
        lay = self.viz.layout
        with imgui_utils.item_width(lay.small_input_width * 2):
            changed, index = imgui.combo("distance##projection", PROJECTION_DISTANCES.index(self.distance),
                                         list(PROJECTION_DISTANCES))
        imgui_utils.items.record("distance##projection")
        if changed:
            self.distance = PROJECTION_DISTANCES[index]
        imgui_utils.help_marker("What the fit minimises, all offline. pixels: Laplacian-pyramid L1 + SSIM at three "
                                "scales. discriminator: the pixel terms + the model's own D's features (an official "
                                "training snapshot holds D, as does a training run of this tool). lpips: the pixel "
                                "terms + LPIPS with VGG16 from the weights files below. auto: lpips when a VGG16 file "
                                "is given, else D where the model has one, else pixels.")
        if self.distance in ("auto", "lpips"):
            where = " on the server" if self.viz.client.remote is not None else ""
            # Labelled: once a path is typed, the hint that says which file it is has gone.
            _, self.vgg_path = imgui.input_text_with_hint(
                "VGG16##projection vgg", f"torchvision's vgg16-397923af.pth{where}", self.vgg_path)
            imgui_utils.items.record("VGG16##projection vgg")
            _, self.lpips_path = imgui.input_text_with_hint(
                "LPIPS##projection lpips", f"lpips .../v0.1/vgg.pth{where} (optional)", self.lpips_path)
            imgui_utils.items.record("LPIPS##projection lpips")

    def _draw_images(self) -> None:
        target = self.result.target if self.result is not None else self.target
        current = self.result.image if self.result is not None else self.preview.image if self.preview else None
        if current is None:
            return
        if self._shown[0] is not target or self._shown[1] is not current:
            if target is not None:
                self._target.upload(target)
            self._current.upload(current)
            self._shown = (target, current)
        size = self.viz.layout.px(PREVIEW_SIZE)
        if target is not None:
            imgui.image(imgui.ImTextureRef(self._target.id), imgui.ImVec2(size, size))
            imgui.same_line()
        imgui.image(imgui.ImTextureRef(self._current.id), imgui.ImVec2(size, size))
        imgui_utils.items.record("##projection preview")
        if self.result is not None:
            r = self.result
            left, top, right, bottom = r.crop_box
            imgui.text(f"target: crop ({left}, {top})-({right}, {bottom}) of {r.source_size[0]}x{r.source_size[1]};  "
                       f"PSNR {r.psnr:.1f} dB ({r.space.upper()}, {r.distance} distance)")
            if r.distance_note:
                imgui.text_wrapped(f"({r.distance_note})")
        elif self.preview is not None:
            crop = f"target: crop ({self.crop_box[0]}, {self.crop_box[1]})-({self.crop_box[2]}, {self.crop_box[3]});  " \
                if self.crop_box else ""
            imgui.text(f"{crop}step {self.preview.step}: distance {self.preview.distance:.4f}")

    def _draw_curve(self) -> None:
        curve = (np.arange(1, len(self.result.distances) + 1, dtype=np.float64), self.result.distances) \
            if self.result is not None else (np.array([s for s, _ in self.distances], dtype=np.float64),
                                             np.array([d for _, d in self.distances], dtype=np.float64))
        if len(curve[0]) < 2:
            return
        lay = self.viz.layout
        if implot.begin_plot("Distance##projection", imgui.ImVec2(-1, lay.px(PLOT_HEIGHT)), implot.Flags_.no_menus):
            implot.setup_axes("step", "distance", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
            implot.plot_line("distance", *curve)
            implot.end_plot()

    def close(self) -> None:
        self.cancel()
        self._target.delete()
        self._current.delete()
