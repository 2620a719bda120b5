"""GANSpace and SeFa directions, moving a latent along them, and direction files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.conventions import z_from_seed
from renderer.protocol import RenderArgs
from renderer.directions import DirectionFileError, apply_directions, load_directions, save_directions
from renderer.worker.analysis.ganspace import BATCH, GanSpaceJob, GanSpaceRequest, WMoments, ganspace
from renderer.worker.analysis.sefa import sefa
from renderer.worker.analysis.style_rows import row_group, row_scales, style_affines
from renderer.worker.models import load_generator
from renderer.worker.networks import build_generator
from renderer.worker.render import Renderer

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "checkpoints" / "demo.safetensors"


@pytest.fixture(scope="module")
def demo():
    return load_generator(DEMO)


@pytest.fixture(scope="module")
def small_sg2():
    torch.manual_seed(3)
    G = build_generator("stylegan2", dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_channels=3,
                                          channel_base=512, channel_max=32, mapping_kwargs=dict(num_layers=2)))
    return G.eval().requires_grad_(False)


def _numpy_w(G, seeds) -> np.ndarray:
    """w of the seeds, computed here in numpy from the mapping network's weights (no truncation)."""
    x = np.stack([z_from_seed(s, G.z_dim) for s in seeds])
    x = x / np.sqrt((x ** 2).mean(axis=1, keepdims=True) + 1e-8)
    for i in range(G.mapping.num_layers):
        fc = getattr(G.mapping, f"fc{i}")
        w = fc.weight.double().numpy() * fc.weight_gain
        b = fc.bias.double().numpy() * fc.bias_gain
        x = x @ w.T + b
        x = np.where(x >= 0, x, 0.2 * x) * np.sqrt(2)
    return x


# --- GANSpace ---------------------------------------------------------------------------------

