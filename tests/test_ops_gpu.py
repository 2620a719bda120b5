"""The torch-ops GPU path (torch_utils/ops/gpu) against the reference ops, on CPU tensors, for every
configuration the generators use; whole networks on it; and the automatic path choice (paths.py).

Layer configurations come from generators built with the official full-size hyperparameters
(bench/gpu_check.FULL_SIZE: StyleGAN3-T and -R at 256 and 1024, their filters, factors, paddings
and clamps) and the small ones, so no reference data is needed."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import pytest
import torch

from bench.gpu_check import FULL_SIZE, SMALL
from renderer.worker.networks import build_generator
from torch_utils.ops import gpu, paths
from torch_utils.ops.gpu import check, filtered_nonlinearity, taps
from torch_utils.ops.reference import bias_act_ref, filtered_lrelu_ref, upfirdn2d_ref


def rel_error(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    return float((got.double() - want.double()).abs().max() / want.double().abs().max().clamp_min(1e-30))


@dataclass(frozen=True)
class Layer:
    """One filtered_lrelu call of a synthesis layer (the input is the convolution's output)."""

    name: str
    size: tuple[int, int]
    fu: torch.Tensor | None
    fd: torch.Tensor | None
    up: int
    down: int
    padding: tuple[int, ...]
    gain: float
    slope: float
    clamp: float | None

    def args(self, **changes) -> dict:
        args = dict(up=self.up, down=self.down, padding=list(self.padding), gain=self.gain, slope=self.slope,
                    clamp=self.clamp)
        return {**args, **changes}


def _layers() -> list[Layer]:
    found, seen = [], set()
    for config in ("sg3t_256", "sg3r_256", "sg3t_1024", "sg3r_1024", "sg3t_small", "sg3r_small"):
        family, kwargs = FULL_SIZE.get(config) or SMALL[config]
        torch.manual_seed(0)
        G = build_generator(family, kwargs)
        for layer in G.synthesis.layers():
            k = layer.conv_kernel
            fd = layer.down_filter
            key = (layer.up_factor, layer.down_factor, tuple(layer.padding), layer.is_torgb,
                   None if fd is None else (tuple(fd.shape), round(float(fd.abs().sum()), 5)))
            if key in seen:
                continue
            seen.add(key)
            found.append(Layer(f"{config}-{layer.out_size[0]}-up{layer.up_factor}-{'radial' if fd is not None and fd.ndim == 2 else 'sep'}",
                               (layer.in_size[1] + k - 1, layer.in_size[0] + k - 1), layer.up_filter, fd,
                               layer.up_factor, layer.down_factor, tuple(layer.padding),
                               1.0 if layer.is_torgb else math.sqrt(2), 1.0 if layer.is_torgb else 0.2, layer.conv_clamp))
    return found


LAYERS = _layers()
RESAMPLING = [c for c in LAYERS if c.up > 1]


def _input(layer: Layer, channels: int = 3, batch: int = 2, cap: int = 72, dtype=torch.float32) -> tuple:
    h, w = (min(v, cap) for v in layer.size)  # larger sizes only add rows and columns
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(batch, channels, h, w, generator=gen) * 4).to(dtype), torch.randn(channels, generator=gen).to(dtype)


def test_configurations_cover_the_networks():
    """Up 2 and 4, separable and radial down filters, negative and positive paddings, ToRGB."""
    kinds = {(c.up, c.fd.ndim if c.fd is not None else 0, c.padding[0] < 0) for c in LAYERS}
    assert {(2, 1, False), (4, 1, True), (2, 2, False), (4, 2, True), (1, 0, False)} <= kinds
    assert any(c.padding[0] < 0 and c.up == 2 for c in LAYERS)  # the last layer's crop


# --- filtered_lrelu --------------------------------------------------------------------------------

