"""The desktop visualizer on a virtual screen (Xvfb): it opens on a model and shows the renderer's
frame, its widgets change what is rendered, captures and clips are written, failures are reported.

Each test runs the real app (`python visualizer.py ...`) in a subprocess, driven by a script of steps
that feed real ImGui mouse and key events through its frame loop (viz/script.py), and reads back the
state, the window and the renderer's frame that the script dumps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240


def run_gui(args: list[str], tmp_path: Path, steps: list[dict] | None = None,
            timeout: float = TIMEOUT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, STYLEGAN_VIZ_CONFIG_DIR=str(tmp_path / "config"), **(env or {}))
    env.pop("STYLEGAN_VIZ_SCRIPT", None)
    if steps is not None:
        script = tmp_path / "script.json"
        script.write_text(json.dumps(steps))
        env["STYLEGAN_VIZ_SCRIPT"] = str(script)
    cmd = [sys.executable, str(ROOT / "visualizer.py"), *args, "--capture-dir", str(tmp_path / "captures")]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def load_dump(path: Path) -> tuple[dict, np.ndarray, np.ndarray | None]:
    state = json.loads(path.read_text())
    screen = np.load(path.with_suffix(".screen.npy"))
    image_path = path.with_suffix(".image.npy")
    return state, screen, (np.load(image_path) if image_path.exists() else None)


def on_screen(state: dict, screen: np.ndarray) -> np.ndarray:
    x, y, w, h = state["image_rect"]
    return screen[y:y + h, x:x + w].astype(np.int16)


def scaled_like_the_gui(image: np.ndarray, rect: list[int]) -> np.ndarray:
    """The frame at the GUI's whole-number zoom (nearest neighbour)."""
    zoom = rect[2] // image.shape[1]
    assert zoom >= 1 and rect[2] == image.shape[1] * zoom and rect[3] == image.shape[0] * zoom
    return np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1).astype(np.int16)


@pytest.fixture(scope="module")
def interactive_session(xdisplay, tiny_model, tmp_path_factory):
    """One app session that goes through the interactions, dumping its state after each."""
    tmp = tmp_path_factory.mktemp("gui")
    d = lambda name: str(tmp / f"{name}.json")  # noqa: E731
    steps = [
        {"wait": "frame"}, {"dump": d("start")},
        {"key": "right"}, {"wait": "frame"}, {"dump": d("seed_next")},
        {"drag_image": [120, 0]}, {"wait": "frame"}, {"dump": d("dragged")},
        {"click": "L2_36_64##layer"}, {"wait": "frame"}, {"dump": d("layer")},
        {"click": "Spectrum (FFT)"}, {"wait": "frame"}, {"dump": d("fft")},
        {"click": "Spectrum (FFT)"}, {"wait": "frame"},
        {"click": "output##layer"}, {"wait": "frame"},
        {"click": "Save image"}, {"frames": 2}, {"dump": d("saved")},
        {"key": "s", "mods": ["ctrl"]}, {"frames": 2}, {"dump": d("saved_ctrl_s")},
        {"set": "clip.duration", "value": 2.0}, {"set": "clip.fps", "value": 10.0},
        {"set": "latent.anim", "value": False},
        {"click": "Clip export"}, {"click": "Export clip"}, {"wait": "export", "timeout": 200},
        {"dump": d("exported")},
        {"key": "f1"}, {"frames": 2}, {"save_gui": str(tmp / "overlay.png")},
        {"quit": 0},
    ]
    proc = run_gui([str(tiny_model)], tmp, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc


def test_opens_on_the_model_and_shows_the_renderer_frame(interactive_session):
    tmp, _ = interactive_session
    state, screen, image = load_dump(tmp / "start.json")
    assert state["error"] is None and state["result_args_match"]
    assert state["model_family"].startswith("stylegan3")
    assert image is not None and image.shape == (64, 64, 3)
    shown = on_screen(state, screen)
    expected = scaled_like_the_gui(image, state["image_rect"])
    assert np.abs(shown - expected).max() <= 1, "the image area does not show the renderer's frame"
    # Something other than a flat frame, so the comparison means something.
    assert image.std() > 1


def test_gui_process_never_imports_torch(interactive_session):
    tmp, _ = interactive_session
    state, _, _ = load_dump(tmp / "exported.json")
    assert state["torch_imported"] is False
    assert state["renderer_pid"] not in (None, os.getpid())


def test_arrow_key_steps_the_seed_and_the_image_changes(interactive_session):
    tmp, _ = interactive_session
    before, _, image0 = load_dump(tmp / "start.json")
    after, screen, image1 = load_dump(tmp / "seed_next.json")
    assert after["seed"] == before["seed"] + 1
    assert np.abs(image1.astype(int) - image0.astype(int)).mean() > 1
    assert np.abs(on_screen(after, screen) - scaled_like_the_gui(image1, after["image_rect"])).max() <= 1


def test_dragging_on_the_image_moves_through_seeds(interactive_session):
    tmp, _ = interactive_session
    before, _, image0 = load_dump(tmp / "seed_next.json")
    after, _, image1 = load_dump(tmp / "dragged.json")
    assert after["latent"] != before["latent"] and len(after["latent"]) > 1   # fractional: a blend of seeds
    assert not np.array_equal(image0, image1)


def test_picking_a_layer_changes_the_shape_shown(interactive_session):
    tmp, _ = interactive_session
    before, _, _ = load_dump(tmp / "dragged.json")
    after, _, image = load_dump(tmp / "layer.json")
    assert before["shown_layer"] == "output" and after["shown_layer"] == "L2_36_64"
    assert after["args_layer"] == "L2_36_64"
    assert after["shown_shape"] != before["shown_shape"] and after["shown_shape"][1] > 3
    assert image.shape[:2] == tuple(after["shown_shape"][2:])


def test_spectrum_toggle_doubles_the_image_width(interactive_session):
    tmp, _ = interactive_session
    before, _, image0 = load_dump(tmp / "layer.json")
    after, screen, image1 = load_dump(tmp / "fft.json")
    assert after["fft_show"] and not before["fft_show"]
    assert image1.shape[1] == 2 * image0.shape[1] and image1.shape[0] == image0.shape[0]
    assert after["image_rect"][2] == 2 * after["image_rect"][3]


def test_save_image_writes_png_with_metadata(interactive_session):
    from PIL import Image

    tmp, _ = interactive_session
    state, _, image = load_dump(tmp / "saved.json")
    path = Path(state["last_saved"])
    assert path.exists() and path.suffix == ".png" and path.parent == tmp / "captures"
    with Image.open(path) as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), image)
        text = " ".join(str(v) for v in png.text.values())
    assert "sg3t_small" in text
    ctrl_s, _, _ = load_dump(tmp / "saved_ctrl_s.json")
    assert ctrl_s["last_saved"] != state["last_saved"] and Path(ctrl_s["last_saved"]).exists()


