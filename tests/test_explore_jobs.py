"""The exploration jobs and the frame's direction moves through the real worker (RenderClient, in
process): directions computed and kept, frames moved along them, projection with previews, cancel
and a W file that renders its result, seed grids that arrive cell by cell between frames, a training
run's snapshots over time, and the A/B difference."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from renderer.capture import args_from_json, render_state
from renderer.client import RenderClient
from renderer.conventions import seed_from_cell
from renderer.directions import FILE, SEFA, DirectionMove, DirectionSource, save_directions
from renderer.files import write_atomic
from renderer.image_align import ImageLoadError, projection_target
from renderer.protocol import (CompareRequest, Comparison, DirectionsRequest, GridCell, ProjectionPreview,
                               ProjectionRequest, ProjectionResult, ProjectionTarget, RenderArgs, RunSnapshot,
                               RunTimelineRequest, SeedGridRequest)
from renderer.worker.analysis.ganspace import GanSpaceRequest, ganspace
from renderer.worker.analysis.sefa import sefa
from renderer.worker.analysis.style_rows import row_group
from renderer.worker.models import load_generator, save_generator

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "checkpoints" / "demo.safetensors"
TIMEOUT = 240
GANSPACE = DirectionSource(num_samples=512)


@pytest.fixture(scope="module")
def client():
    with RenderClient(in_process=True) as c:
        yield c


@pytest.fixture(scope="module")
def args() -> RenderArgs:
    return RenderArgs(model=str(DEMO), device="cpu", latent=((5, 1.0),))


@pytest.fixture(scope="module")
def demo():
    return load_generator(DEMO)


_frames: dict = {}


def _frame(client: RenderClient, args: RenderArgs):
    """The frame of `args` (the client sends args equal to the last ones only once: keep what came back)."""
    if args in _frames:
        return _frames[args]
    client.set_args(args)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        result = client.get_result()
        if result is not None and result.args == args:
            _frames[args] = result
            return result
        time.sleep(0.005)
    raise AssertionError("no frame")


def _run(client: RenderClient, spec):
    job = client.submit(spec)
    assert job.wait(TIMEOUT)
    assert job.error is None, job.error
    return job


def test_ganspace_job_reports_progress_and_matches_the_direct_computation(client, args, demo):
    source = DirectionSource(num_samples=2048)
    job = client.submit(DirectionsRequest(args, source, count=6))
    seen = []
    while not job.done:
        seen.append(job.progress)
        time.sleep(0.001)
    assert job.error is None, job.error
    got = job.value
    want = ganspace(demo, GanSpaceRequest(num_samples=2048))
    assert got.count == 6
    np.testing.assert_allclose(got.vectors, want.vectors[:6], atol=1e-5)
    np.testing.assert_allclose(got.vectors @ got.vectors.T, np.eye(6), atol=1e-5)
    assert np.all(np.diff(got.eigenvalues) <= 0) and got.explained.sum() < 1
    assert any(0 < p < 1 for p in seen)            # progress between the batches of seeds


def test_sefa_job_matches_sefa_of_the_affines(client, args, demo):
    got = _run(client, DirectionsRequest(args, DirectionSource(method=SEFA, rows=(0, 1, 2)), count=4)).value
    want = sefa(demo, (0, 1, 2), 4)
    np.testing.assert_allclose(got.vectors, want.vectors, atol=1e-6)
    np.testing.assert_allclose(got.eigenvalues, want.eigenvalues)


def test_frames_move_along_a_direction_and_back(client, args, demo):
    directions = _run(client, DirectionsRequest(args, GANSPACE, count=4)).value
    base = _frame(client, args)
    zero = _frame(client, args.replace(directions=(DirectionMove(GANSPACE, 1, 0.0),)))
    assert np.array_equal(zero.image, base.image) and np.array_equal(zero.w, base.w)
    strength = 3.0 * float(directions.spread[1])
    moved = _frame(client, args.replace(directions=(DirectionMove(GANSPACE, 1, strength),)))
    assert moved.error is None
    np.testing.assert_allclose(moved.w - base.w, np.broadcast_to(strength * directions.vectors[1], base.w.shape),
                               atol=1e-5)
    assert np.abs(moved.image.astype(int) - base.image).mean() > 1.0
    back = _frame(client, args.replace(directions=(DirectionMove(GANSPACE, 1, 0.0),), latent=((5, 1.0),)))
    assert np.array_equal(back.image, base.image)


def test_direction_rows_coarse_and_custom(client, args, demo):
    v = _run(client, DirectionsRequest(args, GANSPACE, count=1)).value.vectors[0]
    base = _frame(client, args).w
    move = (DirectionMove(GANSPACE, 0, 2.0),)
    coarse = row_group(demo, "coarse")
    w = _frame(client, args.replace(directions=move, direction_rows="coarse")).w
    moved_rows = [r for r in range(len(base)) if not np.array_equal(w[r], base[r])]
    assert moved_rows == list(coarse) and 0 < len(coarse) < len(base)
    np.testing.assert_allclose(w[coarse[0]] - base[coarse[0]], 2.0 * v, atol=1e-5)
    w = _frame(client, args.replace(directions=move, direction_rows="custom", direction_custom_rows=(3, 5))).w
    assert [r for r in range(len(base)) if not np.array_equal(w[r], base[r])] == [3, 5]
    bad = _frame(client, args.replace(directions=move, direction_rows="custom", direction_custom_rows=(99,)))
    assert "rows [99] do not exist" in bad.error


def test_two_directions_at_once_and_a_direction_file(client, args, tmp_path):
    vectors = _run(client, DirectionsRequest(args, GANSPACE, count=3)).value.vectors
    path = save_directions(tmp_path / "dirs.npy", vectors[[2, 0]])
    from_file = DirectionSource(method=FILE, path=str(path))
    loaded = _run(client, DirectionsRequest(args, from_file)).value
    np.testing.assert_allclose(loaded.vectors, vectors[[2, 0]], atol=1e-6)
    both = _frame(client, args.replace(directions=(DirectionMove(GANSPACE, 0, 1.5), DirectionMove(GANSPACE, 2, -1.0))))
    same = _frame(client, args.replace(directions=(DirectionMove(from_file, 1, 1.5), DirectionMove(from_file, 0, -1.0))))
    np.testing.assert_allclose(same.w, both.w, atol=1e-5)
    missing = _frame(client, args.replace(directions=(DirectionMove(from_file, 7, 1.0),)))
    assert "direction 7 does not exist" in missing.error


def test_directions_are_part_of_the_saved_frame_state(args):
    moved = args.replace(directions=(DirectionMove(DirectionSource(method=SEFA, rows=(1, 2)), 3, -2.5),),
                         direction_rows="custom", direction_custom_rows=(1, 4))
    state = json.loads(json.dumps(render_state(moved, None)))
    assert args_from_json(state) == moved
    state["args"]["directions"] = [{"index": 1}]
    with pytest.raises(ValueError, match="directions cannot be read"):
        args_from_json(state)


def _own_frame_file(client, args, tmp_path) -> Path:
    image = _frame(client, args.replace(latent=((11, 1.0),))).image
    path = tmp_path / "target.png"
    Image.fromarray(np.pad(image, ((0, 0), (8, 8), (0, 0)), constant_values=255)).save(path)  # wider: cropped
    return path


def test_projection_job_previews_and_a_w_file_that_renders_its_result(client, args, tmp_path):
    target = projection_target(_own_frame_file(client, args, tmp_path), 64, 3)
    job = _run(client, ProjectionRequest(args, target, space="w+", steps=6, preview_every=2, w_noise=0.0))
    previews = [o for o in job.take_outputs() if isinstance(o, ProjectionPreview)]
    result = job.value
    assert isinstance(result, ProjectionResult)
    assert [p.step for p in previews] == [2, 4, 6]
    assert np.array_equal(previews[0].target, result.target) and previews[0].crop_box == result.crop_box
    assert previews[1].target is None
    assert result.crop_box == (8, 0, 72, 64) and result.source_size == (80, 64)
    assert len(result.distances) == 6 and result.distances[-1] < result.distances[0]
    assert result.w.shape == previews[-1].w.shape and not np.allclose(result.w[0], result.w[-1])  # W+: own rows
    # The GUI keeps the result as a W file; the frame of that file is the result's image.
    w_file = tmp_path / "projected.npy"
    buffer = io.BytesIO()
    np.save(buffer, result.w, allow_pickle=False)
    write_atomic(w_file, buffer.getvalue())
    frame = _frame(client, args.replace(w_file=str(w_file)))
    assert frame.error is None and np.array_equal(frame.image, result.image)


def test_projection_can_be_cancelled_and_bad_images_are_refused(client, args, tmp_path):
    target = projection_target(_own_frame_file(client, args, tmp_path), 64, 3)
    job = client.submit(ProjectionRequest(args, target, steps=10_000, preview_every=1))
    deadline = time.monotonic() + TIMEOUT
    while not job.take_outputs() and time.monotonic() < deadline:
        time.sleep(0.01)
    job.cancel()
    assert job.wait(TIMEOUT) and job.cancelled and job.value is None
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(ImageLoadError, match="broken.png"):
        projection_target(broken, 64, 3)
    # Pixels aligned for another model, or not 8-bit, are refused by the worker with a sentence.
    for pixels, words in ((np.zeros((32, 32, 3), np.uint8), "aligned to 32 x 32 x 3 pixels, this model takes 64 x 64"),
                          (np.zeros((64, 64, 3), np.float32), "float32 values, not 8-bit pixels")):
        wrong = dataclasses.replace(target, pixels=pixels)
        failed = client.submit(ProjectionRequest(args, wrong, steps=3))
        assert failed.wait(TIMEOUT) and words in failed.error, failed.error


def test_seed_grid_cells_arrive_in_order_between_frames(client, args):
    spec = SeedGridRequest(args, columns=5, rows=4, x=2, y=1, cell_size=64)
    job = client.submit(spec)
    while job.progress == 0 and not job.done:
        time.sleep(0.005)
    # A frame asked for while the grid renders comes back before the grid is finished.
    frame = _frame(client, args.replace(latent=((seed_from_cell(0, 0), 1.0),)))
    assert not job.done and job.progress < 1
    assert job.wait(TIMEOUT) and job.error is None
    cells = [o for o in job.take_outputs() if isinstance(o, GridCell)]
    assert [c.index for c in cells] == list(range(20))
    assert cells[0].position == (0, -1) and cells[7].position == (2, 0)  # columns x - 2 .. x + 2, rows y - 2 ..
    assert cells[7].seed == seed_from_cell(2, 0) == 2
    # A cell is the frame of its seed; the corner cell (0, -1) is not the frame of (0, 0).
    assert np.array_equal(cells[7].image, _frame(client, args.replace(latent=((2, 1.0),))).image)
    assert not np.array_equal(cells[0].image, frame.image)


def test_seed_grid_along_a_direction_and_thumbnails(client, args):
    _run(client, DirectionsRequest(args, GANSPACE, count=2))
    move = DirectionMove(GANSPACE, 0, 1.0)
    job = _run(client, SeedGridRequest(args, columns=3, rows=1, direction=move, step=2.0, cell_size=32))
    cells = job.take_outputs()
    assert [c.strength for c in cells] == [-1.0, 1.0, 3.0]
    assert all(c.image.shape == (32, 32, 3) for c in cells)
    full = _frame(client, args.replace(directions=(DirectionMove(GANSPACE, 0, 3.0),))).image
    small = np.asarray(Image.fromarray(full).resize((32, 32), Image.Resampling.BOX))
    assert np.array_equal(cells[2].image, small)
    refused = client.submit(SeedGridRequest(args, columns=30, rows=30))
    assert refused.wait(TIMEOUT) and "1 to 400 cells" in refused.error


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, demo) -> Path:
    """A training run directory: two snapshots (the demo model and a copy with a changed output bias),
    this project's log.jsonl and an official metric-*.jsonl."""
    run = tmp_path_factory.mktemp("run")
    shutil.copy(DEMO, run / "network-snapshot-000004.safetensors")
    G = load_generator(DEMO)
    getattr(G.synthesis, G.synthesis.layer_names[-1]).bias.data += 0.25    # the ToRGB layer
    save_generator(G, run / "network-snapshot-000012.safetensors")
    (run / "network-snapshot-000020.safetensors.tmp").write_bytes(b"half written")
    log = [{"event": "snapshot", "file": "network-snapshot-000004.safetensors", "kimg": 4.0, "chamfer": 0.3,
            "images_seen": 4000},
           "not json",
           {"event": "snapshot", "file": "network-snapshot-000012.safetensors", "kimg": 12.0, "chamfer": 0.2}]
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) if isinstance(r, dict) else r for r in log) + "\n")
    (run / "metric-fid50k_full.jsonl").write_text(json.dumps(
        {"results": {"fid50k_full": 41.5}, "snapshot_pkl": "network-snapshot-000012.safetensors"}) + "\n")
    return run