@pytest.mark.parametrize("layer", LAYERS, ids=[c.name for c in LAYERS])
def test_filtered_lrelu_matches_reference(layer):
    x, b = _input(layer)
    for clamp in (layer.clamp, 1.0):  # the network's clamp and one that bites
        with torch.no_grad():
            got = gpu.filtered_lrelu(x, layer.fu, layer.fd, b, **layer.args(clamp=clamp))
        assert rel_error(got, filtered_lrelu_ref(x, layer.fu, layer.fd, b, **layer.args(clamp=clamp))) <= 1e-5


@pytest.mark.parametrize("layer", LAYERS[:3] + [c for c in LAYERS if c.fd is not None and c.fd.ndim == 2][:2],
                         ids=lambda c: c.name)
@pytest.mark.parametrize("changes", [dict(flip_filter=True), dict(gain=0.7, slope=0.05), dict(gain=-1.3),
                                     dict(slope=-0.4, clamp=0.9), dict(clamp=None)], ids=str)
def test_filtered_lrelu_other_arguments(layer, changes):
    """flip_filter, other gains (a negative one cannot be folded into the filter) and slopes."""
    x, b = _input(layer, cap=40)
    with torch.no_grad():
        got = gpu.filtered_lrelu(x, layer.fu, layer.fd, b, **layer.args(**changes))
    assert rel_error(got, filtered_lrelu_ref(x, layer.fu, layer.fd, b, **layer.args(**changes))) <= 1e-5


def test_filtered_lrelu_without_filters_or_bias():
    x = torch.randn(2, 3, 11, 9)
    for kwargs in (dict(up=2, down=1, padding=[1, 0, 2, 1]), dict(up=1, down=2), dict(padding=[2, 1, -1, 0])):
        with torch.no_grad():
            got = gpu.filtered_lrelu(x, None, None, None, clamp=0.5, **kwargs)
        assert rel_error(got, filtered_lrelu_ref(x, None, None, None, clamp=0.5, **kwargs)) <= 1e-6


def test_filtered_lrelu_two_dimensional_up_filter():
    """No network has one; it runs the definition on this path's own ops."""
    x, fu, fd = torch.randn(1, 2, 9, 9), torch.randn(4, 4), torch.randn(4)
    args = dict(up=2, down=2, padding=[3, 2, 3, 2], clamp=1.0)
    with torch.no_grad():
        assert rel_error(gpu.filtered_lrelu(x, fu, fd, **args), filtered_lrelu_ref(x, fu, fd, **args)) <= 1e-5


@pytest.mark.parametrize("layer", RESAMPLING, ids=[c.name for c in RESAMPLING])
def test_filtered_lrelu_float16(layer):
    """float16 in, float16 out, no less accurate than the reference ops run in float16 (both against
    the reference in float64 on the same float16-rounded inputs)."""
    x, b = _input(layer, channels=4, cap=64, dtype=torch.float16)
    exact = filtered_lrelu_ref(x.double(), layer.fu.double(), layer.fd.double(), b.double(), **layer.args(clamp=3.0))
    with torch.no_grad():
        got = gpu.filtered_lrelu(x, layer.fu, layer.fd, b, **layer.args(clamp=3.0))
        ref16 = filtered_lrelu_ref(x, layer.fu, layer.fd, b, **layer.args(clamp=3.0))
    assert got.dtype == torch.float16
    assert rel_error(got, exact) <= 1.25 * rel_error(ref16, exact)
    assert rel_error(got, exact) <= 3e-3


def test_radial_filters_run_as_a_few_separable_terms():
    """StyleGAN3-R's 12x12 radial down filters become 2-6 exact separable terms (not 12, not 1)."""
    radial = [c for c in LAYERS if c.fd is not None and c.fd.ndim == 2]
    assert radial
    for layer in radial:
        terms = taps.separable_terms(layer.fd, False, 1.0)
        assert 1 < len(terms) <= 6
        rebuilt = sum(torch.outer(torch.tensor(ty), torch.tensor(tx)) for ty, tx in terms)
        assert rel_error(rebuilt, layer.fd.flip([0, 1])) <= 1e-5


