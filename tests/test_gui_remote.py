"""The GUI against a remote worker, on a virtual screen (Xvfb): `visualizer.py serve` on a tiny model in
one process, `visualizer.py --connect` in another. The window shows the server's frame, the status
line names the server and the codec, Save W and Load W go through files on this side, a clip is
written here, an image on this side is projected by the server and its W kept here, a wrong token is shown as a refusal, follow run, and the layers, their spectra, the
analysis panels, the equivariance readout and the browser of the server's files work against the server, and a server
killed and started again is said, its last frame stays, and the GUI reconnects by itself; the next launch
restores the session kept for that server."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.remote_support import TOKEN, free_port
from tests.test_gui import load_dump, on_screen, run_gui, scaled_like_the_gui
from tests.test_remote_worker import serve_process

TIMEOUT = 240


@pytest.fixture(scope="module")
def remote_session(xdisplay, tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    (root / "models").mkdir()
    shutil.copy(tiny_model, root / "models" / "tiny.safetensors")
    tmp = tmp_path_factory.mktemp("gui_remote")
    d = lambda name: str(tmp / f"{name}.json")  # noqa: E731
    photo = tmp / "photo.png"                    # on this machine only, not under the server's folder
    gradient = np.linspace(0, 255, 80, dtype=np.uint8)
    Image.fromarray(np.stack(np.broadcast_arrays(gradient[None, :], gradient[:, None], 128 * np.ones((1, 1), np.uint8))[:3],
                             axis=-1)[:48].astype(np.uint8)).save(photo)
    steps = [
        {"wait": "frame"}, {"dump": d("start")},
        {"click": "Save W"}, {"frames": 2},
        {"key": "right"}, {"wait": "frame"}, {"dump": d("seed_next")},
        {"click": "Load W"}, {"wait": "frame"}, {"dump": d("loaded_w")},
        {"click": "Use seeds"}, {"wait": "frame"},
        {"set": "clip.duration", "value": 1.0}, {"set": "clip.fps", "value": 2.0}, {"set": "clip.format", "value": "png"},
        {"click": "Clip export"}, {"click": "Export clip"}, {"wait": "export", "timeout": 200}, {"dump": d("exported")},
        {"click": "Clip export"}, {"click": "Latent"}, {"click": "Capture"},
        {"click": "Projection"}, {"set": "explore.projection.image_path", "value": str(photo)},
        {"set": "explore.projection.steps", "value": 3}, {"click": "Project##projection"},
        {"wait": "explore", "timeout": 200}, {"wait": "frame"}, {"frames": 2}, {"dump": d("projected")},
        {"quit": 0},
    ]
    port = free_port()
    with serve_process(root, port, "models/tiny.safetensors") as server:
        proc = run_gui(["--connect", f"127.0.0.1:{port}"], tmp, steps, env={"VIZ_TOKEN": TOKEN}, timeout=TIMEOUT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return tmp, port, server.pid


def test_the_window_shows_the_servers_frame_and_names_the_server(remote_session):
    tmp, port, server_pid = remote_session
    state, screen, image = load_dump(tmp / "start.json")
    assert state["error"] is None and state["result_args_match"] and state["model_family"].startswith("stylegan3")
    assert image is not None and image.shape == (64, 64, 3) and image.std() > 1
    shown = on_screen(state, screen)
    assert np.abs(shown - scaled_like_the_gui(image, state["image_rect"])).max() <= 1
    assert state["link"] == {"state": "connected", "message": "",
                             "server": f"{socket.gethostname()} at 127.0.0.1:{port}"}
    assert f"remote {socket.gethostname()} at 127.0.0.1:{port} | lossless" in state["status_line"][1]
    assert re.search(r"\| lossless \| rtt \d+\.\d ms \| \d+\.\d MB/s \|", state["status_line"][1]), state["status_line"]
    assert state["worker"]["pid"] == server_pid  # rendered by the server's process
    assert state["torch_imported"] is False and state["renderer_pid"] is None and state["child_processes"] == []


def test_save_w_and_load_w_go_through_files_here(remote_session):
    tmp, _, _ = remote_session
    start = load_dump(tmp / "start.json")[2]
    next_state, _, next_image = load_dump(tmp / "seed_next.json")
    loaded_state, _, loaded_image = load_dump(tmp / "loaded_w.json")
    saved = tmp / "captures" / "w-seed0000.npy"
    assert saved.is_file() and np.load(saved, allow_pickle=False).shape[0] > 1
    assert next_state["seed"] == 1 and not np.array_equal(next_image, start)
    assert loaded_state["error"] is None and np.array_equal(loaded_image, start)  # seed 0's W, sent as bytes


def test_a_clip_is_written_on_this_machine(remote_session):
    tmp, _, _ = remote_session
    state = json.loads((tmp / "exported.json").read_text())
    clip = Path(state["last_clip"])
    assert clip.parent == tmp / "captures" and sorted(p.name for p in clip.iterdir()) == ["frame_00000.png",
                                                                                      "frame_00001.png"]
    assert np.asarray(Image.open(clip / "frame_00000.png")).shape == (64, 64, 3)


def test_an_image_here_is_projected_by_the_server_and_kept_here(remote_session):
    tmp, _, _ = remote_session
    state = json.loads((tmp / "projected.json").read_text())
    p = state["explore"]["projection"]
    assert p["error"] is None and not p["running"] and p["crop_box"] == [16, 0, 64, 48], p
    w_file = Path(p["w_file"])
    assert w_file.parent == tmp / "captures" and w_file.name.startswith("projected-photo")
    assert np.load(w_file, allow_pickle=False).dtype == np.float32
    assert state["error"] is None and state["result_args_match"]    # the frame shows it, its W sent as bytes
    assert any(f"projected W saved to {w_file}" in n for n in state["notes"])


def test_a_wrong_token_is_shown_as_a_refusal(xdisplay, tiny_model, tmp_path):
    (tmp_path / "served").mkdir()
    shutil.copy(tiny_model, tmp_path / "served" / "tiny.safetensors")
    port = free_port()
    with serve_process(tmp_path / "served", port, "tiny.safetensors"):
        proc = run_gui(["--connect", f"127.0.0.1:{port}"], tmp_path, [{"frames": 120}, {"dump": str(tmp_path / "s.json")},
                                                                      {"quit": 0}],
                       env={"VIZ_TOKEN": "not-the-token-the-server-has"}, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((tmp_path / "s.json").read_text())
    assert state["link"]["state"] == "refused" and "refused the token" in state["status_line"][0]


def test_follow_run_loads_each_new_snapshot_of_a_run_on_the_server(xdisplay, tiny_model, micro_sg2_model, tmp_path):
    root = tmp_path / "served"
    run = root / "runs" / "r1"
    run.mkdir(parents=True)
    shutil.copy(tiny_model, run / "network-snapshot-000001.safetensors")
    first = tmp_path / "first.json"
    steps = [{"set": "model.follow", "value": True},
             {"wait": "snapshot", "name": "network-snapshot-000001.safetensors"}, {"dump": str(first)},
             {"wait": "snapshot", "name": "network-snapshot-000002.safetensors", "timeout": 60},
             {"dump": str(tmp_path / "second.json")}, {"quit": 0}]
    port = free_port()

    def write_the_next_snapshot() -> None:  # as training does: under another name, then renamed
        deadline = time.monotonic() + TIMEOUT
        while not first.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.copy(micro_sg2_model, run / ".network-snapshot-000002.safetensors.tmp")
        os.replace(run / ".network-snapshot-000002.safetensors.tmp", run / "network-snapshot-000002.safetensors")

    writer = threading.Thread(target=write_the_next_snapshot, daemon=True)
    with serve_process(root, port, "runs/r1"):
        writer.start()
        proc = run_gui(["--connect", f"127.0.0.1:{port}"], tmp_path, steps, env={"VIZ_TOKEN": TOKEN}, timeout=TIMEOUT)
    writer.join(10)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = json.loads(first.read_text())
    after = json.loads((tmp_path / "second.json").read_text())
    # Without following, the model stays "runs/r1" and nothing is rendered again: the new frame is follow run's.
    assert before["model_family"].startswith("stylegan3") and after["model_family"] == "stylegan2"
    assert after["error"] is None and after["result_args_match"]


def test_layers_spectra_analysis_the_readout_and_the_browser_work_against_the_server(xdisplay, tiny_model,
                                                                                     micro_sg2_model, tmp_path):
    root = tmp_path / "served"
    (root / "models").mkdir(parents=True)
    shutil.copy(tiny_model, root / "models" / "tiny.safetensors")
    shutil.copy(micro_sg2_model, root / "micro.safetensors")
    d = lambda name: str(tmp_path / f"{name}.json")  # noqa: E731
    steps = [
        {"wait": "frame"}, {"dump": d("start")},
        {"click": "Latent"}, {"click": "Truncation & noise"},       # folded: the layer table fits below the browser
        {"click": "L2_36_64##layer"}, {"set": "layer.fft_show", "value": True}, {"wait": "frame"}, {"dump": d("layer")},
        {"click": "output##layer"}, {"set": "layer.fft_show", "value": False}, {"click": "Layers"},
        {"click": "Analysis"}, {"click": "Per-layer spectra"}, {"wait": "analysis", "timeout": 200}, {"frames": 3},
        {"set": "analysis.layer_name", "value": "L2_36_64"}, {"scroll_to": "##filter plot"}, {"frames": 2},
        {"dump": d("analysis")}, {"click": "Analysis"},
        {"click": "Equivariance"}, {"set": "equivariance.translate", "value": [0.11, -0.04]}, {"wait": "frame"},
        {"click": "Error image"}, {"wait": "analysis", "timeout": 200}, {"frames": 3}, {"dump": d("readout")},
        {"click": "micro.safetensors"}, {"wait": "frame"}, {"frames": 3}, {"wait": "frame"}, {"dump": d("browsed")},
        {"quit": 0},
    ]
    port = free_port()
    with serve_process(root, port, "models/tiny.safetensors"):
        proc = run_gui(["--connect", f"127.0.0.1:{port}"], tmp_path, steps, env={"VIZ_TOKEN": TOKEN}, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    start, layer, analysis, readout, browsed = (json.loads((tmp_path / f"{n}.json").read_text())
                                                for n in ("start", "layer", "analysis", "readout", "browsed"))
    assert start["model_family"].startswith("stylegan3") and "L2_36_64" in start["layers"]
    assert sorted(map(tuple, start["browser"])) == [("micro.safetensors", "model"), ("models", "folder")]
    assert layer["error"] is None and layer["shown_layer"] == "L2_36_64" and layer["fft_show"]
    assert layer["result_args_match"]
    state = analysis["analysis"]
    assert state["error"] is None and state["layers_analysed"] == len([n for n in start["layers"] if n != "output"])
    assert state["profile_layer"] == "L2_36_64" and state["filter_curves"] == 2
    assert readout["equivariance_error"] is None and readout["equivariance_error_image"] is True
    assert len(readout["equivariance_readout"]) == 3 and all(math.isfinite(v) for v in readout["equivariance_readout"])
    assert browsed["error"] is None and browsed["model_family"] == "stylegan2" and browsed["result_args_match"]
    assert readout["torch_imported"] is False
    # Recent holds the server's paths, in a list of that server's own; this machine's is untouched.
    recent = json.loads((tmp_path / "config" / f"recent-127.0.0.1_{port}.json").read_text())["recent"]
    assert recent == ["micro.safetensors", "models/tiny.safetensors"]
    assert not (tmp_path / "config" / "recent.json").exists()
    # So does the session restored at the next launch.
    session = json.loads((tmp_path / "config" / f"session-127.0.0.1_{port}.json").read_text())
    assert session["settings"]["model"]["path"] == "micro.safetensors"
    assert not (tmp_path / "config" / "session.json").exists()


def test_a_server_killed_is_said_the_frame_stays_and_the_gui_reconnects_by_itself(xdisplay, tiny_model, tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    shutil.copy(tiny_model, root / "tiny.safetensors")
    d = lambda name: tmp_path / f"{name}.json"  # noqa: E731
    steps = [{"wait": "frame"}, {"dump": str(d("before"))},
             {"wait": "link", "state": "reconnecting", "timeout": 60}, {"frames": 3}, {"dump": str(d("lost"))},
             {"key": "right"},                                 # asked for while the server is away
             {"wait": "link", "state": "connected", "timeout": 120}, {"wait": "frame"}, {"dump": str(d("back"))},
             {"quit": 0}]
    port = free_port()
    gui_done = threading.Event()

    def kill_then_restart() -> None:
        with serve_process(root, port, "tiny.safetensors") as first:
            started.set()
            wait_for_file(d("before"))
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        wait_for_file(d("lost"))
        with serve_process(root, port, "tiny.safetensors"):
            gui_done.wait(TIMEOUT)

    started = threading.Event()
    servers = threading.Thread(target=kill_then_restart, daemon=True)
    servers.start()
    assert started.wait(60)
    try:
        proc = run_gui(["--connect", f"127.0.0.1:{port}"], tmp_path, steps, env={"VIZ_TOKEN": TOKEN}, timeout=TIMEOUT)
    finally:
        gui_done.set()
        servers.join(30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before, before_screen, image = load_dump(d("before"))
    lost, lost_screen, _ = load_dump(d("lost"))
    back, _, back_image = load_dump(d("back"))
    assert lost["link"]["state"] == "reconnecting"
    assert lost["status_line"][0].startswith("Lost the server: ") and "the last frame stays on screen" in lost["status_line"][0]
    assert np.array_equal(on_screen(lost, lost_screen), on_screen(before, before_screen))  # the frame stays
    assert back["link"]["state"] == "connected" and back["seed"] == before["seed"] + 1 and back["error"] is None
    assert back["result_args_match"] and not np.array_equal(back_image, image)
    assert "restarted" in back["message"]


def wait_for_file(path: Path, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_next_launch_against_the_server_restores_its_session(xdisplay, tiny_model, micro_sg2_model, tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    shutil.copy(tiny_model, root / "tiny.safetensors")
    shutil.copy(micro_sg2_model, root / "micro.safetensors")
    first = [{"wait": "frame"}, {"click": "micro.safetensors"}, {"wait": "frame"}, {"frames": 3}, {"quit": 0}]
    second = [{"wait": "frame"}, {"frames": 3}, {"wait": "frame"}, {"dump": str(tmp_path / "restored.json")}, {"quit": 0}]
    port = free_port()
    with serve_process(root, port, "tiny.safetensors"):
        for steps in (first, second):
            proc = run_gui(["--connect", f"127.0.0.1:{port}"], tmp_path, steps, env={"VIZ_TOKEN": TOKEN}, timeout=TIMEOUT)
            assert proc.returncode == 0, proc.stderr[-3000:]
    restored = json.loads((tmp_path / "restored.json").read_text())
    assert restored["error"] is None and restored["model_family"] == "stylegan2" and restored["result_args_match"]