def test_run_over_time_renders_each_snapshot_with_its_logged_quality(client, args, run_dir):
    job = _run(client, RunTimelineRequest(args, str(run_dir)))
    outputs = [o for o in job.take_outputs() if isinstance(o, RunSnapshot)]
    timeline = job.value
    assert [s.kimg for s in timeline.snapshots] == [4.0, 12.0] and len(outputs) == 2
    assert dict(timeline.snapshots[0].metrics) == {"chamfer": 0.3}
    assert dict(timeline.snapshots[1].metrics) == {"chamfer": 0.2, "fid50k_full": 41.5}
    first, second = (s.image for s in timeline.snapshots)
    assert np.array_equal(first, _frame(client, args).image)            # the same latent as on screen
    assert np.abs(second.astype(int) - first).mean() > 1
    empty = client.submit(RunTimelineRequest(args, str(run_dir / "missing")))
    assert empty.wait(TIMEOUT) and "not a directory" in empty.error


def test_ab_comparison_and_its_difference_image(client, args, run_dir):
    same = _run(client, CompareRequest(args, str(run_dir / "network-snapshot-000004.safetensors"))).value
    assert isinstance(same, Comparison) and same.max_difference == 0 and not same.difference.any()
    other = _run(client, CompareRequest(args, str(run_dir / "network-snapshot-000012.safetensors"))).value
    diff = np.abs(other.image_a.astype(int) - other.image_b.astype(int))
    assert other.max_difference == diff.max() > 0 and other.mean_difference == pytest.approx(diff.mean())
    assert other.difference.max() == 255 and np.array_equal(other.difference == 255, diff == diff.max())


