"""Projection of an image into W / W+: alignment, the image distance, the schedule, the noise
penalty, and the projector on the demo model (a frame of its own, and a real emoji)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from renderer.worker.latents import mapped_ws
from renderer.image_align import ImageLoadError, align_image, load_image
from renderer.worker.analysis.image_distance import PixelDistance, laplacian_pyramid, psnr, ssim
from renderer.worker.analysis.projection import (ProjectionError, ProjectionSettings, Projector, learning_rate,
                                                 noise_penalty, target_tensor, w_noise_scale)
from renderer.worker.models import load_generator
from renderer.worker.networks import build_generator

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "checkpoints" / "demo.safetensors"


@pytest.fixture(scope="module")
def demo():
    return load_generator(DEMO)


def frame_of(G, ws: torch.Tensor) -> np.ndarray:
    """uint8 [H, W, C] of ws [1, num_ws, w_dim], written out here: clamp(x * 127.5 + 128)."""
    with torch.no_grad():
        x = G.synthesis(ws, noise_mode="const")[0]
    return np.clip(x.permute(1, 2, 0).numpy() * 127.5 + 128, 0, 255).astype(np.uint8)


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


# --- Alignment ----------------------------------------------------------------------------------

def test_align_crops_the_centred_square_and_resizes():
    # 100 x 60: red left margin (20 px), green centre square (60 px), blue right margin.
    pixels = np.zeros((60, 100, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:80] = (0, 255, 0)
    pixels[:, 80:] = (0, 0, 255)
    aligned = align_image(Image.fromarray(pixels), 16)
    assert aligned.crop_box == (20, 0, 80, 60) and aligned.source_size == (100, 60)
    assert aligned.pixels.shape == (16, 16, 3) and aligned.pixels.dtype == np.uint8
    assert np.all(aligned.pixels == (0, 255, 0))
    tall = align_image(Image.new("RGB", (30, 50)), 8)
    assert tall.crop_box == (0, 10, 30, 40)


def test_align_composites_transparency_on_white_and_makes_grey():
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[2:6, 2:6] = (0, 0, 0, 255)
    aligned = align_image(Image.fromarray(rgba, "RGBA"), 8)
    assert np.all(aligned.pixels[0, 0] == 255) and np.all(aligned.pixels[3, 3] == 0)
    grey = align_image(Image.fromarray(rgba, "RGBA"), 8, channels=1)
    assert grey.pixels.shape == (8, 8, 1)
    with pytest.raises(ImageLoadError, match="1 or 3 image channels"):
        align_image(Image.new("RGB", (8, 8)), 8, channels=4)


def test_load_image_errors(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"this is not a png")
    with pytest.raises(ImageLoadError, match="bad.png"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.png")


def test_load_image_reads_only_bounded_regular_files_of_known_formats(tmp_path, monkeypatch):
    import os

    from renderer import image_align

    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(image_align.MAX_IMAGE_FILE_BYTES + 1)
    with pytest.raises(ImageLoadError, match="big.png holds 33,554,433 bytes"):
        load_image(big)
    wide = tmp_path / "wide.png"
    Image.new("RGB", (40, 30)).save(wide)
    monkeypatch.setattr(image_align, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="wide.png is 40x30 pixels"):
        load_image(wide)
    monkeypatch.undo()
    pcx = tmp_path / "old.pcx"
    Image.new("RGB", (8, 8)).save(pcx)                     # Pillow reads PCX, but not for projection
    with pytest.raises(ImageLoadError, match="old.pcx as an image"):
        load_image(pcx)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageLoadError, match="named pipe"):
        load_image(fifo)
    target = image_align.projection_target(wide, 16, 3)
    assert target.pixels.shape == (16, 16, 3) and target.crop_box == (5, 0, 35, 30) and target.name == "wide.png"


# --- Image distance -----------------------------------------------------------------------------

def _ssim_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM (Wang et al. 2004) of two [C, H, W] images in [-1, 1], window by window, in numpy."""
    k = np.arange(11) - 5.0
    g = np.exp(-k ** 2 / (2 * 1.5 ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    values = []
    for a, b in zip(x, y):
        for i in range(a.shape[0] - 10):
            for j in range(a.shape[1] - 10):
                pa, pb = a[i:i + 11, j:j + 11], b[i:i + 11, j:j + 11]
                ma, mb = (window * pa).sum(), (window * pb).sum()
                va, vb = (window * pa * pa).sum() - ma ** 2, (window * pb * pb).sum() - mb ** 2
                cov = (window * pa * pb).sum() - ma * mb
                values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    x = np.tanh(rng.normal(size=(2, 20, 24)))
    y = np.clip(x + 0.3 * rng.normal(size=x.shape), -1, 1)
    ours = float(ssim(torch.from_numpy(x)[None], torch.from_numpy(y)[None]))
    assert abs(ours - _ssim_numpy(x, y)) < 1e-9
    assert abs(float(ssim(torch.from_numpy(x)[None], torch.from_numpy(x)[None])) - 1) < 1e-12


def test_laplacian_pyramid_bands_and_distance():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(-1, 1, size=(1, 3, 64, 64)))
    bands = laplacian_pyramid(x)
    assert [b.shape[-1] for b in bands] == [64, 32, 16, 8]
    # A constant image has no band-pass content: everything is in the low-pass residual.
    flat = laplacian_pyramid(torch.full((1, 3, 64, 64), 0.25, dtype=torch.float64))
    assert all(float(b.abs().max()) < 1e-12 for b in flat[:-1]) and torch.allclose(flat[-1], torch.tensor(0.25, dtype=torch.float64))
    distance = PixelDistance(x)
    assert float(distance(x)) < 1e-12
    small, large = (x + s * torch.from_numpy(rng.normal(size=x.shape)) for s in (0.05, 0.3))
    assert 0 < float(distance(small)) < float(distance(large))
    assert abs(psnr(x, x + 0.02) - (20 * math.log10(2) - 10 * math.log10(0.02 ** 2))) < 1e-6


# --- Schedule and noise penalty ------------------------------------------------------------------

def test_learning_rate_and_w_noise_schedule():
    s = ProjectionSettings(learning_rate=0.1)
    assert learning_rate(s, 0.0) == 0.0
    assert abs(learning_rate(s, 0.025) - 0.05) < 1e-12           # half way up the 5% linear ramp
    assert abs(learning_rate(s, 0.5) - 0.1) < 1e-12
    assert abs(learning_rate(s, 0.875) - 0.05) < 1e-12           # half way down the 25% cosine ramp
    assert learning_rate(s, 1.0) == 0.0
    assert w_noise_scale(s, 0.0, 10.0) == pytest.approx(0.5)      # 0.05 sigma_w
    assert w_noise_scale(s, 0.375, 10.0) == pytest.approx(0.5 * 0.25)
    assert w_noise_scale(s, 0.75, 10.0) == 0.0 and w_noise_scale(s, 0.9, 10.0) == 0.0


def test_noise_penalty_of_known_maps():
    stripes = torch.tensor([[(-1.0) ** x for x in range(16)]] * 16)
    # Horizontal neighbours multiply to -1, vertical ones to +1: (-1)^2 + 1^2 at full size; the 2x2
    # averages of the stripes are zero, so the coarser octaves add nothing.
    assert float(noise_penalty(stripes)) == pytest.approx(2.0)
    white = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    smooth = torch.nn.functional.avg_pool2d(white[None, None], 5, stride=1, padding=2)[0, 0]
    smooth = (smooth - smooth.mean()) / smooth.std()
    # White noise: each mean of r^2 products has variance 1/r^2, so about 2 (1/64^2 + ... + 1/8^2) = 0.04 in
    # all; the 5x5 average has neighbour correlation 0.8 at full size alone: 2 x 0.8^2.
    assert float(noise_penalty(white)) < 0.2
    assert float(noise_penalty(smooth)) > 1.2


# --- The projector's mechanics (a small StyleGAN2 with noise inputs) --------------------------------

@pytest.fixture(scope="module")
def small_sg2():
    torch.manual_seed(4)
    G = build_generator("stylegan2", dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                                          channel_base=256, channel_max=16, mapping_kwargs=dict(num_layers=2)))
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(0.1)
    return G.eval().requires_grad_(False)