def test_exports_a_two_second_clip_at_10_fps(interactive_session):
    import imageio.v3 as iio

    tmp, _ = interactive_session
    state, _, _ = load_dump(tmp / "exported.json")
    clip = Path(state["last_clip"])
    assert clip.exists() and clip.suffix == ".mp4"
    frames = list(iio.imiter(clip))
    assert len(frames) == 20


def test_recent_models_persist_between_runs(interactive_session, tiny_model):
    tmp, _ = interactive_session
    recent = json.loads((tmp / "config" / "recent.json").read_text())["recent"]
    assert recent[0] == str(tiny_model)


def test_f1_overlay_lists_the_shortcuts(interactive_session):
    from PIL import Image

    tmp, _ = interactive_session
    with Image.open(tmp / "overlay.png") as shot:
        assert shot.size[0] >= 1000
    from viz.shortcuts import SHORTCUTS

    keys = {key for key, _ in SHORTCUTS}
    assert {"Left / Right", "Space", "Ctrl+S", "F1", "Esc"} <= keys


def test_save_gui_command_line(xdisplay, tiny_model, tmp_path):
    from PIL import Image

    out = tmp_path / "shot.png"
    proc = run_gui([str(tiny_model), "--seed", "7", "--layer", "L3_36_64", "--fft", "--save-gui", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Image.open(out) as shot:
        pixels = np.asarray(shot.convert("RGB"))
    assert pixels.shape[0] > 500 and pixels.shape[1] > 1000
    assert pixels.std() > 10                       # not a blank window


def test_a_bad_model_shows_a_readable_error_and_the_app_keeps_running(xdisplay, tmp_path):
    bad = tmp_path / "not_a_model.pkl"
    bad.write_bytes(b"this is not a network pickle")
    steps = [{"wait": "frame", "allow_error": True}, {"frames": 2}, {"dump": str(tmp_path / "error.json")},
             {"save_gui": str(tmp_path / "error.png")}, {"quit": 0}]
    proc = run_gui([str(bad)], tmp_path, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((tmp_path / "error.json").read_text())
    assert state["error"] and len(state["error"]) > 10
    assert (tmp_path / "error.png").exists()


def test_save_gui_fails_clearly_on_a_bad_model(xdisplay, tmp_path):
    bad = tmp_path / "not_a_model.pkl"
    bad.write_bytes(b"this is not a network pickle")
    proc = run_gui([str(bad), "--save-gui", str(tmp_path / "shot.png"), "--timeout", "120"], tmp_path)
    assert proc.returncode != 0
    assert "visualizer:" in proc.stderr and "renderer failed" in proc.stderr
    assert not (tmp_path / "shot.png").exists()


def test_an_absurd_clip_duration_neither_freezes_nor_kills_the_gui(xdisplay, tiny_model, tmp_path):
    """1e6 s at 60 fps used to build 6e7 RenderArgs in the GUI process before the export started. Typed
    into the field, the duration is now bounded; the clip's frames are described, not listed, and
    the worker renders them one by one, so the export starts at once and cancels cleanly."""
    steps = [
        {"wait": "frame"}, {"click": "Layers"}, {"click": "Clip export"},
        {"set": "clip.fps", "value": 60.0},
        {"click": "Duration (s)", "at": [0.05, 0.5]}, {"key": "a", "mods": ["ctrl"]}, {"type": "1000000"}, {"key": "enter"},
        {"frames": 2}, {"dump": str(tmp_path / "typed.json")},
        {"click": "Export clip"}, {"frames": 5}, {"dump": str(tmp_path / "exporting.json")},
        {"click": "Cancel"}, {"wait": "export", "timeout": 120}, {"dump": str(tmp_path / "cancelled.json")},
        {"quit": 0},
    ]
    proc = run_gui([str(tiny_model)], tmp_path, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    typed = json.loads((tmp_path / "typed.json").read_text())
    assert typed["clip_frames"] == 100_000 and typed["clip_duration"] < 1e6
    exporting = json.loads((tmp_path / "exporting.json").read_text())
    assert exporting["worker"]["jobs"] == 1
    cancelled = json.loads((tmp_path / "cancelled.json").read_text())
    assert cancelled["worker"]["jobs"] == 0 and cancelled["last_clip"] is None
    assert "clip export cancelled" in cancelled["notes"]
    assert not list((tmp_path / "captures").glob(".*partial"))


def test_the_model_line_says_what_the_file_is(xdisplay, tmp_path):
    """Issue 15: the GUI's model line names the project that wrote the file, its kind and protocol."""
    import lzma

    from tests.conftest import COMPAT_DIR

    model = tmp_path / "ada_paper256_snapshot.pkl"
    model.write_bytes(lzma.decompress((COMPAT_DIR / "ada_paper256_snapshot.pkl.xz").read_bytes()))
    steps = [{"wait": "frame"}, {"frames": 2}, {"dump": str(tmp_path / "state.json")}, {"quit": 0}]
    proc = run_gui([str(model)], tmp_path, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["error"] is None and state["model_family"] == "stylegan2"
    origin = state["model_origin"]
    assert origin.startswith("NVlabs/stylegan2-ada-pytorch: training snapshot"), origin
    assert "pickle protocol 3" in origin and "float16 blocks on CUDA" in origin


def test_the_wheel_zooms_about_the_cursor_and_the_right_button_pans(xdisplay, tiny_model, tmp_path):
    """Issue 20, inspect pixels: zoom and pan on the image; a right double-click fits it again."""
    d = lambda name: str(tmp_path / f"{name}.json")  # noqa: E731
    steps = [
        {"wait": "frame"}, {"frames": 2}, {"dump": d("fitted")},
        {"wheel": "##image", "at": [0.4, 0.45], "by": 2}, {"frames": 2}, {"dump": d("zoomed")},
        {"drag": "##image", "at": [0.5, 0.5], "by": [40, -30], "button": 1}, {"frames": 2}, {"dump": d("panned")},
        {"click": "##image", "at": [0.5, 0.5], "button": 1, "count": 2}, {"frames": 2}, {"dump": d("fitted_again")},
        {"quit": 0},
    ]
    proc = run_gui([str(tiny_model)], tmp_path, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fitted, _, image = load_dump(tmp_path / "fitted.json")
    zoomed, zoomed_screen, _ = load_dump(tmp_path / "zoomed.json")
    panned, panned_screen, _ = load_dump(tmp_path / "panned.json")
    again, _, _ = load_dump(tmp_path / "fitted_again.json")

    assert fitted["view_zoom"] == 1.0 and zoomed["view_zoom"] == pytest.approx(2.0)
    x0, y0, w, h = fitted["image_rect"]
    zx, zy, zw, zh = zoomed["image_rect"]
    assert zw == 2 * w and zh == 2 * h
    ax, ay, aw, ah = fitted["image_area"]
    mouse = (ax + 0.4 * aw, ay + 0.45 * ah)                  # the frame point under it stays under it
    assert abs((mouse[0] - x0) / w - (mouse[0] - zx) / zw) * zw <= 2
    assert abs((mouse[1] - y0) / h - (mouse[1] - zy) / zh) * zh <= 2
    assert panned["image_rect"][:2] == [zx + 40, zy - 30] and panned["seed"] == fitted["seed"]
    assert again["view_zoom"] == 1.0 and again["image_rect"] == fitted["image_rect"]

    # What is on screen is the frame at that zoom and offset, and only inside the image area.
    for state, screen in ((zoomed, zoomed_screen), (panned, panned_screen)):
        rx, ry, rw, rh = state["image_rect"]
        zoom = rw / image.shape[1]
        for fx, fy in ((0.3, 0.3), (0.5, 0.5), (0.7, 0.6)):
            px, py = int(ax + fx * aw), int(ay + fy * ah)
            col, row = int((px - rx) // zoom), int((py - ry) // zoom)
            assert np.abs(screen[py, px].astype(int) - image[row, col].astype(int)).max() <= 2
        assert rx < ax  # the zoomed frame reaches past the area on the left ...
        left_of_area = screen[int(ay + ah / 2), int(ax) - 3].astype(int)
        col = int((ax - 3 - rx) // zoom)
        assert np.abs(left_of_area - image[int((ay + ah / 2 - ry) // zoom), col].astype(int)).max() > 2 or \
            image[:, col].std() == 0  # ... but is not drawn over the controls
