"""A file browser for models: folders to walk through, training runs (a folder holding
network-snapshot-* files) and model files; everything else is left out. Listings are cached for a
moment so that drawing it every frame does not walk the disk every frame."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from imgui_bundle import imgui

from gui_utils.imgui_utils import selectable
from renderer.conventions import SNAPSHOT_NAME

MODEL_SUFFIXES = (".pkl", ".safetensors", ".pt")
LISTING_SECONDS = 2.0       # how long a folder's listing is reused
ERROR_COLOR = imgui.ImVec4(1.0, 0.45, 0.4, 1.0)


def is_model_file(path: Path) -> bool:
    return path.suffix in MODEL_SUFFIXES


def snapshots_in(directory: Path) -> list[Path]:
    """A training run's snapshot files (network-snapshot-NNNNNN.pkl / .safetensors), oldest first."""
    try:
        found = [(int(m.group(1)), p) for p in directory.iterdir()
                 if (m := SNAPSHOT_NAME.fullmatch(p.name)) and p.is_file()]
    except OSError:
        return []
    return [p for _, p in sorted(found)]


def is_run(directory: Path) -> bool:
    return directory.is_dir() and bool(snapshots_in(directory))


@dataclass(frozen=True)
class Entry:
    path: Path
    kind: str                   # "dir", "run" or "model"
    snapshots: int = 0

    @property
    def label(self) -> str:
        if self.kind == "run":
            return f"[run] {self.path.name}  ({self.snapshots} snapshots)"
        if self.kind == "dir":
            return f"[dir] {self.path.name}/"
        return self.path.name


def list_folder(directory: Path) -> list[Entry]:
    """Folders, runs and model files directly in `directory` (folders and runs first); OSError if it
    cannot be listed."""
    entries = []
    for path in directory.iterdir():
        if path.name.startswith("."):
            continue
        try:
            if path.is_dir():
                snaps = len(snapshots_in(path))
                entries.append(Entry(path, "run" if snaps else "dir", snaps))
            elif path.is_file() and is_model_file(path):
                entries.append(Entry(path, "model"))
        except OSError:
            continue
    return sorted(entries, key=lambda e: (e.kind == "model", e.path.name.lower()))


class ModelBrowser:
    def __init__(self, start: Path) -> None:
        self.directory = start
        self._listing: list[Entry] = []
        self._error: str | None = None
        self._listed: tuple[Path, float] | None = None

    def _entries(self) -> list[Entry]:
        now = time.monotonic()
        if self._listed is None or self._listed[0] != self.directory or now - self._listed[1] > LISTING_SECONDS:
            try:
                self._listing, self._error = list_folder(self.directory), None
            except OSError as e:
                self._listing, self._error = [], f"cannot list {self.directory}: {e.strerror or e}"
            self._listed = (self.directory, now)
        return self._listing

    def draw(self, size: imgui.ImVec2, current: str) -> Path | None:
        """Draw the list; returns a model file or run the user clicked (to open)."""
        chosen = None
        imgui.text_disabled(str(self.directory))
        if imgui.begin_child("##browser", size, imgui.ChildFlags_.borders):
            parent = self.directory.parent
            if parent != self.directory and selectable(".. (up)", False):
                self.directory = parent
            if self._error:
                imgui.text_colored(ERROR_COLOR, self._error)
            entries = self._entries()
            if not entries and not self._error:
                imgui.text_disabled("no models, runs or folders here")
            for entry in entries:
                if selectable(entry.label, str(entry.path) == current):
                    if entry.kind == "dir":
                        self.directory = entry.path
                    else:
                        chosen = entry.path
                        if entry.kind == "run":
                            self.directory = entry.path      # its snapshots are listed next
                if imgui.is_item_hovered():
                    imgui.set_tooltip(str(entry.path))
        imgui.end_child()
        return chosen
