"""Adaptive discriminator augmentation (training/augment.py): each transformation does what it
says in the image's coordinates and colours, p = 0 is the identity, the pipeline passes gradients,
the controller moves p the way the ADA paper prescribes, and a run carries p across a resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.conftest import quiet, tiny_config
from training import snapshots
from training.augment import (AdaptiveP, _rotation, _translation, ada_augment, blit, colour_matrices, geometric,
                              geometric_matrices)
from training.train import Trainer, load_run_config, main


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n: int = 6, size: int = 16) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(n, 3, size, size) * 2 - 1


def test_strength_zero_is_the_identity_and_strength_one_changes_every_image():
    x = _images()
    g = torch.Generator().manual_seed(1)
    assert torch.equal(ada_augment(x, 0.0, g), x)
    y = ada_augment(x, 0.999, g)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert all(not torch.allclose(a, b) for a, b in zip(x, y))


def test_pipeline_passes_gradients_to_every_image():
    x = _images().requires_grad_(True)
    y = ada_augment(x, 0.7, torch.Generator().manual_seed(2))
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    assert torch.isfinite(grad).all()
    assert all(g.abs().sum() > 0 for g in grad)


def test_blit_moves_pixels_without_changing_them():
    """Flips, quarter turns and whole-pixel shifts only move pixels: away from the borders the
    multiset of pixel values in a constant-border image is unchanged."""
    x = torch.full((8, 3, 16, 16), 1.0)
    x[:, :, 5:9, 4:11] = torch.linspace(-1, 0.5, 8 * 3).reshape(8, 3, 1, 1)
    x[:, 0, 6, 5] = -0.9  # an asymmetric mark
    y = blit(x, 0.999, torch.Generator().manual_seed(3))
    for a, b in zip(x, y):
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)
    assert any(not torch.equal(a, b) for a, b in zip(x, y))


def test_geometric_translation_matches_whole_pixel_shift():
    """Coordinate convention: a translation by 2 px (0.25 of the half-size 8) in the normalised
    frame moves the content 2 px right and down, like torch.roll, with exact resampling."""
    x = _images(2, 16)
    m = _translation(torch.full([1], 2 / 8), torch.full([1], 2 / 8))
    theta = torch.linalg.inv(m)[:, :2]
    grid = torch.nn.functional.affine_grid(theta.expand(2, 2, 3), [2, 3, 16, 16], align_corners=False)
    y = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    expected = torch.roll(x, shifts=(2, 2), dims=(2, 3))
    assert torch.allclose(y[:, :, 2:, 2:], expected[:, :, 2:, 2:], atol=1e-6)


def test_geometric_quarter_rotation_matches_rot90():
    x = _images(1, 16)
    m = _rotation(torch.full([1], math.pi / 2))
    theta = torch.linalg.inv(m)[:, :2]
    grid = torch.nn.functional.affine_grid(theta, [1, 3, 16, 16], align_corners=False)
    y = torch.nn.functional.grid_sample(x, grid, mode="bilinear", align_corners=False)
    # +90 degrees with y pointing down turns the image clockwise on screen: rot90 with k = -1.
    assert torch.allclose(y, torch.rot90(x, -1, dims=(2, 3)), atol=1e-5)


def test_geometric_leaves_untouched_images_exact():
    x = _images(64)
    g = torch.Generator().manual_seed(4)
    state = g.get_state()
    _, touched = geometric_matrices(64, 0.1, g)
    g.set_state(state)
    y = geometric(x, 0.1, g)
    assert 0 < int(touched.sum()) < 64
    for a, b, t in zip(x, y, touched):
        assert torch.equal(a, b) != bool(t)


def test_colour_transforms_keep_the_luma_axis():
    """Hue rotation and saturation turn or scale around the grey axis: greys stay grey. The luma
    flip turns white into black. Brightness and contrast move greys along the axis only."""
    g = torch.Generator().manual_seed(5)
    c = colour_matrices(256, 0.9, g)
    grey = torch.tensor([0.3, 0.3, 0.3, 1.0])
    out = c @ grey
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 1], out[:, 2], atol=1e-5)
    white = torch.tensor([1.0, 1.0, 1.0, 1.0])
    flip = torch.eye(4) - 2 * torch.outer(torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3),
                                          torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3))
    assert torch.allclose(flip @ white, torch.tensor([-1.0, -1.0, -1.0, 1.0]), atol=1e-6)
    # Some colour (not grey) changes its hue: the matrices are not all diagonal.
    red = torch.tensor([1.0, -1.0, -1.0, 1.0])
    assert ((c @ red)[:, 1] - (c @ red)[:, 2]).abs().max() > 0.1


def test_controller_raises_p_while_D_calls_reals_real_and_lowers_it_otherwise():
    ada = AdaptiveP(target=0.6, speed_kimg=1.0, interval=2)
    confident = torch.full([16], 3.0)
    for _ in range(2):
        ada.observe(confident)
    assert ada.last_rt == 1.0
    assert ada.p == pytest.approx(32 / 1000)  # 32 images of 1000 for the whole 0 -> 1 range
    for _ in range(2 * 100):
        ada.observe(confident)
    assert ada.p < 1
    high = ada.p
    for _ in range(4):
        ada.observe(-confident)
    assert ada.p == pytest.approx(high - 2 * 32 / 1000)
    low = AdaptiveP(target=0.6, speed_kimg=1.0, interval=1)
    low.observe(-confident)
    assert low.p == 0.0


def test_run_adapts_p_and_resume_keeps_it(tiny_data: Path, tmp_path: Path):
    cfg = tiny_config(tiny_data, ada_target=0.01, ada_kimg=0.05, ada_interval=1, total_kimg=0.016)
    trainer = Trainer(cfg, tmp_path / "run", log=quiet)
    trainer.run()
    p = trainer.progress.ada_p
    state = snapshots.read_state(tmp_path / "run" / snapshots.STATE_FILE)
    assert state["progress"]["ada_p"] == p
    log = [r for r in snapshots.read_log(tmp_path / "run") if r["event"] == "snapshot"]
    assert log[-1]["ada_p"] == p
    resumed = Trainer(tiny_config(tiny_data, ada_target=0.01, ada_kimg=0.05, ada_interval=1, total_kimg=0.016),
                      tmp_path / "run", resume=True, log=quiet)
    assert resumed.progress.ada_p == p and resumed.ada is not None and resumed.ada.p == p


def test_augmentation_can_be_switched_on_when_resuming(tiny_data: Path, tmp_path: Path):
    run = tmp_path / "run"
    assert main(["--data", str(tiny_data), "--run-dir", str(run), "--preset", "tiny", "--steps", "1",
                 "--threads", "1", "--no-malloc-tuning"]) == 0
    cfg = load_run_config(run, {"ada_target": 0.6, "ada_kimg": 2.0})
    assert cfg.ada_target == 0.6 and cfg.ada_kimg == 2.0
    assert main(["--resume", str(run), "--steps", "1", "--ada-target", "0.6", "--no-malloc-tuning"]) == 0
    assert snapshots.read_state(run / snapshots.STATE_FILE)["progress"]["steps"] == 2
    with pytest.raises(ValueError, match="cannot change"):
        load_run_config(run, {"ada_interval": 8})