def test_projector_leaves_the_network_alone_and_renormalises_noise(small_sg2):
    G = small_sg2
    before = {k: v.clone() for k, v in G.state_dict().items()}
    target = frame_of(G, mapped_ws(G, [3]))
    projector = Projector(G, target, ProjectionSettings(steps=6, w_std_samples=200))
    assert sorted(projector.noise) == sorted(n for n, _ in G.synthesis.named_buffers() if n.endswith("noise_const"))
    start = projector.ws()
    state = projector.step(3)
    assert state.step == 3 and not state.finished and math.isfinite(state.distance)
    for n in (m.detach() for m in projector.noise.values()):
        assert abs(float(n.mean())) < 1e-5 and abs(float(n.square().mean()) - 1) < 1e-4
    state = projector.step(10)
    assert state.finished and state.step == 6 and len(projector.distances) == 6
    assert projector.step(1).step == 6                                   # finished: nothing more runs
    ws = state.ws
    assert ws.shape == (G.num_ws, G.w_dim) and ws.dtype == np.float32
    assert np.all(ws == ws[0]) and not np.array_equal(ws, start)          # W: one w on every row, moved
    for k, v in G.state_dict().items():
        assert torch.equal(v, before[k]), k
    # The optimised noise maps are what the projector's image uses; the network's own are unchanged.
    with torch.no_grad():
        own = G.synthesis(torch.from_numpy(ws)[None], noise_mode="const")
    assert not torch.allclose(own, projector.image())


