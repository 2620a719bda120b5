"""The Triton kernels against the reference ops, run in Triton's interpreter on CPU tensors.

Every filtered_lrelu configuration of StyleGAN3-T and -R layers (factors, paddings, separable and
radial filters, the networks' gains, slopes and clamps, plus clamps that bite), the upfirdn2d calls
of StyleGAN2 and its discriminator, bias_act's activations; float32, float16 and bfloat16; first
(and for the linear ops second) derivatives; the fallbacks; and whole small StyleGAN3-T and -R
syntheses on the triton path against the reference path. Shapes are tiny: the interpreter runs
each kernel program as numpy operations.

Triton decides when a kernel is defined whether it runs in the interpreter, so TRITON_INTERPRET is
set while the kernels are imported here and again during each test; between tests (other modules)
it is unset, so that the triton path is not offered to them for CPU tensors.
"""

from __future__ import annotations

import importlib.util
import math
import os

import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed (pip install -r requirements-dev.txt)", allow_module_level=True)

_saved = os.environ.get("TRITON_INTERPRET")
os.environ["TRITON_INTERPRET"] = "1"
try:
    from torch_utils.ops.triton import availability
    from torch_utils.ops.triton import ops as tri
    from torch_utils.ops.triton.taps import correlation_taps
finally:
    if _saved is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = _saved

from renderer.worker.networks import build_generator  # noqa: E402
from torch_utils.ops import paths  # noqa: E402
from torch_utils.ops.reference import bias_act_ref, filtered_lrelu_ref, setup_filter, upfirdn2d_ref  # noqa: E402

if not availability.kernels_interpreted():
    pytest.skip("the Triton kernels were imported for the GPU earlier in this process", allow_module_level=True)


@pytest.fixture(autouse=True)
def interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    yield
    paths.forget_choices()  # what was probed with the interpreter on must not outlive the test


def assert_close(got: torch.Tensor, ref: torch.Tensor, tol: float = 2e-5) -> None:
    """Max abs error within tol times the reference's max abs value."""
    assert got.shape == ref.shape, (got.shape, ref.shape)
    err = (got.double() - ref.double()).abs().max().item()
    scale = ref.double().abs().max().item()
    assert err <= tol * max(scale, 1e-30), f"max abs error {err:.3g} vs max {scale:.3g}"


F16_TOL = 3e-3   # float16 in and out: a few roundings of 2^-11
BF16_TOL = 2e-2  # bfloat16: 2^-8


# ---------------------------------------------------------------------------------------------
# The networks' layer configurations

def _tiny_generator(radial: bool, img_resolution: int = 256, channels: int = 2, num_layers: int = 14):
    """StyleGAN3 with the official hyperparameters (the filters, factors and paddings depend only on
    these) and `channels` channels per layer."""
    kwargs = dict(z_dim=8, w_dim=8, mapping_kwargs=dict(num_layers=1), c_dim=0, img_resolution=img_resolution,
                  img_channels=3, channel_base=2 * channels * img_resolution, channel_max=channels,
                  num_layers=num_layers)
    if radial:
        kwargs.update(conv_kernel=1, use_radial_filters=True)
    torch.manual_seed(0)
    return build_generator("stylegan3", kwargs).eval().requires_grad_(False)


def _layer_configs() -> list[tuple[str, dict]]:
    """One layer of each kind of StyleGAN3-T and -R at 256 px: up 2 and up 4 (cropping), radial
    and separable down filters, the critically sampled layers (one cropping) and ToRGB."""
    result, seen = [], set()
    for radial in (False, True):
        for layer in _tiny_generator(radial).synthesis.layers():
            fd = layer.down_filter
            kind = (layer.up_factor, layer.down_factor, tuple(layer.padding), None if fd is None else fd.ndim)
            if kind in seen:
                continue
            seen.add(kind)
            name = "R" if radial else "T"
            if layer.is_torgb:
                name += "-torgb"
            else:
                name += f"-up{layer.up_factor}-pad{layer.padding[0]}" + ("-radial" if fd.ndim == 2 else "")
            result.append((name, dict(fu=layer.up_filter, fd=fd, up=layer.up_factor, down=layer.down_factor,
                                      padding=layer.padding, gain=1.0 if layer.is_torgb else math.sqrt(2),
                                      slope=1.0 if layer.is_torgb else 0.2, clamp=layer.conv_clamp)))
    return result


