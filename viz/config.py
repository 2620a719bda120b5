"""Settings kept between runs: the Recent models list, in a small JSON file under the user's config dir.

The directory is $STYLEGAN_VIZ_CONFIG_DIR if set (tests point it at a temporary directory), else
$XDG_CONFIG_HOME/stylegan-viz, else ~/.config/stylegan-viz.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from renderer.files import write_atomic

CONFIG_DIR_ENV = "STYLEGAN_VIZ_CONFIG_DIR"
MAX_RECENT = 12


def config_dir() -> Path:
    explicit = os.environ.get(CONFIG_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stylegan-viz"


def per_server(name: str, address: str | None) -> Path:
    """The config file `name` ("recent.json") of this machine (None), or of a server (its HOST:PORT),
    whose files keep the server's paths: "recent-127.0.0.1_5555.json"."""
    if address is None:
        return config_dir() / name
    stem, dot, suffix = name.rpartition(".")
    return config_dir() / f"{stem}-{re.sub(r'[^A-Za-z0-9.-]+', '_', address)}{dot}{suffix}"


class RecentModels:
    """Most recently opened models first; saved on every change, atomically."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "recent.json"
        self.paths: list[str] = self._load()

    @classmethod
    def of_server(cls, address: str | None) -> "RecentModels":
        """The Recent list of this machine's models (None), or of a server's (its HOST:PORT): their paths
        are the server's, so each server keeps a list of its own."""
        return cls(per_server("recent.json", address))

    def _load(self) -> list[str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [str(p) for p in data.get("recent", []) if isinstance(p, str)][:MAX_RECENT]

    def add(self, model: str) -> None:
        if not model:
            return
        self.paths = [model] + [p for p in self.paths if p != model]
        self.paths = self.paths[:MAX_RECENT]
        self._save()

    def _save(self) -> None:
        try:
            write_atomic(self.path, json.dumps({"recent": self.paths}, indent=1).encode("utf-8"))
        except OSError:
            pass   # an unwritable config dir must not stop the app; the list lives on in memory
