"""The exploration sections in the real app on a virtual screen (Xvfb), driven by a script of clicks
(viz/script.py): directions computed and moved with a slider change the frame and Reset restores it;
a projection shows previews, ends in a W file that the frame then shows; a seed grid fills in and a
click on a cell jumps there; a run's snapshots and an A/B comparison are shown; the GUI process
never imports torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.images import write_emoji_like
from tests.test_gui import run_gui

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "checkpoints" / "demo.safetensors"
JOB_TIMEOUT = 200


@pytest.fixture(scope="module")
def explore_session(xdisplay, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gui_explore")
    d = lambda name: str(tmp / f"{name}.json")  # noqa: E731
    target = tmp / "target.png"
    write_emoji_like(target)
    run = tmp / "run"
    run.mkdir()
    shutil.copy(DEMO, run / "network-snapshot-000004.safetensors")
    shutil.copy(DEMO, run / "network-snapshot-000008.safetensors")
    (run / "log.jsonl").write_text(json.dumps({"event": "snapshot", "file": "network-snapshot-000008.safetensors",
                                               "kimg": 8.0, "chamfer": 0.25}) + "\n")
    steps = [
        {"wait": "frame"}, {"dump": d("start")},
        {"click": "Latent"}, {"click": "Truncation & noise"}, {"click": "Layers"}, {"click": "Capture"},  # folded
        {"click": "Directions"}, {"set": "explore.directions.num_samples", "value": 1024},
        {"click": "Compute directions"}, {"wait": "explore", "timeout": JOB_TIMEOUT}, {"frames": 2},
        {"dump": d("directions")},
        {"click": "##dir0", "at": [0.6, 0.5]}, {"click": "##dir2", "at": [0.2, 0.5]}, {"wait": "frame"},
        {"frames": 2}, {"dump": d("moved")}, {"save_gui": str(tmp / "directions.png")},
        {"click": "Save set"}, {"frames": 1},
        {"click": "Reset##Directions"}, {"wait": "frame"}, {"dump": d("reset")},
        {"set": "explore.directions.sweep_amplitude", "value": 4.0},
        {"set": "explore.directions.sweep_period", "value": 2.0}, {"click": "Sweep##directions"},
        {"frames": 40}, {"wait": "value", "path": "client.frames_rendered", "grows_by": 2, "timeout": JOB_TIMEOUT},
        {"dump": d("sweeping")}, {"click": "Sweep##directions"}, {"wait": "frame"},
        {"click": "Directions"},
        {"click": "Projection"}, {"set": "explore.projection.image_path", "value": str(target)},
        {"set": "explore.projection.steps", "value": 40},
        {"click": "Project##projection"},
        {"wait": "value", "path": "explore.projection.drawn.previews", "at_least": 3, "timeout": JOB_TIMEOUT},
        {"frames": 2}, {"dump": d("projecting")}, {"save_gui": str(tmp / "projection.png")},
        {"wait": "explore", "timeout": JOB_TIMEOUT}, {"wait": "frame"}, {"frames": 2}, {"dump": d("projected")},
        {"click": "Projection"},
        {"click": "Seed grid"}, {"set": "latent.w_file", "value": None}, {"click": "Render grid"},
        {"wait": "explore", "timeout": JOB_TIMEOUT}, {"frames": 2}, {"dump": d("grid")},
        {"click": "##seed grid", "at": [0.1, 0.1]}, {"wait": "frame"}, {"dump": d("jumped")},
        {"save_gui": str(tmp / "grid.png")},
        {"click": "Seed grid"},
        {"click": "Run over time & A/B"}, {"set": "explore.run.run_dir", "value": str(run)},
        {"click": "Load run"}, {"wait": "explore", "timeout": JOB_TIMEOUT},
        {"set": "explore.run.model_b", "value": str(run / "network-snapshot-000004.safetensors")},
        {"click": "Compare A/B"}, {"wait": "explore", "timeout": JOB_TIMEOUT}, {"frames": 2},
        {"dump": d("run")}, {"save_gui": str(tmp / "run.png")},
        {"click": "Run over time & A/B"},
        {"click": "Inspect pixels"}, {"click": "Inspect pixels under the cursor"},
        {"click": "##image", "at": [0.5, 0.5]}, {"frames": 3}, {"wait": "explore", "timeout": JOB_TIMEOUT},
        {"frames": 3}, {"dump": d("inspect")}, {"save_gui": str(tmp / "inspect.png")},
        {"click": "Inspect pixels"}, {"click": "Directions"}, {"click": "##dir1", "at": [0.8, 0.5]},
        {"wait": "frame"}, {"dump": d("before_quit")},
        {"quit": 0},
    ]
    proc = run_gui([str(DEMO)], tmp, steps, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The next start restores the session: the same set, sliders and frame.
    again = [{"wait": "frame"}, {"wait": "explore", "timeout": JOB_TIMEOUT}, {"frames": 3}, {"wait": "frame"},
             {"dump": d("restored")}, {"quit": 0}]
    proc = run_gui([str(DEMO)], tmp, again, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp


def _state(tmp: Path, name: str) -> dict:
    return json.loads((tmp / f"{name}.json").read_text())


def _image(tmp: Path, name: str) -> np.ndarray:
    return np.load(tmp / f"{name}.image.npy").astype(np.int16)


def test_directions_panel_moves_the_frame_and_reset_restores_it(explore_session):
    tmp = explore_session
    d = _state(tmp, "directions")["explore"]["directions"]
    assert d["error"] is None and d["method"] == "ganspace" and d["count"] == 10
    assert all(a >= b for a, b in zip(d["explained"], d["explained"][1:]))
    moved = _state(tmp, "moved")
    strengths = moved["explore"]["directions"]["strengths"]
    assert strengths[0] > 0 and strengths[2] < 0 and strengths[1] == 0     # the two sliders clicked
    assert np.abs(_image(tmp, "moved") - _image(tmp, "start")).mean() > 1
    assert moved["explore"]["directions"]["last_saved"] is None
    reset = _state(tmp, "reset")
    assert Path(reset["explore"]["directions"]["last_saved"]).name == "directions-ganspace-00000.npy"
    assert reset["explore"]["directions"]["strengths"] == [0.0] * 10
    assert np.array_equal(_image(tmp, "reset"), _image(tmp, "start"))
    assert reset["torch_imported"] is False


def test_projection_panel_previews_and_keeps_a_w_file(explore_session):
    tmp = explore_session
    during = _state(tmp, "projecting")["explore"]["projection"]
    assert during["previews"] >= 3 and during["distance"] is not None and during["crop_box"] == [8, 0, 88, 80]
    done = _state(tmp, "projected")
    p = done["explore"]["projection"]
    assert p["error"] is None and not p["running"] and p["crop_box"] == [8, 0, 88, 80]
    assert p["distance_kind"] == "pixels"             # checkpoints/ holds no training run with D, nor is the
    assert "not an official training snapshot" in p["distance_note"]   # demo model a snapshot holding one
    w = np.load(p["w_file"], allow_pickle=False)
    assert w.dtype == np.float32 and w.ndim == 2
    assert done["error"] is None and done["torch_imported"] is False
    assert any("projected W saved" in n for n in done["notes"])


def test_seed_grid_fills_in_and_a_click_jumps_to_a_cell(explore_session):
    tmp = explore_session
    grid = _state(tmp, "grid")["explore"]["seed_grid"]
    assert grid["error"] is None and grid["cells"] == grid["total"] == 12
    assert grid["seeds"][0] is not None
    jumped = _state(tmp, "jumped")
    assert jumped["explore"]["seed_grid"]["clicked"] == 0
    assert jumped["seed"] == grid["seeds"][0]


def test_run_over_time_and_ab_are_shown(explore_session):
    tmp = explore_session
    run = _state(tmp, "run")["explore"]["run"]
    assert run["error"] is None and run["snapshots"] == 2 and run["kimg"] == [4.0, 8.0]
    assert run["compared"] and run["max_difference"] == 0          # the same network twice


def test_inspect_shows_the_values_under_the_cursor(explore_session):
    tmp = explore_session
    state = _state(tmp, "inspect")
    inspect = state["explore"]["inspect"]
    assert inspect["enabled"] and inspect["error"] is None and inspect["part"] == "image"
    x, y = inspect["pixel"]
    assert 28 <= x <= 36 and 28 <= y <= 36                     # the centre of the 64 px frame
    image = np.load(tmp / "inspect.image.npy")
    shown = np.clip(np.asarray(inspect["values"]) * 127.5 + 128, 0, 255)   # the display convention
    assert len(inspect["values"]) == 3 and np.abs(shown - image[y, x]).max() <= 1
    assert state["torch_imported"] is False


def test_sweeping_a_direction_moves_the_frame(explore_session):
    tmp = explore_session
    state = _state(tmp, "sweeping")
    assert state["explore"]["directions"]["sweeping"] is True
    assert np.abs(_image(tmp, "sweeping") - _image(tmp, "reset")).mean() > 0.5


def test_directions_come_back_with_the_session(explore_session):
    tmp = explore_session
    before = _state(tmp, "before_quit")["explore"]["directions"]
    after = _state(tmp, "restored")["explore"]["directions"]
    assert before["strengths"][1] > 0 and after["strengths"] == before["strengths"]
    assert after["count"] == 10 and after["method"] == "ganspace" and after["error"] is None
    assert np.array_equal(_image(tmp, "restored"), _image(tmp, "before_quit"))


def test_a_saved_frames_directions_become_the_sliders():
    from renderer.directions import SEFA, DirectionMove, DirectionSource
    from renderer.protocol import RenderArgs
    from viz.frame_state import settings_from_args
    from viz.state import Settings

    sefa = DirectionSource(method=SEFA, row_range="fine")
    args = RenderArgs(model="m.pkl", directions=(DirectionMove(sefa, 2, 1.5), DirectionMove(sefa, 0, -0.5)),
                      direction_rows="custom", direction_custom_rows=(3, 4))
    d = settings_from_args(args, Settings()).directions
    assert d.source == sefa and d.strengths == (-0.5, 0.0, 1.5) and d.rows == "custom" and d.custom_rows == "3, 4"
    assert settings_from_args(RenderArgs(model="m.pkl"), Settings(directions=d)).directions.strengths == (0.0,) * 3


def test_a_projection_of_an_official_snapshot_is_kept_in_the_capture_sections_folder(xdisplay, tmp_path):
    """The projected W goes into the folder the Capture section shows now (changed after the start; a
    start without --capture-dir once crashed the GUI here), and the snapshot's own D measured the fit."""
    import lzma

    from tests.conftest import COMPAT_DIR

    snapshot = tmp_path / "network-snapshot-000000.pkl"
    snapshot.write_bytes(lzma.decompress((COMPAT_DIR / "ada_paper256_snapshot.pkl.xz").read_bytes()))
    target = tmp_path / "target.png"
    write_emoji_like(target)
    chosen = tmp_path / "chosen"
    steps = [{"wait": "frame"}, {"set": "capture.directory", "value": str(chosen)},
             {"click": "Projection"}, {"set": "explore.projection.image_path", "value": str(target)},
             {"set": "explore.projection.steps", "value": 3}, {"click": "Project##projection"},
             {"wait": "explore", "timeout": JOB_TIMEOUT}, {"wait": "frame"}, {"frames": 2},
             {"dump": str(tmp_path / "done.json")}, {"quit": 0}]
    proc = run_gui([str(snapshot)], tmp_path, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    p = _state(tmp_path, "done")["explore"]["projection"]
    assert p["error"] is None and p["distance_kind"] == "discriminator" and p["distance_note"] is None
    assert Path(p["w_file"]).parent == chosen and np.load(p["w_file"]).shape[1] == 32


def test_a_projection_measured_with_lpips_from_the_files_the_user_named(xdisplay, tiny_model, tmp_path):
    from tests.perceptual_weights import write_vgg16

    vgg = write_vgg16(tmp_path / "vgg16-397923af.pth")
    target = tmp_path / "target.png"
    write_emoji_like(target)
    steps = [{"wait": "frame"}, {"click": "Projection"},
             {"set": "explore.projection.image_path", "value": str(target)},
             {"set": "explore.projection.steps", "value": 2}, {"set": "explore.projection.distance", "value": "lpips"},
             {"set": "explore.projection.vgg_path", "value": str(vgg)}, {"frames": 2},
             {"click": "Project##projection"}, {"wait": "explore", "timeout": JOB_TIMEOUT}, {"wait": "frame"},
             {"frames": 2}, {"dump": str(tmp_path / "lpips.json")},
             {"set": "explore.projection.vgg_path", "value": str(tmp_path / "missing.pth")},
             {"click": "Project##projection"}, {"wait": "explore", "timeout": JOB_TIMEOUT}, {"wait": "frame"},
             {"frames": 2}, {"dump": str(tmp_path / "missing.json")}, {"quit": 0}]
    proc = run_gui([str(tiny_model)], tmp_path, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    p = _state(tmp_path, "lpips")["explore"]["projection"]
    assert p["error"] is None and p["distance_kind"] == "lpips" and "uncalibrated" in p["distance_note"]
    missing = _state(tmp_path, "missing")
    assert "missing.pth: cannot be read" in missing["explore"]["projection"]["error"] and missing["error"] is None
