"""Every size of the visualizer's layout, in one place, scaled by the monitor content scale."""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_SIZE = (1880, 1000)      # screen coordinates at scale 1: fits 1920x1080 with decorations
FONT_SIZE = 16                  # pixels at scale 1


@dataclass(frozen=True)
class Layout:
    scale: float = 1.0

    def px(self, size: float) -> float:
        """A size given at scale 1, in pixels at this scale."""
        return size * self.scale

    @property
    def font_size(self) -> float:
        return FONT_SIZE * self.scale

    @property
    def pane_width(self) -> float:        # the control pane on the left
        return self.px(540)

    @property
    def label_width(self) -> float:       # room kept right of an input for its label
        return self.px(150)

    @property
    def item_width(self) -> float:        # default width of inputs, sliders and combos
        return self.pane_width - self.label_width - self.px(40)

    @property
    def button_width(self) -> float:
        return self.px(110)

    @property
    def small_input_width(self) -> float: # a number box beside a button
        return self.px(120)

    @property
    def list_height(self) -> float:       # scrolling lists: layers, browser
        return self.px(240)

    @property
    def plot_height(self) -> float:
        return self.px(110)

    @property
    def analysis_plot_height(self) -> float:  # the Analysis section's profile, bar and filter plots
        return self.px(170)

    @property
    def spectrum_image_size(self) -> float:   # the average-spectrum heatmap (square)
        return self.px(250)

    @property
    def error_image_size(self) -> float:      # the equivariance error image (square)
        return self.px(192)

    @property
    def status_height(self) -> float:     # the status line at the bottom
        return self.font_size + self.px(14)

    @property
    def margin(self) -> float:            # space around the image
        return self.px(8)

    @property
    def overlay_width(self) -> float:     # the F1 shortcut overlay, error boxes
        return self.px(520)

    @property
    def line_thickness(self) -> float:
        return max(1.0, self.px(1.5))
