"""Spectra: the annotated per-layer view on synthetic signals with known content, the average
spectrum as the official tool computes it, image sources, filter responses, figures and CLI."""

from __future__ import annotations

import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from renderer.conventions import CUTOFF_RGB
from renderer.spectra import AverageSpectrum
from renderer.worker.analysis import figures, filters
from renderer.worker.analysis.image_sources import ImageFolderSource
from renderer.worker.analysis.spectrum import (LayerDesign, SpectrumAccumulator, annotate_spectrum,
                                        image_stats, layer_designs, model_layer_spectra, ws_for_seed)

ROOT = Path(__file__).resolve().parents[1]
DESIGN = LayerDesign(name="test", sampling_rate=64.0, cutoff=16.0, stopband=20.0, half_width=None, radial=False,
                     critically_sampled=False)


def sinusoids(freqs: list[tuple[float, float]], n: int = 64, rate: float = 64.0, channels: int = 4) -> torch.Tensor:
    """[C, n, n] sums of sin(2 pi (fx x + fy y) + phase) sampled at `rate` per unit, random phases."""
    rng = np.random.RandomState(0)
    pos = (np.arange(n) + 0.5 - n / 2) / rate
    y, x = np.meshgrid(pos, pos, indexing="ij")
    out = np.zeros([channels, n, n])
    for c in range(channels):
        for fx, fy in freqs:
            out[c] += rng.uniform(0.5, 1) * np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 2 * np.pi))
    return torch.as_tensor(out + 0.3, dtype=torch.float32)  # an offset: removed per channel


# ---------------------------------------------------------------------------------------------
# (a) The annotated per-layer view.


def test_band_limited_signal_has_no_energy_above_cutoff():
    spectrum = annotate_spectrum(sinusoids([(3, 5), (8, -6), (-10, 2), (0, 9)]), DESIGN)
    assert spectrum.energy_above_cutoff < 1e-5
    assert spectrum.energy_above_stopband < 1e-6
    assert spectrum.freqs_x[0] == -32 and spectrum.power.shape == (128, 128)  # +-s/2, padded x2
    # The radial profile peaks at a component's radius (|(8, -6)| = 10, |(-10, 2)| = 10.2).
    assert abs(spectrum.radii[np.argmax(spectrum.profile)] - 10) <= 1


def test_aliased_signal_shows_energy_above_cutoff():
    # 40 cycles per unit sampled at 64 per unit aliases to 40 - 64 = -24: above f_c = 16 and f_t = 20.
    spectrum = annotate_spectrum(sinusoids([(3, 5), (40, 0)]), DESIGN)
    assert spectrum.energy_above_cutoff > 0.3 and spectrum.energy_above_stopband > 0.3
    near_alias = (np.abs(np.abs(spectrum.freqs_x)[None, :] - 24) <= 1.5) & (np.abs(spectrum.freqs_y)[:, None] <= 1.5)
    assert spectrum.power[near_alias].sum() / spectrum.power.sum() > 0.3  # the energy sits at the alias


def test_radial_designs_measure_outside_a_disc():
    # (12, 12) lies inside the square |f| <= 16 but outside the disc of radius 16.
    x = sinusoids([(12, 12)])
    box = annotate_spectrum(x, DESIGN)
    disc = annotate_spectrum(x, LayerDesign(**{**DESIGN.__dict__, "radial": True}))
    assert box.energy_above_cutoff < 1e-4 and disc.energy_above_cutoff > 0.9


def test_model_layer_spectra_carry_the_layer_design(reference):
    ref = reference("sg3t_small")
    G = ref.build()
    table = {row["name"]: row for row in ref.layer_table["layers"]}
    designs = layer_designs(G)
    assert [d.name for d in designs] == ["input"] + G.synthesis.layer_names
    for d in designs:
        row = table[d.name]
        assert d.sampling_rate == row["sampling_rate"] and d.cutoff == pytest.approx(row["cutoff"])
        if row["half_width"] is not None:
            # f_h = max(f_t, s/2) - f_c: the recomputed stopband agrees with the stored half width.
            assert max(d.stopband, d.sampling_rate / 2) - d.cutoff == pytest.approx(row["half_width"])
    spectra = model_layer_spectra(G, ws_for_seed(G, 0))
    assert len(spectra) == len(designs)
    for s, row in zip(spectra, table.values()):
        assert s.power.shape == (2 * row["size"][1], 2 * row["size"][0])
        assert 0 <= s.energy_above_stopband <= s.energy_above_cutoff <= 1
        assert np.all(np.isfinite(s.profile_db()))
    # Critically sampled layers put f_c at Nyquist: nothing can lie above it.
    assert spectra[-1].design.cutoff == spectra[-1].design.nyquist and spectra[-1].energy_above_cutoff == 0


def test_stylegan2_has_no_layer_design(reference):
    with pytest.raises(ValueError, match="StyleGAN3"):
        layer_designs(reference("sg2_small").build())


# ---------------------------------------------------------------------------------------------
# (b) The average spectrum.


def grating(n: int, fx: float, fy: float, count: int = 3) -> np.ndarray:
    """uint8-range images [count, 3, n, n] of 128 + 60 sin(2 pi (fx x + fy y) / n + phase)."""
    y, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.stack([np.broadcast_to(128 + 60 * np.sin(2 * np.pi * (fx * x + fy * y) / n + k), (3, n, n))
                     for k in range(count)]).astype(np.float32)


