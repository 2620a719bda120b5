"""What a server opens for a GUI: models under its root and nothing else; W files parsed from bytes
without pickle."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest

from renderer.animation import Animation, DirectionSweep
from renderer.directions import FILE, DirectionMove, DirectionSource
from renderer.protocol import (ClipSpec, CompareRequest, DirectionsRequest, FrameRequest, JobRequest, Keyframe,
                               LayerAnalysisRequest, ProjectionRequest, ProjectionTarget, RenderArgs,
                               RunTimelineRequest)
from renderer.remote.served_files import ServedFiles, ServedPathError
from renderer.remote.wfile import MAX_W_FILE_BYTES, w_file_bytes
from renderer.remote.wfile import WFileError as SentWFileError
from renderer.worker.wfile import WFileError, read_w_file, w_from_bytes
from tests.remote_support import WritesMarker


@pytest.fixture
def tree(tmp_path):
    """root/ with models, a run, a plain folder, a text file; secret/ beside it with a model."""
    root, outside = tmp_path / "root", tmp_path / "secret"
    (root / "models").mkdir(parents=True)
    (root / "runs" / "00001").mkdir(parents=True)
    (root / "empty").mkdir()
    outside.mkdir()
    (root / "models" / "a.pkl").write_bytes(b"\x80\x04.")
    (root / "models" / "b.safetensors").write_bytes(b"x" * 10)
    (root / "models" / "notes.txt").write_text("hello")
    (root / "runs" / "00001" / "network-snapshot-000040.pkl").write_bytes(b"\x80\x04.")
    (outside / "stolen.pkl").write_bytes(b"\x80\x04.")
    (root / "models" / "inside-link.pkl").symlink_to(root / "models" / "a.pkl")
    (root / "models" / "leak.pkl").symlink_to(outside / "stolen.pkl")
    (root / "leak-dir").symlink_to(outside)
    return root, outside


def test_models_and_runs_under_the_root_resolve(tree):
    root, _ = tree
    files = ServedFiles(root)
    assert files.model_path("models/a.pkl") == root / "models" / "a.pkl"
    assert files.model_path(str(root / "models" / "b.safetensors")) == root / "models" / "b.safetensors"
    assert files.model_path("runs/00001") == root / "runs" / "00001"
    assert files.model_path("models/./../models/inside-link.pkl") == root / "models" / "a.pkl"


@pytest.mark.parametrize("path, words", [
    ("../secret/stolen.pkl", "outside the served folder"),
    ("models/../../secret/stolen.pkl", "outside the served folder"),
    ("/etc/passwd", "outside the served folder"),
    ("models/leak.pkl", "symbolic link"),
    ("leak-dir/stolen.pkl", "symbolic link"),
    ("models/notes.txt", "not a model file"),
    ("empty", "not a training run"),
    ("models/missing.pkl", "no such file"),
    ("~/model.pkl", "home folder"),
    ("", "No model path"),
    ("models/a.pkl\x00.txt", "NUL"),
])
def test_paths_that_leave_the_root_or_are_not_models_are_refused(tree, path, words):
    root, _ = tree
    with pytest.raises(ServedPathError, match=words):
        ServedFiles(root).model_path(path)


def test_a_run_whose_snapshot_links_outside_is_refused(tree):
    root, outside = tree
    run = root / "runs" / "00002"
    run.mkdir()
    (run / "network-snapshot-000080.pkl").symlink_to(outside / "stolen.pkl")
    with pytest.raises(ServedPathError, match="symbolic link"):
        ServedFiles(root).model_path("runs/00002")
    assert "00002" not in [e.name for e in ServedFiles(root).listing("runs").entries]


def test_listing_shows_folders_runs_and_models_and_nothing_that_leaves(tree):
    root, _ = tree
    files = ServedFiles(root)
    top = files.listing("")
    assert top.error is None and top.path == ""
    assert [(e.name, e.kind) for e in top.entries] == [("empty", "folder"), ("models", "folder"), ("runs", "folder")]
    models = files.listing("models")
    assert [(e.name, e.kind) for e in models.entries] == [("a.pkl", "model"), ("b.safetensors", "model"),
                                                          ("inside-link.pkl", "model")]
    assert models.entries[1].size == 10
    assert [(e.name, e.kind) for e in files.listing("runs").entries] == [("00001", "run")]
    for bad in ("..", "leak-dir", "/", "models/a.pkl"):
        listing = files.listing(bad)
        assert listing.error and not listing.entries


def test_requests_get_their_models_resolved_and_w_paths_refused(tree):
    root, _ = tree
    files = ServedFiles(root)
    request = files.resolve_in(FrameRequest(1, RenderArgs(model="models/a.pkl")))
    assert request.args.model == str(root / "models" / "a.pkl")
    job = files.resolve_in(JobRequest(2, LayerAnalysisRequest(RenderArgs(model="runs/00001"))))
    assert job.spec.args.model == str(root / "runs" / "00001")
    keyframes = tuple(Keyframe(RenderArgs(model=m), (0.0, 0.0), (0.0, 0.0), 0.0) for m in ("models/a.pkl", "runs/00001"))
    clip = files.resolve_in(JobRequest(4, ClipSpec("", RenderArgs(model="models/a.pkl"), 2, keyframes=keyframes)))
    assert [k.args.model for k in clip.spec.keyframes] == [str(root / "models" / "a.pkl"), str(root / "runs" / "00001")]
    with pytest.raises(ServedPathError, match="outside"):
        files.resolve_in(JobRequest(2, LayerAnalysisRequest(RenderArgs(model="../secret/stolen.pkl"))))
    with pytest.raises(ServedPathError, match="outside"):
        bad = keyframes + (Keyframe(RenderArgs(model="../secret/stolen.pkl"), (0.0, 0.0), (0.0, 0.0), 0.0),)
        files.resolve_in(JobRequest(4, ClipSpec("", RenderArgs(model="models/a.pkl"), 3, keyframes=bad)))
    with pytest.raises(ServedPathError, match="W file"):
        files.resolve_in(FrameRequest(1, RenderArgs(model="models/a.pkl", w_file="/home/me/w.npy")))
    untouched = FrameRequest(1, RenderArgs())
    assert files.resolve_in(untouched) is untouched


def test_exploration_paths_resolve_under_the_root_and_nowhere_else(tree):
    root, outside = tree
    files = ServedFiles(root)
    np.save(root / "models" / "d.npy", np.eye(4, dtype=np.float32))
    np.save(outside / "d.npy", np.eye(4, dtype=np.float32))
    (root / "models" / "d-link.npy").symlink_to(outside / "d.npy")
    base = RenderArgs(model="models/a.pkl")
    inside = DirectionSource(method=FILE, path="models/d.npy")
    frame = files.resolve_in(FrameRequest(1, base.replace(directions=(DirectionMove(inside, 0, 1.0),))))
    assert frame.args.directions[0].source.path == str(root / "models" / "d.npy")
    sweep = Animation(sweep=DirectionSweep(source=inside, amplitude=1.0, anim=True))
    clip = files.resolve_in(JobRequest(3, ClipSpec("", base, 2, motion=sweep)))
    assert clip.spec.motion.sweep.source.path == str(root / "models" / "d.npy")
    timeline = files.resolve_in(JobRequest(2, RunTimelineRequest(base, "runs/00001")))
    assert timeline.spec.run_dir == str(root / "runs" / "00001")
    compare = files.resolve_in(JobRequest(2, CompareRequest(base, "models/b.safetensors")))
    assert compare.spec.model_b == str(root / "models" / "b.safetensors")
    gan = JobRequest(5, DirectionsRequest(RenderArgs(), DirectionSource()))
    assert files.resolve_in(gan) is gan                        # GANSpace and SeFa name no file
    for spec, words in ((DirectionsRequest(base, DirectionSource(method=FILE, path="../secret/d.npy")), "outside"),
                        (DirectionsRequest(base, DirectionSource(method=FILE, path="models/d-link.npy")), "symbolic link"),
                        (DirectionsRequest(base, DirectionSource(method=FILE, path="models/notes.txt")), "not a direction file"),
                        (DirectionsRequest(base, DirectionSource(method=FILE, path="models/none.npy")), "no such file"),
                        (RunTimelineRequest(base, str(outside)), "outside"),
                        (RunTimelineRequest(base, "empty"), "not a training run"),
                        (RunTimelineRequest(base, "leak-dir"), "symbolic link"),
                        (CompareRequest(base, "../secret/stolen.pkl"), "outside"),
                        (CompareRequest(base, "models/leak.pkl"), "symbolic link")):
        with pytest.raises(ServedPathError, match=words):
            files.resolve_in(JobRequest(6, spec))
    with pytest.raises(ServedPathError, match="outside"):
        moved = base.replace(directions=(DirectionMove(DirectionSource(method=FILE, path=str(outside / "d.npy")), 0, 1.0),))
        files.resolve_in(FrameRequest(1, moved))


def test_a_projections_weights_files_are_the_servers_under_its_root(tree):
    root, outside = tree
    files = ServedFiles(root)
    (root / "models" / "vgg16-397923af.pth").write_bytes(b"PK")
    (root / "models" / "vgg.pth").write_bytes(b"PK")
    (outside / "vgg16.pth").write_bytes(b"PK")
    (root / "models" / "vgg-link.pth").symlink_to(outside / "vgg16.pth")
    target = ProjectionTarget(np.zeros((4, 4, 3), np.uint8), (0, 0, 4, 4), (4, 4))
    base = RenderArgs(model="models/a.pkl")
    job = files.resolve_in(JobRequest(7, ProjectionRequest(base, target, distance="lpips",
                                                           vgg_path="models/vgg16-397923af.pth",
                                                           lpips_path="models/vgg.pth")))
    assert job.spec.vgg_path == str(root / "models" / "vgg16-397923af.pth")
    assert job.spec.lpips_path == str(root / "models" / "vgg.pth")
    plain = files.resolve_in(JobRequest(7, ProjectionRequest(base, target)))
    assert plain.spec.vgg_path == "" and plain.spec.lpips_path == ""
    for vgg, lpips, words in (("../secret/vgg16.pth", "", "outside"), (str(outside / "vgg16.pth"), "", "outside"),
                              ("models/vgg-link.pth", "", "symbolic link"), ("models/notes.txt", "", "not a weights file"),
                              ("models/none.pth", "", "no such file"), ("models/vgg.pth", "../secret/vgg16.pth", "outside")):
        with pytest.raises(ServedPathError, match=words):
            files.resolve_in(JobRequest(7, ProjectionRequest(base, target, vgg_path=vgg, lpips_path=lpips)))


# --- W files -------------------------------------------------------------------------------------


def npy_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


NUM_WS, W_DIM = 16, 8


def test_a_w_file_sent_as_bytes_reads_as_the_file_does(tmp_path):
    w = np.random.default_rng(0).standard_normal((NUM_WS, W_DIM))
    np.save(tmp_path / "w.npy", np.asfortranarray(w.astype(">f4")))
    np.savez(tmp_path / "projected_w.npz", w=w[None].astype(np.float16))
    for name in ("w.npy", "projected_w.npz"):
        path = tmp_path / name
        sent = w_file_bytes(path)
        assert sent == path.read_bytes()
        here = read_w_file(path, NUM_WS, W_DIM)
        there = w_from_bytes(sent, NUM_WS, W_DIM)
        assert there.dtype == np.float32 and np.array_equal(there, here)
    assert np.allclose(w_from_bytes(w_file_bytes(tmp_path / "w.npy"), NUM_WS, W_DIM), w, atol=1e-6)


def test_w_bytes_that_are_not_a_plain_float_array_are_refused_by_the_server(tmp_path):
    marker = tmp_path / "marker"
    pickled_array = npy_bytes(np.array([WritesMarker(marker)], dtype=object), allow_pickle=True)
    good = npy_bytes(np.zeros((NUM_WS, W_DIM), np.float32))
    lying_header = good.replace(b"(16, 8)", b"(16000, 8000)")  # claims far more data than it holds
    cases = {
        "not numbers": pickled_array,
        "integers": npy_bytes(np.zeros(W_DIM, np.int64)),
        "neither a .npy nor a .npz": pickle.dumps(WritesMarker(marker)),
        "damaged .npz": b"PK\x03\x04" + b"\x00" * 40,
        "ends early": good[:-4],
        "has shape .16000, 8000.": lying_header,
        "NaN or infinite": npy_bytes(np.full((NUM_WS, W_DIM), np.nan, np.float32)),
        "has shape .1, 1, 1, 1.": npy_bytes(np.zeros((1, 1, 1, 1), np.float32)),
    }
    for words, data in cases.items():
        with pytest.raises(WFileError, match=words):
            w_from_bytes(data, NUM_WS, W_DIM)
    assert not marker.exists()


def test_the_gui_sends_only_a_regular_w_file_of_a_bounded_size(tmp_path):
    big = tmp_path / "big.npy"
    with open(big, "wb") as f:
        f.write(b"\x93NUMPY")
        f.truncate(MAX_W_FILE_BYTES + 1)
    with pytest.raises(SentWFileError, match="at most"):
        w_file_bytes(big)
    os.symlink(big, tmp_path / "link.npy")
    with pytest.raises(SentWFileError, match="at most"):
        w_file_bytes(tmp_path / "link.npy")
    with pytest.raises(SentWFileError, match="Cannot read"):
        w_file_bytes(tmp_path / "missing.npy")
    os.mkfifo(tmp_path / "fifo.npy")
    with pytest.raises(SentWFileError, match="Cannot send W"):
        w_file_bytes(tmp_path / "fifo.npy")
    (tmp_path / "w.pkl").write_bytes(pickle.dumps([1.0, 2.0]))
    with pytest.raises(SentWFileError, match="neither a .npy nor a .npz"):
        w_file_bytes(tmp_path / "w.pkl")
