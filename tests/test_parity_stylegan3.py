"""Our StyleGAN3 generator against the official implementation's outputs (../shared/reference/)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from renderer.worker.networks.stylegan3 import Generator, SynthesisLayer
from torch_utils.ops import paths

NETWORKS = ["sg3t_small", "sg3r_small", "sg3t_small_identity", "sg3t_small_cond", "sg3t_small_clamp"]


@pytest.fixture(params=paths.available())
def op_path(request):
    """Every op path that can run here; the parity tests run once per path."""
    with paths.selected(request.param):
        yield request.param


@pytest.fixture(scope="module")
def networks(reference):
    """name -> our generator loaded with that reference network's weights (built once per module)."""
    cache: dict[str, Generator] = {}

    def get(name: str) -> Generator:
        if name not in cache:
            cache[name] = reference(name).build()
        return cache[name]

    return get


IMAGE_TOL = 1e-4  # of max(1, max |image|): outputs can go beyond +-1


def image_tolerance(ref: np.ndarray) -> float:
    return IMAGE_TOL * max(1.0, float(np.abs(ref).max()))


def max_abs_diff(ours: torch.Tensor, ref: np.ndarray) -> float:
    return float((ours.detach().cpu().to(torch.float32) - torch.from_numpy(np.asarray(ref))).abs().max())


@pytest.fixture
def exact_fp32():
    """Full float32 matmuls and convolutions on CUDA (TF32 would miss the 1e-4 tolerance)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("name", NETWORKS)
def test_parity(name, op_path, reference, networks, exact_fp32):
    ref = reference(name)
    G = networks(name)
    assert isinstance(G, Generator)
    device = torch.device("cuda" if op_path == "cuda" else "cpu")
    if device.type == "cuda":
        G = copy.deepcopy(G).to(device)
    z, c = torch.from_numpy(ref["z"]).to(device), torch.from_numpy(ref["c"]).to(device)

    with torch.no_grad():
        assert max_abs_diff(G.mapping(z, c), ref["ws_psi1"]) <= 1e-5
        assert max_abs_diff(G.mapping(z, c, truncation_psi=0.7), ref["ws_psi07"]) <= 1e-5

        image = G(z, c, truncation_psi=1, noise_mode="const")
        assert image.dtype == torch.float32 and image.shape == ref["img_psi1"].shape
        assert max_abs_diff(image, ref["img_psi1"]) <= image_tolerance(ref["img_psi1"])

        # The hooks were recorded during the psi 0.7 run.
        modules = dict(G.named_modules())
        captured: dict[str, torch.Tensor] = {}
        handles = []
        for path in ref.hooks():
            assert path in modules, f"no module {path} to hook"
            handles.append(modules[path].register_forward_hook(
                lambda module, args, output, path=path: captured.__setitem__(path, output)))
        try:
            image = G(z, c, truncation_psi=0.7, noise_mode="const")
        finally:
            for handle in handles:
                handle.remove()
        assert max_abs_diff(image, ref["img_psi07"]) <= image_tolerance(ref["img_psi07"])

    for path, expected in ref.hooks().items():
        ours = captured[path]
        if ours.ndim == 4:
            ours = ours[: expected.shape[0], : expected.shape[1]]
        assert ours.shape == expected.shape, path
        scale = float(np.abs(expected).max())
        assert max_abs_diff(ours, expected) <= 1e-4 * scale, path


@pytest.mark.parametrize("name", NETWORKS)
def test_layer_table(name, reference, networks):
    """Every layer's specification equals the official layer table."""
    table = reference(name).layer_table
    synthesis = networks(name).synthesis
    assert synthesis.num_ws == table["synthesis"]["num_ws"]
    check_layer_table(synthesis, table)


def check_layer_table(synthesis, table: dict) -> None:
    """Compare a SynthesisNetwork's input and layers with an official layer table."""
    rows = table["layers"]
    assert [row["name"] for row in rows] == ["input"] + synthesis.layer_names
    first = rows[0]
    assert synthesis.input.channels == first["channels"]
    assert list(synthesis.input.size) == first["size"]
    assert synthesis.input.sampling_rate == pytest.approx(first["sampling_rate"])
    assert synthesis.input.bandwidth == pytest.approx(first["bandwidth"])
    for row, layer in zip(rows[1:], synthesis.layers()):
        assert isinstance(layer, SynthesisLayer)
        assert (layer.out_channels, list(layer.out_size)) == (row["channels"], row["size"]), row["name"]
        assert (layer.in_channels, list(layer.in_size)) == (row["in_channels"], row["in_size"]), row["name"]
        for ours, key in [("out_sampling_rate", "sampling_rate"), ("out_cutoff", "cutoff"),
                          ("out_half_width", "half_width"), ("in_sampling_rate", "in_sampling_rate"),
                          ("in_cutoff", "in_cutoff"), ("in_half_width", "in_half_width"),
                          ("tmp_sampling_rate", "tmp_sampling_rate")]:
            assert getattr(layer, ours) == pytest.approx(row[key], rel=1e-12), f"{row['name']}.{ours}"
        for key in ["up_factor", "down_factor", "up_taps", "down_taps", "down_radial", "padding", "conv_kernel",
                    "is_torgb", "is_critically_sampled", "use_fp16", "conv_clamp"]:
            assert getattr(layer, key) == row[key], f"{row['name']}.{key}"
        assert layer.magnitude_ema_beta == pytest.approx(row["magnitude_ema_beta"])