def test_ganspace_matches_numpy_pca_and_is_orthonormal_and_ordered(demo):
    n = 600
    result = ganspace(demo, GanSpaceRequest(num_samples=n, first_seed=10))
    samples = _numpy_w(demo, range(10, 10 + n))
    cov = np.cov(samples, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    values, vectors = values[::-1], vectors[:, ::-1].T

    v = result.vectors.astype(np.float64)
    assert v.shape == (demo.w_dim, demo.w_dim)
    np.testing.assert_allclose(v @ v.T, np.eye(demo.w_dim), atol=1e-5)
    assert np.all(np.diff(result.eigenvalues) <= 0)
    np.testing.assert_allclose(result.eigenvalues, values, rtol=1e-3, atol=1e-6 * values[0])
    np.testing.assert_allclose(result.explained, values / values.sum(), rtol=1e-3, atol=1e-7)
    # The leading components, where eigenvalues are well separated, are the same vectors up to sign.
    gaps = np.abs(np.diff(values[:11])) / values[0]
    separated = [k for k in range(10) if gaps[k] > 1e-3 and (k == 0 or gaps[k - 1] > 1e-3)]
    assert separated, "no well-separated leading eigenvalues to compare"
    for k in separated:
        assert abs(float(v[k] @ vectors[k])) > 0.999, k
    # Variance of the samples along each direction is its eigenvalue (ordered by variance).
    along = ((samples - samples.mean(0)) @ v[:5].T).var(axis=0, ddof=1)
    np.testing.assert_allclose(along, result.eigenvalues[:5], rtol=1e-3)


def test_ganspace_is_deterministic_and_slicing_does_not_matter(demo):
    request = GanSpaceRequest(num_samples=BATCH + 100, first_seed=3, count=8)
    whole = ganspace(demo, request)
    job = GanSpaceJob(demo, request)
    progress = [job.run_slice(batches=1) for _ in range(3)]
    assert progress == [BATCH, BATCH + 100, BATCH + 100] and job.finished
    sliced = job.result()
    np.testing.assert_array_equal(whole.vectors, sliced.vectors)
    np.testing.assert_array_equal(whole.eigenvalues, sliced.eigenvalues)
    assert whole.vectors.shape == (8, demo.w_dim)
    other = ganspace(demo, GanSpaceRequest(num_samples=BATCH + 100, first_seed=4, count=8))
    assert not np.array_equal(other.eigenvalues, whole.eigenvalues)


def test_moments_merge_equals_one_pass():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)) * [1, 2, 3, 4, 5, 6] + 100
    m = WMoments(6)
    for part in np.array_split(x, [7, 200, 201]):
        m.add(part)
    np.testing.assert_allclose(m.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(m.covariance(), np.cov(x, rowvar=False), rtol=1e-10)


def test_ganspace_job_refuses_result_before_done(demo):
    job = GanSpaceJob(demo, GanSpaceRequest(num_samples=BATCH * 2))
    job.run_slice()
    with pytest.raises(RuntimeError, match="run it to the end"):
        job.result()


# --- Style rows and SeFa ----------------------------------------------------------------------

def test_style_rows_stylegan3(demo):
    affines = style_affines(demo)
    assert [a.row for a in affines] == list(range(demo.num_ws))
    assert affines[0].module is demo.synthesis.input.affine
    assert affines[3].module is getattr(demo.synthesis, demo.synthesis.layer_names[2]).affine
    coarse, middle, fine = (row_group(demo, g) for g in ("coarse", "middle", "fine"))
    assert coarse + middle + fine == tuple(range(demo.num_ws))
    assert all(len(g) > 0 for g in (coarse, middle, fine))
    scales = row_scales(demo)
    assert max(scales[r] for r in coarse) <= 8 < min(scales[r] for r in middle)
    assert scales[-1] == demo.img_resolution


def test_style_rows_stylegan2(small_sg2):
    G = small_sg2
    rows = {a.name: a.row for a in style_affines(G)}
    # b4: conv1 row 0, torgb row 1; b8: conv0 1, conv1 2, torgb 3; ... b32: torgb row num_ws - 1.
    assert rows["b4.conv1.affine"] == 0 and rows["b4.torgb.affine"] == 1
    assert rows["b8.conv0.affine"] == 1 and rows["b8.conv1.affine"] == 2 and rows["b8.torgb.affine"] == 3
    assert rows["b32.torgb.affine"] == G.num_ws - 1
    assert row_scales(G)[1] == 8  # shared by b4.torgb and b8.conv0: the convolution's resolution
    # 32 px: no row finer than 32 px, so the groups are thirds.
    assert row_group(G, "coarse") + row_group(G, "middle") + row_group(G, "fine") == tuple(range(G.num_ws))


def _independent_sefa(G, weight_names) -> tuple[np.ndarray, np.ndarray]:
    state = G.state_dict()
    A = np.concatenate([state[name].double().numpy() for name in weight_names])
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(A.T @ A)
    return values[::-1], vectors[:, ::-1].T


def _assert_same_eigenvectors(result, values, vectors, count=5):
    np.testing.assert_allclose(result.eigenvalues, values, rtol=1e-6, atol=1e-9 * values[0])
    v = result.vectors.astype(np.float64)
    np.testing.assert_allclose(v @ v.T, np.eye(len(v)), atol=1e-5)
    for k in range(count):
        if min(abs(values[k] - values[k - 1]) if k else np.inf, abs(values[k] - values[k + 1])) > 1e-6 * values[0]:
            assert abs(float(v[k] @ vectors[k])) > 0.9999, k


def test_sefa_matches_eigenvectors_of_the_affines_stylegan3(demo):
    rows = row_group(demo, "middle")
    names = [f"synthesis.{demo.synthesis.layer_names[r - 1]}.affine.weight" for r in rows]
    values, vectors = _independent_sefa(demo, names)
    result = sefa(demo, rows)
    assert result.rows == rows
    _assert_same_eigenvectors(result, values, vectors)
    # With the input affine (row 0) too.
    values, vectors = _independent_sefa(demo, ["synthesis.input.affine.weight"] +
                                        [f"synthesis.{demo.synthesis.layer_names[r - 1]}.affine.weight" for r in (1, 2)])
    _assert_same_eigenvectors(sefa(demo, (0, 1, 2)), values, vectors)


def test_sefa_matches_eigenvectors_of_the_affines_stylegan2(small_sg2):
    # Row 3 is read by b8.torgb and b16.conv0; row 4 by b16.conv1.
    names = ["synthesis.b8.torgb.affine.weight", "synthesis.b16.conv0.affine.weight", "synthesis.b16.conv1.affine.weight"]
    values, vectors = _independent_sefa(small_sg2, names)
    _assert_same_eigenvectors(sefa(small_sg2, (3, 4)), values, vectors)


def test_sefa_rejects_bad_rows(demo):
    with pytest.raises(ValueError, match="rows among 0..9"):
        sefa(demo, (3, 12))
    with pytest.raises(ValueError, match="rows among"):
        sefa(demo, ())


# --- Moving along directions ------------------------------------------------------------------

def test_apply_directions_rows_and_strengths():
    rng = np.random.default_rng(1)
    ws = rng.normal(size=(6, 4)).astype(np.float32)
    d = np.eye(4, dtype=np.float32)[:2]
    assert np.array_equal(apply_directions(ws, d, [0.0, 0.0], rows=[1, 2]), ws)
    moved = apply_directions(ws, d, [2.0, -1.0], rows=[1, 2])
    np.testing.assert_allclose(moved[[1, 2]] - ws[[1, 2]], [[2, -1, 0, 0]] * 2, atol=1e-6)
    assert np.array_equal(moved[[0, 3, 4, 5]], ws[[0, 3, 4, 5]])
    everywhere = apply_directions(ws, d, [1.0, 0.0])
    np.testing.assert_allclose(everywhere - ws, np.tile([1, 0, 0, 0], (6, 1)), atol=1e-6)
    with pytest.raises(ValueError, match="rows"):
        apply_directions(ws, d, [1.0, 0.0], rows=[6])
    with pytest.raises(ValueError, match="strengths"):
        apply_directions(ws, d, [1.0])


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


def _frame(renderer, ws, tmp_path, name) -> np.ndarray:
    path = tmp_path / f"{name}.npy"
    np.save(path, ws)
    result = renderer.render(RenderArgs(model=str(DEMO), device="cpu", w_file=str(path)))
    assert result.error is None, result.error
    return result.image


def test_strength_zero_and_moving_back(demo, renderer, tmp_path):
    base = renderer.render(RenderArgs(model=str(DEMO), device="cpu", latent=((5, 1.0),)))
    assert base.error is None
    ws = base.w
    directions = ganspace(demo, GanSpaceRequest(num_samples=512, count=3))
    rows = row_group(demo, "coarse")
    still = apply_directions(ws, directions.vectors, [0.0, 0.0, 0.0], rows)
    assert np.array_equal(still, ws)
    assert np.array_equal(_frame(renderer, still, tmp_path, "still"), base.image)

    strengths = 2 * directions.spread[:3]
    moved = apply_directions(ws, directions.vectors, strengths, rows)
    moved_frame = _frame(renderer, moved, tmp_path, "moved")
    assert np.abs(moved_frame.astype(int) - base.image.astype(int)).mean() > 3  # the image changed
    back = apply_directions(moved, directions.vectors, -strengths, rows)
    np.testing.assert_allclose(back, ws, atol=1e-5)
    back_frame = _frame(renderer, back, tmp_path, "back")
    assert np.abs(back_frame.astype(int) - base.image.astype(int)).max() <= 1


# --- Files ------------------------------------------------------------------------------------

def test_direction_files_round_trip_and_checks(tmp_path):
    rng = np.random.default_rng(2)
    v = rng.normal(size=(3, 8))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    save_directions(tmp_path / "three.npy", v)
    np.testing.assert_allclose(load_directions(tmp_path / "three.npy", 8), v, atol=1e-6)
    save_directions(tmp_path / "one.npy", v[0] * 5)
    loaded = load_directions(tmp_path / "one.npy", 8)
    assert loaded.shape == (1, 8) and abs(np.linalg.norm(loaded) - 1) < 1e-6

    with pytest.raises(DirectionFileError, match="width 8.*16"):
        load_directions(tmp_path / "three.npy", 16)
    np.save(tmp_path / "ints.npy", np.ones((2, 8), dtype=np.int64))
    with pytest.raises(DirectionFileError, match="int64"):
        load_directions(tmp_path / "ints.npy")
    bad = v.copy()
    bad[1, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DirectionFileError, match="NaN"):
        load_directions(tmp_path / "nan.npy")
    np.save(tmp_path / "zero.npy", np.zeros((2, 8)))
    with pytest.raises(DirectionFileError, match="all zeros"):
        load_directions(tmp_path / "zero.npy")
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 8)))
    with pytest.raises(DirectionFileError, match="shape"):
        load_directions(tmp_path / "cube.npy")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DirectionFileError, match="not a direction file"):
        load_directions(tmp_path / "objects.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DirectionFileError, match="not a direction file"):
        load_directions(tmp_path / "junk.npy")
    with pytest.raises(DirectionFileError, match="no such file"):
        load_directions(tmp_path / "missing.npy")
