"""Clip export and frame capture: frame counts read back by imageio, the frames the GUI's animation and
keyframes describe, atomic writes, cancel, failures, stale temporaries, metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from renderer.animation import Animation, LatentMotion, MixMotion, TransformMotion
from renderer.capture import args_from_json, save_png
from renderer.client import RenderClient
from renderer.clip_writer import ClipExport
from renderer.conventions import as_matrix3, user_transform, weighted_seeds
from renderer.files import remove_stale_temporaries
from renderer.protocol import ClipSpec, Keyframe, ModelInfo, RenderArgs
from renderer.timeline import MAX_CLIP_FRAMES, animated_args, check_clip, frame_args
from renderer.worker.export import ExportCancelled, ExportError, render_clip

FPS = 10
SECONDS = 2


def walk(model: Path, num_frames: int = FPS * SECONDS, **kwargs) -> ClipSpec:
    """A walk through latent space at one seed per frame, as the GUI's latent animation gives it."""
    motion = Animation(latent=LatentMotion(0.0, 0.0, anim=True, speed=float(FPS)))
    base = RenderArgs(model=str(model), img_gain_db=6.0)
    return ClipSpec(out_path=kwargs.pop("out_path"), base=base, num_frames=num_frames, motion=motion, fps=FPS, **kwargs)


def only_output_left(directory: Path, name: str) -> bool:
    return sorted(p.name for p in directory.iterdir()) == [name]


def test_animation_frames_are_the_motion_at_each_frame_time():
    base = RenderArgs(model="m.pkl", mix_rows=(2, 3))
    motion = Animation(latent=LatentMotion(1.5, -2.0, anim=True, speed=0.5), mix=MixMotion(7, anim=True, speed=-3.0),
                       transform=TransformMotion(translate=(0.1, 0.0), rotate=0.25, rotate_anim=True, rotate_speed=0.5),
                       has_transform=True, mixes=True, img_resolution=64)
    spec = ClipSpec(out_path="clip.mp4", base=base, num_frames=30, motion=motion, fps=10)
    frame = frame_args(spec, 20)  # t = 2 s
    assert frame.latent == weighted_seeds(2.5, -2.0)
    assert frame.mix_seed == 7 - 6 and frame.mix_rows == (2, 3)
    assert frame.input_transform == as_matrix3(user_transform((0.1, 0.0), 0.25 + 1.0))
    assert frame_args(spec, 0) == animated_args(base, motion, 0.0)  # frame 0 is the GUI's frame


def test_translation_animation_starts_and_pauses_where_it_stands():
    m = TransformMotion(translate=(0.2, -0.1), translate_anim=True, translate_speed=-0.25, translate_radius=0.1)
    assert m.at(0.0, 64)[0] == pytest.approx((0.2, -0.1))
    half = m.advanced(2.0)  # half a circle, the other way round
    assert half.at(0.0, 64)[0] == pytest.approx((0.2 - 0.2, -0.1))
    paused = half.paused()
    assert paused.translate == pytest.approx((0.0, -0.1)) and paused.translate_phase == 0
    assert paused.at(0.0, 64)[0] == pytest.approx(half.at(0.0, 64)[0])
    assert TransformMotion(rotate=0.1, rotate_anim=True, rotate_speed=-0.05).at(2.0, 64)[1] == pytest.approx(0.0)


def test_keyframes_interpolate_position_and_transform():
    a = Keyframe(RenderArgs(model="m.pkl"), (0.0, 0.0), (0.0, 0.0), 0.0)
    b = Keyframe(RenderArgs(model="m.pkl", layer="L1"), (4.0, 2.0), (0.2, 0.0), 0.5)
    spec = ClipSpec(out_path="c.gif", base=a.args, num_frames=5, keyframes=(a, b), format="gif")
    middle = frame_args(spec, 2)
    assert middle.latent == weighted_seeds(2.0, 1.0) and middle.layer is None
    assert middle.input_transform == as_matrix3(user_transform((0.1, 0.0), 0.25))
    assert frame_args(spec, 4).latent == weighted_seeds(4.0, 2.0)


def test_clip_limits_are_enforced_before_anything_is_built():
    base = RenderArgs(model="m.pkl")
    with pytest.raises(ValueError, match="1 to"):
        check_clip(ClipSpec(out_path="x.mp4", base=base, num_frames=MAX_CLIP_FRAMES + 1, motion=Animation()))
    with pytest.raises(ValueError, match="keyframe"):
        check_clip(ClipSpec(out_path="x.mp4", base=base, num_frames=10))
    with pytest.raises(ValueError, match="format"):
        check_clip(ClipSpec(out_path="x.avi", base=base, num_frames=10, motion=Animation(), format="avi"))


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_two_second_clip_reads_back_as_twenty_frames(micro_sg2_model, tmp_path, fmt):
    out = tmp_path / f"clip.{fmt}"
    seen = []
    path = render_clip(walk(micro_sg2_model, out_path=str(out), format=fmt, size=32),
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
    render_clip(walk(micro_sg2_model, 5, out_path=str(out), format="png"))
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
        render_clip(walk(micro_sg2_model, out_path=str(out)), cancelled=cancelled)
    assert list(tmp_path.iterdir()) == []


def test_failed_frame_leaves_nothing_and_says_which(micro_sg2_model, tmp_path):
    good = Keyframe(RenderArgs(model=str(micro_sg2_model)), (0.0, 0.0), (0.0, 0.0), 0.0)
    bad = Keyframe(RenderArgs(model=str(tmp_path / "missing.pkl")), (1.0, 0.0), (0.0, 0.0), 0.0)
    spec = ClipSpec(out_path=str(tmp_path / "clip.gif"), base=good.args, num_frames=4, keyframes=(good, good, bad, good),
                    format="gif")
    with pytest.raises(ExportError, match="Frame 3 of 4"):
        render_clip(spec)
    assert list(tmp_path.iterdir()) == []


def test_export_through_the_worker_finishes_and_cancels(micro_sg2_model, tmp_path):
    out = tmp_path / "clip.gif"
    with RenderClient() as client:
        spec = walk(micro_sg2_model, out_path=str(out), format="gif")
        export = ClipExport(client.submit(spec), spec)
        assert export.wait(timeout=120)
        assert export.error is None and export.output == out and export.progress == 1.0
        assert len(imageio.mimread(out)) == FPS * SECONDS

        long = walk(micro_sg2_model, FPS * SECONDS * 50, out_path=str(tmp_path / "long.mp4"))
        export = ClipExport(client.submit(long), long)
        export.cancel()
        assert export.wait(timeout=120)
        assert export.cancelled and export.output is None and export.error is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif"]


def test_temporaries_of_a_killed_process_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale_file = tmp_path / f".shot.png.{dead_pid}-0a1b2c3d.tmp"
    stale_dir = tmp_path / f".clip.mp4.{dead_pid}-abc_12xy.partial"
    live_file = tmp_path / f".other.png.{os.getpid()}-0a1b2c3d.tmp"
    user_file = tmp_path / ".hidden-but-mine.tmp"
    stale_file.write_bytes(b"x")
    stale_dir.mkdir()
    (stale_dir / "clip.mp4").write_bytes(b"x")
    for p in (live_file, user_file):
        p.write_bytes(b"x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live_file.name, user_file.name])


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