def test_w_plus_gives_rows_of_their_own(small_sg2):
    G = small_sg2
    target = frame_of(G, mapped_ws(G, [5]))
    projector = Projector(G, target, ProjectionSettings(steps=4, w_plus=True, optimize_noise=False, w_std_samples=200))
    assert projector.noise == {}
    ws = projector.step(4).ws
    assert not np.allclose(ws, ws[0])


def test_projector_errors(small_sg2, demo):
    with pytest.raises(ProjectionError, match=r"uint8 \[16, 16, 3\]"):
        Projector(small_sg2, np.zeros((32, 32, 3), dtype=np.uint8))
    with pytest.raises(ProjectionError, match="at least 1 step"):
        Projector(small_sg2, np.zeros((16, 16, 3), dtype=np.uint8), ProjectionSettings(steps=0))
    conditional = build_generator("stylegan2", dict(z_dim=8, c_dim=3, w_dim=8, img_resolution=8, img_channels=3,
                                                    channel_base=64, channel_max=8, mapping_kwargs=dict(num_layers=2)))
    with pytest.raises(ProjectionError, match="choose a class 0..2"):
        Projector(conditional.eval(), np.zeros((8, 8, 3), dtype=np.uint8))


# --- The command line: project, then render the W file ---------------------------------------------