def test_average_spectrum_of_a_sinusoid_peaks_at_its_frequency():
    acc = SpectrumAccumulator(64, mean=128, std=60, label="grating")
    acc.add(grating(64, 8, 0))
    result = acc.result()
    iy, ix = np.unravel_index(np.argmax(result.power), result.power.shape)
    assert abs(result.freqs[ix]) == 8 and result.freqs[iy] == 0
    f, p = result.slice_0deg()
    assert f[np.argmax(p)] == 8
    diagonal = SpectrumAccumulator(64, mean=128, std=60)
    diagonal.add(grating(64, 6, 6))
    f, p = diagonal.result().slice_45deg()
    assert f[np.argmax(p)] == pytest.approx(6 * math.sqrt(2))


def test_unit_energy_window_makes_white_noise_0_db():
    rng = np.random.RandomState(1)
    acc = SpectrumAccumulator(32, mean=100, std=20, pad=2)
    acc.add(rng.randn(40, 3, 32, 32) * 20 + 100)
    assert abs(float(np.mean(acc.result().power)) - 1) < 0.05


def test_accumulation_is_incremental_and_saves(tmp_path):
    images = np.random.RandomState(2).uniform(0, 255, (6, 3, 16, 16))
    once = SpectrumAccumulator(16, 127, 70, label="x")
    once.add(images)
    parts = SpectrumAccumulator(16, 127, 70, label="x")
    parts.add(images[:2])
    parts.add(images[2:])
    assert parts.count == 6
    np.testing.assert_allclose(parts.result().power, once.result().power, rtol=1e-5)  # float32 FFTs
    path = tmp_path / "x.npz"
    once.result().save(str(path))
    back = AverageSpectrum.load(str(path))
    assert back.num_images == 6 and back.label == "x" and np.array_equal(back.power, once.result().power)
    with pytest.raises(ValueError):
        SpectrumAccumulator(16, 127, 70).result()


def test_image_folder_and_zip_sources_agree(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.RandomState(3)
    for k in range(3):
        Image.fromarray(rng.randint(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / ("sub" if k else "") / f"{k}.png")
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as z:
        for p in sorted(folder.rglob("*.png")):
            z.write(p, p.relative_to(folder).as_posix())
    a = np.concatenate(list(ImageFolderSource(str(folder), 32).batches(2)))
    b = np.concatenate(list(ImageFolderSource(str(tmp_path / "imgs.zip"), 32).batches(2)))
    assert a.shape == (3, 3, 32, 32) and np.array_equal(a, b)
    assert ImageFolderSource(str(folder), 16).native_resolution() == 32
    assert next(ImageFolderSource(str(folder), 16, channels=1).batches(8)).shape == (3, 1, 16, 16)
    mean, std = image_stats([a])
    assert mean == pytest.approx(a.mean()) and std == pytest.approx(a.std(), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Filter responses.


def test_filter_responses_follow_the_design(reference):
    for name in ("sg3t_small", "sg3r_small"):
        G = reference(name).build()
        for layer in filters.model_filter_responses(G):
            for r in (layer.up, layer.down):
                if r is None:
                    continue
                assert r.magnitude[0] == pytest.approx(1, abs=1e-6)
                assert 0.4 < np.interp(r.cutoff, r.freqs, r.magnitude) < 0.8  # mid-transition at f_c
                assert r.magnitude[r.freqs >= r.stopband_edge].max(initial=0) < 0.07
        assert filters.model_filter_responses(G)[-1].up is None  # ToRGB resamples nothing
    # The R config's down filters are radial (2-D) except in the critically sampled layers.
    G = reference("sg3r_small").build()
    for layer, name in zip(filters.model_filter_responses(G), G.synthesis.layer_names):
        if layer.down is not None:
            critical = getattr(G.synthesis, name).is_critically_sampled
            assert layer.down.radial == (not critical)
            assert layer.down.response_2d.shape == (512, 512) and layer.down.radii.max() <= layer.down.sampling_rate / 2


# ---------------------------------------------------------------------------------------------
# Figures and the command line.


def test_annotated_spectrum_image_draws_the_design():
    spectrum = annotate_spectrum(sinusoids([(3, 5)]), DESIGN)
    image = figures.annotated_spectrum_image(spectrum, size=256)
    assert image.shape == (256, 256, 3)
    x_cut = round(128 + 16 / 32 * 128)  # f_c on the right edge of the square
    assert any(tuple(image[128, x]) == CUTOFF_RGB for x in range(x_cut - 2, x_cut + 3))
    assert not any(tuple(image[128, x]) == CUTOFF_RGB for x in range(150, 185))


def test_spectrum_cli_writes_npz_heatmap_and_slices(tiny_model, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for k, img in enumerate(grating(64, 5, 0, count=2)):
        Image.fromarray(img.transpose(1, 2, 0).astype(np.uint8)).save(folder / f"{k}.png")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(ROOT / "visualizer.py"), "spectrum", str(tiny_model), str(folder),
                          "--num", "2", "--out-dir", str(out), "--device", "cpu"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr
    model = AverageSpectrum.load(str(out / f"{tiny_model.stem}.npz"))
    images = AverageSpectrum.load(str(out / "imgs.npz"))
    assert model.num_images == 2 and images.num_images == 2 and model.mean == images.mean
    f, p = images.slice_0deg()
    assert f[np.argmax(p)] == 5
    heatmap, slices = Image.open(out / "heatmap.png"), Image.open(out / "slices.png")
    assert heatmap.width > 2 * 320 and slices.width > 2 * 460
