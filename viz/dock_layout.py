"""The window's docking layout (Dear ImGui's docking branch): the menu bar on top, the status line at
the bottom, and between them a dock space whose central area holds the image; the controls dock on
its left, the analysis panel beside the image (or under it on a tall window). Any panel can be
dragged into another dock, split, tabbed or floated; the arrangement is saved with the session
(Dear ImGui's ini text, kept in the session file, never in an imgui.ini of the working directory)."""

from __future__ import annotations

from dataclasses import dataclass

from imgui_bundle import imgui

CONTROLS = "Controls"
ANALYSIS = "Analysis"
DOCK_SPACE = "##dock space"
ANALYSIS_SHARE = 0.42           # of the space right of the controls, when the analysis panel first opens


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float


class DockLayout:
    def __init__(self) -> None:
        self.rebuild = False            # build the default arrangement in the next frame
        self.dock_id = 0

    def dock_space(self, pane_width: float) -> Rect:
        """Submit the dock space over the window (between menu and status bars, which must be drawn
        first); build the default arrangement when there is none. Returns the central area, where the
        image goes."""
        viewport = imgui.get_main_viewport()
        self.dock_id = imgui.get_id(DOCK_SPACE)
        if self.rebuild or imgui.internal.dock_builder_get_node(self.dock_id) is None:
            self._build_default(viewport, pane_width)
            self.rebuild = False
        imgui.dock_space_over_viewport(self.dock_id, viewport, imgui.DockNodeFlags_.passthru_central_node
                                       | imgui.DockNodeFlags_.no_docking_over_central_node)
        central = imgui.internal.dock_builder_get_central_node(self.dock_id)
        if central is None:
            pos, size = viewport.work_pos, viewport.work_size
            return Rect(pos.x, pos.y, size.x, size.y)
        return Rect(central.pos.x, central.pos.y, central.size.x, central.size.y)

    def _build_default(self, viewport, pane_width: float) -> None:
        internal = imgui.internal
        internal.dock_builder_remove_node(self.dock_id)
        internal.dock_builder_add_node(self.dock_id, imgui.DockNodeFlags_.passthru_central_node
                                       | internal.DockNodeFlagsPrivate_.dock_space)
        size = viewport.work_size
        internal.dock_builder_set_node_size(self.dock_id, size)
        share = min(0.6, pane_width / max(1.0, size.x))
        _, left, rest = internal.dock_builder_split_node_py(self.dock_id, imgui.Dir.left, share)
        rest_w, rest_h = size.x * (1 - share), size.y
        side = imgui.Dir.right if rest_w >= rest_h else imgui.Dir.down
        _, panel, _center = internal.dock_builder_split_node_py(rest, side, ANALYSIS_SHARE)
        internal.dock_builder_dock_window(CONTROLS, left)
        internal.dock_builder_dock_window(ANALYSIS, panel)
        internal.dock_builder_finish(self.dock_id)
