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


class RecentModels:
    """Most recently opened models first; saved on every change, atomically."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "recent.json"
        self.paths: list[str] = self._load()

    @classmethod
    def of_server(cls, address: str | None) -> "RecentModels":
        """The Recent list of this machine's models (None), or of a server's (its HOST:PORT): their paths
        are the server's, so each server keeps a list of its own."""
        if address is None:
            return cls()
        return cls(config_dir() / f"recent-{re.sub(r'[^A-Za-z0-9.-]+', '_', address)}.json")

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
