"""The worker's analysis jobs (renderer.worker.jobs): run to the end in this thread they return the right
data for the tiny StyleGAN3 model; through the client's worker a job delivers its value, reports
progress, can be cancelled, and a StyleGAN2 model gets the message that the metrics do not apply."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from renderer.client import RenderClient
from renderer.conventions import as_matrix3, user_transform
from renderer.protocol import (AverageSpectrumRequest, EquivarianceRequest, FilterRequest, LayerAnalysisRequest,
                               RenderArgs)
from renderer.spectra import AverageSpectrum, SpectrumFileError, spectrum_view
from renderer.worker import jobs
from renderer.worker.analysis.equivariance import error_map, latent_readout
from renderer.worker.analysis.spectrum import model_layer_spectra
from renderer.worker.models import load_generator
from renderer.worker.render import frame_ws, network_transform

JOB_TIMEOUT = 240


@pytest.fixture(scope="module")
def args(tiny_model) -> RenderArgs:
    return RenderArgs(model=str(tiny_model), device="cpu", latent=((3, 1.0),),
                      input_transform=as_matrix3(user_transform((0.1, -0.05), 0.03)))


def test_layer_analysis_matches_the_spectrum_api(args):
    request = LayerAnalysisRequest(args)
    result = jobs.run_to_end(request)
    G = load_generator(args.model)
    ws = frame_ws(G, args, torch.device("cpu"))
    reference = model_layer_spectra(G, ws, transform=network_transform(G, args, torch.device("cpu")),
                                    beta=args.fft_beta, pad=request.pad)
    assert [s.name for s in result.spectra] == ["input", *G.synthesis.layer_names]
    for got, want in zip(result.spectra, reference):
        assert got.cutoff == pytest.approx(want.design.cutoff) and got.stopband == pytest.approx(want.design.stopband)
        assert got.nyquist == pytest.approx(want.design.sampling_rate / 2)
        np.testing.assert_allclose(got.radii, want.radii)
        np.testing.assert_allclose(got.profile_db, want.profile_db(), atol=1e-6)
        assert got.energy_above_cutoff == pytest.approx(want.energy_above_cutoff, abs=1e-9)
        assert 0 <= got.energy_above_stopband <= got.energy_above_cutoff <= 1
    # The latent matters: another seed gives another profile.
    other = jobs.run_to_end(LayerAnalysisRequest(args.replace(latent=((4, 1.0),))))
    assert not np.allclose(other.spectra[3].profile_db, result.spectra[3].profile_db)
    # Filters of every synthesis layer; the ToRGB layer does not resample.
    assert [f.layer for f in result.filters] == list(G.synthesis.layer_names)
    assert result.filters[-1].up is None and result.filters[-1].down is None
    down = result.filters_of("L2_36_64").down
    assert down is not None and down.magnitude_db[0] == pytest.approx(0, abs=1e-3)
    assert down.magnitude_db[down.freqs > down.stopband_edge * 1.05].max() < -20   # the stopband is attenuated


def test_filter_responses_of_one_layer(args):
    (one,) = jobs.run_to_end(FilterRequest(args, "L2_36_64"))
    assert one.layer == "L2_36_64" and one.up is not None and one.down is not None
    assert one.up.freqs.shape == one.up.magnitude_db.shape and one.up.freqs[-1] == pytest.approx(one.up.sampling_rate / 2)
    with pytest.raises(jobs.JobFailed, match="no synthesis layer"):
        jobs.run_to_end(FilterRequest(args, "nonsense"))


def test_average_spectrum_in_slices_saves_and_loads_the_same_data(args, tmp_path):
    steps: list[tuple[int, int]] = []
    spectrum = jobs.run_to_end(AverageSpectrumRequest(args, num_images=12, mean=128.0, std=50.0),
                               on_step=lambda step: steps.append((step.done, step.total)))
    # One slice per batch of 8 images at 64 px (after a first, loading slice).
    assert steps == [(0, 12), (8, 12), (12, 12)]
    assert isinstance(spectrum, AverageSpectrum) and spectrum.num_images == 12 and spectrum.resolution == 64
    view = spectrum_view(spectrum)
    assert view.image.shape == (64 * 4, 64 * 4, 3) and view.image.dtype == np.uint8
    assert view.freq_limit == 32 and view.slice_0deg.freqs[0] == 0 and view.slice_0deg.freqs[-1] < 32
    assert np.all(np.isfinite(view.slice_0deg.power_db)) and np.all(np.isfinite(view.slice_45deg.power_db))
    out = tmp_path / "spectrum.npz"
    spectrum.save(out)
    loaded = spectrum_view(AverageSpectrum.load(out), str(out))
    np.testing.assert_array_equal(loaded.image, view.image)
    np.testing.assert_allclose(loaded.slice_45deg.power_db, view.slice_45deg.power_db)
    assert (loaded.mean, loaded.std) == (128.0, 50.0) and loaded.path == str(out)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a spectrum")
    with pytest.raises(SpectrumFileError, match="not a saved average spectrum"):
        AverageSpectrum.load(bad)


def test_whitening_from_the_model_when_not_given(args):
    spectrum = jobs.run_to_end(AverageSpectrumRequest(args, num_images=2))
    assert 0 < spectrum.mean < 255 and spectrum.std > 0


def test_equivariance_readout_and_error_image(args):
    data = jobs.run_to_end(EquivarianceRequest(args, num_samples=2))
    G = load_generator(args.model)
    ws = frame_ws(G, args, torch.device("cpu"))
    want = latent_readout(G, ws, num_samples=2)
    # The job renders one sample per slice (batch 1) where latent_readout renders both at once: the same
    # sums up to float32 rounding, about 1e-3 dB here.
    assert (data.eqt, data.eqt_frac, data.eqr) == pytest.approx((want.eqt, want.eqt_frac, want.eqr), abs=0.01)
    assert all(math.isfinite(v) for v in (data.eqt, data.eqt_frac, data.eqr))
    emap = error_map(G, ws, np.asarray(args.input_transform))
    assert data.error_psnr == pytest.approx(emap.psnr) and data.error_method == emap.method
    assert data.error_image.shape == (64, 64, 3) and data.error_max == pytest.approx(emap.error[emap.mask > 0].max())
    assert not data.transform_is_identity
    assert data.error_image[emap.mask <= 0].max() == 0 and data.error_image.max() > 0


def test_a_job_through_the_worker_delivers_its_value(args):
    with RenderClient() as client:
        job = client.submit(FilterRequest(args, "L1_36_64"))
        assert job.wait(JOB_TIMEOUT), "the job did not finish"
        assert job.error is None and not job.cancelled
        (one,) = job.value
        assert one.layer == "L1_36_64" and job.progress == 1.0


def test_cancelling_the_average_spectrum(args):
    with RenderClient(in_process=True) as client:
        job = client.submit(AverageSpectrumRequest(args, num_images=100_000, mean=128.0, std=50.0))
        while job.progress == 0 and not job.done:
            client.pump()
        job.cancel()
        assert job.wait(JOB_TIMEOUT), "the cancelled job did not stop"
        assert job.cancelled and job.error is None and job.value is None
        assert client.status().jobs == 0


def test_stylegan2_gets_the_clear_message(tiny_sg2_model):
    args = RenderArgs(model=str(tiny_sg2_model), device="cpu")
    with RenderClient(in_process=True) as client:
        job = client.submit(EquivarianceRequest(args))
        assert job.wait(JOB_TIMEOUT)
        assert job.value is None and job.error is not None
        assert "do not apply" in job.error and "stylegan2" in job.error.lower()
    with pytest.raises(jobs.JobFailed, match="need a StyleGAN3 generator"):
        jobs.run_to_end(LayerAnalysisRequest(args))


def test_a_missing_model_is_a_readable_failure(tmp_path):
    with pytest.raises(jobs.JobFailed, match="Could not load"):
        jobs.run_to_end(LayerAnalysisRequest(RenderArgs(model=str(tmp_path / "missing.pkl"), device="cpu")))