@pytest.mark.parametrize("chunk", [1, 2, 15])
@pytest.mark.parametrize("writes_into_views", [True, False])
def test_filtered_lrelu_in_chunks(monkeypatch, chunk, writes_into_views):
    """Chunks of channels, also ones that span batch samples, and the interleave by copy_ that MPS
    uses, give the reference's result."""
    layer = next(c for c in LAYERS if c.fd is not None and c.fd.ndim == 2 and c.up == 4)
    x, b = _input(layer, channels=5, batch=3, cap=30)
    want = filtered_lrelu_ref(x, layer.fu, layer.fd, b, **layer.args(clamp=1.0))
    passes = []
    run_passes = filtered_nonlinearity.run_passes
    monkeypatch.setattr(filtered_nonlinearity, "run_passes", lambda t, plan: passes.append(t.shape[1]) or run_passes(t, plan))
    monkeypatch.setattr(filtered_nonlinearity, "chunk_channels", lambda u, channels, itemsize: chunk)
    monkeypatch.setattr(filtered_nonlinearity, "writes_into_views", lambda device: writes_into_views)
    with torch.no_grad():
        got = gpu.filtered_lrelu(x, layer.fu, layer.fd, b, **layer.args(clamp=1.0))
    assert rel_error(got, want) <= 1e-5
    assert passes[::2] == [min(chunk, 15 - lo) for lo in range(0, 15, chunk)]  # U's input channels per chunk


def test_chunks_hold_the_intermediate_near_the_budget():
    """StyleGAN3-T 1024's layer L12 (1044 px + the 3x3 convolution's border, up 2, 12 taps)."""
    fu = tuple(float(v) for v in range(1, 13))
    u = filtered_nonlinearity.separable_plan(((fu, fu),), (2, 1, 11, 10), (2, 1, 11, 10), 1046, 1046)
    per_channel = 4 * (u.h_out + 1) * (u.w_out + 1)  # whole blocks of 2 phases
    chunk = filtered_nonlinearity.chunk_channels(u, 64 * 8, 4)
    assert 1 <= chunk < 64 and chunk * per_channel <= filtered_nonlinearity.CHUNK_BYTES * 1.01
    assert (chunk + 1) * per_channel > filtered_nonlinearity.CHUNK_BYTES


def _gradcheck_layers() -> list[Layer]:
    picks = {}
    for c in RESAMPLING:
        picks.setdefault((c.up, c.fd.ndim, c.padding[0] < 0), c)
    return list(picks.values())


