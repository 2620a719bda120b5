"""The exploration jobs against the real render worker behind `serve`, on loopback through the GUI's
own client: the image to project is read on the GUI's machine and travels as pixels (the server never
sees its path), pixels the model cannot take are refused with a sentence while the server serves on,
and the server's paths in the jobs (direction file, run directory, model B) stay under its root."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from renderer.client import RenderClient
from renderer.directions import FILE, DirectionMove, DirectionSource
from renderer.image_align import projection_target
from renderer.protocol import (CompareRequest, DirectionsRequest, JobRequest, ProjectionPreview, ProjectionRequest,
                               ProjectionResult, ProjectionTarget, RenderArgs, RunTimeline, RunTimelineRequest)
from tests.test_remote_worker import frame_of, session  # noqa: F401 (session: the fixture, on our `served`)

TIMEOUT_S = 120.0
MODEL = "models/micro.safetensors"       # 16 px StyleGAN2


@pytest.fixture(scope="module")
def served(micro_sg2_model, tmp_path_factory) -> Path:
    """The server's folder: a model, a training run, and a direction file."""
    root = tmp_path_factory.mktemp("served")
    (root / "models").mkdir()
    shutil.copy(micro_sg2_model, root / MODEL)
    (root / "runs" / "r1").mkdir(parents=True)
    shutil.copy(micro_sg2_model, root / "runs" / "r1" / "network-snapshot-000004.safetensors")
    np.save(root / "models" / "d.npy", np.eye(8, dtype=np.float32)[:2])
    return root


def finished(client: RenderClient, spec):
    job = client.submit(spec)
    assert job.wait(TIMEOUT_S), f"no end of {type(spec).__name__}: {client.remote.status}"
    return job


def test_an_image_on_the_gui_machine_only_is_projected_by_the_server(session, served, tmp_path):
    client, handler = session
    args = RenderArgs(model=MODEL, latent=((3, 1.0),))
    frame = frame_of(client, args)
    here = tmp_path / "gui-side" / "photo.png"          # nowhere under the server's folder
    here.parent.mkdir()
    Image.fromarray(np.pad(frame.image, ((0, 0), (4, 4), (0, 0)), constant_values=255)).save(here)
    target = projection_target(here, frame.model.img_resolution, frame.model.img_channels)
    job = finished(client, ProjectionRequest(args, target, steps=4, preview_every=2, w_noise=0.0))
    assert job.error is None, job.error
    previews = [o for o in job.take_outputs() if isinstance(o, ProjectionPreview)]
    result = job.value
    assert isinstance(result, ProjectionResult) and [p.step for p in previews] == [2, 4]
    assert np.array_equal(result.target, target.pixels) and result.crop_box == (4, 0, 20, 16)
    assert result.source_size == (24, 16) and len(result.distances) == 4
    assert result.distances[-1] < result.distances[0]
    sent = [m.spec for m in handler.messages if isinstance(m, JobRequest) and isinstance(m.spec, ProjectionRequest)]
    assert np.array_equal(sent[-1].target.pixels, target.pixels)
    assert all(str(tmp_path) not in repr(m) for m in handler.messages)   # the path never left this machine


def test_pixels_the_model_cannot_take_are_refused_and_the_server_serves_on(session):
    client, _ = session
    args = RenderArgs(model=MODEL, latent=((4, 1.0),))
    for pixels, words in ((np.zeros((2048, 2048, 3), np.uint8), "aligned to 2048 x 2048 x 3 pixels, this model "
                                                                "takes 16 x 16 x 3"),
                          (np.zeros((16, 16, 3), np.float64), "float64 values, not 8-bit pixels")):
        target = ProjectionTarget(pixels, (0, 0, 16, 16), (16, 16), "hostile.png")
        job = finished(client, ProjectionRequest(args, target, steps=3))
        assert job.error is not None and words in job.error, job.error
    too_big = ProjectionTarget(np.zeros((2049, 2048, 3), np.uint8), (0, 0, 1, 1), (1, 1), "big.png")
    job = finished(client, ProjectionRequest(args, too_big, steps=3))   # refused before it leaves
    assert "ProjectionTarget.pixels" in job.error
    assert frame_of(client, args).error is None


def test_the_servers_paths_in_exploration_jobs_stay_under_its_root(session, served, tmp_path):
    client, _ = session
    args = RenderArgs(model=MODEL, latent=((5, 1.0),))
    outside_run = tmp_path / "run"
    outside_run.mkdir()
    shutil.copy(served / MODEL, outside_run / "network-snapshot-000000.safetensors")
    np.save(tmp_path / "d.npy", np.eye(8, dtype=np.float32)[:1])
    outside_file = DirectionSource(method=FILE, path=str(tmp_path / "d.npy"))
    refused = [RunTimelineRequest(args, str(outside_run)), RunTimelineRequest(args, "../elsewhere"),
               CompareRequest(args, "../" + MODEL), CompareRequest(args, str(outside_run / "network-snapshot-000000.safetensors")),
               DirectionsRequest(args, outside_file), DirectionsRequest(args, DirectionSource(method=FILE, path="models/x.pkl"))]
    for spec in refused:
        job = finished(client, spec)
        assert job.error is not None and ("outside the served folder" in job.error or "not a direction file" in job.error), \
            (spec, job.error)
    moved = frame_of(client, args.replace(directions=(DirectionMove(outside_file, 0, 1.0),)))
    assert "outside the served folder" in moved.error

    inside = DirectionSource(method=FILE, path="models/d.npy")
    directions = finished(client, DirectionsRequest(args, inside))
    assert directions.error is None and directions.value.count == 2
    assert frame_of(client, args.replace(directions=(DirectionMove(inside, 1, 2.0),))).error is None
    timeline = finished(client, RunTimelineRequest(args, "runs/r1"))
    assert timeline.error is None and isinstance(timeline.value, RunTimeline)
    assert [s.kimg for s in timeline.value.snapshots] == [4.0]
    compare = finished(client, CompareRequest(args, "runs/r1"))
    assert compare.error is None and compare.value.max_difference == 0   # the same weights
