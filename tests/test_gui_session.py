"""The GUI as a user lives in it (issue 19), in the real app on a virtual screen, driven through its
frame loop by scripted mouse and key events (viz/script.py): a model switch carries the layer over,
Esc and quitting, an idle window that sleeps, a saved frame that reopens bit for bit (also through
`render --state`), failed loads that leave the loaded model alone, the docking layout, undo and redo,
the model browser, the small confusions, and a session that survives a restart (with the exploration
sections' fields).

One long session (`user_session`) goes through most of it, dumping its state after each step; a
second launch in the same config directory restores it; two short launches start on a damaged and
on a newer session file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_gui import ROOT, run_gui

JOB_TIMEOUT = 200
SAVED_FRAME = "sg3t_small-seed0101-00000.png"      # the first Save image at latent x = 100.76 of the T model


def _state(tmp: Path, name: str) -> dict:
    return json.loads((tmp / f"{name}.json").read_text())


def _image(tmp: Path, name: str) -> np.ndarray:
    return np.load(tmp / f"{name}.image.npy")


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model, tiny_sg3r_model, tiny_sg2_model):
    """A folder to browse: a training run, a plain folder of pickles, a damaged pickle."""
    root = tmp_path_factory.mktemp("browse")
    run = root / "run"
    run.mkdir()
    shutil.copy(tiny_model, run / "network-snapshot-000000.safetensors")
    pickles = root / "pickles"
    pickles.mkdir()
    (pickles / "a.pkl").write_bytes(b"not a network")
    (pickles / "b.pkl").write_bytes(b"nor this")
    corrupt = root / "corrupt.pkl"
    corrupt.write_bytes(b"this is not a network pickle")
    return {"root": root, "run": run, "pickles": pickles, "corrupt": corrupt, "t": tiny_model, "r": tiny_sg3r_model,
            "sg2": tiny_sg2_model}


@pytest.fixture(scope="module")
def user_session(xdisplay, files, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("user_session")
    d = lambda name: {"dump": str(tmp / f"{name}.json")}  # noqa: E731
    captures = tmp / "captures"
    root = files["root"]
    steps = [
        {"wait": "frame"}, d("start"),
        # 3. An idle window with a frame shown sleeps.
        {"idle": 4.0, "out": str(tmp / "idle.json")},
        # 1 and 10. A layer of the T model, a keyframe, then the R model: the layer is carried over by its
        # place from the end, the keyframes go (with a note), the T model's frame never shows under R.
        {"click": "Clip export"}, {"set": "clip.source", "value": 1}, {"click": "Add keyframe"}, {"frames": 2},
        d("keyframe_t"),
        {"click": "L5_52_64##layer"}, {"wait": "frame"}, d("layer_t"),
        {"drop": str(files["r"])}, {"frames": 1}, d("switching"), {"wait": "frame"}, {"frames": 2}, d("layer_r"),
        {"click": "Spectrum (FFT)"}, {"wait": "frame"}, {"frames": 2}, d("radial"),
        {"click": "L13_64_64##layer"}, {"wait": "frame"}, {"frames": 2}, d("critical"),
        {"click": "Spectrum (FFT)"}, {"click": "output##layer"}, {"wait": "frame"},
        # 6. Failed loads: a missing path, a folder of pickles, a damaged file.
        {"drop": str(root / "missing.pkl")}, {"frames": 2}, d("missing"),
        {"drop": str(files["pickles"])}, {"frames": 2}, d("folder"),
        {"drop": str(files["corrupt"])}, {"wait": "frame", "allow_error": True}, {"frames": 2}, {"wait": "frame"},
        {"frames": 2},
        d("corrupt"),
        {"hover": "##model path"}, {"frames": 3}, d("tooltip"),
        # 9. The browser without --browse-dir (the folder dropped above opened it there): reopened, it starts
        # in the model's folder; up, into the browse folder, open the run.
        {"click": "Browse"}, {"frames": 2}, {"click": "Browse"}, {"frames": 2}, d("browser"),
        {"scroll_to": "Browse"}, {"click": ".. (up)"}, {"frames": 2}, {"scroll_to": "Browse"},
        {"click": f"[dir] {root.name}/"}, {"frames": 2}, d("browse_root"),
        {"scroll_to": "Browse"}, {"click": "[run] run  (1 snapshots)"}, {"wait": "frame"}, {"frames": 2}, d("run_open"),
        # 10. Follow run, then a single file dropped: unticked.
        {"click": "Follow run"}, {"frames": 2}, d("following"),
        {"drop": str(files["t"])}, {"wait": "frame"}, {"frames": 2}, d("single_file"),
        {"click": "Browse"},
        # 8. Undo and redo: a drag of the psi slider is one step; the menu's Undo; Reset of a section.
        {"drag": "Truncation psi", "by": [-90, 0]}, {"frames": 2}, d("dragged"),
        {"key": "z", "mods": ["ctrl"]}, {"frames": 2}, d("undone"),
        {"key": "z", "mods": ["ctrl", "shift"]}, {"frames": 2}, d("redone"),
        {"click": "Undo##bar"}, {"frames": 2}, d("undone_bar"),
        {"key": "z", "mods": ["ctrl", "shift"]}, {"frames": 2},
        {"click": "Reset##Truncation & noise"}, {"frames": 2}, d("reset"),
        # 4. A fractional, style-mixed, transformed frame saved, changed, then reopened from its PNG and JSON.
        {"set": "latent.x", "value": 100.76}, {"set": "latent.y", "value": 0.0},
        {"click": "Style mixing"}, {"click": "2##mixrow"}, {"click": "3##mixrow"}, {"set": "stylemix.seed", "value": 7},
        {"click": "Equivariance"}, {"set": "equivariance.translate", "value": [0.11, -0.04]},
        {"set": "equivariance.rotate", "value": 0.03}, {"wait": "frame"}, d("to_save"),
        {"click": "Save image"}, {"frames": 2}, d("saved"),
        {"key": "right"}, {"set": "trunc_noise.psi", "value": 0.7}, {"set": "equivariance.rotate", "value": 0.2},
        {"wait": "frame"}, d("changed"),
        {"drop": str(captures / SAVED_FRAME)}, {"wait": "frame"}, {"frames": 2}, d("reopened_png"),
        {"key": "right"}, {"wait": "frame"},
        {"drop": str(captures / SAVED_FRAME.replace(".png", ".json"))}, {"wait": "frame"}, {"frames": 2},
        d("reopened_json"),
        {"click": "Equivariance"}, {"click": "Style mixing"},
        # 5. Equivariance: the translation animates alone, its value moves in the field, unticking pauses it.
        {"click": "Equivariance"}, {"click": "Anim##translate"}, {"frames": 20}, d("translating"),
        {"click": "Anim##translate"}, {"frames": 3}, d("paused"), {"wait": "frame"}, d("paused_frame"),
        {"drag": "Drag slow##rotate", "by": [80, 0]}, {"frames": 2}, d("rotated"),
        {"click": "Equivariance"},
        # 7. The docking layout: widen the controls at their splitter; the analysis panel beside the image.
        {"drag": "Controls##window", "at": [1.0, 0.5], "offset": [2, 0], "by": [120, 0]}, {"frames": 3}, d("docked"),
        {"click": "Analysis"}, {"click": "Per-layer spectra"}, {"wait": "analysis", "timeout": JOB_TIMEOUT},
        {"frames": 3}, d("analysis"), {"save_gui": str(tmp / "analysis.png")}, {"click": "Analysis"},
        # 10. The keyframe list: add, jump to one, re-record it, delete one.
        {"key": "right"}, {"wait": "frame"}, {"click": "Add keyframe"}, {"frames": 2},
        {"key": "right"}, {"wait": "frame"}, {"click": "Add keyframe"}, {"frames": 2}, d("two_keys"),
        {"click": "Go##key0"}, {"frames": 2}, d("jumped"),
        {"key": "right"}, {"frames": 1}, {"click": "Re-record##key0"}, {"frames": 2}, d("rerecorded"),
        {"click": "Delete##key1"}, {"frames": 2}, d("deleted"),
        # 2. Esc: leaves a text field, closes a popup; quitting with keyframes not exported asks.
        {"click": "Seed", "at": [0.2, 0.5]}, {"frames": 2}, d("typing"), {"key": "escape"}, {"frames": 2},
        d("esc_field"),
        {"click": "Recent"}, {"frames": 2}, d("popup"), {"key": "escape"}, {"frames": 2}, d("esc_popup"),
        {"key": "escape"}, {"frames": 2}, d("esc_quit"), {"save_gui": str(tmp / "quit_dialog.png")},
        {"key": "escape"}, {"frames": 2}, d("esc_cancel"),
        {"close_window": True}, {"frames": 2}, d("close_button"), {"click": "Cancel##quit"}, {"frames": 2},
        # A session file: save it, change a setting, the quit dialog says so; quit from the dialog.
        {"click": "File"}, {"click": "Save session as ..."}, {"frames": 2}, {"key": "a", "mods": ["ctrl"]},
        {"type": str(tmp / "my_session.json")}, {"key": "enter"}, {"frames": 2}, d("session_saved"),
        {"key": "right"}, {"wait": "frame"}, {"frames": 2}, d("final"),
        {"key": "escape"}, {"frames": 2}, d("quit_asked"), {"click": "Quit##confirm"}, {"wait": "closed"},
    ]
    proc = run_gui([str(files["t"])], tmp, steps, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp, proc


@pytest.fixture(scope="module")
def restarted(user_session):
    """The app launched again in the same config directory, with no model on the command line."""
    tmp, _ = user_session
    d = lambda name: {"dump": str(tmp / f"{name}.json")}  # noqa: E731
    steps = [{"wait": "frame"}, {"frames": 3}, d("restarted"),
             {"click": "Clear keyframes"}, {"frames": 2}, {"key": "escape"}, {"wait": "closed"}]
    proc = run_gui([], tmp, steps)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp


# 1. A model switch -------------------------------------------------------------------------------

def test_the_layer_is_carried_over_to_the_new_model_by_its_place(user_session):
    tmp, _ = user_session
    before, after = _state(tmp, "layer_t"), _state(tmp, "layer_r")
    assert before["shown_layer"] == "L5_52_64"
    from_end = len(before["layers"]) - before["layers"].index("L5_52_64")
    assert after["model_family"] == "stylegan3-r"
    assert after["shown_layer"] == after["layers"][len(after["layers"]) - from_end] == "L5_52_128"
    assert after["error"] is None and not any("no layer" in e for e in after["errors_shown"])
    assert any("no layer L5_52_64" in n and "L5_52_128" in n for n in after["notes"])
    assert _image(tmp, "layer_r").shape[:2] == tuple(after["shown_shape"][2:])


def test_the_old_models_frame_never_shows_under_the_new_one(user_session):
    tmp, _ = user_session
    switching = _state(tmp, "switching")
    assert switching["args_model"] != _state(tmp, "layer_t")["args_model"]
    for name in ("switching", "layer_r"):
        state = _state(tmp, name)
        assert state["image_model"] == state["args_model"] or state["image_rect"] is None


def test_keyframes_are_cleared_with_a_note_when_the_model_changes(user_session):
    tmp, _ = user_session
    assert len(_state(tmp, "keyframe_t")["keyframes"]) == 1
    after = _state(tmp, "layer_r")
    assert after["keyframes"] == [] and any("keyframes cleared" in n for n in after["notes"])


# 2. Esc and quitting ----------------------------------------------------------------------------

def test_esc_leaves_a_text_field_and_closes_a_popup_without_quitting(user_session):
    tmp, _ = user_session
    assert _state(tmp, "typing")["typing"] is True
    assert _state(tmp, "popup")["popup_open"] is True
    for name in ("esc_field", "esc_popup"):
        state = _state(tmp, name)
        assert state["should_close"] is False and state["quit_dialog"] is False and state["typing"] is False
        assert state["popup_open"] is False


def test_quitting_with_unsaved_work_asks_first(user_session):
    tmp, _ = user_session
    asked = _state(tmp, "esc_quit")
    assert asked["quit_dialog"] is True and asked["should_close"] is False
    assert any("keyframes" in r for r in asked["quit_reasons"])
    assert _state(tmp, "esc_cancel")["quit_dialog"] is False            # Esc cancels the dialog
    button = _state(tmp, "close_button")
    assert button["quit_dialog"] is True and button["should_close"] is False
    final = _state(tmp, "quit_asked")
    assert final["quit_dialog"] is True
    assert any("my_session.json" in r for r in final["quit_reasons"])    # changed since it was saved


def test_esc_with_nothing_unsaved_quits_at_once(restarted):
    # The restarted session's script ends with Esc after clearing the keyframes, and waits for the
    # window to close by itself: the fixture's exit status 0 is the check.
    assert _state(restarted, "restarted")["quit_dialog"] is False


# 3. Idle CPU ------------------------------------------------------------------------------------

def test_an_idle_window_sleeps(user_session):
    tmp, _ = user_session
    idle = json.loads((tmp / "idle.json").read_text())
    assert idle["wall_seconds"] >= 3.9
    assert idle["cpu_seconds"] / idle["wall_seconds"] < 0.05, idle
    assert idle["frames"] <= 2 * idle["wall_seconds"] + 2


# 4. A saved frame reopens bit for bit -----------------------------------------------------------

def test_a_saved_fractional_mixed_transformed_frame_reopens_exactly(user_session):
    tmp, _ = user_session
    saved = _state(tmp, "saved")
    path = Path(saved["last_saved"])
    assert path.name == SAVED_FRAME
    args = saved["settings"]
    assert args["latent"]["x"] == 100.76 and args["stylemix"]["rows"] == [2, 3]
    assert len(saved["latent"]) == 2                                  # seeds 100 and 101, blended
    with Image.open(path) as png:
        pixels = np.asarray(png.convert("RGB"))
    assert np.array_equal(pixels, _image(tmp, "to_save"))
    assert not np.array_equal(pixels, _image(tmp, "changed"))
    for name in ("reopened_png", "reopened_json"):
        state = _state(tmp, name)
        assert np.array_equal(_image(tmp, name), pixels), name
        assert state["latent"] == saved["latent"] and state["result_args_match"]
        assert any(f"opened the frame saved in {path.name if name.endswith('png') else path.with_suffix('.json').name}"
                   in n for n in state["notes"])


def test_render_state_reproduces_the_saved_frame_headless(user_session, tmp_path):
    tmp, _ = user_session
    path = Path(_state(tmp, "saved")["last_saved"])
    out = tmp_path / "again.png"
    proc = subprocess.run([sys.executable, str(ROOT / "visualizer.py"), "render", "--state", str(path), "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Image.open(path) as a, Image.open(out) as b:
        assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


def test_render_options_set_the_same_frame_by_hand(user_session, tmp_path, files):
    """--position, --mix-seed, --mix-rows, --translate and --rotate: the GUI's fractional, mixed, transformed frame."""
    tmp, _ = user_session
    path = Path(_state(tmp, "saved")["last_saved"])
    out = tmp_path / "by_hand.png"
    cmd = [sys.executable, str(ROOT / "visualizer.py"), "render", str(files["t"]), "--position", "100.76", "0",
           "--mix-seed", "7", "--mix-rows", "2-3", "--translate", "0.11", "-0.04", "--rotate", "0.03", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Image.open(path) as a, Image.open(out) as b:
        assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


# 5. Equivariance animation ----------------------------------------------------------------------

def test_the_translation_animates_alone_and_pauses_where_it_stands(user_session):
    tmp, _ = user_session
    moving, paused, frame = _state(tmp, "translating"), _state(tmp, "paused"), _state(tmp, "paused_frame")
    eq = moving["settings"]["equivariance"]
    assert eq["translate_anim"] and not eq["rotate_anim"] and eq["translate_phase"] != 0
    still = paused["settings"]["equivariance"]
    assert not still["translate_anim"] and still["translate_phase"] == 0
    assert still["translate"] != eq["translate"] and still["rotate"] == eq["rotate"]      # folded in, not snapped back
    m = np.array(frame["settings"]["equivariance"]["translate"])
    assert np.allclose(m, still["translate"])
    rotated = _state(tmp, "rotated")["settings"]["equivariance"]
    assert rotated["rotate"] > still["rotate"] and rotated["translate"] == still["translate"]


# 6. Failed loads --------------------------------------------------------------------------------

def test_failed_loads_leave_the_loaded_model_and_recent_alone(user_session, files):
    tmp, _ = user_session
    before = _state(tmp, "critical")
    for name, bad in (("missing", "missing.pkl"), ("folder", "pickles"), ("corrupt", "corrupt.pkl")):
        state = _state(tmp, name)
        assert state["model_path"] == before["model_path"] == str(files["r"]), name
        assert state["path_field"] == str(files["r"]) and state["model_pending"] is None, name
        assert not any(bad in p for p in state["recent"]), name
        assert state["error"] is None and state["model_family"] == "stylegan3-r", name
    assert any("No such file" in n for n in _state(tmp, "missing")["notes"])
    folder = _state(tmp, "folder")
    assert any("is a folder, not a training run" in n for n in folder["notes"])
    assert folder["browser_dir"] == str(files["pickles"]) and "a.pkl" in folder["browser_entries"]
    failure = [n for n in _state(tmp, "corrupt")["notes"] if "corrupt.pkl" in n]
    assert len(failure) == 1 and failure[0].count(str(files["corrupt"])) == 1


def test_the_path_field_shows_the_full_path_in_a_tooltip(user_session, files):
    tmp, _ = user_session
    assert str(files["r"]) in _state(tmp, "tooltip")["model_tooltip"]


# 7. Layout --------------------------------------------------------------------------------------

def test_the_controls_dock_can_be_widened_and_the_analysis_panel_docks_beside_the_image(user_session):
    tmp, _ = user_session
    before, after, analysis = _state(tmp, "reset"), _state(tmp, "docked"), _state(tmp, "analysis")
    width = lambda s: s["windows"]["Controls"][2] - s["windows"]["Controls"][0]  # noqa: E731
    assert width(after) > width(before) + 60
    area = analysis["image_area"]
    panel = analysis["windows"]["Analysis"]
    assert panel[0] >= area[0] + area[2] - 2                           # right of the image area
    assert analysis["windows"]["Controls"][2] <= area[0] + 2           # the controls on its left
    x, y, w, h = analysis["image_rect"]
    zoom, margin = w // 64, 8 * analysis["ui_scale"]
    assert min(area[2], area[3]) - 2 * margin < (zoom + 1) * 64        # the largest whole zoom that fits
    assert not (tmp / "imgui.ini").exists()
    ini = json.loads((tmp / "config" / "session.json").read_text())["view"]["imgui_ini"]
    assert "[Docking][Data]" in ini


@pytest.fixture(scope="module", params=["1280x720", "3840x2160"])
def screen_layout(request, other_screens, tiny_model, tmp_path_factory, monkeypatch_module):
    """The app on a small and on a 4K screen, window size left to it, a resampling layer's per-layer
    spectra shown."""
    monkeypatch_module.setenv("DISPLAY", other_screens(request.param))
    tmp = tmp_path_factory.mktemp(f"screen_{request.param}")
    steps = [{"wait": "frame"}, {"click": "L2_36_64##layer"}, {"wait": "frame"}, {"click": "Analysis"},
             {"click": "Per-layer spectra"},
             {"wait": "analysis", "timeout": JOB_TIMEOUT}, {"frames": 3}, {"dump": str(tmp / "shown.json")},
             {"quit": 0}]
    proc = run_gui([str(tiny_model)], tmp, steps)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return request.param, _state(tmp, "shown")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_text_and_panels_follow_the_screen(screen_layout):
    size, state = screen_layout
    screen_w, screen_h = map(int, size.split("x"))
    win_w, win_h = state["window_size"]
    assert win_w <= screen_w and win_h <= screen_h and win_w >= 0.9 * min(screen_w, 1880 * screen_h / 1080)
    # Text: 16 px on a 1920x1080 screen, twice that on 3840x2160, never below 80 % on a small one.
    expected = 2.0 if screen_h == 2160 else 0.8
    assert state["ui_scale"] == pytest.approx(expected, rel=0.02)
    assert state["font_size"] == pytest.approx(16 * expected, rel=0.02)
    controls, panel = state["windows"]["Controls"], state["windows"]["Analysis"]
    assert controls[2] - controls[0] == pytest.approx(540 * expected, rel=0.1)
    for x0, y0, x1, y1 in (controls, panel):
        assert x0 >= -1 and y0 >= -1 and x1 <= win_w + 1 and y1 <= win_h + 1
    # The analysis panel is a dock of its own beside the image, its plots as wide as it is, each at
    # least the smallest plot height of this scale.
    area = state["image_area"]
    assert panel[0] >= area[0] + area[2] - 2 and panel[2] - panel[0] >= 0.25 * win_w
    for name in ("profile plot", "energy plot", "filter plot"):
        x0, y0, x1, y1 = state["plots"][name]
        assert x1 - x0 >= 0.4 * (panel[2] - panel[0]), name
        assert y1 - y0 >= 200 * expected * 0.95, name
    # The image (the layer's activation): the largest whole zoom that fits the area.
    x, y, w, h = state["image_rect"]
    size_h, size_w = state["shown_shape"][2:]
    zoom, margin = w // size_w, 8 * expected
    assert (w, h) == (zoom * size_w, zoom * size_h)
    assert (zoom + 1) * size_w > area[2] - 2 * margin or (zoom + 1) * size_h > area[3] - 2 * margin


# 8. Undo and redo -------------------------------------------------------------------------------

def test_a_drag_is_one_undo_step_and_redo_brings_it_back(user_session):
    tmp, _ = user_session
    psi = lambda name: _state(tmp, name)["settings"]["trunc_noise"]["psi"]  # noqa: E731
    assert psi("single_file") == 1.0 and psi("dragged") < 0.9
    assert psi("undone") == 1.0
    assert psi("redone") == psi("dragged")
    assert psi("undone_bar") == 1.0
    assert psi("reset") == 1.0 and _state(tmp, "reset")["can_undo"]


# 9. The model browser ---------------------------------------------------------------------------

def test_the_browser_starts_at_the_model_and_opens_runs(user_session, files):
    tmp, _ = user_session
    browser = _state(tmp, "browser")
    assert browser["browser_dir"] == str(files["r"].parent)
    entries = _state(tmp, "browse_root")["browser_entries"]
    assert "[run] run  (1 snapshots)" in entries and "[dir] pickles/" in entries and "corrupt.pkl" in entries
    opened = _state(tmp, "run_open")
    assert opened["model_path"] == str(files["run"]) and opened["error"] is None
    assert str(files["run"]) in opened["recent"] and opened["model_family"] == "stylegan3-t"


# 10. Small confusions ---------------------------------------------------------------------------

def test_follow_run_is_unticked_after_a_single_file(user_session):
    tmp, _ = user_session
    assert _state(tmp, "following")["follow"] is True
    assert _state(tmp, "single_file")["follow"] is False


def test_radial_cutoffs_are_circles_and_separable_ones_squares(user_session):
    tmp, _ = user_session
    assert _state(tmp, "radial")["shown_layer"] == "L5_52_128"
    assert _state(tmp, "radial")["cutoff_shape"] == "circle"
    assert _state(tmp, "critical")["cutoff_shape"] == "square"       # critically sampled: separable filters


def test_energy_bars_are_labelled_by_layer_and_cutoffs_share_their_decimals(user_session):
    tmp, _ = user_session
    analysis = _state(tmp, "analysis")
    labels = [t for t in analysis["analysis"]["tick_labels"] if t]
    assert labels and all(re.fullmatch(r"in|input|L\d+(_\d+_\d+)?", t) for t in labels), labels
    cutoffs = [row[4] for row in analysis["layer_rows"]]
    assert cutoffs and all(re.fullmatch(r"\d+\.\d\d", c) for c in cutoffs), cutoffs


def test_keyframes_are_a_list_to_jump_to_rerecord_and_delete(user_session):
    tmp, _ = user_session
    two = _state(tmp, "two_keys")["keyframes"]
    assert len(two) == 2 and two[0][0] != two[1][0]
    jumped = _state(tmp, "jumped")["settings"]["latent"]
    assert (jumped["x"], jumped["y"]) == (two[0][0], two[0][1])
    rerecorded = _state(tmp, "rerecorded")["keyframes"]
    assert rerecorded[0][0] == two[0][0] + 1 and rerecorded[1] == two[1]
    assert _state(tmp, "deleted")["keyframes"] == [rerecorded[0]]


# A session that survives ------------------------------------------------------------------------

def test_the_session_survives_a_restart(user_session, restarted):
    tmp, _ = user_session
    final, again = _state(tmp, "final"), _state(restarted, "restarted")
    for section in ("model", "latent", "stylemix", "trunc_noise", "layer", "clip", "capture", "analysis"):
        assert again["settings"][section] == final["settings"][section], section
    eq_a, eq_b = final["settings"]["equivariance"], again["settings"]["equivariance"]
    assert eq_a == eq_b
    assert again["open_sections"] == final["open_sections"] and again["show_analysis"] == final["show_analysis"]
    assert again["latent"] == final["latent"] and again["error"] is None
    assert again["windows"]["Controls"] == final["windows"]["Controls"]


def test_a_saved_session_file_holds_the_settings(user_session):
    tmp, _ = user_session
    saved = json.loads((tmp / "my_session.json").read_text())
    assert saved["kind"] == "stylegan-visualizer session"
    assert saved["settings"]["latent"] == _state(tmp, "session_saved")["settings"]["latent"]


@pytest.mark.parametrize("content, words", [
    ("{ this is not json", "could not be restored"),
    (json.dumps({"kind": "stylegan-visualizer session", "session_version": 99, "settings": {}}), "newer version"),
    (json.dumps({"kind": "stylegan-visualizer session", "session_version": 1,
                 "settings": {"latent": {"x": "far away"}}}), "settings.latent.x"),
])
def test_a_damaged_or_newer_session_is_reported_and_ignored(xdisplay, tiny_model, tmp_path, content, words):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "session.json").write_text(content)
    steps = [{"wait": "frame"}, {"dump": str(tmp_path / "start.json")}, {"quit": 0}]
    proc = run_gui([str(tiny_model)], tmp_path, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((tmp_path / "start.json").read_text())
    assert state["error"] is None and state["settings"]["latent"]["x"] == 0.0
    assert any(words in n for n in state["notes"]), state["notes"]


EXPLORE_FIELDS = {"explore.projection.image_path": "photo-here.png", "explore.projection.space": "w+",
                  "explore.projection.steps": 120, "explore.projection.distance": "lpips",
                  "explore.projection.vgg_path": "weights/vgg16-397923af.pth", "explore.seed_grid.columns": 6, "explore.seed_grid.rows": 2,
                  "explore.seed_grid.mode": "direction", "explore.run.run_dir": "runs/00003",
                  "explore.run.model_b": "other.safetensors", "explore.inspect.magnification": 20}


def test_the_exploration_sections_fields_survive_a_restart(xdisplay, tiny_model, tmp_path):
    """Projection, Seed grid, Run over time & A/B and Inspect pixels: set, an undo step, quit, launch again."""
    steps = [{"wait": "frame"}, {"dump": str(tmp_path / "fresh.json")}]
    steps += [{"set": path, "value": value} for path, value in EXPLORE_FIELDS.items()]
    steps += [{"frames": 3}, {"dump": str(tmp_path / "set.json")},
              {"set": "explore.inspect.magnification", "value": 24}, {"frames": 2},
              {"key": "z", "mods": ["ctrl"]}, {"frames": 2}, {"dump": str(tmp_path / "undone.json")}, {"quit": 0}]
    proc = run_gui([str(tiny_model)], tmp_path, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = [{"wait": "frame"}, {"frames": 2}, {"dump": str(tmp_path / "again.json")}, {"quit": 0}]
    proc = run_gui([str(tiny_model)], tmp_path, again)                  # the same config directory
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh, before, after = (_state(tmp_path, name) for name in ("fresh", "set", "again"))
    expected = {"projection": {"image_path": "photo-here.png", "space": "w+", "steps": 120, "distance": "lpips",
                               "vgg_path": "weights/vgg16-397923af.pth", "lpips_path": ""},
                "seed_grid": {"columns": 6, "rows": 2, "mode": "direction", "direction_index": 0, "step": 1.0},
                "run": {"run_dir": "runs/00003", "model_b": "other.safetensors"}, "inspect": {"magnification": 20}}
    for section, values in expected.items():
        assert fresh["settings"][section] != values, section             # not the defaults: the test can fail
        assert before["settings"][section] == values, section
        assert after["settings"][section] == values, section             # read back into the widgets
    assert _state(tmp_path, "undone")["settings"]["inspect"] == {"magnification": 20}   # 24 was one undo step
    assert after["error"] is None
