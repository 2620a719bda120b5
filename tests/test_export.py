"""Clip export and frame capture: frame counts read back by imageio, atomic writes, cancel, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from renderer.capture import args_from_json, save_png
from renderer.worker.export import ExportCancelled, ExportJob, render_clip
from renderer.protocol import ClipSpec, ModelInfo, RenderArgs

FPS = 10
SECONDS = 2


def clip_frames(model: Path) -> tuple[RenderArgs, ...]:
    # A walk through latent space, as the GUI's animation would give: every frame differs.
    return tuple(RenderArgs(model=str(model), latent=((i, 1.0),), img_gain_db=6.0) for i in range(FPS * SECONDS))


def only_output_left(directory: Path, name: str) -> bool:
    return sorted(p.name for p in directory.iterdir()) == [name]


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_two_second_clip_reads_back_as_twenty_frames(micro_sg2_model, tmp_path, fmt):
    out = tmp_path / f"clip.{fmt}"
    seen = []
    path = render_clip(ClipSpec(out_path=str(out), frames=clip_frames(micro_sg2_model), fps=FPS, format=fmt, size=32),
                       progress=lambda done, total: seen.append((done, total)))
    assert path == out and only_output_left(tmp_path, out.name)
    frames = imageio.mimread(out, memtest=False)
    assert len(frames) == FPS * SECONDS
    assert frames[0].shape[:2] == (32, 32)
    assert seen[-1] == (FPS * SECONDS, FPS * SECONDS) and len(seen) == FPS * SECONDS
    if fmt == "mp4":
        assert imageio.get_reader(out).get_meta_data()["fps"] == pytest.approx(FPS)


def test_png_sequence_folder(micro_sg2_model, tmp_path):
    out = tmp_path / "frames"
    render_clip(ClipSpec(out_path=str(out), frames=clip_frames(micro_sg2_model)[:5], fps=FPS, format="png"))
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(5)]
    assert only_output_left(tmp_path, "frames")
    assert np.asarray(Image.open(out / names[0])).shape == (16, 16, 3)


def test_cancel_leaves_nothing(micro_sg2_model, tmp_path):
    out = tmp_path / "clip.mp4"
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(ExportCancelled):
        render_clip(ClipSpec(out_path=str(out), frames=clip_frames(micro_sg2_model), fps=FPS), cancelled=cancelled)
    assert list(tmp_path.iterdir()) == []


def test_failed_frame_leaves_nothing_and_says_which(micro_sg2_model, tmp_path):
    frames = clip_frames(micro_sg2_model)[:3] + (RenderArgs(model=str(tmp_path / "missing.pkl")),)
    from renderer.worker.export import ExportError

    with pytest.raises(ExportError, match="Frame 4 of 4"):
        render_clip(ClipSpec(out_path=str(tmp_path / "clip.gif"), frames=frames, fps=FPS, format="gif"))
    assert list(tmp_path.iterdir()) == []


def test_background_job_finishes_and_cancels(micro_sg2_model, tmp_path):
    out = tmp_path / "clip.gif"
    job = ExportJob(ClipSpec(out_path=str(out), frames=clip_frames(micro_sg2_model), fps=FPS, format="gif"))
    assert job.wait(timeout=120)
    assert job.error is None and job.output == out and job.progress == 1.0
    assert len(imageio.mimread(out)) == FPS * SECONDS

    long = ClipSpec(out_path=str(tmp_path / "long.mp4"), frames=clip_frames(micro_sg2_model) * 50, fps=FPS)
    job = ExportJob(long)
    job.cancel()
    assert job.wait(timeout=120)
    assert job.cancelled and job.output is None and job.error is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif"]


def test_saved_png_carries_the_render_state(tmp_path):
    args = RenderArgs(model="/models/run/network-snapshot-000100.pkl", latent=((3, 0.25), (4, 0.75)), mix_rows=(1, 2),
                      input_transform=((1.0, 0.0, 0.1), (0.0, 1.0, -0.2), (0.0, 0.0, 1.0)), layer="L3_36_64")
    model = ModelInfo(path="/models/run", snapshot="/models/run/network-snapshot-000100.pkl", family="stylegan3-t")
    image = np.random.RandomState(0).randint(0, 256, size=(24, 40, 3), dtype=np.uint8)
    path = save_png(tmp_path / "shot.png", image, args, model, extra={"note": "test"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.json", "shot.png"]
    with Image.open(path) as img:
        assert np.array_equal(np.asarray(img), image)
        assert img.text["model"] == "network-snapshot-000100.pkl"
    assert args_from_json(path) == args
    assert args_from_json(tmp_path / "shot.json") == args
    assert json.loads((tmp_path / "shot.json").read_text())["extra"] == {"note": "test"}
