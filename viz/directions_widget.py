"""Directions: compute GANSpace or SeFa directions in the worker (or load a .npy), move the latent along
several at once with sliders, on all / coarse / middle / fine / custom ws rows; save the set or the
current combination as a direction file; sweep one direction (live and in clips)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import button, checkbox, grayed_out
from renderer.animation import DirectionSweep
from renderer.directions import (FILE, GANSPACE, METHODS, ROW_RANGES, SEFA, DirectionFileError, DirectionMove,
                                 DirectionSource, Directions, save_directions)
from renderer.protocol import DirectionsRequest, RenderArgs
from viz.capture_widget import next_free
from viz.state import DirectionsState

SHOWN = 10                    # directions listed with a slider
SPREADS = 3.0                 # GANSpace slider range: +- this many standard deviations of W along the direction
UNIT_RANGE = 10.0             # SeFa and file directions: +- this many W units
METHOD_LABELS = {GANSPACE: "GANSpace (PCA of W)", SEFA: "SeFa (style affines)", FILE: "File (.npy)"}
COMPUTE_LABEL = "Compute directions"


@dataclass
class DirectionsDrawn:
    """What the section showed in its last frame (for scripted tests and the state dump)."""
    method: str = ""
    count: int = 0
    explained: list[float] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)
    rows: str = "all"
    sweeping: bool = False
    last_saved: str | None = None
    error: str | None = None


class DirectionsWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.method = GANSPACE
        self.num_samples = 4096
        self.sefa_rows = "all"                # which affines SeFa factorises: a row range (not custom)
        self.file_path = ""
        self.rows = "all"
        self.custom_rows = ""
        self.directions: Directions | None = None
        self.source: DirectionSource | None = None
        self.model: str | None = None          # the model the directions belong to
        self.strengths: list[float] = []
        self.job = None
        self.sweep_on = False
        self.sweep_index = 0
        self.sweep_amplitude = 0.0
        self.sweep_period = 4.0
        self._sweep_phase = 0.0
        self.drawn = DirectionsDrawn()

    # Settings -----------------------------------------------------------------------------

    def state(self) -> DirectionsState:
        return DirectionsState(method=self.method, num_samples=int(self.num_samples), sefa_rows=self.sefa_rows,
                               file_path=self.file_path, source=self.source,
                               strengths=tuple(float(x) for x in self.strengths), rows=self.rows,
                               custom_rows=self.custom_rows, sweep=self.sweep_on, sweep_index=int(self.sweep_index),
                               sweep_amplitude=float(self.sweep_amplitude), sweep_period=float(self.sweep_period),
                               sweep_phase=float(self._sweep_phase))

    def restore(self, state: DirectionsState) -> None:
        self.method = state.method if state.method in METHODS else GANSPACE
        self.num_samples = max(16, state.num_samples)
        self.sefa_rows = state.sefa_rows if state.sefa_rows in ROW_RANGES and state.sefa_rows != "custom" else "all"
        self.file_path, self.custom_rows = state.file_path, state.custom_rows
        self.rows = state.rows if state.rows in ROW_RANGES else "all"
        if state.source != self.source:
            self.directions = None           # fetched again from the worker (Settings hold no vectors)
        self.source, self.strengths = state.source, list(state.strengths)
        self.sweep_on, self.sweep_index = state.sweep, max(0, state.sweep_index)
        self.sweep_amplitude, self.sweep_period = state.sweep_amplitude, max(0.1, state.sweep_period)
        self._sweep_phase = min(max(state.sweep_phase, 0.0), 1.0)

    def reset(self) -> None:
        """Sliders back to 0, rows to all, no sweep; the computed set stays."""
        self.restore(DirectionsState(method=self.method, num_samples=self.num_samples, sefa_rows=self.sefa_rows,
                                     file_path=self.file_path, source=self.source,
                                     strengths=tuple(0.0 for _ in self.strengths)))

    # What the frame gets ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """The sliders' directions are known (computed or fetched for the model on screen)."""
        return self.directions is not None and self.source is not None and len(self.strengths) == self.directions.count

    def custom_row_list(self) -> tuple[int, ...]:
        rows = []
        for part in self.custom_rows.replace(",", " ").split():
            if part.isdigit():
                rows.append(int(part))
        return tuple(sorted(set(rows)))

    def contribute(self, args: RenderArgs) -> RenderArgs:
        if self.source is None:
            return args
        moves = tuple(DirectionMove(self.source, i, float(s)) for i, s in enumerate(self.strengths) if s != 0)
        custom = self.custom_row_list() if self.rows == "custom" else ()
        return args.replace(directions=moves, direction_rows=self.rows, direction_custom_rows=custom)

    @property
    def sweep(self) -> DirectionSweep:
        if self.source is None or not self.sweep_on or not 0 <= self.sweep_index < len(self.strengths):
            return DirectionSweep()
        return DirectionSweep(source=self.source, index=self.sweep_index, centre=self.strengths[self.sweep_index],
                              amplitude=self.sweep_amplitude, period=self.sweep_period, phase=self._sweep_phase,
                              anim=True)

    def slider_range(self, index: int) -> float:
        d = self.directions
        if d is not None and d.method == GANSPACE and np.isfinite(d.spread[index]) and d.spread[index] > 0:
            return float(SPREADS * d.spread[index])
        return UNIT_RANGE

    # Jobs ---------------------------------------------------------------------------------

    def wanted_source(self) -> DirectionSource:
        if self.method == GANSPACE:
            return DirectionSource(method=GANSPACE, num_samples=int(self.num_samples))
        if self.method == SEFA:
            return DirectionSource(method=SEFA, row_range=self.sefa_rows)
        return DirectionSource(method=FILE, path=str(Path(self.file_path.strip()).expanduser()))

    def compute(self, args: RenderArgs, source: DirectionSource | None = None) -> None:
        """Ask the worker for a set of directions (the one chosen in the section, or `source`)."""
        if self.job is not None:
            return
        self.drawn.error = None
        self.job = self.viz.client.submit(DirectionsRequest(args.replace(directions=()), source or self.wanted_source(),
                                                            count=SHOWN))

    def _fetch(self, args: RenderArgs) -> None:
        """The restored (or carried-over) set's directions for the model on screen."""
        if self.source is not None and args.model:
            self.compute(args, self.source)

    @property
    def busy(self) -> bool:
        return self.job is not None

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _poll(self) -> None:
        job = self.job
        if job is None or not job.done:
            return
        self.job = None
        self.model = job.spec.args.model
        if job.error:
            self.drawn.error = f"Directions: {job.error}"
            self.viz.note(self.drawn.error)
            return
        if job.cancelled or job.value is None:
            return
        count = job.value.count
        kept = self.strengths if job.spec.source == self.source else []
        self.directions, self.source = job.value, job.spec.source
        self.strengths = (list(kept) + [0.0] * count)[:count]
        self.sweep_index = min(self.sweep_index, count - 1)
        self.viz.automatic_change()
        self.viz.note(f"{count} directions: {job.spec.source.label()}")

    # Files --------------------------------------------------------------------------------

    def save(self, combined: bool) -> Path | None:
        """The shown set [k, w_dim], or the current combination sum_k s_k v_k as one unit direction."""
        d = self.directions
        if d is None:
            return None
        if combined:
            s = np.asarray(self.strengths, dtype=np.float64)
            vectors = s @ d.vectors.astype(np.float64)
            if not np.linalg.norm(vectors) > 0:
                self.viz.note("Move at least one slider first: the combination of the directions is zero.")
                return None
            vectors /= np.linalg.norm(vectors)
        else:
            vectors = d.vectors
        directory = Path(self.viz.capture.directory).expanduser()   # the Capture section's folder
        path = next_free(directory, "direction" if combined else f"directions-{d.method}", ".npy")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            save_directions(path, vectors)
        except (OSError, ValueError, DirectionFileError) as e:
            self.viz.note(f"could not save the directions to {path}: {e}")
            return None
        self.drawn.last_saved = str(path)
        self.viz.note(f"saved {path}")
        return path

    # Drawing ------------------------------------------------------------------------------

    def __call__(self, show: bool) -> None:
        self._poll()
        viz = self.viz
        stale = self.directions is None or self.model != viz.args.model
        if self.source is not None and stale and self.job is None and viz.args.model and viz.model_info.family:
            self.model = viz.args.model          # asked once per model
            viz.defer(self._fetch)
        if self.sweep.sweeps:
            self._sweep_phase = self.sweep.advanced(viz.frame_dt).phase
        st = self.drawn
        st.method = self.directions.method if self.directions is not None else ""
        st.count = self.directions.count if self.directions is not None else 0
        st.explained = [float(x) for x in self.directions.explained] if self.directions is not None else []
        st.strengths = list(self.strengths)
        st.rows = self.rows
        st.sweeping = self.sweep.sweeps
        if show:
            self._draw()

    def _draw(self) -> None:
        viz, lay = self.viz, self.viz.layout
        loaded = bool(viz.model_info.family)
        with grayed_out(not loaded or self.job is not None):
            methods = list(METHODS)
            changed, index = imgui.combo("Method##directions", methods.index(self.method),
                                         [METHOD_LABELS[m] for m in methods])
            imgui_utils.items.record("Method##directions")
            if changed:
                self.method = methods[index]
            if self.method == GANSPACE:
                with imgui_utils.item_width(lay.small_input_width):
                    _, n = imgui.input_int("Seeds##ganspace", self.num_samples, 256, 1024)
                self.num_samples = int(np.clip(n, 16, 1_000_000))
                imgui_utils.help_marker("Principal components of W over this many seeds (mapped without truncation); "
                                        "computed once per model, in the renderer.")
            elif self.method == SEFA:
                groups = [g for g in ROW_RANGES if g != "custom"]
                changed, index = imgui.combo("Affines of##sefa", groups.index(self.sefa_rows), groups)
                if changed:
                    self.sefa_rows = groups[index]
                imgui_utils.help_marker("Eigenvectors of A^T A of the style affines that read these ws rows.")
            else:
                _, self.file_path = imgui.input_text_with_hint("##direction file", "direction file (.npy)",
                                                               self.file_path)
                imgui_utils.items.record("##direction file")
            if button(COMPUTE_LABEL, lay.button_width * 1.6, enabled=loaded and self.job is None):
                viz.defer(self.compute)
        if self.job is not None:
            imgui.same_line()
            imgui.progress_bar(self.job.progress, imgui.ImVec2(-1, 0), "computing ...")
        if self.drawn.error:
            imgui.text_wrapped(self.drawn.error)
        if not self.ready:
            if self.source is not None:
                imgui.text_disabled(f"{self.source.label()}: fetching the directions of this model ...")
            return
        self._draw_sliders()
        self._draw_rows()
        self._draw_sweep()
        if button("Save set", lay.button_width):
            self.save(combined=False)
        imgui.same_line()
        if button("Save combination", lay.button_width * 1.5):
            self.save(combined=True)
        imgui_utils.help_marker("Save set: the listed directions as [k, w_dim] .npy. Save combination: the sum of "
                                "strength x direction, normalised, as one direction. Both go to the capture folder.")

    def _draw_sliders(self) -> None:
        d = self.directions
        imgui.text(f"{self.source.label()}: {'explained variance' if d.method == GANSPACE else 'eigenvalue'}")
        for i in range(d.count):
            limit = self.slider_range(i)
            if d.method == GANSPACE:
                label = f"{i}: {d.explained[i] * 100:.1f} %##dir{i}"
            elif np.isfinite(d.eigenvalues[i]):
                label = f"{i}: {d.eigenvalues[i]:.3g}##dir{i}"
            else:
                label = f"{i}##dir{i}"
            changed, value = imgui.slider_float(label, self.strengths[i], -limit, limit, "%.2f")
            imgui_utils.items.record(f"##dir{i}")
            if changed:
                self.strengths[i] = float(value)

    def _draw_rows(self) -> None:
        rows = list(ROW_RANGES)
        changed, index = imgui.combo("Rows##directions", rows.index(self.rows), rows)
        imgui_utils.items.record("Rows##directions")
        if changed:
            self.rows = rows[index]
        imgui_utils.help_marker("The ws rows the directions move: coarse (up to 8 px), middle (16-32 px), fine, "
                                "or custom rows (numbers separated by commas).")
        if self.rows == "custom":
            _, self.custom_rows = imgui.input_text_with_hint("##custom rows", "rows, e.g. 0, 1, 2", self.custom_rows)
            imgui_utils.items.record("##custom rows")

    def _draw_sweep(self) -> None:
        lay = self.viz.layout
        _, self.sweep_on = checkbox("Sweep##directions", self.sweep_on)
        imgui.same_line()
        with imgui_utils.item_width(lay.small_input_width * 0.6):
            _, index = imgui.input_int("##sweep index", self.sweep_index, 0, 0)
        self.sweep_index = int(np.clip(index, 0, max(0, len(self.strengths) - 1)))
        imgui.same_line()
        with imgui_utils.item_width(lay.small_input_width):
            _, self.sweep_amplitude = imgui.input_float("+-##sweep", self.sweep_amplitude, 0.0, 0.0, "%.2f")
        imgui.same_line()
        with imgui_utils.item_width(lay.small_input_width * 0.8):
            _, period = imgui.input_float("s##sweep period", self.sweep_period, 0.0, 0.0, "%.1f")
        self.sweep_period = max(0.1, float(period))
        imgui_utils.help_marker("Sweep a direction around its slider value, +- the amplitude (W units), once per "
                                "period; a clip export records the sweep.")