def test_a_clip_sweeps_a_direction(client, args, tmp_path):
    from renderer.animation import Animation, DirectionSweep
    from renderer.protocol import ClipFrame, ClipSpec
    from renderer.timeline import frame_args

    _run(client, DirectionsRequest(args, GANSPACE, count=2))
    sweep = DirectionSweep(source=GANSPACE, index=1, centre=0.5, amplitude=2.0, period=4.0, anim=True)
    spec = ClipSpec(out_path=str(tmp_path / "sweep"), base=args, num_frames=3, fps=1.0, format="png",
                    motion=Animation(sweep=sweep))
    strengths = [frame_args(spec, i).directions[-1].strength for i in range(3)]
    np.testing.assert_allclose(strengths, [0.5, 2.5, 0.5], atol=1e-12)      # sin at 0, 1/4, 1/2 of a period
    job = _run(client, spec)
    frames = [o for o in job.take_outputs() if isinstance(o, ClipFrame)]
    # The motion's latent is its own (seed 0 at position (0, 0)); frame 1 is 2.5 W units along direction 1.
    moved = _frame(client, args.replace(latent=((0, 1.0),), directions=(DirectionMove(GANSPACE, 1, 2.5),))).image
    assert np.array_equal(frames[1].image, moved) and not np.array_equal(frames[0].image, moved)


