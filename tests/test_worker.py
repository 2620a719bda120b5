"""One render worker serves everything the GUI asks (issue 16): in the real app, every analysis panel, a
live readout and a clip export load the model once, in the one worker process; a clip renders with the
device, op path and precision the user chose; and while a long job runs, new frames still come back
within one slice of the job plus their own render time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from renderer.client import RenderClient
from renderer.protocol import AverageSpectrumRequest, RenderArgs
from renderer.worker.jobs import spectrum_batch_size
from renderer.worker.render import Renderer
from tests.test_gui import run_gui

JOB_TIMEOUT = 200
CLIP_FRAMES = 2


@pytest.fixture(scope="module")
def everything_session(xdisplay, tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one_worker")
    d = lambda name: str(tmp / f"{name}.json")  # noqa: E731
    steps = [
        {"wait": "frame"},
        {"click": "Layers"},
        {"click": "Analysis"}, {"click": "Per-layer spectra"}, {"wait": "analysis", "timeout": JOB_TIMEOUT},
        {"set": "analysis.avg_num", "value": 2000}, {"click": "Start##avg"}, {"frames": 5},
        {"dump": d("during_average")},
        {"click": "Cancel##avg"}, {"wait": "analysis", "timeout": JOB_TIMEOUT},
        {"set": "analysis.avg_num", "value": 8}, {"click": "Start##avg"}, {"wait": "analysis", "timeout": JOB_TIMEOUT},
        {"click": "Analysis"},
        {"click": "Equivariance"}, {"click": "Measure##eq"}, {"wait": "analysis", "timeout": JOB_TIMEOUT},
        {"click": "Equivariance"},
        # The Performance section is drawn after the clip section: a clip must still use its settings.
        {"set": "performance.op_path", "value": "reference"}, {"set": "performance.precision", "value": "bfloat16"},
        {"wait": "frame"},
        {"set": "clip.duration", "value": 1.0}, {"set": "clip.fps", "value": float(CLIP_FRAMES)},
        {"set": "clip.format", "value": "png"}, {"set": "latent.anim", "value": True},
        {"click": "Clip export"}, {"click": "Export clip"}, {"wait": "export", "timeout": JOB_TIMEOUT},
        {"set": "latent.anim", "value": False},
        {"dump": d("end")},
        {"quit": 0},
    ]
    proc = run_gui([str(tiny_model)], tmp, steps, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp


def _state(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_panel_readout_and_clip_load_the_model_once_in_one_process(everything_session):
    end = _state(everything_session / "end.json")
    assert end["analysis"]["error"] is None and end["analysis"]["layers_analysed"] > 0
    assert end["analysis"]["average_images"] == 8
    assert end["equivariance_readout"] is not None and end["last_clip"] is not None
    worker = end["worker"]
    assert worker["model_loads"] == 1 and len(worker["models"]) == 1 and worker["jobs"] == 0
    assert worker["pid"] == end["renderer_pid"]
    # While the long average spectrum ran, the GUI had no process but the worker (and multiprocessing's
    # resource tracker): no analysis or export process.
    during = _state(everything_session / "during_average.json")
    assert during["worker"]["jobs"] == 1 and during["worker"]["pid"] == during["renderer_pid"]
    others = [cmd for pid, cmd in during["child_processes"] if pid != during["renderer_pid"]]
    assert all("resource_tracker" in cmd for cmd in others), others
    assert not end["torch_imported"]


def test_a_clip_renders_with_the_chosen_op_path_and_precision(everything_session, tiny_model):
    end = _state(everything_session / "end.json")
    base = end["last_clip_base"]
    assert (base["op_path"], base["precision"]) == ("reference", "bfloat16")
    folder = Path(end["last_clip"])
    frames = sorted(folder.iterdir())
    assert len(frames) == CLIP_FRAMES
    first = np.asarray(Image.open(frames[0]))
    latent = tuple(tuple(p) for p in base["latent"])
    chosen = RenderArgs(model=str(tiny_model), latent=latent, op_path="reference", precision="bfloat16")
    with_choice = Renderer().render(chosen)
    assert with_choice.error is None and with_choice.op_path == "reference"
    # What rendered the clip's frames, as the worker reported it: the chosen path, and the bfloat16
    # preview where this CPU runs it (else float32, as a frame on screen would be).
    assert end["last_clip_rendered_with"] == ["reference", with_choice.precision]
    assert np.array_equal(first, with_choice.image)


def test_frames_come_back_while_an_average_spectrum_of_200_seeds_runs(tiny_model):
    """The stated bound: a new frame waits at most for the job's slice in progress, then renders. Both are
    measured here, on this machine: the slice from the job's own progress messages, the frame alone."""
    base = RenderArgs(model=str(tiny_model), device="cpu")
    with RenderClient() as client:
        frame_times = []
        for seed in range(3):               # warm up the worker and measure frames with no job running
            start = time.perf_counter()
            client.set_args(base.replace(latent=((seed, 1.0),)))
            result = _wait_frame(client)
            frame_times.append(time.perf_counter() - start)
            assert result.error is None
        frame_alone = min(frame_times)

        job = client.submit(AverageSpectrumRequest(base, num_images=200, mean=128.0, std=50.0))
        progress_at: list[tuple[float, float]] = []
        latencies = []
        seed = 100
        while not job.done:
            progress_at.append((time.perf_counter(), job.progress))
            seed += 1
            start = time.perf_counter()
            client.set_args(base.replace(latent=((seed, 1.0),)))
            result = _wait_frame(client, also=lambda: progress_at.append((time.perf_counter(), job.progress)))
            assert result.error is None and result.args.latent == ((seed, 1.0),)
            if not job.done:
                latencies.append(time.perf_counter() - start)
        assert job.error is None and job.value.num_images == 200
    # Frames were served while the job ran, many times over.
    assert len(latencies) >= 5
    # The slice: the longest gap between two progress updates of the job (each update is one slice,
    # of spectrum_batch_size images, interleaved with the frames above).
    updates = [t for (t, p), (_, q) in zip(progress_at[1:], progress_at[:-1]) if p != q]
    slice_time = max(b - a for a, b in zip(updates[:-1], updates[1:])) if len(updates) > 1 else frame_alone * 8
    bound = slice_time + frame_alone
    # Twice the bound, for the scheduling noise of a shared 2-core machine: a backlog of slices or frames
    # would exceed it by far (200 images are 25 slices).
    assert max(latencies) < 2 * bound + 0.5, (max(latencies), slice_time, frame_alone)
    assert spectrum_batch_size(64) == 8


