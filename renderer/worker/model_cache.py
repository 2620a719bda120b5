"""Loaded networks, kept per (file, device) and reloaded when the file on disk changes.

A training run writes each snapshot to a temporary name and renames it, so a file is either
whole or absent; a file that changes while it is being read is not used. When a new snapshot
cannot be loaded, the previous network of the same model path stays in use and the caller is
told why.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from renderer.protocol import LayerInfo, ModelInfo
from renderer.worker.models import load_generator, model_info, resolve_model_path

CAPACITY = 2  # networks kept loaded (per process); more would only hold GPU memory


class ModelUnavailable(Exception):
    """The model cannot be loaded and no earlier version of it is loaded either."""


@dataclass
class LoadedModel:
    G: nn.Module
    info: ModelInfo
    file: Path
    file_state: tuple[int, int]               # (mtime_ns, size) when loaded
    layers: tuple[LayerInfo, ...] | None = None  # filled by the first render


def _file_state(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


def _describe(e: BaseException) -> str:
    text = str(e).strip()
    return text if text else type(e).__name__


class ModelCache:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._loaded: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._last_good: dict[tuple[str, str], tuple[str, str]] = {}   # (model path, device) -> cache key
        self._failed: dict[tuple[str, str], tuple[tuple[int, int], str]] = {}  # cache key -> (file state, error)
        self.loads = 0                                       # networks read from disk (tests count them)

    def get(self, model_path: str, device: torch.device) -> tuple[LoadedModel, str | None]:
        """The network for `model_path` on `device`, and a message when an older version is shown
        because the current file could not be loaded."""
        user_key = (model_path, str(device))
        try:
            file = Path(resolve_model_path(model_path))
            key = (str(file.resolve()), str(device))
            state = _file_state(file)
            entry = self._loaded.get(key)
            if entry is not None and entry.file_state == state:
                self._loaded.move_to_end(key)
                self._last_good[user_key] = key
                return entry, None
            failed = self._failed.get(key)
            if failed is not None and failed[0] == state:
                raise ModelUnavailable(failed[1])
            try:
                self.loads += 1
                G = load_generator(file, device=device)
                if _file_state(file) != state:
                    raise ModelUnavailable(f"{file.name} changed while it was being read; it will be read again")
                info = model_info(G, str(file))
            except Exception as e:
                message = _describe(e)
                self._failed[key] = (state, message)
                raise ModelUnavailable(message) from e
            self._failed.pop(key, None)
            entry = LoadedModel(G=G, info=info, file=file, file_state=state)
            self._loaded[key] = entry
            self._loaded.move_to_end(key)
            self._last_good[user_key] = key
            self._evict(keep=key)
            return entry, None
        except Exception as e:
            message = _describe(e)
            previous = self._loaded.get(self._last_good.get(user_key, ("", "")))
            if previous is None:
                raise ModelUnavailable(f"Could not load {model_path}: {message}") from e
            return previous, f"Could not load the current version of {model_path}: {message}. Still showing {previous.file.name}."

    def _evict(self, keep: tuple[str, str]) -> None:
        while len(self._loaded) > self.capacity:
            key = next(k for k in self._loaded if k != keep)
            del self._loaded[key]
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def files(self) -> tuple[str, ...]:
        """The files of the networks loaded now, least recently used first."""
        return tuple(str(entry.file) for entry in self._loaded.values())

    def clear(self) -> None:
        self._loaded.clear()
        self._last_good.clear()
        self._failed.clear()