def test_project_command_writes_a_w_file_that_render_draws(demo, tmp_path, capsys):
    from renderer.worker.cli_project import project_main
    from renderer.worker.cli_render import render_main

    own = frame_of(demo, mapped_ws(demo, [2]))
    wide = np.full((64, 96, 3), 255, dtype=np.uint8)
    wide[:, 16:80] = own
    Image.fromarray(wide).save(tmp_path / "wide.png")
    out = tmp_path / "w.npy"
    code = project_main([str(DEMO), str(tmp_path / "wide.png"), "--out", str(out), "--steps", "4", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "crop (16, 0)-(80, 64)" in printed and "PSNR" in printed
    ws = np.load(out, allow_pickle=False)
    assert ws.shape == (demo.num_ws, demo.w_dim) and ws.dtype == np.float32
    assert not list(tmp_path.glob(".*.tmp"))

    code = render_main([str(DEMO), "--w", str(out), "--device", "cpu", "--out", str(tmp_path / "frame.png")])
    assert code == 0, capsys.readouterr()
    rendered = np.asarray(Image.open(tmp_path / "frame.png").convert("RGB"))
    expected = frame_of(demo, torch.from_numpy(ws)[None])
    assert np.abs(rendered.astype(int) - expected.astype(int)).max() <= 1


def test_project_command_errors(tmp_path, capsys):
    from renderer.worker.cli_project import project_main

    (tmp_path / "bad.png").write_bytes(b"nope")
    assert project_main([str(DEMO), str(tmp_path / "bad.png"), "--out", str(tmp_path / "w.npy")]) == 1
    assert "bad.png" in capsys.readouterr().err
    assert project_main([str(DEMO), str(tmp_path / "bad.png"), "--out", str(tmp_path / "w.npy"), "--steps", "0"]) == 1
    assert not (tmp_path / "w.npy").exists()


# --- Projection on the demo model ------------------------------------------------------------------

OWN_FRAME_STEPS = 150       # the step budget for the model's own frame: 60-80 s on one core here
OWN_FRAME_MIN_PSNR = 30.0


def test_projecting_a_frame_of_the_model_recovers_it(demo):
    """A frame the demo model draws from seed 1's w, projected into W in OWN_FRAME_STEPS steps from
    w_avg, without the exploration noise on w (it is meant for long runs on real images: annealed
    over 75% of a 150-step run, it leaves too few steps to settle)."""
    target = frame_of(demo, mapped_ws(demo, [1]))
    projector = Projector(demo, target, ProjectionSettings(steps=OWN_FRAME_STEPS, w_noise_factor=0.0))
    start = psnr_uint8(projector.preview(), target)
    state = projector.step(OWN_FRAME_STEPS)
    assert state.finished
    reached = psnr_uint8(frame_of(demo, torch.from_numpy(state.ws)[None]), target)
    assert start < 20 and reached >= OWN_FRAME_MIN_PSNR, (start, reached)


EMOJI_STEPS = 150
EMOJI_FINAL_FRACTION = 0.25     # the final distance is at most this fraction of the first
EMOJI_RISE_TOLERANCE = 0.01     # the smoothed curve may rise by at most this fraction of the first distance


def test_projecting_a_real_emoji_converges(demo):
    """A real emoji of the training set (Noto's U+1F600 grinning face, drawn as training/dataset.py
    draws it) projected into W+ with the default settings in EMOJI_STEPS steps converges:
    - the last distance is at most EMOJI_FINAL_FRACTION of the first;
    - the distance averaged over a window of a tenth of the run falls monotonically: from one step to
      the next it never rises by more than EMOJI_RISE_TOLERANCE of the first distance;
    - the second half of the run reaches a lower distance than the first half (still improving)."""
    from training.dataset import Emoji, MissingSourceError, NotoSource

    try:
        source = NotoSource()
    except MissingSourceError as e:
        pytest.skip(f"needs the Noto colour emoji font: {e}")
    target = np.array(source.render(Emoji((0x1F600,), "grinning face", "face-smiling")), dtype=np.uint8)
    projector = Projector(demo, target, ProjectionSettings(steps=EMOJI_STEPS, w_plus=True))
    projector.step(EMOJI_STEPS)
    d = np.asarray(projector.distances)
    assert len(d) == EMOJI_STEPS and np.isfinite(d).all()
    assert d[-1] <= EMOJI_FINAL_FRACTION * d[0], (d[0], d[-1])
    window = EMOJI_STEPS // 10
    smoothed = np.convolve(d, np.ones(window) / window, mode="valid")
    assert np.diff(smoothed).max() <= EMOJI_RISE_TOLERANCE * d[0], np.diff(smoothed).max() / d[0]
    half = EMOJI_STEPS // 2
    assert d[half:].min() < d[:half].min()
