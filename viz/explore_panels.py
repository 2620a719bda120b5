"""The sections for exploring a model (issue 20), created together and hooked into the window in one
place: Directions, Projection, Seed grid, Run over time / A-B, and Inspect pixels."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from renderer.capture import PNG_KEY_STATE
from viz.directions_widget import DirectionsWidget
from viz.inspect_widget import InspectWidget
from viz.projection_widget import ProjectionWidget
from viz.run_widget import RunWidget
from viz.seed_grid_widget import SeedGridWidget


def saved_frame(path: str) -> bool:
    """Whether an image file is a PNG that carries a saved frame's render state."""
    if Path(path).suffix.lower() != ".png":
        return False
    try:
        with Image.open(path) as image:
            return PNG_KEY_STATE in getattr(image, "text", {})
    except (OSError, ValueError):
        return False


TITLES = ("Directions", "Projection", "Seed grid", "Run over time & A/B", "Inspect pixels")


class ExplorePanels:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.directions = DirectionsWidget(viz)
        self.projection = ProjectionWidget(viz)
        self.seed_grid = SeedGridWidget(viz)
        self.run = RunWidget(viz)
        self.inspect = InspectWidget(viz)
        self.widgets = dict(zip(("directions", "projection", "seed_grid", "run", "inspect"),
                                (self.directions, self.projection, self.seed_grid, self.run, self.inspect)))

    def sections(self) -> list[tuple[str, object]]:
        return list(zip(TITLES, self.widgets.values()))

    @property
    def busy(self) -> bool:
        """A job of one of these sections is running."""
        return any(w.busy for w in self.widgets.values())

    def take_drop(self, path: str) -> bool:
        """A dropped image goes to the projection section, unless it is a frame this visualizer saved
        (a PNG with its render state); True if it was taken."""
        if not self.projection.takes(path) or saved_frame(path):
            return False
        self.projection.open(path)
        self.viz.note(f"image to project: {path} (open Projection and press Project)")
        return True

    def close(self) -> None:
        for widget in self.widgets.values():
            widget.cancel()
        for widget in (self.projection, self.seed_grid, self.run):
            widget.close()
