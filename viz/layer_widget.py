"""Layers: the layer list (shape, dtype; StyleGAN3 sampling rate and cutoff), RGB or one channel,
channel stepper, normalise, gain in dB, statistics, and the spectrum view with range and Kaiser beta."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import checkbox, grayed_out, selectable
from renderer.protocol import LayerInfo, RenderArgs
from viz.state import LayerState

OUTPUT = "output"
GAIN_DB_RANGE = (-40.0, 40.0)
FFT_RANGE_DB = (10.0, 100.0)
KAISER_BETA_RANGE = (0.0, 16.0)
CUTOFF_FORMAT = "%.2f"


def format_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def layer_label(name: str) -> str:
    return f"{name}##layer"


class LayerWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.name: str | None = viz.options.layer       # None: the network output
        self.rgb = True
        self.base_channel = 0
        self.normalize = False
        self.gain_db = 0.0
        self.fft_show = bool(viz.options.fft)
        self.fft_all = True
        self.fft_range_db = 50.0
        self.fft_beta = 8.0
        self.drawn_rows: list[tuple[str, ...]] = []      # the layer table as last drawn (tests)

    def state(self) -> LayerState:
        return LayerState(name=None if self.name in (None, OUTPUT) else self.name, rgb=self.rgb,
                          base_channel=int(self.base_channel), normalize=self.normalize, gain_db=float(self.gain_db),
                          fft_show=self.fft_show, fft_all=self.fft_all, fft_range_db=float(self.fft_range_db),
                          fft_beta=float(self.fft_beta))

    def restore(self, state: LayerState) -> None:
        self.name, self.rgb, self.base_channel = state.name, state.rgb, max(0, state.base_channel)
        self.normalize, self.gain_db = state.normalize, _clamp(state.gain_db, GAIN_DB_RANGE)
        self.fft_show, self.fft_all = state.fft_show, state.fft_all
        self.fft_range_db, self.fft_beta = _clamp(state.fft_range_db, FFT_RANGE_DB), _clamp(state.fft_beta, KAISER_BETA_RANGE)

    def reset(self) -> None:
        self.restore(LayerState())

    def carry_over(self, old: tuple[LayerInfo, ...], new: tuple[LayerInfo, ...]) -> str | None:
        """A new model's layers have arrived: keep the selection where the new model has it, else carry
        it over by its role (the output, the input, the same place from the end), else the output.
        Returns a note for the user when the selection changed."""
        name = self.name
        new_names = [info.name for info in new]
        if name in (None, OUTPUT) or name in new_names or not new:
            return None
        old_names = [info.name for info in old]
        if name in old_names:
            from_end = len(old_names) - old_names.index(name)
            if old_names.index(name) == 0:
                self.name, how = new_names[0], "the input"
            elif from_end <= len(new_names) - 1:
                self.name, how = new_names[len(new_names) - from_end], "the same place from the end"
            else:
                self.name, how = None, "the output"
        else:
            self.name, how = None, "the output"
        shown = self.name or OUTPUT
        return f"This model has no layer {name}: showing {shown} ({how})."

    def shown_channels(self, info) -> tuple[int, int]:
        """(first channel shown, channels of the layer): the channel asked for, within the layer."""
        channels = info.shape[1] if info is not None and len(info.shape) > 1 else 0
        sel = 3 if self.rgb else 1
        base = min(self.base_channel, max(0, channels - sel)) if channels else self.base_channel
        return base, channels

    @property
    def selected(self):
        """LayerInfo of the layer shown (the output when none is chosen)."""
        layers = self.viz.layers
        for info in layers:
            if info.name == self.name:
                return info
        return layers[-1] if layers and self.name in (None, OUTPUT) else None

    def step_channel(self, step: int) -> None:
        base, channels = self.shown_channels(self.selected)
        self.base_channel = max(0, base + step)
        if channels:
            self.base_channel = min(self.base_channel, max(0, channels - (3 if self.rgb else 1)))

    def contribute(self, args: RenderArgs) -> RenderArgs:
        base, _ = self.shown_channels(self.selected)
        return args.replace(layer=None if self.name in (None, OUTPUT) else self.name, sel_channels=3 if self.rgb else 1,
                            base_channel=base, img_normalize=self.normalize, img_gain_db=self.gain_db,
                            fft_show=self.fft_show, fft_all=self.fft_all, fft_range_db=self.fft_range_db,
                            fft_beta=self.fft_beta)

    def __call__(self, show: bool) -> None:
        info = self.selected
        if show:
            self._draw(info, self.shown_channels(info)[1])

    def _draw(self, info, channels: int) -> None:
        viz, lay = self.viz, self.viz.layout
        if info is not None:
            imgui.text(f"Shape: {format_shape(info.shape)}   {info.dtype}")
        else:
            imgui.text_disabled("Shape: (no layer information yet)")
        self._layer_table()

        if imgui.radio_button("RGB", self.rgb):
            self.rgb = True
        imgui_utils.items.record("RGB")
        imgui.same_line()
        if imgui.radio_button("Single channel", not self.rgb):
            self.rgb = False
        imgui_utils.items.record("Single channel")
        sel = 3 if self.rgb else 1
        with grayed_out(channels <= sel):
            with imgui_utils.item_width(lay.small_input_width * 1.5):
                changed, base = imgui.input_int("Channel", self.shown_channels(info)[0])
            imgui_utils.items.record("Channel")
            if changed:
                self.base_channel = int(min(max(0, base), max(0, channels - sel)))
            imgui.same_line()
            imgui.text_disabled(f"of {channels}" if channels else "")
        _, self.normalize = checkbox("Normalise", self.normalize)
        imgui_utils.help_marker("Divide each channel by its largest absolute value.")
        _, self.gain_db = imgui.slider_float("Gain (dB)", self.gain_db, *GAIN_DB_RANGE, "%+.1f dB")
        imgui_utils.items.record("Gain (dB)")
        self._stats_table()

        _, self.fft_show = checkbox("Spectrum (FFT)", self.fft_show)
        imgui_utils.help_marker("Power spectrum beside the image: channel means removed, Kaiser window, |FFT|^2 "
                                "summed, centred, in dB relative to its mean.\nYellow: the layer's cutoff f_c. "
                                "Blue border: Nyquist (half the sampling rate).")
        with grayed_out(not self.fft_show):
            imgui.same_line()
            _, self.fft_all = checkbox("All channels", self.fft_all)
            _, self.fft_range_db = imgui.slider_float("Range (dB)", self.fft_range_db, *FFT_RANGE_DB, "%.0f dB")
            _, self.fft_beta = imgui.slider_float("Kaiser beta", self.fft_beta, *KAISER_BETA_RANGE, "%.1f")

    def _layer_table(self) -> None:
        lay = self.viz.layout
        layers = self.viz.layers
        flags = (imgui.TableFlags_.borders_inner_v | imgui.TableFlags_.row_bg | imgui.TableFlags_.scroll_y
                 | imgui.TableFlags_.sizing_stretch_prop)
        size = imgui.ImVec2(lay.pane_width - lay.px(40), lay.list_height)
        if not imgui.begin_table("##layers", 5, flags, size):
            return
        imgui.table_setup_scroll_freeze(0, 1)
        for title in ("Layer", "Shape", "Dtype", "Rate", "Cutoff"):
            imgui.table_setup_column(title)
        imgui.table_headers_row()
        shown = self.selected
        self.drawn_rows = []
        for info in layers:
            imgui.table_next_row()
            imgui.table_next_column()
            if selectable(layer_label(info.name), shown is not None and info.name == shown.name, span_columns=True):
                self.name = None if info is layers[-1] else info.name
            texts = (format_shape(info.shape[1:]), info.dtype, _num(info.sampling_rate), _cutoff(info.cutoff))
            self.drawn_rows.append((info.name, *texts))
            for text in texts:
                imgui.table_next_column()
                imgui.text(text)
        imgui.end_table()

    def _stats_table(self) -> None:
        result = self.viz.result
        flags = imgui.TableFlags_.borders_inner_v | imgui.TableFlags_.sizing_stretch_same
        if not imgui.begin_table("##stats", 4, flags):
            return
        for title in ("Statistics", "Mean", "Std", "Max"):
            imgui.table_setup_column(title)
        imgui.table_headers_row()
        for label, stats in (("All channels", result.stats_all), ("Selection", result.stats_sel)):
            imgui.table_next_row()
            for text in (label, _num(stats.mean, "%.3g"), _num(stats.std, "%.3g"), _num(stats.max, "%.3g")):
                imgui.table_next_column()
                imgui.text(text)
        imgui.end_table()


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _cutoff(value: float | None) -> str:
    """Cutoffs with the same two decimals in every row (2.00, 3.17, 5.04)."""
    return _num(value, CUTOFF_FORMAT)


def _num(value: float | None, fmt: str = "%g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt % value
