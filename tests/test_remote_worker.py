"""The real render worker behind `serve`, on loopback with real sockets, through the GUI's own client
(RenderClient(remote=...)): frames, layers and W as a local worker gives them, jobs with progress,
a clip written on this machine, an average spectrum, a W file from this machine, the server's
folders, and a server killed in the middle of a frame and started again."""

from __future__ import annotations

import dataclasses
import io
import shutil
import signal
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from renderer.animation import Animation, LatentMotion
from renderer.client import RenderClient
from renderer.clip_writer import PNG_FRAME_NAME, ClipExport
from renderer.protocol import (AverageSpectrumRequest, ClipSpec, EquivarianceData, EquivarianceRequest, FilterRequest,
                               FrameRequest, JobRequest, LayerAnalysis, LayerAnalysisRequest, RenderArgs)
from renderer.remote.client import LinkState, RemoteClient
from renderer.remote.frames import FrameCodec
from renderer.remote.server import Server
from renderer.spectra import AverageSpectrum
from renderer.timeline import frame_args
from renderer.worker import jobs
from renderer.worker.render import Renderer
from renderer.worker.serve import WorkerHandler
from tests.remote_support import ROOT, TOKEN, free_port, process, wait_until

TIMEOUT_S = 120.0


class RecordingHandler(WorkerHandler):
    """The real handler, noting what reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[object] = []

    def handle(self, message: object) -> None:
        self.messages.append(message)
        super().handle(message)


@pytest.fixture(scope="module")
def served(tiny_model, micro_sg2_model, tmp_path_factory) -> Path:
    """The server's folder: the two tiny models under models/."""
    root = tmp_path_factory.mktemp("served")
    (root / "models").mkdir()
    shutil.copy(tiny_model, root / "models" / "sg3.safetensors")
    shutil.copy(micro_sg2_model, root / "models" / "micro.safetensors")
    return root


@pytest.fixture(scope="module")
def session(served) -> Iterator[tuple[RenderClient, RecordingHandler]]:
    handler = RecordingHandler()
    server = Server(handler, root=str(served), token=TOKEN)
    server.start()
    client = RenderClient(remote=RemoteClient(f"127.0.0.1:{server.port}", TOKEN))
    try:
        yield client, handler
    finally:
        client.close()
        server.stop()


def frame_of(client: RenderClient, args: RenderArgs, timeout: float = TIMEOUT_S):
    """Ask for `args` and poll, as the GUI does, until their result comes."""
    client.set_args(args)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = client.get_result()
        if result is not None and result.args == args:
            return result
        time.sleep(0.005)
    pytest.fail(f"no frame for {args} within {timeout} s: {client.remote.status}")


def local(served: Path, args: RenderArgs) -> RenderArgs:
    return args.replace(model=str(served / args.model))


def test_frames_layers_and_w_come_back_as_a_local_worker_gives_them(session, served):
    client, _ = session
    renderer = Renderer()
    for args in (RenderArgs(model="models/sg3.safetensors", latent=((3, 0.5), (4, 0.5)), trunc_psi=0.7),
                 RenderArgs(model="models/sg3.safetensors", latent=((3, 1.0),), layer="L2_36_64", fft_show=True),
                 RenderArgs(model="models/micro.safetensors", latent=((9, 1.0),), noise_mode="random", noise_seed=2)):
        remote = frame_of(client, args)
        here = renderer.render(local(served, args))
        assert remote.error is None and here.error is None, (remote.error, here.error)
        assert remote.args == args  # the GUI's own args, with its relative path
        assert remote.image.dtype == np.uint8 and np.array_equal(remote.image, here.image)  # lossless
        assert np.array_equal(remote.w, here.w) and remote.layers == here.layers
        assert remote.model.family == here.model.family and remote.model.snapshot.endswith(args.model)
        assert remote.image.std() > 1


