"""The GUI's analysis jobs (renderer.worker.analysis.jobs): the work functions return the right data for the
tiny StyleGAN3 model; through a background process a job delivers its value, can be cancelled, and a
StyleGAN2 model gets the message that the metrics do not apply. Importing the jobs leaves torch out."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from renderer.worker.analysis import jobs
from renderer.conventions import as_matrix3, user_transform
from renderer.protocol import RenderArgs

ROOT = Path(__file__).resolve().parents[1]
JOB_TIMEOUT = 240


def _ignore_progress(done: int, total: int) -> None:
    pass


def _never() -> bool:
    return False


@pytest.fixture(scope="module")
def args(tiny_model) -> RenderArgs:
    return RenderArgs(model=str(tiny_model), device="cpu", latent=((3, 1.0),),
                      input_transform=as_matrix3(user_transform((0.1, -0.05), 0.03)))


def test_importing_the_jobs_does_not_import_torch():
    code = "import sys, renderer.worker.analysis.jobs\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "NO-TORCH"


def test_layer_analysis_matches_the_spectrum_api(args):
    import torch

    from renderer.worker.analysis.spectrum import model_layer_spectra
    from renderer.worker.models import load_generator
    from renderer.worker.render import latent_ws, network_transform

    result = jobs.layer_analysis(args, _ignore_progress, _never)
    G = load_generator(args.model)
    ws = latent_ws(G, args, torch.device("cpu"))
    reference = model_layer_spectra(G, ws, transform=network_transform(G, args, torch.device("cpu")),
                                    beta=args.fft_beta, pad=jobs.LAYER_SPECTRUM_PAD)
    assert [s.name for s in result.spectra] == ["input", *G.synthesis.layer_names]
    for got, want in zip(result.spectra, reference):
        assert got.cutoff == pytest.approx(want.design.cutoff) and got.stopband == pytest.approx(want.design.stopband)
        assert got.nyquist == pytest.approx(want.design.sampling_rate / 2)
        np.testing.assert_allclose(got.radii, want.radii)
        np.testing.assert_allclose(got.profile_db, want.profile_db(), atol=1e-6)
        assert got.energy_above_cutoff == pytest.approx(want.energy_above_cutoff, abs=1e-9)
        assert 0 <= got.energy_above_stopband <= got.energy_above_cutoff <= 1
    # The latent matters: another seed gives another profile.
    other = jobs.layer_analysis(args.replace(latent=((4, 1.0),)), _ignore_progress, _never)
    assert not np.allclose(other.spectra[3].profile_db, result.spectra[3].profile_db)
    # Filters of every synthesis layer; the ToRGB layer does not resample.
    assert [f.layer for f in result.filters] == list(G.synthesis.layer_names)
    assert result.filters[-1].up is None and result.filters[-1].down is None
    down = result.filters_of("L2_36_64").down
    assert down is not None and down.magnitude_db[0] == pytest.approx(0, abs=1e-3)
    assert down.magnitude_db[down.freqs > down.stopband_edge * 1.05].max() < -20   # the stopband is attenuated


def test_filter_responses_of_one_layer(args):
    (one,) = jobs.filter_responses(jobs.FilterRequest(args, "L2_36_64"), _ignore_progress, _never)
    assert one.layer == "L2_36_64" and one.up is not None and one.down is not None
    assert one.up.freqs.shape == one.up.magnitude_db.shape and one.up.freqs[-1] == pytest.approx(one.up.sampling_rate / 2)
    with pytest.raises(jobs.JobFailed, match="no synthesis layer"):
        jobs.filter_responses(jobs.FilterRequest(args, "nonsense"), _ignore_progress, _never)


def test_average_spectrum_saves_and_loads_the_same_data(args, tmp_path):
    seen: list[tuple[int, int]] = []
    out = tmp_path / "spectrum.npz"
    request = jobs.AverageSpectrumRequest(args, num_images=4, mean=128.0, std=50.0, save_path=str(out), batch_size=2)
    data = jobs.average_spectrum(request, lambda done, total: seen.append((done, total)), _never)
    assert seen == [(2, 4), (4, 4)]
    assert data.num_images == 4 and data.resolution == 64 and data.path == str(out) and out.exists()
    assert data.image.shape == (64 * 4, 64 * 4, 3) and data.image.dtype == np.uint8
    assert data.freq_limit == 32 and data.slice_0deg.freqs[0] == 0 and data.slice_0deg.freqs[-1] < 32
    assert np.all(np.isfinite(data.slice_0deg.power_db)) and np.all(np.isfinite(data.slice_45deg.power_db))
    loaded = jobs.load_average_spectrum(str(out), _ignore_progress, _never)
    np.testing.assert_array_equal(loaded.image, data.image)
    np.testing.assert_allclose(loaded.slice_45deg.power_db, data.slice_45deg.power_db)
    assert (loaded.mean, loaded.std) == (128.0, 50.0)
    with pytest.raises(jobs.JobFailed, match="not a saved average spectrum"):
        bad = tmp_path / "bad.npz"
        bad.write_bytes(b"not a spectrum")
        jobs.load_average_spectrum(str(bad), _ignore_progress, _never)


def test_whitening_from_the_model_when_not_given(args):
    data = jobs.average_spectrum(jobs.AverageSpectrumRequest(args, num_images=2, batch_size=2), _ignore_progress, _never)
    assert 0 < data.mean < 255 and data.std > 0


def test_equivariance_readout_and_error_image(args):
    from renderer.worker.analysis.equivariance import error_map, latent_readout
    from renderer.worker.models import load_generator
    from renderer.worker.render import latent_ws
    import torch

    data = jobs.equivariance(jobs.EquivarianceRequest(args, num_samples=2), _ignore_progress, _never)
    G = load_generator(args.model)
    ws = latent_ws(G, args, torch.device("cpu"))
    want = latent_readout(G, ws, num_samples=2)
    assert (data.eqt, data.eqt_frac, data.eqr) == pytest.approx((want.eqt, want.eqt_frac, want.eqr))
    assert all(math.isfinite(v) for v in (data.eqt, data.eqt_frac, data.eqr))
    emap = error_map(G, ws, np.asarray(args.input_transform))
    assert data.error_psnr == pytest.approx(emap.psnr) and data.error_method == emap.method
    assert data.error_image.shape == (64, 64, 3) and data.error_max == pytest.approx(emap.error[emap.mask > 0].max())
    assert not data.transform_is_identity
    assert data.error_image[emap.mask <= 0].max() == 0 and data.error_image.max() > 0


def test_a_job_in_the_background_delivers_its_value(args):
    job = jobs.start_filter_responses(jobs.FilterRequest(args, "L1_36_64"))
    try:
        assert job.wait(JOB_TIMEOUT), "the job did not finish"
        assert job.error is None and not job.cancelled
        (one,) = job.value
        assert one.layer == "L1_36_64" and job.progress == 1.0
    finally:
        job.close()


def test_cancelling_the_average_spectrum(args, tmp_path):
    out = tmp_path / "never.npz"
    request = jobs.AverageSpectrumRequest(args, num_images=100_000, mean=128.0, std=50.0, save_path=str(out), batch_size=1)
    job = jobs.start_average_spectrum(request)
    try:
        job.cancel()
        assert job.wait(JOB_TIMEOUT), "the cancelled job did not stop"
        assert job.cancelled and job.error is None and job.value is None
        assert not out.exists()
    finally:
        job.close()


def test_stylegan2_gets_the_clear_message(tiny_sg2_model):
    args = RenderArgs(model=str(tiny_sg2_model), device="cpu")
    job = jobs.start_equivariance(jobs.EquivarianceRequest(args))
    try:
        assert job.wait(JOB_TIMEOUT)
        assert job.value is None and job.error is not None
        assert "do not apply" in job.error and "stylegan2" in job.error.lower()
    finally:
        job.close()
    with pytest.raises(jobs.JobFailed, match="need a StyleGAN3 generator"):
        jobs.layer_analysis(args, _ignore_progress, _never)


def test_a_missing_model_is_a_readable_failure(tmp_path):
    with pytest.raises(jobs.JobFailed, match="Could not load"):
        jobs.layer_analysis(RenderArgs(model=str(tmp_path / "missing.pkl"), device="cpu"), _ignore_progress, _never)
