"""Analysis (StyleGAN3): per-layer spectra of the latent on screen (the selected layer's radial profile
with f_c, f_t and Nyquist marked, energy above the cutoff across all layers, the layer's up/down filter
responses) and the model's average spectrum over N seeds, accumulated in the background, with a saved
.npz overlaid. Every computation is a job of the render worker (renderer.worker.jobs); saved spectra are
read and written here (renderer.spectra)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from imgui_bundle import imgui, implot

from gui_utils import imgui_utils
from gui_utils.gl_utils import Texture
from gui_utils.imgui_utils import button, grayed_out
from renderer.conventions import CUTOFF_RGB, ERROR_RGB, NYQUIST_RGB, STOPBAND_RGB, rgba
from renderer.protocol import AverageSpectrumRequest, LayerAnalysis, LayerAnalysisRequest, LayerSpectrumData, RenderArgs
from renderer.spectra import AverageSpectrum, SpectrumFileError, SpectrumView, spectrum_view
from viz.capture_widget import next_free
from viz.state import AnalysisSettings

CUTOFF_COLOR = rgba(CUTOFF_RGB)             # f_c
STOPBAND_COLOR = rgba(STOPBAND_RGB)         # f_t
NYQUIST_COLOR = rgba(NYQUIST_RGB)           # s / 2
SELECTED_COLOR = (1.0, 1.0, 1.0, 1.0)
ERROR_COLOR = rgba(ERROR_RGB)
OVERLAY_COLOR = (0.8, 0.8, 0.8, 1.0)
FILTER_FLOOR_DB = -100.0
PROFILE_HEADROOM_DB = 5.0
AVERAGE_NUM_RANGE = (1, 100_000)
BAR_WIDTH = 0.4                             # two bars per layer (above f_c, above f_t)

ANALYSE_LABEL = "Per-layer spectra"
START_LABEL = "Start##avg"
CANCEL_LABEL = "Cancel##avg"
LOAD_LABEL = "Load##avg"
FILTER_PLOT_LABEL = "##filter plot"
SLICES_PLOT_LABEL = "##slices plot"
PROFILE_PLOT_LABEL = "##profile plot"
ENERGY_PLOT_LABEL = "##energy plot"
PANEL_LABEL = "Analysis panel"
LAYERS_TAB = "Per-layer spectra##tab"
AVERAGE_TAB = "Average spectrum##tab"
LEGEND_OUTSIDE = implot.LegendFlags_.outside | implot.LegendFlags_.horizontal


@dataclass
class AnalysisState:
    """What the section drew in its last frame (for scripted tests and the state dump)."""
    layers_analysed: int = 0
    bars_plotted: int = 0
    profile_layer: str | None = None
    profile_points: int = 0
    filter_curves: int = 0
    average_images: int = 0
    overlay_images: int = 0
    error: str | None = None
    tick_labels: tuple[str, ...] = ()


def _vec4(color: tuple[float, float, float, float]) -> imgui.ImVec4:
    return imgui.ImVec4(*color)


class AnalysisWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.layer_job = None
        self.layers: LayerAnalysis | None = None
        self.layers_args = None                 # the RenderArgs the per-layer spectra are of
        self.layer_name: str | None = None      # shown in the profile and filter plots
        self._followed: str | None = None       # the Layers section's selection last followed
        self.avg_num = 64
        self.avg_job = None
        self.avg_path: Path | None = None       # where the running average spectrum will be saved
        self.average: SpectrumView | None = None
        self.overlay_path = ""
        self.overlay: SpectrumView | None = None
        self.show_overlay_image = False
        self.drawn = AnalysisState()
        self._select_tab: str | None = None      # the panel's tab to bring forward (a result has just come)
        self._texture: Texture | None = None
        self._texture_of: SpectrumView | None = None

    def state(self) -> AnalysisSettings:
        return AnalysisSettings(avg_num=int(self.avg_num), overlay_path=self.overlay_path,
                                show_overlay_image=self.show_overlay_image)

    def restore(self, state: AnalysisSettings) -> None:
        self.avg_num = int(np.clip(state.avg_num, *AVERAGE_NUM_RANGE))
        self.overlay_path, self.show_overlay_image = state.overlay_path, state.show_overlay_image

    def reset(self) -> None:
        self.restore(AnalysisSettings())

    # Jobs ---------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return any(job is not None for job in (self.layer_job, self.avg_job))

    def _current_args(self):
        return self.viz.sent_args if self.viz.sent_args is not None else self.viz.args

    def analyse_layers(self, args: RenderArgs) -> None:
        """Start the per-layer spectra of the frame's finished args (main_window runs this after build_args)."""
        if self.layer_job is not None or not self.viz.model_info.has_input_transform:
            return
        self.layers_args = args
        self.layer_job = self.viz.client.submit(LayerAnalysisRequest(args=self.layers_args))

    def start_average(self, args: RenderArgs) -> None:
        viz = self.viz
        if self.avg_job is not None:
            return
        directory = Path(viz.capture.directory).expanduser()
        self.avg_path = next_free(directory, f"spectrum_{Path(args.model).stem}", ".npz")
        mean, std = (self.overlay.mean, self.overlay.std) if self.overlay is not None else (None, None)
        self.avg_job = viz.client.submit(AverageSpectrumRequest(args=args, num_images=int(self.avg_num), mean=mean,
                                                                std=std))

    def cancel_average(self) -> None:
        if self.avg_job is not None:
            self.avg_job.cancel()

    def load_overlay(self) -> None:
        """Read a saved spectrum (.npz) to overlay (here: it needs no network)."""
        path = Path(self.overlay_path.strip()).expanduser()
        if not self.overlay_path.strip():
            return
        try:
            self.overlay, self.drawn.error = spectrum_view(AverageSpectrum.load(path), str(path)), None
        except SpectrumFileError as e:
            self.drawn.error = f"Loading the spectrum: {e}"
            self.viz.note(self.drawn.error)

    def _finished(self, job, what: str):
        """The job's value once done (None while running, failed or cancelled; failures become notes)."""
        if job is None or not job.done:
            return None
        if job.error:
            self.drawn.error = f"{what}: {job.error}"
            self.viz.note(self.drawn.error)
        elif job.cancelled:
            self.viz.note(f"{what} cancelled")
        return job.value

    def _poll(self) -> None:
        if self.layer_job is not None and self.layer_job.done:
            value = self._finished(self.layer_job, "Per-layer spectra")
            if value is not None:
                self.layers, self.drawn.error = value, None
                self._select_tab = LAYERS_TAB
                names = [s.name for s in value.spectra]
                picked = self.viz.layer.name
                if picked in names:
                    self.layer_name = picked          # the layer on screen, where it was analysed
                elif self.layer_name not in names:
                    self.layer_name = names[-1]
            self.layer_job = None
        if self.avg_job is not None and self.avg_job.done:
            spectrum = self._finished(self.avg_job, "Average spectrum")
            if spectrum is not None:
                self._keep_average(spectrum)
            self.avg_job = None

    def _keep_average(self, spectrum: AverageSpectrum) -> None:
        path = self.avg_path
        try:
            spectrum.save(path)
        except OSError as e:
            self.viz.note(f"could not save the average spectrum to {path}: {e}")
            path = None
        self.average, self.drawn.error = spectrum_view(spectrum, str(path) if path else None), None
        self._select_tab = AVERAGE_TAB
        if path is not None:
            self.viz.note(f"average spectrum of {spectrum.num_images} images saved to {path}")

    def cancel(self) -> None:
        """Stop every running job (the window is closing)."""
        for job in (self.layer_job, self.avg_job):
            if job is not None:
                job.cancel()

    # Controls (the Analysis section) ------------------------------------------------------

    def __call__(self, show: bool) -> None:
        self._poll()
        self._follow_layer_selection()
        self.drawn.layers_analysed = len(self.layers.spectra) if self.layers is not None else 0
        if not show:
            return
        viz, lay = self.viz, self.viz.layout
        if viz.model_info.family and not viz.model_info.has_input_transform:
            imgui.text_disabled("Per-layer spectra and filters need a StyleGAN3 model (designed f_c, f_t, s).")
        with grayed_out(not viz.model_info.has_input_transform):
            if button(ANALYSE_LABEL, lay.button_width * 1.5, enabled=self.layer_job is None):
                self.viz.defer(self.analyse_layers)
                viz.show_analysis = True
            imgui_utils.help_marker("Power spectrum of every layer for the latent and input transform on screen: "
                                    "channel means removed, Kaiser window (the Layers section's beta), |FFT|^2 summed "
                                    "over channels. Shown in the Analysis panel.")
            if self.layer_job is not None:
                imgui.same_line()
                imgui.progress_bar(self.layer_job.progress, imgui.ImVec2(-1, 0), "analysing ...")
            elif self.layers is not None and self.layers_args is not None and self._stale(self.layers_args):
                imgui.same_line()
                imgui.text_disabled("(of an earlier latent)")
        imgui.separator()
        self._average_controls()
        _, viz.show_analysis = imgui_utils.checkbox(PANEL_LABEL, viz.show_analysis)
        imgui_utils.help_marker("The plots live in their own panel: drag its tab to dock it beside or under the "
                                "image, or out of the window's docks.")
        if self.drawn.error:
            imgui.push_style_color(imgui.Col_.text, _vec4(ERROR_COLOR))
            imgui.text_wrapped(self.drawn.error)
            imgui.pop_style_color()

    def _follow_layer_selection(self) -> None:
        """Show the layer picked in the Layers section when it is one of the analysed layers."""
        picked = self.viz.layer.name
        if picked != self._followed:
            self._followed = picked
            if self.layers is not None and self.layers.spectrum(picked or "") is not None:
                self.layer_name = picked

    def _stale(self, analysed) -> bool:
        a = self._current_args()
        fields = ("model", "latent", "w_file", "class_idx", "mix_seed", "mix_rows", "trunc_psi", "trunc_cutoff",
                  "input_transform")
        return any(getattr(a, f) != getattr(analysed, f) for f in fields)

    def _average_controls(self) -> None:
        lay = self.viz.layout
        imgui.text("Average spectrum of the model")
        imgui_utils.help_marker("As the official spectrum tool: images whitened (mean and std of the first images, or "
                                "the loaded spectrum's), unit-energy Kaiser window (beta 8), zero-padded x4, |FFT|^2 "
                                "averaged. Saved as an .npz in the capture directory.")
        running = self.avg_job is not None
        with grayed_out(running or not self.viz.model_info.family):
            with imgui_utils.item_width(lay.small_input_width):
                changed, num = imgui.input_int("Images##avg", self.avg_num, 16, 256)
            imgui_utils.items.record("Images##avg")
            if changed:
                self.avg_num = int(np.clip(num, *AVERAGE_NUM_RANGE))
            imgui.same_line()
            if button(START_LABEL, lay.button_width, enabled=not running and bool(self.viz.model_info.family)):
                self.viz.defer(self.start_average)
                self.viz.show_analysis = True
        if running:
            imgui.same_line()
            if button(CANCEL_LABEL, lay.button_width):
                self.cancel_average()
            imgui.progress_bar(self.avg_job.progress, imgui.ImVec2(-1, 0), f"{self.avg_job.progress * 100:.0f} %")
        with imgui_utils.item_width(lay.item_width - lay.button_width):
            _, self.overlay_path = imgui.input_text_with_hint("##overlay path", "saved spectrum (.npz) to overlay",
                                                              self.overlay_path)
        imgui_utils.items.record("##overlay path")
        imgui.same_line()
        if button(LOAD_LABEL, lay.button_width, enabled=bool(self.overlay_path.strip())):
            self.load_overlay()
            self.viz.show_analysis = True
        if self.average is not None and self.overlay is not None:
            _, self.show_overlay_image = imgui_utils.checkbox("Show the overlay's heatmap", self.show_overlay_image)

    # The Analysis panel -------------------------------------------------------------------

    def panel_hidden(self) -> None:
        self.drawn.bars_plotted = self.drawn.profile_points = self.drawn.filter_curves = 0

    def draw_panel(self) -> None:
        """The plots, laid out to the panel: side by side where it is wide, stacked where it is narrow; the
        per-layer spectra and the average spectrum on tabs of their own when there are both."""
        self.panel_hidden()
        layers = self.layers
        shown = [a for a in (self.average, self.overlay) if a is not None]
        self.drawn.average_images = self.average.num_images if self.average is not None else 0
        self.drawn.overlay_images = self.overlay.num_images if self.overlay is not None else 0
        if layers is None and not shown:
            imgui.text_wrapped("Nothing analysed yet: Per-layer spectra or an average spectrum (Analysis section "
                               "of the controls) show here.")
            return
        if layers is None or not shown:
            self._layer_plots(layers) if layers is not None else self._average_plots(shown)
            return
        if imgui.begin_tab_bar("##analysis tabs"):
            for label, tab in ((LAYERS_TAB, LAYERS_TAB), (AVERAGE_TAB, AVERAGE_TAB)):
                flags = imgui.TabItemFlags_.set_selected if self._select_tab == tab else 0
                if imgui.begin_tab_item_simple(label, flags):
                    self._layer_plots(layers) if tab == LAYERS_TAB else self._average_plots(shown)
                    imgui.end_tab_item()
                imgui_utils.items.record(label)
            self._select_tab = None
            imgui.end_tab_bar()

    def _grid(self, plots: int, text_rows: int) -> tuple[int, float]:
        """(columns, plot height) for `plots` plots under `text_rows` lines of text in the space left."""
        lay = self.viz.layout
        avail = imgui.get_content_region_avail()
        columns = 2 if avail.x >= 2 * lay.px(360) else 1
        rows = max(1, -(-plots // columns))
        spare = avail.y - text_rows * imgui.get_frame_height_with_spacing() - lay.px(12) * rows
        return columns, max(lay.analysis_plot_height, spare / rows)

    def _layer_plots(self, layers: LayerAnalysis) -> None:
        columns, height = self._grid(3, 2)
        self._layer_summary(layers)
        index = self._layer_index(layers)
        spectrum = layers.spectra[index]
        if imgui.begin_table("##layer plots", columns, imgui.TableFlags_.sizing_stretch_same):
            imgui.table_next_column()
            self._profile_plot(spectrum, height)
            imgui.table_next_column()
            self._energy_plot(layers, index, height)
            imgui.table_next_column()
            self._filter_plot(spectrum.name, height)
            imgui.end_table()

    def _average_plots(self, shown: list[SpectrumView]) -> None:
        columns, height = self._grid(2, 1)
        image = self.overlay if (self.show_overlay_image and self.overlay is not None) or self.average is None \
            else self.average
        if imgui.begin_table("##average plots", columns, imgui.TableFlags_.sizing_stretch_same):
            imgui.table_next_column()
            self._heatmap(image, height)
            imgui.table_next_column()
            self._slices_plot(shown, height)
            imgui.end_table()

    def _layer_index(self, layers: LayerAnalysis) -> int:
        names = [s.name for s in layers.spectra]
        return names.index(self.layer_name) if self.layer_name in names else len(names) - 1

    def _layer_summary(self, layers: LayerAnalysis) -> None:
        names = [s.name for s in layers.spectra]
        index = self._layer_index(layers)
        imgui.set_next_item_width(self.viz.layout.px(200))
        changed, index = imgui.combo("Layer##analysis", index, names)
        imgui_utils.items.record("Layer##analysis")
        if changed:
            self.layer_name = names[index]
        if self.layers_args is not None and self._stale(self.layers_args):
            imgui.same_line()
            imgui.text_disabled("(of an earlier latent)")
        s = layers.spectra[index]
        imgui.text(f"s {s.sampling_rate:g}   f_c {s.cutoff:.2f}   f_t {s.stopband:.2f}   "
                   f"above f_c {s.energy_above_cutoff * 100:.2f} %   above f_t {s.energy_above_stopband * 100:.2f} %")

    def _legend_fits(self, labels: list[str]) -> bool:
        lay = self.viz.layout
        needed = sum(imgui.calc_text_size(t).x + lay.font_size * 1.6 for t in labels) + lay.px(20)
        return needed <= imgui.get_content_region_avail().x

    def _plot_size(self, labels: list[str], height: float) -> imgui.ImVec2:
        """A plot of `height` with its legend above it; where the legend cannot be one row, its extra rows
        come out of the plot, down to the smallest plot height (then the plot grows and the panel scrolls)."""
        extra = 0.0 if self._legend_fits(labels) else (len(labels) - 1) * imgui.get_text_line_height_with_spacing()
        return imgui.ImVec2(-1, max(height, self.viz.layout.analysis_plot_height + extra))

    def _legend(self, labels: list[str]) -> None:
        """The legend above the plot, out of the curves' way: in a row where it fits, else stacked."""
        implot.setup_legend(implot.Location_.north,
                            LEGEND_OUTSIDE if self._legend_fits(labels) else implot.LegendFlags_.outside)

    def _line(self, color=None) -> implot.Spec:
        weight = self.viz.layout.line_thickness
        return implot.Spec(line_weight=weight) if color is None else implot.Spec(line_color=_vec4(color),
                                                                                 line_weight=weight)

    def _marks(self, marks: list[tuple[str, float, tuple, float]]) -> None:
        """Vertical lines, widest first, so that a thinner one at the same place is drawn over it and stays seen."""
        base = self.viz.layout.line_thickness
        for label, x, color, weight in sorted(marks, key=lambda m: -m[3]):
            implot.plot_inf_lines(label, np.array([x], dtype=np.float64),
                                  implot.Spec(line_color=_vec4(color), line_weight=base * weight))

    def _profile_plot(self, s: LayerSpectrumData, height: float) -> None:
        marks = [(f"f_c {s.cutoff:.2f}", s.cutoff, CUTOFF_COLOR, 1.0),
                 (f"f_t {s.stopband:.2f}", s.stopband, STOPBAND_COLOR, 2.0),
                 (f"Nyquist {s.nyquist:g}", s.nyquist, NYQUIST_COLOR, 3.0)]
        labels = ["power"] + [m[0] for m in marks]
        if not implot.begin_plot(f"Radial profile: {s.name}###profile", self._plot_size(labels, height),
                                 implot.Flags_.no_menus):
            return
        implot.setup_axes("cycles per unit", "dB", 0, 0)
        implot.setup_axis_limits(implot.ImAxis_.x1, 0, float(max(s.radii.max(), s.nyquist)) * 1.04, implot.Cond_.always)
        top = float(s.profile_db.max()) + PROFILE_HEADROOM_DB
        implot.setup_axis_limits(implot.ImAxis_.y1, max(float(s.profile_db.min()), top - 120), top, implot.Cond_.always)
        self._legend(labels)
        implot.plot_line("power", s.radii.astype(np.float64), s.profile_db.astype(np.float64), self._line())
        self._marks(marks)
        implot.end_plot()
        imgui_utils.items.record(PROFILE_PLOT_LABEL)
        self.drawn.profile_layer, self.drawn.profile_points = s.name, len(s.radii)

    def _energy_plot(self, layers: LayerAnalysis, selected: int, height: float) -> None:
        n = len(layers.spectra)
        legend = ["above f_c", "above f_t", layers.spectra[selected].name]
        if not implot.begin_plot("Energy above the cutoff###energy", self._plot_size(legend, height),
                                 implot.Flags_.no_menus):
            return
        implot.setup_axes("layer (click to pick)", "% of energy", 0, 0)
        implot.setup_axis_limits(implot.ImAxis_.x1, -0.7, n - 0.3, implot.Cond_.always)
        above_c = np.array([s.energy_above_cutoff for s in layers.spectra]) * 100
        above_t = np.array([s.energy_above_stopband for s in layers.spectra]) * 100
        implot.setup_axis_limits(implot.ImAxis_.y1, 0, max(1.0, float(above_c.max()) * 1.15), implot.Cond_.always)
        names = [s.name for s in layers.spectra]
        slot = imgui.get_content_region_avail().x / max(1, n) * 0.85
        labels = tick_labels(names, slot, lambda text: imgui.calc_text_size(text).x)
        self.drawn.tick_labels = tuple(labels)
        implot.setup_axis_ticks(implot.ImAxis_.x1, [float(i) for i in range(n)], labels)
        self._legend(legend)
        xs = np.arange(n, dtype=np.float64)
        implot.plot_bars("above f_c", xs - BAR_WIDTH / 2, above_c, BAR_WIDTH,
                         implot.Spec(fill_color=_vec4(CUTOFF_COLOR), line_color=_vec4(CUTOFF_COLOR)))
        implot.plot_bars("above f_t", xs + BAR_WIDTH / 2, above_t, BAR_WIDTH,
                         implot.Spec(fill_color=_vec4(STOPBAND_COLOR), line_color=_vec4(STOPBAND_COLOR)))
        self._marks([(layers.spectra[selected].name, float(selected), SELECTED_COLOR, 1.0)])
        if implot.is_plot_hovered():
            pick = int(round(implot.get_plot_mouse_pos().x))
            if 0 <= pick < n:
                s = layers.spectra[pick]
                imgui.set_tooltip(f"{s.name}\nabove f_c {s.energy_above_cutoff * 100:.2f} %\n"
                                  f"above f_t {s.energy_above_stopband * 100:.2f} %")
                if imgui.is_mouse_clicked(0):
                    self.layer_name = s.name
        implot.end_plot()
        imgui_utils.items.record(ENERGY_PLOT_LABEL)
        self.drawn.bars_plotted = n

    def _filter_plot(self, name: str, height: float) -> None:
        self.drawn.filter_curves = 0
        filters = self.layers.filters_of(name) if self.layers is not None else None
        curves = [c for c in ((filters.up, filters.down) if filters is not None else ()) if c is not None]
        if not curves:
            imgui.text_disabled(f"{name}: no up/down filters (the input and layers that do not resample).")
            imgui_utils.items.record(FILTER_PLOT_LABEL)
            return
        down = filters.down or filters.up
        marks = [(f"f_c {down.cutoff:.2f}", down.cutoff, CUTOFF_COLOR, 1.0),
                 (f"f_c + f_h {down.stopband_edge:.2f}", down.stopband_edge, STOPBAND_COLOR, 2.0)]
        names = [f"{c.kind} ({c.sampling_rate:g}/unit)" for c in curves]
        shape = "radial" if any(c.radial for c in curves) else "separable"
        labels = names + [m[0] for m in marks]
        visible = implot.begin_plot(f"Filter responses: {name} ({shape})###filters", self._plot_size(labels, height),
                                    implot.Flags_.no_menus)
        if not visible:                     # scrolled out of view: still findable by scripts
            imgui_utils.items.record(FILTER_PLOT_LABEL)
            return
        implot.setup_axes("cycles per unit", "dB", 0, 0)
        implot.setup_axis_limits(implot.ImAxis_.x1, 0, max(c.sampling_rate for c in curves) / 2, implot.Cond_.always)
        implot.setup_axis_limits(implot.ImAxis_.y1, FILTER_FLOOR_DB, PROFILE_HEADROOM_DB, implot.Cond_.always)
        self._legend(labels)
        for label, c in zip(names, curves):
            implot.plot_line(label, c.freqs, c.magnitude_db, self._line())
        self._marks(marks)
        implot.end_plot()
        imgui_utils.items.record(FILTER_PLOT_LABEL)
        self.drawn.filter_curves = len(curves)

    def _heatmap(self, data: SpectrumView, height: float) -> None:
        if self._texture is None:
            self._texture = Texture()
        if self._texture_of is not data:
            self._texture.upload(data.image)
            self._texture_of = data
        size = max(self.viz.layout.px(160), min(imgui.get_content_region_avail().x,
                                                height - imgui.get_frame_height_with_spacing()))
        title = f"{data.label or 'spectrum'}: {data.num_images} images###heatmap"
        if implot.begin_plot(title, imgui.ImVec2(size, size), implot.Flags_.no_menus | implot.Flags_.equal
                             | implot.Flags_.no_legend):
            f = data.freq_limit
            implot.setup_axes("f_x", "f_y", 0, 0)
            implot.setup_axes_limits(-f, f, -f, f, implot.Cond_.always)
            # Row 0 of the image is the lowest f_y: at the bottom of the plot.
            implot.plot_image("##average", imgui.ImTextureRef(self._texture.id), implot.Point(-f, -f),
                              implot.Point(f, f), imgui.ImVec2(0, 1), imgui.ImVec2(1, 0))
            implot.end_plot()
        imgui.text_disabled(f"{data.peak_db - data.range_db:.0f} dB (dark) .. {data.peak_db:.0f} dB (bright); "
                            f"whitened with mean {data.mean:.1f}, std {data.std:.1f}")

    def _slices_plot(self, spectra: list[SpectrumView], height: float) -> None:
        legend = [f"{d.label or 'spectrum'}{' (overlay)' if d is self.overlay else ''} {a} deg" for d in spectra
                  for a in (0, 45)]
        if not implot.begin_plot("Slices###slices", self._plot_size(legend, height), implot.Flags_.no_menus):
            imgui_utils.items.record(SLICES_PLOT_LABEL)
            return
        implot.setup_axes("cycles per image width", "dB", 0, 0)
        self._legend(legend)
        for data in spectra:
            name = data.label or "spectrum"
            tag = " (overlay)" if data is self.overlay else ""
            implot.plot_line(f"{name}{tag} 0 deg", data.slice_0deg.freqs, data.slice_0deg.power_db, self._line())
            implot.plot_line(f"{name}{tag} 45 deg", data.slice_45deg.freqs, data.slice_45deg.power_db, self._line())
        implot.end_plot()
        imgui_utils.items.record(SLICES_PLOT_LABEL)


def short_layer_name(name: str) -> str:
    """'L5_72_102' -> 'L5', 'input' -> 'in', 'output' -> 'out' (the energy plot's tick labels when full
    names do not fit)."""
    return {"input": "in", "output": "out"}.get(name, name.split("_")[0])


def tick_labels(names: list[str], slot: float, width) -> list[str]:
    """Layer names for ticks `slot` pixels apart: whole where they fit, else abbreviated, else every
    k-th abbreviation (the tooltip names each bar)."""
    if all(width(n) <= slot for n in names):
        return list(names)
    short = [short_layer_name(n) for n in names]
    widest = max((width(n) for n in short), default=0.0)
    every = max(1, int(np.ceil(widest / max(slot, 1.0))))
    return [s if i % every == 0 else "" for i, s in enumerate(short)]
