"""training.quality's edge_fd: the Frechet distance is the closed form it claims, the number sees
missing eyes more sharply than the Chamfer distance on 16x16 colours, the trainer logs it, and a
run logged before it existed gets the same numbers from its snapshots afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import quiet, tiny_config
from training import snapshots
from training.quality import (Gaussian, QualityReference, add_edge_fd, edge_features, features, frechet_distance,
                              main, sample_quality)
from training.config import TrainConfig
from training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mean_a, mean_b = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    var_a, var_b = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 4.0, 1.0])
    a = Gaussian(mean_a.double(), torch.diag(var_a).double())
    b = Gaussian(mean_b.double(), torch.diag(var_b).double())
    # Commuting covariances: |dm|^2 + sum (sqrt(va) - sqrt(vb))^2 = 5 + (4 + 0 + 0.25).
    assert frechet_distance(a, b) == pytest.approx(9.25, abs=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_is_symmetric_and_sees_a_rotated_covariance():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((4000, 2)) * [3.0, 0.5])
    rotated = x.flip(1)  # the same spread along the other axis: same mean, same trace
    a, b = Gaussian.fit(x), Gaussian.fit(rotated)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    # (sqrt 9 - sqrt 0.25)^2 on each axis: 2 * 6.25
    assert frechet_distance(a, b) == pytest.approx(12.5, rel=0.05)
    with pytest.raises(ValueError, match="at least 2"):
        Gaussian.fit(x[:1])


def _faces(n: int, eyes: bool, seed: int) -> torch.Tensor:
    """Yellow discs on white with jittered centres, with or without two dark eyes: NCHW in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    out = np.ones((n, 3, 64, 64))
    for k in range(n):
        cx, cy = 32 + rng.uniform(-3, 3), 32 + rng.uniform(-3, 3)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 22 ** 2
        out[k][:, disc] = np.array([1.0, 0.8, -0.6])[:, None]
        if eyes:
            for ex in (cx - 8, cx + 8):
                eye = (xx - ex) ** 2 + (yy - cy + 5) ** 2 < 3.5 ** 2
                out[k][:, eye] = -0.8
    return torch.from_numpy(out).float()


def test_edge_fd_sees_missing_eyes_more_sharply_than_the_colour_chamfer():
    data = _faces(300, eyes=True, seed=0)
    reference = QualityReference(data)
    with_eyes = reference.measure(_faces(128, eyes=True, seed=1))
    without = reference.measure(_faces(128, eyes=False, seed=1))
    assert with_eyes.edge_fd is not None and without.edge_fd is not None
    assert without.edge_fd > 10 * with_eyes.edge_fd
    # Relative to its value on faces with eyes, edge_fd rises far more than the Chamfer distance.
    assert without.edge_fd / with_eyes.edge_fd > 5 * without.chamfer / with_eyes.chamfer
    # Same samples, same number; features of uint8 NHWC data match those of [-1, 1] NCHW.
    assert reference.measure(_faces(128, eyes=True, seed=1)).edge_fd == with_eyes.edge_fd
    as_uint8 = ((data[:4] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    assert torch.allclose(edge_features(as_uint8), edge_features(data[:4]), atol=1e-2)
    assert torch.allclose(features(as_uint8), features(data[:4]), atol=1e-2)
    assert edge_features(data[:4]).shape == (4, 64)


def test_config_needs_two_quality_samples():
    with pytest.raises(ValueError, match="quality_samples"):
        TrainConfig(quality_samples=1)


def test_a_run_logged_without_edge_fd_gets_the_trainers_numbers_from_its_snapshots(tiny_data: Path, tmp_path: Path):
    run = tmp_path / "run"
    # 3 steps of 4 images, a snapshot at every step: files 000000 (overwritten within the first
    # thousand images, so only the last record still matches its file).
    train(tiny_config(tiny_data, total_kimg=0.012, snapshot_kimg=0.004), run, log=quiet)
    logged = snapshots.read_log(run)
    shots = [r for r in logged if r.get("event") == "snapshot"]
    assert len(shots) == 4 and all(r["edge_fd"] >= 0 for r in shots)
    trainer_numbers = {r["images_seen"]: r["edge_fd"] for r in shots}

    # The run as an older trainer would have logged it.
    snapshots.rewrite_log(run, [{k: v for k, v in r.items() if k != "edge_fd"} for r in logged])
    assert main([str(run)]) == 0
    again = snapshots.read_log(run)
    assert [r.get("event") for r in again] == [r.get("event") for r in logged]  # nothing lost or reordered
    scored = {r["images_seen"]: r["edge_fd"] for r in again if "edge_fd" in r}
    assert list(scored) == [12]  # only the file's own record; the earlier ones were overwritten
    assert scored[12] == pytest.approx(trainer_numbers[12], rel=1e-4, abs=1e-7)
    assert add_edge_fd(run, log=quiet) == 0  # already scored: nothing to do


def test_add_edge_fd_names_a_directory_that_is_not_a_run(tmp_path: Path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "not a training run directory" in capsys.readouterr().err


def test_sample_quality_keeps_working_without_edge_fd():
    real = features(_faces(20, eyes=True, seed=0))
    assert sample_quality(real[:5], real).edge_fd is None
    assert json.loads(json.dumps(sample_quality(real[:5], real).as_dict()))["edge_fd"] is None
