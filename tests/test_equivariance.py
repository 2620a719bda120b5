"""Equivariance metrics: reference shifts, PSNR bookkeeping, toy networks with known answers, the
distributed run against the single-process one, and the command line."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from renderer.worker.analysis import equivariance as eq
from renderer.worker.networks.stylegan3 import SynthesisInput

ROOT = Path(__file__).resolve().parents[1]


class ToySynthesis(nn.Module):
    """Fourier features alone (exactly equivariant for frequencies below Nyquist), plus an optional
    blob fixed in image space (which no input transform moves)."""

    def __init__(self, res: int, bandwidth: float, fixed_pattern: bool) -> None:
        super().__init__()
        self.input = SynthesisInput(w_dim=8, channels=3, size=res, sampling_rate=res, bandwidth=bandwidth)
        self.input.affine.weight.data.normal_()  # w moves and turns the features: a real latent dependence
        yy, xx = torch.meshgrid(torch.arange(res) - res * 0.3, torch.arange(res) - res * 0.45, indexing="ij")
        self.register_buffer("pattern", torch.exp(-(xx ** 2 + yy ** 2) / 20.0) * (2.0 if fixed_pattern else 0.0))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool = True,
                transform: torch.Tensor | None = None) -> torch.Tensor:
        return self.input(ws[:, 0], transform=transform) + self.pattern


class ToyGenerator(nn.Module):
    family = "stylegan3"

    def __init__(self, fixed_pattern: bool = False, res: int = 64, bandwidth: float = 8.0) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.z_dim = self.w_dim = 8
        self.c_dim = 0
        self.img_resolution, self.img_channels = res, 3
        self.synthesis = ToySynthesis(res, bandwidth, fixed_pattern)

    def mapping(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        return z[:, None, :]


# ---------------------------------------------------------------------------------------------
# Reference shifts and PSNR.


def test_integer_shift_moves_content_and_masks_the_gap():
    x = torch.arange(1, 26, dtype=torch.float32).reshape(1, 5, 5)
    y, mask = eq.integer_shift(x, 2, -1)
    assert y[0, 0, 2] == x[0, 1, 0] and y[0, 3, 4] == x[0, 4, 2]
    assert mask[0, :, :2].sum() == 0 and mask[0, 4, :].sum() == 0
    assert mask.sum() == 3 * 4 and torch.all(y[mask == 0] == 0)


def test_fractional_shift_interpolates_a_band_limited_signal():
    n, f = 64, 3.0  # cycles per 64 px, far below Nyquist
    cols = torch.arange(n, dtype=torch.float64)
    x = torch.sin(2 * math.pi * f * cols / n)[None, None, :].expand(1, n, n).float()
    d = 2.37
    y, mask = eq.fractional_shift(x, d, 0.0)
    expected = torch.sin(2 * math.pi * f * (cols - d) / n)[None, None, :].expand(1, n, n).float()
    valid = mask > 0
    assert torch.allclose(y[valid], expected[valid], atol=5e-3)  # Lanczos-3 interpolation error
    # The mask drops exactly the border the 6 taps cannot fill: columns < 2 + 3 (none on the right,
    # where the shift brings the data in), and along y (no shift) rows < 3 and > 64 - 3.
    assert torch.equal(torch.nonzero(mask[0, 32]).flatten(), torch.arange(5, 64))
    assert torch.equal(torch.nonzero(mask[0, :, 32]).flatten(), torch.arange(3, 62))
    # A whole-pixel shift through the Lanczos path equals the integer shift where both are valid.
    z, zmask = eq.fractional_shift(x, 3.0, -2.0)
    w, _ = eq.integer_shift(x, 3, -2)
    assert torch.allclose(z[zmask > 0], w[zmask > 0], atol=1e-6)


def test_psnr_formula_and_sums():
    # MSE 0.01 over a range of 2: 20 log10(2) - 10 log10(0.01) = 26.02 dB.
    assert eq.psnr(1.0, 100.0) == pytest.approx(20 * math.log10(2) + 20, abs=1e-9)
    assert eq.psnr(0.0, 5.0) == math.inf
    sums = eq.EquivarianceSums(np.array([1.0, 2.0, 4.0]), np.array([100.0, 100.0, 100.0]), 3)
    back = eq.EquivarianceSums.from_tensor(sums.as_tensor())
    assert back.num_samples == 3 and np.array_equal(back.squared_error, sums.squared_error)
    # The ratio of sums, not the mean of per-sample PSNRs.
    a = eq.EquivarianceSums(np.array([1.0, 1, 1]), np.array([10.0, 10, 10]), 1)
    a += eq.EquivarianceSums(np.array([0.0, 0, 0]), np.array([90.0, 90, 90]), 1)
    assert a.result().eqt == pytest.approx(eq.psnr(1.0, 100.0))


def test_draw_sample_follows_the_seed_conventions():
    from renderer.conventions import class_from_seed, z_from_seed

    d = eq.draw_sample(17, 64, 4, 64)
    assert np.array_equal(d.z, z_from_seed(17, 64)) and d.class_idx == class_from_seed(17, 64, 4)
    assert all(abs(v) <= eq.TRANSLATE_MAX for v in d.translate_int + d.translate_frac)
    assert all(float(v * 64).is_integer() for v in d.translate_int)
    assert -math.pi <= d.angle <= math.pi


# ---------------------------------------------------------------------------------------------
# Toy networks with known answers.


def test_fourier_features_are_translation_equivariant():
    result = eq.compute_equivariance(ToyGenerator(), 4, seed=0, batch_size=4)
    assert result.eqt > 50          # exact up to float32 rounding of the phases (about 120 dB)
    assert result.eqt_frac > 35     # limited by the 6-tap Lanczos reference shift
    assert result.eqr > 35          # limited by the band-limited rotation of the reference


def test_fixed_position_pattern_is_not_equivariant():
    result = eq.compute_equivariance(ToyGenerator(fixed_pattern=True), 4, seed=0, batch_size=4)
    assert result.eqt < 30 and result.eqt_frac < 30 and result.eqr < 30


def test_error_map_and_latent_readout():
    from renderer.conventions import user_transform

    G = ToyGenerator(fixed_pattern=True)
    ws = G.mapping(torch.randn(1, 8), None)
    shifted = eq.error_map(G, ws, user_transform((5 / 64, -3 / 64)))
    assert shifted.method == "integer shift" and shifted.error.shape == (64, 64)
    assert shifted.mask[:, :5].sum() == 0 and shifted.mask[61:, :].sum() == 0
    # The error sits where the fixed blob and its moved copy are, not elsewhere.
    iy, ix = np.unravel_index(np.argmax(shifted.error), shifted.error.shape)
    assert abs(iy - 19) <= 4 and (abs(ix - 29) <= 4 or abs(ix - 34) <= 4)
    assert eq.error_map(G, ws, user_transform((0.013, 0.0))).method == "Lanczos shift"
    rotated = eq.error_map(ToyGenerator(), ws, user_transform(rotate_turns=0.1))
    assert rotated.method == "band-limited resampling" and rotated.psnr > 35
    readout = eq.latent_readout(ToyGenerator(), ws, num_samples=2)
    assert readout.num_samples == 2 and readout.eqt > 50


def test_stylegan2_is_refused_with_a_message(reference):
    with pytest.raises(eq.NotApplicableError, match="do not apply"):
        eq.compute_equivariance(reference("sg2_small").build(), 1)


# ---------------------------------------------------------------------------------------------
# Distributed: 2 CPU processes (gloo) give the single-process numbers.


def _distributed_worker(rank: int, world: int, rendezvous: str, out: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        result = eq.compute_equivariance(ToyGenerator(fixed_pattern=True), 5, seed=5, batch_size=2)
        np.save(f"{out}.{rank}.npy", np.array(result.values() + (result.num_samples,)))
    finally:
        torch.distributed.destroy_process_group()


def test_distributed_run_matches_single_process(tmp_path):
    import torch.multiprocessing as mp

    out = str(tmp_path / "result")
    mp.spawn(_distributed_worker, args=(2, str(tmp_path / "rendezvous"), out), nprocs=2, join=True)
    single = eq.compute_equivariance(ToyGenerator(fixed_pattern=True), 5, seed=5, batch_size=2)
    for rank in range(2):
        got = np.load(f"{out}.{rank}.npy")
        assert got[3] == 5  # rank 0 ran batches {0, 1} and {4}, rank 1 {2, 3}; both hold the total
        np.testing.assert_allclose(got[:3], single.values(), rtol=0, atol=1e-6)
    assert 10 < single.eqt < 40  # the fixed blob makes real, sample-dependent errors to sum


# ---------------------------------------------------------------------------------------------
# Command line.


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "visualizer.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_cli_prints_three_numbers(tiny_model):
    run = _cli("equivariance", str(tiny_model), "--num", "1", "--seed", "3", "--device", "cpu")
    assert run.returncode == 0, run.stderr
    numbers = {name: float(v) for name, v in re.findall(r"^(EQ-T frac|EQ-T|EQ-R)\s+([-\d.]+) dB$", run.stdout, re.M)}
    assert set(numbers) == {"EQ-T", "EQ-T frac", "EQ-R"}
    # The small StyleGAN3-T network: alias-free layers follow translations closely; the T config is
    # not built for rotations, so EQ-R is far lower.
    assert numbers["EQ-T"] > 40 and numbers["EQ-T frac"] > 40 and numbers["EQ-R"] < numbers["EQ-T"] - 10
    assert "1/1" in run.stderr  # the progress bar


def test_cli_refuses_stylegan2(tiny_sg2_model):
    run = _cli("equivariance", str(tiny_sg2_model), "--num", "2")
    assert run.returncode != 0
    assert "do not apply" in run.stderr and "stylegan2" in run.stderr and "input transform" in run.stderr