@pytest.mark.parametrize("layer", _gradcheck_layers(), ids=lambda c: c.name)
def test_filtered_lrelu_gradients(layer):
    """float64 gradcheck (input and bias), and the gradients equal the reference's."""
    ku, kd = layer.fu.shape[0], layer.fd.shape[0]
    p0, p1 = layer.padding[:2]
    n = next(n for n in range(2, 64) if (n * layer.up + p0 + p1 - ku + 1 - kd) // layer.down + 1 >= 3)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, n, n, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True)
    fu, fd = layer.fu.double(), layer.fd.double()
    args = layer.args(clamp=2.0)
    assert torch.autograd.gradcheck(lambda x, b: gpu.filtered_lrelu(x, fu, fd, b, **args), (x, b), eps=1e-6, atol=1e-6)
    g = torch.randn(filtered_lrelu_ref(x, fu, fd, b, **args).shape, generator=gen, dtype=torch.float64)
    want = torch.autograd.grad((filtered_lrelu_ref(x, fu, fd, b, **args) * g).sum(), (x, b))
    got = torch.autograd.grad((gpu.filtered_lrelu(x, fu, fd, b, **args) * g).sum(), (x, b))
    for a, r in zip(got, want):  # radial filters: their separable terms drop singular values below 1e-6
        assert rel_error(a, r) <= (1e-6 if fd.ndim == 2 else 1e-10)


def test_filtered_lrelu_gradients_float32_and_float16():
    layer = next(c for c in RESAMPLING if c.fd.ndim == 2)
    for dtype, tol in ((torch.float32, 1e-5), (torch.float16, 5e-3)):
        x, b = (t.requires_grad_(True) for t in _input(layer, cap=40, dtype=dtype))
        y = gpu.filtered_lrelu(x, layer.fu, layer.fd, b, **layer.args(clamp=5.0))
        assert y.dtype == dtype
        g = torch.randn(y.shape).to(dtype)
        got = torch.autograd.grad((y * g).float().sum(), (x, b))
        xr, br = (t.detach().double().requires_grad_(True) for t in (x, b))
        want = torch.autograd.grad((filtered_lrelu_ref(xr, layer.fu.double(), layer.fd.double(), br,
                                                       **layer.args(clamp=5.0)) * g.double()).sum(), (xr, br))
        for a, r in zip(got, want):
            assert a.dtype == dtype and rel_error(a, r) <= tol


# --- upfirdn2d --------------------------------------------------------------------------------

@pytest.mark.parametrize("up, down, padding, fshape", [
    (2, 1, [2, 1, 2, 1], (4, 4)), (1, 2, [1, 1, 1, 1], (4, 4)), (1, 1, [1, 2, 2, 1], (3,)), (4, 2, [-3, -4, -2, 5], (12,)),
    (2, 2, [3, 3, 3, 3], (12, 12)), (1, 1, [-1, -2, 0, 1], (5, 3)), ([2, 1], [1, 3], [1, 0, 3, 2], (6,)),
    (4, 1, [0, 0, 0, 0], (8,)), (3, 1, [1, 1, 0, 2], None), (1, 2, 0, None),
])
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d_matches_reference(up, down, padding, fshape, flip_filter):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 19, 17, generator=gen)
    f = None if fshape is None else torch.randn(fshape, generator=gen)
    args = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=2.5)
    assert rel_error(gpu.upfirdn2d(x, f, **args), upfirdn2d_ref(x, f, **args)) <= 1e-5


def _stylegan2_calls() -> list[dict]:
    """Every upfirdn2d call a StyleGAN2 forward makes (the small configuration)."""
    calls = []
    original = paths.implementation

    def recording(op, device="cpu"):
        if op != "upfirdn2d":
            return original(op, device)

        def record(x, f, **kwargs):
            calls.append(dict(shape=tuple(x.shape), f=f, **kwargs))
            return upfirdn2d_ref(x, f, **kwargs)
        return record

    family, kwargs = SMALL["sg2_small"]
    G = build_generator(family, kwargs).eval()
    paths.implementation = recording
    try:
        with torch.no_grad():
            G(torch.randn(1, G.z_dim), None)
    finally:
        paths.implementation = original
    return calls


def test_upfirdn2d_on_stylegan2_calls():
    calls = _stylegan2_calls()
    # the skip images upsampled (up 2), the filters after the transposed convolutions (gain 4)
    assert {c["up"] for c in calls} == {1, 2} and any(c["gain"] == 4 for c in calls)
    for call in calls:
        x = torch.randn(2, 3, *call["shape"][2:])
        args = {k: v for k, v in call.items() if k not in ("shape", "f")}
        for dtype, tol in ((torch.float32, 1e-5), (torch.float16, 2e-3)):
            with torch.no_grad():
                got = gpu.upfirdn2d(x.to(dtype), call["f"], **args)
            assert got.dtype == dtype and rel_error(got, upfirdn2d_ref(x, call["f"], **args)) <= tol