def test_a_burst_of_changes_builds_no_backlog_on_the_link(session):
    client, handler = session
    before = sum(isinstance(m, FrameRequest) for m in handler.messages)
    burst = [RenderArgs(model="models/sg3.safetensors", latent=((seed, 1.0),)) for seed in range(40)]
    for args in burst:
        client.set_args(args)
    assert frame_of(client, burst[-1]).error is None
    requests = [m for m in handler.messages if isinstance(m, FrameRequest)][before:]
    # One request on the link at a time, the newest waiting replaces the one before: not forty.
    assert len(requests) <= 4 and requests[-1].args.latent == burst[-1].latent


def test_a_job_reports_progress_and_its_average_spectrum_is_saved_here(session, served, tmp_path):
    client, _ = session
    spec = AverageSpectrumRequest(args=RenderArgs(model="models/micro.safetensors"), num_images=160)
    handle = client.submit(spec)
    seen = set()
    deadline = time.monotonic() + TIMEOUT_S
    while not handle.done and time.monotonic() < deadline:
        seen.add(round(handle.progress, 3))
        time.sleep(0.002)
    assert handle.error is None, handle.error
    assert any(0 < p < 1 for p in seen) and handle.progress == 1.0
    spectrum = handle.value
    expected = jobs.run_to_end(AverageSpectrumRequest(args=local(served, spec.args), num_images=160))
    assert isinstance(spectrum, AverageSpectrum) and spectrum.num_images == 160
    assert np.allclose(spectrum.power, expected.power, rtol=1e-6) and spectrum.mean == pytest.approx(expected.mean)
    spectrum.save(tmp_path / "spectrum.npz")
    assert np.array_equal(AverageSpectrum.load(tmp_path / "spectrum.npz").power, spectrum.power)


def test_a_clip_is_written_on_this_machine_from_frames_that_came_lossless(session, served, tmp_path):
    client, handler = session
    client.remote.set_frame_codec(FrameCodec("jpeg", 20))  # the view's codec ...
    try:
        spec = ClipSpec(out_path=str(tmp_path / "clip"), base=RenderArgs(model="models/micro.safetensors"),
                        num_frames=6, fps=6.0, format="png", motion=Animation(latent=LatentMotion(anim=True, speed=0.5)))
        export = ClipExport(client.submit(spec), spec)
        assert export.wait(TIMEOUT_S) and export.error is None, export.error
    finally:
        client.remote.set_frame_codec(FrameCodec("zstd"))
    assert export.output == tmp_path / "clip" and export.rendered_with[0] in ("reference", "cpu")
    renderer = Renderer()
    for index in range(6):
        written = np.asarray(Image.open(tmp_path / "clip" / PNG_FRAME_NAME.format(index)))
        expected = renderer.render(local(served, frame_args(spec, index))).image
        assert np.array_equal(written, expected), index  # ... but clip frames are exact
    sent = [m.spec for m in handler.messages if isinstance(m, JobRequest) and isinstance(m.spec, ClipSpec)][-1]
    assert sent.out_path == "" and str(tmp_path) not in repr(sent)  # the server never sees where it goes


def test_load_w_sends_the_files_bytes_never_its_path(session, served, tmp_path):
    client, handler = session
    seeds = RenderArgs(model="models/sg3.safetensors", latent=((5, 1.0),))
    w = frame_of(client, seeds).w
    path = tmp_path / "w.npy"
    buffer = io.BytesIO()
    np.save(buffer, (w * 1.25)[None])  # [1, num_ws, w_dim], as the official projector writes it
    path.write_bytes(buffer.getvalue())
    args = seeds.replace(w_file=str(path))
    remote = frame_of(client, args)
    here = Renderer().render(local(served, args))
    assert remote.error is None and np.array_equal(remote.image, here.image) and np.allclose(remote.w, w * 1.25)
    assert not np.array_equal(remote.image, frame_of(client, seeds).image)
    assert all(str(tmp_path) not in repr(m) for m in handler.messages)
    assert any(isinstance(m, FrameRequest) and m.args.w_npy == path.read_bytes() for m in handler.messages)

    path.write_bytes(b"\x80\x04 a pickle, not a .npy")
    refused = frame_of(client, seeds.replace(w_file=str(path), latent=((6, 1.0),)))
    assert "neither a .npy nor a .npz file" in refused.error and refused.image is None