def _wait_frame(client: RenderClient, timeout: float = 120, also=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = client.get_result()
        if result is not None and result.stamp == client._stamp:
            return result
        if also is not None:
            also()
        time.sleep(0.002)
    raise AssertionError("no frame within the timeout")


def test_an_animation_does_not_starve_a_job(tiny_model):
    """An animating GUI sends a new frame request as soon as each frame is back. The worker alternates
    frames and job slices, so the job still advances one slice per frame and finishes."""
    import queue

    from renderer.protocol import FrameRequest, JobDone, JobProgress, JobRequest, StopWorker
    from renderer.worker.worker import serve

    base = RenderArgs(model=str(tiny_model), device="cpu")
    inbox: queue.Queue = queue.Queue()
    replies: list[object] = []
    frames: list[int] = []
    inbox.put(JobRequest(job_id=1, spec=AverageSpectrumRequest(base, num_images=24, mean=128.0, std=50.0)))
    inbox.put(FrameRequest(stamp=1, args=base))

    def deliver(result) -> bool:
        frames.append(result.stamp)
        stamp = result.stamp + 1
        if any(isinstance(r, JobDone) for r in replies):
            inbox.put(StopWorker())
        else:                               # the next animation frame is asked for at once
            inbox.put(FrameRequest(stamp=stamp, args=base.replace(latent=((stamp, 1.0),))))
        return True

    def receive(timeout):
        return inbox.get(timeout=timeout) if timeout else inbox.get_nowait()

    serve(receive, replies.append, deliver)
    done = [r for r in replies if isinstance(r, JobDone)]
    assert len(done) == 1 and done[0].error is None and done[0].value.num_images == 24
    slices = [r for r in replies if isinstance(r, JobProgress)]
    # 24 images at 8 per slice, after a first (loading) slice; a frame between every two slices.
    assert len(slices) == 4 and len(frames) >= len(slices)
