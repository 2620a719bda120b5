"""Layers: the layer list (shape, dtype; StyleGAN3 sampling rate and cutoff), RGB or one channel,
channel stepper, normalise, gain in dB, statistics, and the spectrum view with range and Kaiser beta."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.imgui_utils import checkbox, grayed_out, selectable
from renderer.protocol import RenderArgs

OUTPUT = "output"
GAIN_DB_RANGE = (-40.0, 40.0)
FFT_RANGE_DB = (10.0, 100.0)
KAISER_BETA_RANGE = (0.0, 16.0)


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

    @property
    def selected(self):
        """LayerInfo of the layer shown (the output when none is chosen)."""
        layers = self.viz.layers
        for info in layers:
            if info.name == self.name:
                return info
        return layers[-1] if layers and self.name in (None, OUTPUT) else None

    def step_channel(self, step: int) -> None:
        self.base_channel = max(0, self.base_channel + step)

    def contribute(self, args: RenderArgs) -> RenderArgs:
        return args.replace(layer=None if self.name in (None, OUTPUT) else self.name, sel_channels=3 if self.rgb else 1,
                            base_channel=self.base_channel, img_normalize=self.normalize, img_gain_db=self.gain_db,
                            fft_show=self.fft_show, fft_all=self.fft_all, fft_range_db=self.fft_range_db,
                            fft_beta=self.fft_beta)

    def __call__(self, show: bool) -> None:
        info = self.selected
        channels = info.shape[1] if info is not None and len(info.shape) > 1 else 0
        sel = 3 if self.rgb else 1
        if channels:
            self.base_channel = min(self.base_channel, max(0, channels - sel))
        if show:
            self._draw(info, channels)

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
                changed, base = imgui.input_int("Channel", self.base_channel)
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
        for info in layers:
            imgui.table_next_row()
            imgui.table_next_column()
            if selectable(layer_label(info.name), shown is not None and info.name == shown.name, span_columns=True):
                self.name = None if info is layers[-1] else info.name
            for text in (format_shape(info.shape[1:]), info.dtype, _num(info.sampling_rate), _num(info.cutoff)):
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


def _num(value: float | None, fmt: str = "%g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt % value