def test_analysis_panels_and_the_equivariance_readout_run_remotely(session, served):
    client, _ = session
    args = RenderArgs(model="models/sg3.safetensors", latent=((2, 1.0),),
                      input_transform=((1.0, 0.0, 0.1), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    requests = (LayerAnalysisRequest(args), FilterRequest(args, layer="L3_36_64"),
                EquivarianceRequest(args, num_samples=1))
    handles = [client.submit(r) for r in requests]
    for handle in handles:
        assert handle.wait(TIMEOUT_S) and handle.error is None, handle.error
    analysis, filters, readout = (h.value for h in handles)
    expected = [jobs.run_to_end(dataclasses.replace(r, args=local(served, r.args))) for r in requests]
    assert isinstance(analysis, LayerAnalysis) and [s.name for s in analysis.spectra] == [s.name for s in expected[0].spectra]
    assert np.allclose(analysis.spectra[3].profile_db, expected[0].spectra[3].profile_db)
    assert filters[0].layer == "L3_36_64" and np.array_equal(filters[0].up.magnitude_db, expected[1][0].up.magnitude_db)
    assert isinstance(readout, EquivarianceData) and readout.eqt == pytest.approx(expected[2].eqt)
    assert readout.error_image is not None and readout.error_image.shape == expected[2].error_image.shape


def test_status_and_the_servers_folders(session):
    client, _ = session
    frame_of(client, RenderArgs(model="models/micro.safetensors"))
    status = client.status(timeout=30)
    assert status is not None and status.jobs == 0 and status.model_loads >= 1
    assert any(m.endswith("micro.safetensors") for m in status.models)
    listing = client.list_models("models", timeout=30)
    assert [(e.name, e.kind) for e in listing.entries] == [("micro.safetensors", "model"), ("sg3.safetensors", "model")]
    assert "outside the served folder" in client.list_models("..", timeout=30).error
    refused = frame_of(client, RenderArgs(model="../elsewhere.pkl"))
    assert "outside the served folder" in refused.error


def serve_process(root: Path, port: int, model: str):
    """`python visualizer.py serve` in a subprocess, once it listens."""
    return process(str(ROOT / "visualizer.py"), "serve", str(root / model), "--root", str(root), "--port", str(port),
                   ready="Listening on")


def test_a_server_killed_mid_frame_and_started_again_is_reconnected(served, tmp_path):
    port = free_port()
    # A frame that takes a while: a model not loaded yet, its spectrum, and untransformed.
    shutil.copy(served / "models" / "sg3.safetensors", served / "models" / "fresh.safetensors")
    slow = RenderArgs(model="models/fresh.safetensors", latent=((7, 1.0),), fft_show=True, untransform=True,
                      input_transform=((1.0, 0.0, 0.2), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    client = RenderClient(remote=RemoteClient(f"127.0.0.1:{port}", TOKEN))
    try:
        with serve_process(served, port, "models/sg3.safetensors") as server:
            shown = frame_of(client, RenderArgs(model="models/sg3.safetensors"))
            job = client.submit(AverageSpectrumRequest(args=RenderArgs(model="models/sg3.safetensors"), num_images=10**5))
            wait_until(lambda: job.done or job.progress > 0, timeout=60, what="the job starting")  # .done pumps
            assert not job.done, job.error
            client.set_args(slow)
            time.sleep(0.05)  # the request reaches the server, which starts on it
            server.send_signal(signal.SIGKILL)
            assert server.wait(10) == -signal.SIGKILL
        assert client.get_result() is None, "the slow frame finished before the server was killed"
        wait_until(lambda: client.remote.status.state == LinkState.RECONNECTING, what="the drop being noticed")
        assert job.wait(10) and "connection to the server was lost" in job.error and "did not finish" in job.error
        assert client.get_result() is None  # the GUI keeps the frame it had: nothing replaces it
        assert shown.image is not None
        with serve_process(served, port, "models/sg3.safetensors"):
            result = frame_of(client, slow, timeout=60)  # sent again by itself once the new server is there
            assert result.error is None and result.image.shape == (64, 128, 3)
            assert "Reconnected" in result.message and "restarted" in result.message
    finally:
        client.close()
        (served / "models" / "fresh.safetensors").unlink()