@pytest.mark.parametrize("name", ["sg3t_small", "sg3r_small"])
def test_designed_filters_match_reference(name, reference):
    """Filters designed at construction equal the ones stored in the official network."""
    ref = reference(name)
    stored = ref.state_dict()
    torch.manual_seed(0)
    designed = {k: v for k, v in Generator(**ref.init_kwargs).state_dict().items() if k.endswith("_filter")}
    assert designed.keys() == {k for k in stored if k.endswith("_filter")}
    assert any(v.ndim == 2 for v in designed.values()) == (name == "sg3r_small")
    for key, value in designed.items():
        assert value.shape == stored[key].shape, key
        assert (value - stored[key]).abs().max() <= 1e-6 * stored[key].abs().max(), key


def test_transform_argument_equals_buffer_and_leaves_it_alone(reference, networks):
    ref = reference("sg3t_small")
    G = networks("sg3t_small")
    z = torch.from_numpy(ref["z"][:1])
    angle = 0.3
    matrix = torch.tensor([[np.cos(angle), np.sin(angle), 0.1], [-np.sin(angle), np.cos(angle), -0.05], [0, 0, 1]],
                          dtype=torch.float32)
    transform = torch.linalg.inv(matrix)
    buffer_before = G.synthesis.input.transform.clone()
    with torch.no_grad():
        with_argument = G(z, None, transform=transform)
        assert torch.equal(G.synthesis.input.transform, buffer_before)
        default = G(z, None)
        G.synthesis.input.transform.copy_(transform)
        try:
            with_buffer = G(z, None)
        finally:
            G.synthesis.input.transform.copy_(buffer_before)
    assert (with_argument - with_buffer).abs().max() <= 1e-6
    assert (with_argument - default).abs().max() > 1e-2  # the transform really changes the image


def test_batch_of_one_equals_batch_of_four(reference, networks):
    ref = reference("sg3t_small")
    G = networks("sg3t_small")
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        batch = G(z, None, truncation_psi=0.7)
        singles = torch.cat([G(z[i: i + 1], None, truncation_psi=0.7) for i in range(z.shape[0])])
    assert (batch - singles).abs().max() <= 1e-5


def test_magnitude_ema_changes_only_when_asked(reference):
    ref = reference("sg3t_small")
    G = ref.build()
    z = torch.from_numpy(ref["z"][:1])
    layer = G.synthesis.layers()[3]
    before = layer.magnitude_ema.clone()
    with torch.no_grad():
        G(z, None)
        assert torch.equal(layer.magnitude_ema, before)
        G(z, None, update_emas=True)
    assert not torch.equal(layer.magnitude_ema, before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16_layers_stay_close_to_fp32(reference, networks):
    """force_fp32=False runs the layers the NETWORK_NOTES rule marks in float16, with an image that
    still follows the float32 one; the output is float32 either way."""
    ref = reference("sg3t_small")
    G = copy.deepcopy(networks("sg3t_small")).cuda()
    z = torch.from_numpy(ref["z"]).cuda()
    with torch.no_grad():
        fp32 = G(z, None, force_fp32=True)
        fp16 = G(z, None, force_fp32=False)
    assert fp16.dtype == torch.float32 and torch.isfinite(fp16).all()
    assert not torch.equal(fp16, fp32)  # float16 really ran
    assert torch.corrcoef(torch.stack([fp16.flatten(), fp32.flatten()]))[0, 1] > 0.99


def test_fp16_never_used_on_cpu(reference, networks):
    ref = reference("sg3t_small")
    G = networks("sg3t_small")
    assert all(layer.use_fp16 for layer in G.synthesis.layers())  # 64 px: every layer qualifies
    z = torch.from_numpy(ref["z"][:1])
    dtypes = []
    handles = [layer.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype)) for layer in G.synthesis.layers()]
    try:
        with torch.no_grad():
            G(z, None, force_fp32=False)
    finally:
        for handle in handles:
            handle.remove()
    assert dtypes and set(dtypes) == {torch.float32}


def test_wrong_ws_shape_is_a_clear_error(reference, networks):
    G = networks("sg3t_small")
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.zeros([1, G.num_ws - 1, G.w_dim]))
    with pytest.raises(ValueError, match="3x3"):
        G.synthesis(torch.zeros([1, G.num_ws, G.w_dim]), transform=torch.eye(2))
