"""Every size of the visualizer's layout, in one place. Sizes are given at scale 1 and follow the UI
scale: the monitor's content scale times a factor that follows the window's size (so a 4K window
gets larger text and controls even where the monitor reports a content scale of 1), times the
user's own factor (View > UI scale)."""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_SIZE = (1880, 1000)      # screen coordinates at scale 1: fits 1920x1080 with decorations
FONT_SIZE = 16                  # pixels at scale 1
FOLLOW_RANGE = (0.8, 4.0)       # how far the window's size may shrink or grow the UI
USER_SCALE_RANGE = (0.5, 2.0)


def auto_scale(content_scale: float, window_size: tuple[int, int]) -> float:
    """The UI scale for a window of `window_size` screen units on a monitor of `content_scale`."""
    width, height = window_size
    follow = min(width / (WINDOW_SIZE[0] * content_scale), height / (WINDOW_SIZE[1] * content_scale))
    return content_scale * min(max(follow, FOLLOW_RANGE[0]), FOLLOW_RANGE[1])


def default_window_size(work_area: tuple[int, int] | None, content_scale: float) -> tuple[int, int]:
    """WINDOW_SIZE grown with the monitor (a 4K screen gets a 4K window), within its work area."""
    if work_area is None:
        return WINDOW_SIZE
    grow = max(content_scale, work_area[1] / 1080)
    return (min(work_area[0], round(WINDOW_SIZE[0] * grow)), min(work_area[1], round(WINDOW_SIZE[1] * grow)))


@dataclass(frozen=True)
class Layout:
    scale: float = 1.0
    pane: float | None = None       # the control pane's width as docked (None: its default)

    def px(self, size: float) -> float:
        """A size given at scale 1, in pixels at this scale."""
        return size * self.scale

    @property
    def font_size(self) -> float:
        return FONT_SIZE * self.scale

    @property
    def pane_width(self) -> float:        # the control pane (docked on the left by default)
        return self.pane if self.pane is not None else self.default_pane_width

    @property
    def default_pane_width(self) -> float:
        return self.px(540)

    @property
    def label_width(self) -> float:       # room kept right of an input for its label
        return self.px(150)

    @property
    def item_width(self) -> float:        # default width of inputs, sliders and combos
        return max(self.px(120), self.pane_width - self.label_width - self.px(40))

    @property
    def button_width(self) -> float:
        return self.px(110)

    @property
    def small_input_width(self) -> float: # a number box beside a button
        return self.px(120)

    @property
    def list_height(self) -> float:       # scrolling lists: layers
        return self.px(240)

    @property
    def plot_height(self) -> float:
        return self.px(110)

    @property
    def analysis_plot_height(self) -> float:  # the smallest height of an analysis plot
        return self.px(200)

    @property
    def error_image_size(self) -> float:      # the equivariance error image (square)
        return self.px(192)

    @property
    def margin(self) -> float:            # space around the image
        return self.px(8)

    @property
    def overlay_width(self) -> float:     # the F1 shortcut overlay, error boxes, dialogs
        return self.px(520)

    @property
    def line_thickness(self) -> float:
        return max(1.0, self.px(1.5))
