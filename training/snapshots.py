"""What a training run leaves in its run directory, each file written atomically (a reader or
a crash sees the old file or the complete new one):

    config.json                              the training configuration (written once)
    network-snapshot-{kimg:06d}.safetensors  G_ema in our native format, every snapshot; its
                                             metadata: images seen, training time, config, quality
    grid-{kimg:06d}.png                      the fixed seeds' samples at that snapshot
    training-state.pt                        everything needed to resume: G, D, G_ema, both
                                             optimisers, images seen, RNG state (latest only)
    log.jsonl                                one JSON line per snapshot (and per stop)

The visualizer follows the run by loading the newest network-snapshot (renderer.worker.models).
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from renderer.files import write_atomic
from renderer.worker.models import save_generator
from torch_utils.torch_save import TorchSaveError, read_checked

STATE_FILE = "training-state.pt"
CONFIG_FILE = "config.json"
LOG_FILE = "log.jsonl"


def snapshot_name(images_seen: int) -> str:
    """network-snapshot-{kimg:06d}.safetensors, kimg = thousands of real images shown to D."""
    return f"network-snapshot-{images_seen // 1000:06d}.safetensors"


def grid_name(images_seen: int) -> str:
    return f"grid-{images_seen // 1000:06d}.png"


def write_snapshot(G_ema: torch.nn.Module, run_dir: Path, images_seen: int, metadata: dict[str, Any]) -> Path:
    """G_ema as network-snapshot-{kimg:06d}.safetensors; `metadata` goes into the file's header."""
    path = run_dir / snapshot_name(images_seen)
    save_generator(G_ema, path, metadata={**metadata, "images_seen": images_seen})
    return path


def write_state(path: Path, state: dict[str, Any]) -> None:
    """torch.save the resume state into memory, then write it atomically (temp file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


class UnreadableState(ValueError):
    """A training-state.pt that is not what this project's training writes; the message says why."""


def read_state(path: Path) -> dict[str, Any]:
    """The resume state: a regular file (never a FIFO or device), a torch.save archive whose records
    fit in the file (checked first), loaded with torch's weights-only unpickler (tensors, numbers,
    strings, dicts; no code runs). UnreadableState otherwise (torch_utils.torch_save)."""
    try:
        state = read_checked(path)
    except TorchSaveError as e:
        raise UnreadableState(f"{e}; it is not a training state of this project") from None
    if not isinstance(state, dict):
        raise UnreadableState(f"{Path(path).name} holds a {type(state).__name__}, not a training state's dict")
    return state


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"))


def append_log(run_dir: Path, record: dict[str, Any]) -> None:
    """One JSON line; appended whole with one write, flushed to disk."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(run_dir / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite_log(run_dir: Path, records: list[dict[str, Any]]) -> None:
    """Replace the whole log with `records`, atomically."""
    text = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
    write_atomic(run_dir / LOG_FILE, text.encode("utf-8"))


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / LOG_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def image_grid(images: torch.Tensor, columns: int | None = None) -> np.ndarray:
    """NCHW images in [-1, 1] -> one uint8 HWC grid, `columns` wide (default: square-ish)."""
    n, c, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    pixels = (images.detach().float().cpu() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    canvas = torch.full([rows * columns, c, h, w], 255, dtype=torch.uint8)
    canvas[:n] = pixels
    grid = canvas.reshape(rows, columns, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, columns * w, c)
    return grid.numpy()


def write_png(path: Path, image: Image.Image) -> None:
    """`image` as a PNG file, written atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())


def write_grid(path: Path, images: torch.Tensor, columns: int | None = None) -> None:
    write_png(path, Image.fromarray(image_grid(images, columns)))
