"""Saving a frame so that it can be reproduced: a PNG at native resolution carrying the full render
state in its text metadata, and a JSON sidecar with the same content. Torch-free (the GUI uses it).

Both files are written completely to temporary names in the target directory, then renamed into
place, so a crash never leaves a half-written file under the user's name.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image, PngImagePlugin

from renderer.directions import moves_from_json
from renderer.files import write_atomic_group
from renderer.protocol import ModelInfo, RenderArgs

FORMAT_VERSION = 1
PNG_KEY_STATE = "stylegan-visualizer"      # PNG text chunk holding the JSON render state
PNG_KEY_MODEL = "model"                    # PNG text chunk holding the model file name
SOFTWARE = "StyleGAN3 visualizer"


def render_state(args: RenderArgs, model: ModelInfo | None, extra: Mapping[str, Any] | None = None,
                 image_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The JSON document stored with a frame."""
    state: dict[str, Any] = {"format_version": FORMAT_VERSION, "args": dataclasses.asdict(args)}
    state["model_file"] = Path(model.snapshot or model.path).name if model is not None else Path(args.model).name
    state["model"] = dataclasses.asdict(model) if model is not None else None
    if image_shape is not None:
        state["image"] = {"height": int(image_shape[0]), "width": int(image_shape[1])}
    if extra:
        state["extra"] = dict(extra)
    return state


def save_png(path: str | os.PathLike, image: np.ndarray, args: RenderArgs, model: ModelInfo | None,
             extra: Mapping[str, Any] | None = None) -> Path:
    """Save `image` (uint8 H x W x 3) as a PNG with the render state, and `<name>.json` beside it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(path.suffix + ".png") if path.suffix else path.with_suffix(".png")
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected a uint8 H x W x 3 image, got {image.dtype} {list(image.shape)}")
    state = render_state(args, model, extra, image.shape)
    text = json.dumps(state, indent=1)

    info = PngImagePlugin.PngInfo()
    info.add_itxt(PNG_KEY_STATE, text)
    info.add_text(PNG_KEY_MODEL, state["model_file"])
    info.add_text("Software", SOFTWARE)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", pnginfo=info)

    # The PNG first: a process killed between the two renames leaves a PNG without its sidecar, never a
    # sidecar that describes another image.
    write_atomic_group([(path, buffer.getvalue()), (path.with_suffix(".json"), (text + "\n").encode("utf-8"))])
    return path


def read_state(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """The render state from a sidecar .json, a saved .png, JSON text, or an already parsed document."""
    if isinstance(source, Mapping):
        return dict(source)
    text = str(source)
    if text.lstrip().startswith("{"):
        return json.loads(text)
    path = Path(source)
    if path.suffix.lower() == ".png":
        with Image.open(path) as img:
            chunk = img.text.get(PNG_KEY_STATE)  # type: ignore[attr-defined]
        if chunk is None:
            raise ValueError(f"{path.name} carries no render state (not saved by this visualizer)")
        return json.loads(chunk)
    return json.loads(path.read_text(encoding="utf-8"))


def _tuples(value: Any) -> Any:
    """JSON lists back to the nested tuples RenderArgs holds."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def args_from_json(source: str | os.PathLike | Mapping[str, Any]) -> RenderArgs:
    """The RenderArgs that reproduce a saved frame. Fields this version does not know are ignored;
    fields the file lacks keep their defaults."""
    state = read_state(source)
    stored = state.get("args", state)
    known = {f.name for f in dataclasses.fields(RenderArgs)}
    values = {k: _tuples(v) for k, v in stored.items() if k in known}
    if "directions" in stored:
        values["directions"] = moves_from_json(stored["directions"])
    return RenderArgs(**values)