LAYERS = _layer_configs()
LAYER_IDS = [name for name, _ in LAYERS]
BY_NAME = dict(LAYERS)


def _input_size(cfg: dict, min_out: int = 5) -> tuple[int, int]:
    """A small (H, W), W != H, whose output has at least min_out pixels along each axis."""
    for s in range(4, 80):
        try:
            out = filtered_lrelu_ref(torch.zeros(1, 1, s, s + 3), cfg["fu"], cfg["fd"], up=cfg["up"], down=cfg["down"],
                                     padding=cfg["padding"])
        except RuntimeError:  # cropped below the filter's length
            continue
        if min(out.shape[2:]) >= min_out:
            return s, s + 3
    raise AssertionError("no small input size fits")


def _args(cfg: dict, **changes) -> dict:
    args = {k: cfg[k] for k in ("up", "down", "padding", "gain", "slope", "clamp")}
    args.update(changes)
    return args


def test_layer_configurations_cover_both_networks():
    kinds = {name.split("-", 1)[1] for name in LAYER_IDS}
    assert {"up2-pad9", "up4-pad-6", "up2-pad-11", "up2-pad11-radial", "up4-pad-2-radial", "up2-pad11", "up2-pad-9",
            "torgb"} <= kinds, kinds
    radial = BY_NAME["R-up2-pad11-radial"]["fd"]
    assert radial.ndim == 2 and torch.linalg.matrix_rank(radial.double()) > 1


@pytest.mark.parametrize("name", LAYER_IDS)
def test_filtered_lrelu_network_layers(name):
    """float32, the network's clamp, a clamp that bites and none; float16 with the biting clamp."""
    cfg = BY_NAME[name]
    torch.manual_seed(1)
    x = torch.randn(2, 3, *_input_size(cfg)) * 3
    b = torch.randn(3)
    unclamped = filtered_lrelu_ref(x, cfg["fu"], cfg["fd"], b, **_args(cfg, clamp=None))
    bite = 0.5
    for clamp in (cfg["clamp"], bite, None):
        ref = filtered_lrelu_ref(x, cfg["fu"], cfg["fd"], b, **_args(cfg, clamp=clamp))
        if clamp == bite:
            assert (ref - unclamped).abs().max() > 0.1  # the clamp does change the result
        assert_close(tri.filtered_lrelu(x, cfg["fu"], cfg["fd"], b, **_args(cfg, clamp=clamp)), ref)
    x16, b16 = x.half(), b.half()
    got = tri.filtered_lrelu(x16, cfg["fu"], cfg["fd"], b16, **_args(cfg, clamp=bite))
    assert got.dtype == torch.float16
    assert_close(got, filtered_lrelu_ref(x16.float(), cfg["fu"], cfg["fd"], b16.float(), **_args(cfg, clamp=bite)),
                 F16_TOL)


