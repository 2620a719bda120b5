"""Full-size StyleGAN3 configurations: exact state-dict names and shapes, layer tables, and the
designed filters behaving as the low-pass filters they are meant to be."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from renderer.worker.networks import build_generator, family_label
from renderer.worker.networks.stylegan3 import Generator, bessel_j1, kaiser_attenuation
from tests.conftest import REFERENCE_DIR
from tests.test_parity_stylegan3 import check_layer_table

CONFIGS = ["sg3t_256", "sg3t_512", "sg3t_1024", "sg3r_256", "sg3r_1024", "sg3t_256_cbase16384", "sg3r_256_cbase16384"]


def load_shapes(config: str) -> dict:
    path = REFERENCE_DIR / f"shapes_{config}.json"
    if not path.exists():
        pytest.skip(f"{path} not found (set VIZ_REFERENCE_DIR)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def built():
    """config -> (our randomly initialised generator, the official shapes record)."""
    cache: dict[str, tuple[Generator, dict]] = {}

    def get(config: str) -> tuple[Generator, dict]:
        if config not in cache:
            shapes = load_shapes(config)
            assert shapes["class_name"].endswith("networks_stylegan3.Generator")
            start = time.perf_counter()
            G = build_generator("stylegan3", shapes["persistence_init_kwargs"])
            seconds = time.perf_counter() - start
            assert seconds < 10, f"building {config} took {seconds:.1f} s"
            cache[config] = (G, shapes)
        return cache[config]

    return get


@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_names_and_shapes(config, built):
    G, shapes = built(config)
    ours = [(name, list(t.shape), str(t.dtype).removeprefix("torch.")) for name, t in G.state_dict().items()]
    official = [(e["name"], e["shape"], e["dtype"]) for e in shapes["state_dict"]]
    assert ours == official
    assert sum(p.numel() for p in G.parameters()) == shapes["num_parameters"]
    assert family_label(G) == ("stylegan3-r" if config.startswith("sg3r") else "stylegan3-t")


@pytest.mark.parametrize("config", CONFIGS)
def test_layer_table(config, built):
    G, shapes = built(config)
    table = shapes["synthesis_layers"]
    for key, value in table["synthesis"].items():
        assert getattr(G.synthesis, key) == value, key
    assert G.num_ws == G.synthesis.num_ws == G.mapping.num_ws
    check_layer_table(G.synthesis, table)


def frequency_response(taps: np.ndarray, freqs: np.ndarray, fs: float) -> np.ndarray:
    """|H(f)| of a symmetric 1-D filter (or of a 2-D one along the x axis) at frequencies `freqs`."""
    if taps.ndim == 2:
        taps = taps.sum(axis=0)
    offsets = np.arange(len(taps)) - (len(taps) - 1) / 2
    return np.abs(np.cos(2 * np.pi * np.outer(freqs, offsets) / fs) @ taps)


@pytest.mark.parametrize("config", ["sg3t_1024", "sg3r_1024"])
def test_designed_filters_are_lowpass(config, built):
    """Unit DC gain, passband ripple and stopband leakage near the Kaiser design ripple 10^(-A/20)
    (A from the taps and transition width), and the transition centred near the cutoff."""
    G, _ = built(config)
    checked = 0
    for layer in G.synthesis.layers():
        fs = layer.tmp_sampling_rate
        for taps, cutoff, half_width in [(layer.up_filter, layer.in_cutoff, layer.in_half_width),
                                         (layer.down_filter, layer.out_cutoff, layer.out_half_width)]:
            if taps is None:
                continue
            taps = taps.double().numpy()
            ripple = 10 ** (-kaiser_attenuation(taps.shape[0], 2 * half_width / (fs / 2)) / 20)
            assert taps.sum() == pytest.approx(1, abs=1e-6)
            # Mid-transition at the cutoff (exactly 1/2 only for long filters with narrow transitions).
            assert 0.4 <= frequency_response(taps, np.array([cutoff]), fs)[0] <= 0.8
            stopband = np.linspace(cutoff + half_width, fs / 2, 400)
            assert frequency_response(taps, stopband, fs).max() <= 2 * ripple
            # Passband: the separable design's ripple bound (the radial filter's 2-D window droops more).
            if taps.ndim == 1 and cutoff > half_width:
                passband = np.linspace(0, cutoff - half_width, 100)
                assert np.abs(frequency_response(taps, passband, fs) - 1).max() <= 2 * ripple
            checked += 1
    assert checked >= 2 * (len(G.synthesis.layer_names) - 1)


def test_radial_filters_are_rotation_invariant(built):
    """The R config's 2-D down filters respond (nearly) the same along an axis and a diagonal."""
    G, _ = built("sg3r_256")
    radial = [layer for layer in G.synthesis.layers() if layer.down_radial]
    assert radial and all(layer.down_filter.ndim == 2 for layer in radial)
    assert not any(layer.down_radial for layer in G.synthesis.layers()[-3:])  # critically sampled: separable
    for layer in radial:
        taps = layer.down_filter.double().numpy()
        fs = layer.tmp_sampling_rate
        offsets = (np.arange(taps.shape[0]) - (taps.shape[0] - 1) / 2) / fs
        radii = np.linspace(0, fs / 2, 50)

        def response(direction):
            fx, fy = np.outer(radii, direction).T
            phase = 2 * np.pi * (fx[:, None, None] * offsets[None, None, :] + fy[:, None, None] * offsets[None, :, None])
            return (np.cos(phase) * taps).sum(axis=(1, 2))

        assert np.abs(response([1, 0]) - response([np.sqrt(0.5), np.sqrt(0.5)])).max() < 0.05


def test_bessel_j1_known_values():
    """J1 at tabulated points (Abramowitz & Stegun, Table 9.1) and its first zero 3.8317."""
    x = np.array([0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 3.8317059702])
    expected = np.array([0.0, 0.2422684577, 0.4400505857, 0.5767248078, -0.3275791376, 0.0434727462, 0.0])
    assert np.abs(bessel_j1(x) - expected).max() < 1e-9


def test_unknown_hyperparameter_is_refused():
    with pytest.raises(TypeError, match="no_such_option"):
        Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, no_such_option=1)


def test_random_network_renders_finite_images():
    """A freshly initialised (untrained) small network is usable: finite output of the right shape."""
    torch.manual_seed(1)
    G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    with torch.no_grad():
        image = G(torch.randn([2, 16]), None)
    assert image.shape == (2, 3, 16, 16) and torch.isfinite(image).all()
    assert image.std() > 0