def test_pixel_probe_gives_the_layer_values_and_the_spectrum_power(client, args, demo):
    import torch

    from renderer.protocol import PixelProbeRequest, PixelValues
    from renderer.worker.render import frame_ws

    with torch.no_grad():
        out = demo.synthesis(frame_ws(demo, args, torch.device("cpu")), noise_mode="const")[0].numpy()
    probe = _run(client, PixelProbeRequest(args, 17, 40)).value
    assert isinstance(probe, PixelValues) and probe.part == "image" and (probe.column, probe.row) == (17, 40)
    np.testing.assert_allclose(probe.values, out[:, 40, 17], atol=1e-5)
    # The spectrum half: power summed over channels after removing means and a Kaiser window, in numpy here.
    fft = args.replace(fft_show=True)
    h, w = out.shape[1:]
    window = np.outer(np.kaiser(h, fft.fft_beta), np.kaiser(w, fft.fft_beta))
    power = np.fft.fftshift((np.abs(np.fft.fft2((out - out.mean(axis=(1, 2), keepdims=True)) * window)) ** 2).sum(0))
    spot = _run(client, PixelProbeRequest(fft, w + 40, 30)).value
    assert spot.part == "spectrum" and (spot.column, spot.row) == (40, 30)
    assert spot.power_db == pytest.approx(10 * np.log10(power[30, 40] / power.mean()), abs=1e-3)
    assert spot.frequency == pytest.approx(((40 - w // 2) * 1.0, (30 - h // 2) * 1.0))   # 64 per unit, 64 bins
    outside = client.submit(PixelProbeRequest(args, 64, 3))
    assert outside.wait(TIMEOUT) and "outside the 64 x 64 frame" in outside.error


@pytest.fixture(scope="module")
def run_with_d(tmp_path_factory) -> Path:
    """A run directory of this project's trainer: the demo run's config and resume state (which holds D)
    and the demo model as its snapshot."""
    run = tmp_path_factory.mktemp("run_with_d")
    shutil.copy(ROOT / "checkpoints" / "demo-run" / "config.json", run / "config.json")
    (run / "training-state.pt").symlink_to(ROOT / "checkpoints" / "demo-run" / "training-state.pt")
    shutil.copy(DEMO, run / "network-snapshot-000172.safetensors")
    return run


def test_discriminator_distance_is_zero_at_the_target_and_grows_away_from_it(run_with_d, demo):
    import torch

    from renderer.worker.analysis.d_distance import DiscriminatorDistance, load_discriminator

    D = load_discriminator(str(run_with_d / "network-snapshot-000172.safetensors"), demo)
    with torch.no_grad():
        images = demo(torch.randn(2, demo.z_dim, generator=torch.Generator().manual_seed(1)), None)
        distance = DiscriminatorDistance(D, images[:1])
        near = images[:1] + 0.05 * torch.randn(images[:1].shape, generator=torch.Generator().manual_seed(2))
        at, close, far = (float(distance(x)[0]) for x in (images[:1], near, images[1:]))
        features = float(distance.feature_distance(near)[0])
    assert abs(at) < 1e-5 and 0 < close < far and features > 0


def test_projection_uses_the_runs_discriminator_where_there_is_one(client, args, run_with_d, tmp_path):
    target = projection_target(_own_frame_file(client, args, tmp_path), 64, 3)
    snapshot = str(run_with_d / "network-snapshot-000172.safetensors")
    job = _run(client, ProjectionRequest(args.replace(model=snapshot), target, steps=6, w_noise=0.0))
    assert job.value.distance == "discriminator" and job.value.distances[-1] < job.value.distances[0]
    plain = _run(client, ProjectionRequest(args, target, steps=2, w_noise=0.0)).value
    assert plain.distance == "pixels"
    refused = client.submit(ProjectionRequest(args, target, steps=2, distance="discriminator"))
    assert refused.wait(TIMEOUT) and "no training-state.pt and config.json" in refused.error


def test_project_command_takes_the_discriminator_distance(client, args, run_with_d, tmp_path, capsys):
    from renderer.worker.cli_project import project_main

    target = _own_frame_file(client, args, tmp_path)
    out = tmp_path / "w.npy"
    assert project_main([str(run_with_d), str(target), "--out", str(out), "--steps", "2", "--distance",
                         "discriminator"]) == 0
    assert "discriminator distance" in capsys.readouterr().out and np.load(out).ndim == 2
    assert project_main([str(DEMO), str(target), "--out", str(out), "--steps", "2", "--distance",
                         "discriminator"]) == 1
    assert "no training-state.pt" in capsys.readouterr().err


def test_a_projection_on_an_official_snapshot_measures_with_its_d_read_while_frames_go_on(client, tmp_path):
    import lzma

    from tests.conftest import COMPAT_DIR

    snapshot = tmp_path / "network-snapshot-000000.pkl"
    snapshot.write_bytes(lzma.decompress((COMPAT_DIR / "ada_paper256_snapshot.pkl.xz").read_bytes()))
    official = RenderArgs(model=str(snapshot), device="cpu", latent=((3, 1.0),))
    image = _frame(client, official.replace(latent=((4, 1.0),))).image
    target = ProjectionTarget(image, (0, 0, 32, 32), (32, 32), "own.png")
    job = _run(client, ProjectionRequest(official, target, steps=4, w_noise=0.0))
    assert job.value.distance == "discriminator" and job.value.distance_note == ""
    assert job.value.distances[-1] < job.value.distances[0]


def test_work_in_the_background_leaves_the_job_yielding_slices_until_it_ends():
    import threading

    from renderer.worker.job_base import Step, in_background

    release = threading.Event()
    run = in_background(lambda: (release.wait(30), 42)[1], 0, 7)
    slices = [next(run) for _ in range(3)]            # the work is blocked: the job still hands out slices
    assert all(isinstance(s, Step) and (s.done, s.total) == (0, 7) for s in slices)
    release.set()
    with pytest.raises(StopIteration) as stop:
        while True:
            next(run)
    assert stop.value.value == 42

    def fails():
        raise ValueError("the file is damaged")
    with pytest.raises(ValueError, match="the file is damaged"):
        for _ in in_background(fails):
            pass


def test_exploration_requests_and_results_travel_over_the_remote_link(client, args):
    from renderer.protocol import (DirectionsRequest, JobDone, JobProgress, JobRequest, PixelProbeRequest,
                                   RunTimeline)
    from renderer.remote.messages import MESSAGES

    moved = args.replace(directions=(DirectionMove(GANSPACE, 1, 2.5),), direction_rows="coarse")
    requests = [DirectionsRequest(moved, DirectionSource(method=SEFA, rows=(1, 2))),
                ProjectionRequest(moved, ProjectionTarget(np.arange(48, dtype=np.uint8).reshape(4, 4, 3), (1, 0, 5, 4),
                                                          (6, 4), "photo.png"), space="w+", steps=9, distance="pixels"),
                ProjectionRequest(moved, ProjectionTarget(np.zeros((4, 4, 3), np.uint8), (0, 0, 4, 4), (4, 4)),
                                  distance="lpips", vgg_path="weights/vgg16-397923af.pth", lpips_path="weights/vgg.pth"),
                SeedGridRequest(moved, columns=2, rows=2, direction=DirectionMove(GANSPACE, 0, 1.0), step=0.5),
                RunTimelineRequest(moved, "runs/00001"), CompareRequest(moved, "b.pkl"), PixelProbeRequest(moved, 3, 4)]
    for i, request in enumerate(requests):
        back = MESSAGES.decode(MESSAGES.encode(JobRequest(i, request))).spec
        if isinstance(request, ProjectionRequest):  # its pixels compare as arrays
            assert np.array_equal(back.target.pixels, request.target.pixels) and back.target.name == request.target.name
            assert (back.target.crop_box, back.target.source_size) == (request.target.crop_box,
                                                                       request.target.source_size)
            back, request = dataclasses.replace(back, target=None), dataclasses.replace(request, target=None)
        assert back == request
    directions = _run(client, DirectionsRequest(args, GANSPACE, count=3)).value
    grid = _run(client, SeedGridRequest(args, columns=2, rows=1, cell_size=16)).take_outputs()
    probe = _run(client, PixelProbeRequest(args, 1, 2)).value
    back = MESSAGES.decode(MESSAGES.encode(JobDone(1, value=directions))).value
    assert np.array_equal(back.vectors, directions.vectors) and np.array_equal(back.explained, directions.explained)
    cell = MESSAGES.decode(MESSAGES.encode(JobProgress(2, 1, 2, output=grid[1]))).output
    assert cell.position == grid[1].position and np.array_equal(cell.image, grid[1].image)
    assert np.array_equal(MESSAGES.decode(MESSAGES.encode(JobDone(3, value=probe))).value.values, probe.values)
    snapshot = RunSnapshot(0, "s.pkl", 4.0, (("fid", 3.5),), None, "could not load")
    timeline = MESSAGES.decode(MESSAGES.encode(JobDone(4, value=RunTimeline("runs/1", (snapshot,))))).value
    assert timeline.snapshots[0].metrics == (("fid", 3.5),) and timeline.snapshots[0].image is None
    result = ProjectionResult(w=np.zeros((4, 8), np.float32), image=np.zeros((4, 4, 3), np.uint8),
                              target=np.zeros((4, 4, 3), np.uint8), crop_box=(0, 0, 4, 4), source_size=(4, 4),
                              distances=np.ones(3), psnr=20.0, space="w", distance="pixels",
                              distance_note="the model holds no D; so the pixel distance is used.")
    came = MESSAGES.decode(MESSAGES.encode(JobDone(5, value=result))).value
    assert (came.distance, came.distance_note) == ("pixels", result.distance_note)