@pytest.mark.parametrize("up, down, fshape", [(2, 1, (4,)), (1, 2, (4, 4)), (2, 2, (5, 3)), (4, 1, None)])
def test_upfirdn2d_gradcheck_and_gradgradcheck(up, down, fshape):
    """Autograd all the way (a StyleGAN2 trainer's R1 and path length terms differentiate twice)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, 7, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    f = None if fshape is None else torch.randn(fshape, generator=gen, dtype=torch.float64)
    fn = lambda x: gpu.upfirdn2d(x, f, up=up, down=down, padding=[1, 2, 2, 1], gain=2.0)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


# --- bias_act -----------------------------------------------------------------------------------

@pytest.mark.parametrize("act, gain, clamp", [("linear", None, None), ("lrelu", None, None), ("lrelu", None, 0.5),
                                              ("lrelu", 0.3, 0.2), ("relu", 1.0, 1.0), ("linear", 2.0, 256.0),
                                              ("tanh", None, None), ("lrelu", -1.0, None)])
def test_bias_act_matches_reference(act, gain, clamp):
    gen = torch.Generator().manual_seed(6)
    x, b = torch.randn(2, 7, 5, 4, generator=gen), torch.randn(7, generator=gen)
    for dtype, tol in ((torch.float32, 1e-6), (torch.float16, 2e-3)):
        with torch.no_grad():
            got = gpu.bias_act(x.to(dtype), b.to(dtype), act=act, gain=gain, clamp=clamp)
        assert got.dtype == dtype and rel_error(got, bias_act_ref(x, b, act=act, gain=gain, clamp=clamp)) <= tol
    with torch.no_grad():  # a fully connected layer's [N, F] with the bias along dim 1, and dim 0
        assert rel_error(gpu.bias_act(x[:, :, 0, 0], b, act=act, gain=gain, clamp=clamp),
                         bias_act_ref(x[:, :, 0, 0], b, act=act, gain=gain, clamp=clamp)) <= 1e-6
        assert rel_error(gpu.bias_act(x[0, :, 0], b, dim=0, act=act), bias_act_ref(x[0, :, 0], b, dim=0, act=act)) <= 1e-6


def test_bias_act_gradients_and_errors():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    got = torch.autograd.grad(gpu.bias_act(x, b, act="lrelu", clamp=0.5).sum(), (x, b))
    want = torch.autograd.grad(bias_act_ref(x, b, act="lrelu", clamp=0.5).sum(), (x, b))
    for a, r in zip(got, want):
        assert torch.equal(a, r)
    with pytest.raises(ValueError, match="unknown activation"):
        gpu.bias_act(x, act="gelu")


# --- taps are read from the device once per filter ----------------------------------------------

def test_taps_are_cached_per_filter_tensor_and_follow_in_place_changes():
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    x = torch.randn(1, 2, 8, 8)
    first = gpu.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1])
    assert taps.read_taps(f)[0] is taps.read_taps(f)[0]  # the same cached taps
    f.mul_(2)  # an in-place change (load_state_dict does this) must be seen
    assert rel_error(gpu.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1]), 4 * first) <= 1e-6
    key = id(f)
    del f
    assert key not in taps._read  # forgotten with the tensor: a new tensor at that address is read afresh


# --- whole networks on the gpu path -------------------------------------------------------------

def _random_network(config: str, **changes):
    family, kwargs = SMALL[config]
    torch.manual_seed(7)
    G = build_generator(family, {**kwargs, **changes}).eval()
    with torch.no_grad():  # away from the initial values: biases, magnitudes, an input transform
        for name, value in G.named_parameters():
            if name.endswith("bias"):
                value.add_(torch.randn(value.shape) * 0.3)
        for name, value in G.named_buffers():
            if name.endswith("magnitude_ema"):
                value.fill_(float(torch.rand(()) + 0.5))
            if name.endswith("input.transform"):
                value.copy_(torch.tensor([[0.96, 0.28, 0.1], [-0.28, 0.96, -0.05], [0.0, 0.0, 1.0]]))
    return G


@pytest.mark.parametrize("config, changes", [("sg3t_small", {}), ("sg3r_small", {}), ("sg2_small", {}),
                                             ("sg3t_small", dict(conv_clamp=1.5)), ("sg2_small", dict(conv_clamp=1.0))],
                         ids=["sg3t", "sg3r", "sg2", "sg3t-clamp", "sg2-clamp"])
def test_network_forward_matches_reference_path(config, changes):
    G = _random_network(config, **changes)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(8))
    images = {}
    for path in ("reference", "gpu"):
        with torch.no_grad(), paths.selected(path):
            images[path] = (G(z, None, truncation_psi=0.7, noise_mode="const"), G(z[:1], None, noise_mode="const"))
    for ours, ref in zip(images["gpu"], images["reference"]):
        assert float((ours - ref).abs().max()) <= 1e-4


@pytest.mark.parametrize("config", ["sg3t_small", "sg3r_small", "sg2_small"])
def test_network_in_float16_as_accurate_as_the_reference_path(config, monkeypatch):
    """Every layer in float16 (compute_dtype stands in for the CUDA-only fp16 switch): the gpu path's
    image is as close to the float32 image as the reference path's float16 image is (within 1.5x).
    Narrow networks: float16 convolutions are slow on the CPU."""
    G = _random_network(config, channel_base=1024, channel_max=16)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        exact = G(z, None, noise_mode="const")
        monkeypatch.setattr(paths, "compute_dtype", lambda device: torch.float16)
        errors = {}
        for path in ("reference", "gpu"):
            with paths.selected(path):
                errors[path] = float((G(z, None, noise_mode="const") - exact).abs().max())
    assert 0 < errors["gpu"] <= 1.5 * errors["reference"]


def test_training_gradients_match_reference_path():
    """Forward and backward of a small StyleGAN3-R (radial filters) through autograd on the gpu path."""
    G = _random_network("sg3r_small").train()
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(9))
    grads = {}
    for path in ("reference", "gpu"):
        G.zero_grad(set_to_none=True)
        with paths.selected(path):
            G(z, None).square().mean().backward()
        grads[path] = {name: p.grad.clone() for name, p in G.named_parameters() if p.grad is not None}
    assert grads["gpu"].keys() == grads["reference"].keys() and len(grads["gpu"]) > 10
    for name, want in grads["reference"].items():
        assert float((grads["gpu"][name] - want).abs().max()) <= 1e-4 * float(want.abs().max()) + 1e-7, name


# --- the device check -------------------------------------------------------------------------

def test_check_passes_on_cpu_and_reports_wrong_results(monkeypatch):
    assert gpu.gpu_unavailable_reason("cpu") is None
    monkeypatch.setattr(check, "upfirdn2d", lambda x, f, **kwargs: upfirdn2d_ref(x, f, **kwargs) * 1.1)
    reason = gpu.gpu_unavailable_reason("cpu")
    assert "wrong values" in reason and "upfirdn2d" in reason


def test_check_reports_a_missing_backend_op(monkeypatch):
    def missing(*args, **kwargs):
        raise NotImplementedError("aten::convolution is not implemented for this backend")

    monkeypatch.setattr(check, "bias_act", missing)
    assert "cannot run" in gpu.gpu_unavailable_reason("cpu")


# --- paths: the automatic choice, the fallback chain, forcing ------------------------------------

@pytest.fixture
def fresh_choices():
    paths.forget_choices()
    yield
    paths.forget_choices()


def test_gpu_path_is_available_and_forced_on_cpu_tensors(monkeypatch, fresh_choices):
    assert "gpu" in paths.available()
    with paths.selected("gpu"):
        assert paths.active("cpu") == "gpu"
        assert paths.implementation("filtered_lrelu", "cpu") is gpu.filtered_lrelu
        assert paths.explain("cpu") == ("gpu", [])
    monkeypatch.setenv("VIZ_OPS", "gpu")
    assert paths.implementation("upfirdn2d", "cpu") is gpu.upfirdn2d
    monkeypatch.delenv("VIZ_OPS")
    assert paths.explain("cpu") == ("cpu", [])


def test_automatic_choice_on_devices_this_machine_lacks(fresh_choices):
    """CUDA and MPS tensors cannot be made here: every faster path is skipped with its reason, quickly."""
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has a GPU")
    begin = time.monotonic()
    for device, chain in (("cuda", ["triton", "gpu"]), ("mps", ["gpu"])):
        path, skipped = paths.explain(device)
        assert path == "reference"
        assert [s.split(":")[0] for s in skipped] == chain
        assert all(len(s.split(": ", 1)[1]) > 5 for s in skipped)
    assert paths.explain("meta") == ("reference", [])
    assert time.monotonic() - begin < 10


def test_fallback_chain_uses_the_next_path_and_keeps_the_reason(monkeypatch, fresh_choices):
    calls = []

    def start(path, device):
        calls.append((path, str(device)))
        return {"triton": "no C compiler found for Triton's launcher"}.get(path)

    monkeypatch.setattr(paths, "_start_reason", start)
    assert paths.explain("cuda:0") == ("gpu", ["triton: no C compiler found for Triton's launcher"])
    assert paths.active("cuda:0") == "gpu"
    assert paths.explain("mps") == ("gpu", [])
    assert paths.explain("cuda:1")[0] == "gpu"  # decided per device
    assert calls == [("triton", "cuda:0"), ("gpu", "cuda:0"), ("gpu", "mps"), ("triton", "cuda:1"), ("gpu", "cuda:1")]
    paths.forget_choices()
    monkeypatch.setattr(paths, "_start_reason", lambda path, device: None)
    assert paths.explain("cuda:0") == ("triton", [])


def test_a_probe_that_hangs_or_raises_is_skipped_within_its_time(monkeypatch, fresh_choices):
    release = threading.Event()

    def start(path, device):
        if path == "triton":
            release.wait(30)  # a compiler that never answers
        if path == "gpu":
            raise OSError("driver went away")
        return None

    monkeypatch.setattr(paths, "_start_reason", start)
    monkeypatch.setattr(paths, "PROBE_SECONDS", 0.3)
    begin = time.monotonic()
    try:
        path, skipped = paths.explain("cuda:0")
    finally:
        release.set()
    assert time.monotonic() - begin < 5
    assert path == "reference"
    assert skipped == ["triton: it did not start within 0.3 s", "gpu: OSError: driver went away"]
    assert paths.unavailable_reason("gpu", "cuda:0") == "OSError: driver went away"  # cached: not probed again


def test_probe_dispatches_to_the_probed_path(monkeypatch, fresh_choices):
    """A probe that calls the public ops runs them on the path it probes (no recursion into the
    automatic choice it is part of)."""
    seen = []

    def start(path, device):
        seen.append(paths.active(device))
        return None

    monkeypatch.setattr(paths, "_start_reason", start)
    assert paths.explain("mps") == ("gpu", [])
    assert seen == ["gpu"]


def test_forcing_a_path_that_cannot_start_says_why(monkeypatch, fresh_choices):
    monkeypatch.setitem(paths._MODULES, "triton", "torch_utils.ops.no_such_module")
    with paths.selected("triton"):
        with pytest.raises(RuntimeError, match="not available for cpu tensors.*no_such_module"):
            paths.active("cpu")
    assert "no_such_module" in paths.unavailable_reason("triton")
    assert "unknown op path" in paths.unavailable_reason("bogus", "cpu")
    with paths.selected("gpu"):  # imports, but its probe fails on meta tensors
        with pytest.raises(RuntimeError, match="not available for meta tensors.*cannot run on meta"):
            paths.active("meta")


def test_available_means_it_starts_on_that_device(monkeypatch, fresh_choices):
    monkeypatch.setattr(paths, "_start_reason", lambda path, device: "no GPU" if device.type == "cpu" else None)
    assert "gpu" not in paths.available("cpu") and "cpu" in paths.available("cpu")
    assert "gpu" in paths.available("mps")