def _gradients(fn, x: torch.Tensor, b: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, b = x.detach().requires_grad_(True), b.detach().requires_grad_(True)
    return torch.autograd.grad((fn(x, b).float() * grad).sum(), (x, b))


@pytest.mark.parametrize("name", ["T-up2-pad9", "T-up4-pad-6", "T-up2-pad-11", "R-up2-pad11-radial",
                                  "R-up4-pad-2-radial", "T-torgb"])
def test_filtered_lrelu_gradients(name):
    """Input and bias gradients against the reference's autograd, with a clamp that bites."""
    cfg = BY_NAME[name]
    torch.manual_seed(2)
    x = torch.randn(2, 2, *_input_size(cfg)) * 3
    b = torch.randn(2)
    args = _args(cfg, clamp=0.5)
    grad = torch.randn_like(filtered_lrelu_ref(x, cfg["fu"], cfg["fd"], b, **args))
    expected = _gradients(lambda x, b: filtered_lrelu_ref(x, cfg["fu"], cfg["fd"], b, **args), x, b, grad)
    got = _gradients(lambda x, b: tri.filtered_lrelu(x, cfg["fu"], cfg["fd"], b, **args), x, b, grad)
    for g, e in zip(got, expected):
        assert_close(g, e)


def test_filtered_lrelu_float16_and_bfloat16_gradients():
    cfg = BY_NAME["R-up2-pad11-radial"]
    torch.manual_seed(3)
    x = torch.randn(1, 2, *_input_size(cfg)) * 3
    b = torch.randn(2)
    args = _args(cfg, clamp=0.5)
    grad = torch.randn_like(filtered_lrelu_ref(x, cfg["fu"], cfg["fd"], b, **args))
    for dtype, tol in ((torch.float16, F16_TOL), (torch.bfloat16, BF16_TOL)):
        xl, bl = x.to(dtype), b.to(dtype)
        expected = _gradients(lambda x, b: filtered_lrelu_ref(x, cfg["fu"], cfg["fd"], b, **args), xl.float(),
                              bl.float(), grad)
        got = _gradients(lambda x, b: tri.filtered_lrelu(x, cfg["fu"], cfg["fd"], b, **args), xl, bl, grad)
        assert got[0].dtype == dtype
        for g, e in zip(got, expected):
            assert_close(g, e, tol)


GENERAL = {
    "flip_filter": dict(up=2, down=2, padding=[9, 8, 9, 8], flip_filter=True),
    "flip_filter-radial": dict(up=2, down=2, padding=[11, 10, 11, 10], flip_filter=True, radial=True),
    "gain1-slope0": dict(up=2, down=2, padding=[9, 8, 9, 8], gain=1.0, slope=0.0),
    "negative-gain-slope1": dict(up=2, down=2, padding=[9, 8, 9, 8], gain=-0.7, slope=1.0),
    "up3-down1-asymmetric": dict(up=3, down=1, padding=[4, 1, 2, 5], fu_taps=9, fd_taps=5),
    "up1-down3": dict(up=1, down=3, padding=[3, 2, 1, 4], fu_taps=5, fd_taps=9),
    "no-filters-up2-down2": dict(up=2, down=2, padding=[1, 0, 0, 1], fu_taps=0, fd_taps=0),
    "2d-up-filter": dict(up=2, down=2, padding=[5, 4, 3, 6], fu_taps=6, fd_taps=6, fu_2d=True),
    "padding-only": dict(up=1, down=1, padding=[2, 1, 0, 3], fu_taps=0, fd_taps=0),
}


@pytest.mark.parametrize("name", list(GENERAL))
def test_filtered_lrelu_general_arguments(name):
    """flip_filter, other gains and slopes, other factors, asymmetric padding, missing filters and
    2-D up filters, forward and gradients."""
    case = dict(GENERAL[name])
    torch.manual_seed(4)
    radial = case.pop("radial", False)
    base = BY_NAME["R-up2-pad11-radial" if radial else "T-up2-pad9"]
    fu_taps, fd_taps, fu_2d = case.pop("fu_taps", None), case.pop("fd_taps", None), case.pop("fu_2d", False)
    fu = base["fu"] if fu_taps is None else (None if fu_taps == 0 else torch.randn(fu_taps).abs() + 0.1)
    fd = base["fd"] if fd_taps is None else (None if fd_taps == 0 else torch.randn(fd_taps))
    if fu_2d:
        fu = torch.randn(fu_taps, fu_taps + 1)
    args = dict(gain=math.sqrt(2), slope=0.2, clamp=0.7)
    args.update(case)
    cfg = dict(fu=fu, fd=fd, up=args["up"], down=args["down"], padding=args["padding"])
    x = torch.randn(1, 2, *_input_size(cfg)) * 2
    b = torch.randn(2)
    ref = filtered_lrelu_ref(x, fu, fd, b, **args)
    assert_close(tri.filtered_lrelu(x, fu, fd, b, **args), ref)
    grad = torch.randn_like(ref)
    expected = _gradients(lambda x, b: filtered_lrelu_ref(x, fu, fd, b, **args), x, b, grad)
    for g, e in zip(_gradients(lambda x, b: tri.filtered_lrelu(x, fu, fd, b, **args), x, b, grad), expected):
        assert_close(g, e)


def test_filtered_lrelu_many_tiles_and_input_layouts():
    """Planes of several tiles along both axes; NCHW, channels_last and a strided view; no bias."""
    cfg = BY_NAME["R-up2-pad11-radial"]
    torch.manual_seed(5)
    x = torch.randn(1, 2, 30, 50) * 3
    b = torch.randn(2)
    args = _args(cfg, clamp=0.5)
    spec = tri.filtered_lrelu_spec(x.shape, cfg["fu"], cfg["fd"], with_grad=True, **args)
    for plan in (spec.plan(), spec.grad_plan()):
        assert plan.tiles_y >= 2 and plan.tiles_x >= 2
    ref = filtered_lrelu_ref(x, cfg["fu"], cfg["fd"], b, **args)
    assert_close(tri.filtered_lrelu(x, cfg["fu"], cfg["fd"], b, **args), ref)
    assert_close(tri.filtered_lrelu(x.contiguous(memory_format=torch.channels_last), cfg["fu"], cfg["fd"], b, **args),
                 ref)
    wide = torch.randn(1, 4, 12, 20)
    view = wide[:, ::2, :, 5:]
    assert_close(tri.filtered_lrelu(view, cfg["fu"], cfg["fd"], None, **args),
                 filtered_lrelu_ref(view, cfg["fu"], cfg["fd"], None, **args))
    grad = torch.randn_like(ref)
    expected = _gradients(lambda x, b: filtered_lrelu_ref(x, cfg["fu"], cfg["fd"], b, **args), x, b, grad)
    for g, e in zip(_gradients(lambda x, b: tri.filtered_lrelu(x, cfg["fu"], cfg["fd"], b, **args), x, b, grad),
                    expected):
        assert_close(g, e)


# ---------------------------------------------------------------------------------------------
# upfirdn2d

BLUR = setup_filter([1, 3, 3, 1])  # StyleGAN2's 4x4 blur (2-D: setup_filter makes short filters 2-D)
UPFIRDN = {
    "sg2-upsample2d": dict(f=BLUR, up=2, padding=[2, 1, 2, 1], gain=4),
    "sg2-conv-up": dict(f=BLUR, padding=[1, 1, 1, 1], gain=4),
    "sg2-downsample2d": dict(f=BLUR, down=2, padding=[1, 1, 1, 1]),
    "discriminator-blur": dict(f=BLUR, padding=[2, 2, 2, 2]),
    "separable-12-up2": dict(f="sep12", up=2, padding=[6, 5, 6, 5]),
    "up2x1-down1x2-flip": dict(f="sep7", up=(2, 1), down=(1, 2), padding=[3, 2, 1, 4], flip_filter=True, gain=3.0),
    "up3-down2-cropping": dict(f="sep9", up=3, down=2, padding=[-2, 1, 3, -1]),
    "no-filter-up2": dict(f=None, up=2, padding=[0, 1, 1, 0], gain=4),
    "2d-general": dict(f="2d5x3", up=2, down=1, padding=[2, 2, 1, 3]),
}


def _filter(spec):
    if not isinstance(spec, str):
        return spec
    torch.manual_seed(6)
    if spec.startswith("sep"):
        return torch.randn(int(spec[3:]))
    return torch.randn(5, 3)


@pytest.mark.parametrize("name", list(UPFIRDN))
def test_upfirdn2d_matches_reference(name):
    case = dict(UPFIRDN[name])
    f = _filter(case.pop("f"))
    torch.manual_seed(7)
    x = torch.randn(2, 3, 9, 13)
    ref = upfirdn2d_ref(x, f, **case)
    assert_close(tri.upfirdn2d(x, f, **case), ref)
    got = tri.upfirdn2d(x.half(), f, **case)
    assert got.dtype == torch.float16
    assert_close(got, upfirdn2d_ref(x.half().float(), f, **case), F16_TOL)


@pytest.mark.parametrize("name", ["sg2-upsample2d", "sg2-downsample2d", "up3-down2-cropping", "2d-general"])
def test_upfirdn2d_first_and_second_derivatives(name):
    """The backward is the transposed upfirdn2d (itself differentiable): the gradient and the
    gradient of a function of the gradient (as R1 regularisation takes) match the reference's."""
    case = dict(UPFIRDN[name])
    f = _filter(case.pop("f"))
    torch.manual_seed(8)
    x = torch.randn(1, 2, 9, 13)
    grad = torch.randn_like(upfirdn2d_ref(x, f, **case))

    def second(op):
        xs = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((op(xs, f, **case) * grad).sum(), xs, create_graph=True)
        (gg,) = torch.autograd.grad((g.square() * xs).sum(), xs)
        return g.detach(), gg

    for got, ref in zip(second(tri.upfirdn2d), second(upfirdn2d_ref)):
        assert_close(got, ref)


# ---------------------------------------------------------------------------------------------
# bias_act

BIAS_ACT = {
    "linear": dict(act="linear"),
    "linear-bias-clamp": dict(act="linear", bias=True, gain=2.0, clamp=0.8),
    "lrelu-network": dict(act="lrelu", bias=True),
    "lrelu-clamp": dict(act="lrelu", bias=True, alpha=0.1, gain=1.5, clamp=0.6),
    "relu": dict(act="relu", bias=True, clamp=1.0),
    "fc-2d": dict(act="lrelu", bias=True, shape=(5, 7)),
    "dim2": dict(act="lrelu", bias=True, dim=2),
    "channels-last": dict(act="lrelu", bias=True, clamp=0.6, channels_last=True),
}


def _bias_act_case(name: str):
    case = dict(BIAS_ACT[name])
    torch.manual_seed(9)
    x = torch.randn(*case.pop("shape", (2, 3, 5, 6)))
    if case.pop("channels_last", False):
        x = x.contiguous(memory_format=torch.channels_last)
    dim = case.get("dim", 1)
    b = torch.randn(x.shape[dim]) if case.pop("bias", False) else None
    return x, b, case


@pytest.mark.parametrize("name", list(BIAS_ACT))
def test_bias_act_matches_reference(name):
    x, b, args = _bias_act_case(name)
    assert_close(tri.bias_act(x, b, **args), bias_act_ref(x, b, **args))
    b16 = None if b is None else b.half()
    got = tri.bias_act(x.half(), b16, **args)
    assert got.dtype == torch.float16
    assert_close(got, bias_act_ref(x.half().float(), None if b16 is None else b16.float(), **args), F16_TOL)


@pytest.mark.parametrize("name", ["linear-bias-clamp", "lrelu-clamp", "fc-2d", "channels-last"])
def test_bias_act_first_and_second_derivatives(name):
    x, b, args = _bias_act_case(name)
    grad = torch.randn_like(bias_act_ref(x, b, **args))

    weight = torch.randn_like(x)

    def derivatives(op):
        xs, bs, gs = x.clone().requires_grad_(True), b.clone().requires_grad_(True), grad.clone().requires_grad_(True)
        gx, gb = torch.autograd.grad((op(xs, bs, **args) * gs).sum(), (xs, bs), create_graph=True)
        (second,) = torch.autograd.grad((gx * weight).sum(), gs)  # through the backward itself
        return gx.detach(), gb.detach(), second

    for got, ref in zip(derivatives(tri.bias_act), derivatives(bias_act_ref)):
        assert_close(got, ref)


def test_bias_act_other_activations_use_the_reference():
    x = torch.randn(2, 3, 4, 4)
    b = torch.randn(3)
    for act in ("tanh", "sigmoid", "elu", "selu", "softplus", "swish"):
        assert torch.equal(tri.bias_act(x, b, act=act), bias_act_ref(x, b, act=act))
    with pytest.raises(ValueError, match="bias"):
        tri.bias_act(x, torch.randn(4), act="lrelu")


# ---------------------------------------------------------------------------------------------
# Fallbacks, the filter cache and availability

def test_fallbacks_give_the_reference_result():
    """float64, a filter that requires a gradient, and factors too large for the kernels' blocks."""
    cfg = BY_NAME["T-up2-pad9"]
    torch.manual_seed(10)
    x = torch.randn(1, 2, 8, 11, dtype=torch.float64)
    assert torch.equal(tri.filtered_lrelu(x, cfg["fu"].double(), cfg["fd"].double(), **_args(cfg)),
                       filtered_lrelu_ref(x, cfg["fu"].double(), cfg["fd"].double(), **_args(cfg)))
    f = torch.randn(12, requires_grad=True)
    x = torch.randn(1, 2, 8, 11)
    (gf,) = torch.autograd.grad(tri.upfirdn2d(x, f, up=2, padding=5).square().sum(), f)
    (rf,) = torch.autograd.grad(upfirdn2d_ref(x, f, up=2, padding=5).square().sum(), f)
    assert_close(gf, rf)
    long = torch.randn(96)
    assert tri.resample_spec(x.shape, long, up=8, padding=48) is None  # 96 taps at up 8 fit no block
    assert_close(tri.upfirdn2d(x, long, up=8, padding=48), upfirdn2d_ref(x, long, up=8, padding=48))


def test_filter_taps_follow_in_place_changes():
    f = torch.tensor([1.0, 2.0, 3.0])
    assert correlation_taps(f, False) == ((3,), (3.0, 2.0, 1.0))
    assert correlation_taps(f, True) == ((3,), (1.0, 2.0, 3.0))
    f.mul_(2)
    assert correlation_taps(f, True) == ((3,), (2.0, 4.0, 6.0))
    x = torch.randn(1, 1, 6, 7)
    assert_close(tri.upfirdn2d(x, f, up=2, padding=1), upfirdn2d_ref(x, f, up=2, padding=1))


def test_triton_path_forced_and_refused(monkeypatch):
    assert availability.triton_unavailable_reason("cpu") is None
    monkeypatch.setenv("VIZ_OPS", "triton")
    assert paths.active() == "triton"
    assert paths.implementation("filtered_lrelu") is tri.filtered_lrelu
    assert paths.implementation("upfirdn2d") is tri.upfirdn2d
    monkeypatch.delenv("VIZ_OPS")
    with paths.selected("triton"):
        assert paths.implementation("bias_act") is tri.bias_act
    monkeypatch.delenv("TRITON_INTERPRET")
    paths.forget_choices()  # paths probes each path once per device and keeps the answer
    assert "TRITON_INTERPRET=1" in availability.triton_unavailable_reason("cpu")
    assert "triton" not in paths.available() or torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in availability.triton_unavailable_reason("cuda")
        with paths.selected("triton"), pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
            paths.implementation("filtered_lrelu")


def test_probe_is_bounded_and_explains_failures(monkeypatch):
    monkeypatch.setattr(availability, "_PROBE", "import time; time.sleep(60)")
    assert "did not finish within 1 s" in availability._probe(0, timeout_s=1)
    monkeypatch.setattr(availability, "_PROBE", "raise SystemExit('launcher build failed: no Python.h')")
    assert "no Python.h" in availability._probe(0, timeout_s=30)


# ---------------------------------------------------------------------------------------------
# Whole networks

@pytest.mark.parametrize("radial", [False, True], ids=["stylegan3-t", "stylegan3-r"])
def test_synthesis_matches_reference_path(radial):
    """A small StyleGAN3 (32 px, every kind of layer, random weights) on the triton path equals the
    reference path within float32 rounding."""
    G = _tiny_generator(radial, img_resolution=32, channels=2, num_layers=6)
    torch.manual_seed(11)
    ws = G.mapping(torch.randn(1, 8), None)
    with torch.no_grad():
        with paths.selected("reference"):
            ref = G.synthesis(ws)
        with paths.selected("triton"):
            got = G.synthesis(ws)
    assert ref.abs().max() > 0
    assert_close(got, ref, 1e-5)
