"""The fast CPU ops against the reference ops, on every configuration the generators use.

Configurations come from real networks: the full-size StyleGAN3-T/R generators built from
../shared/reference/shapes_*.json (their layers' filters, factors, paddings, clamps), the small
reference networks (incl. conv_clamp 1.5), and the upfirdn2d calls a StyleGAN2 forward makes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.conftest import REFERENCE_DIR
from torch_utils.ops import paths
from torch_utils.ops.reference import bias_act_ref
from torch_utils.ops.cpu import ops as fast
from torch_utils.ops.cpu import separable
from torch_utils.ops.reference import filtered_lrelu_ref
from torch_utils.ops.reference import upfirdn2d_ref

TOL = 1e-4  # relative to the output's max abs


def assert_close(got: torch.Tensor, ref: torch.Tensor, tol: float = TOL) -> None:
    assert got.shape == ref.shape, (got.shape, ref.shape)
    err = (got.double() - ref.double()).abs().max().item()
    scale = ref.double().abs().max().item()
    assert err <= tol * max(scale, 1e-30), f"max abs error {err:.3g} vs max {scale:.3g}"


def _layer_configs(G) -> list[dict]:
    configs = []
    for layer in G.synthesis.layers():
        k = layer.conv_kernel
        configs.append(dict(
            name=layer.__class__.__name__ + str(layer.in_size), size=(layer.in_size[1] + k - 1, layer.in_size[0] + k - 1),
            fu=layer.up_filter, fd=layer.down_filter, up=layer.up_factor, down=layer.down_factor, padding=layer.padding,
            gain=1.0 if layer.is_torgb else math.sqrt(2), slope=1.0 if layer.is_torgb else 0.2, clamp=layer.conv_clamp))
    return configs


def _dedupe(configs: list[dict]) -> list[dict]:
    seen, out = set(), []
    for c in configs:
        key = (c["size"], c["up"], c["down"], tuple(c["padding"]), None if c["fd"] is None else tuple(c["fd"].shape),
               c["clamp"], c["slope"], None if c["fu"] is None else round(float(c["fu"].sum()), 6),
               None if c["fd"] is None else round(float(c["fd"].abs().sum()), 6))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _network_configs() -> list[tuple[str, dict]]:
    from renderer.worker.networks import build_generator

    result = []
    for name in ("sg3t_256", "sg3r_256", "sg3t_1024", "sg3t_small_clamp", "sg3r_small"):
        path = REFERENCE_DIR / f"shapes_{name}.json"
        if not path.exists():
            continue
        kwargs = json.loads(path.read_text())["persistence_init_kwargs"]
        torch.manual_seed(0)
        G = build_generator("stylegan3", kwargs)
        for i, cfg in enumerate(_dedupe(_layer_configs(G))):
            result.append((f"{name}-{i}-{cfg['size'][0]}-up{cfg['up']}-down{cfg['down']}", cfg))
        del G
    return result


NETWORK_CONFIGS = _network_configs()


@pytest.mark.parametrize("cfg", [c for _, c in NETWORK_CONFIGS], ids=[n for n, _ in NETWORK_CONFIGS])
def test_filtered_lrelu_matches_reference(cfg):
    if not NETWORK_CONFIGS:
        pytest.skip("no shapes_*.json")
    torch.manual_seed(1)
    h, w = (min(v, 280) for v in cfg["size"])  # larger sizes only add rows (tiling has its own test)
    x = torch.randn(2, 3, h, w) * 4
    b = torch.randn(3)
    args = dict(up=cfg["up"], down=cfg["down"], padding=cfg["padding"], gain=cfg["gain"], slope=cfg["slope"])
    for clamp in (cfg["clamp"], 1.0):  # the network's clamp and one that bites
        ref = filtered_lrelu_ref(x, cfg["fu"], cfg["fd"], b, clamp=clamp, **args)
        got = fast.filtered_lrelu(x, cfg["fu"], cfg["fd"], b, clamp=clamp, **args)
        assert_close(got, ref)


def test_filtered_lrelu_radial_filters_are_used():
    """The R configuration really has 2-D (radial) down filters, and they are not separable (rank > 1)."""
    radial = [c for _, c in NETWORK_CONFIGS if c["fd"] is not None and c["fd"].ndim == 2]
    if not radial:
        pytest.skip("no R configuration found")
    from torch_utils.ops.cpu.polyphase import separable_factors

    factors = separable_factors(radial[0]["fd"])
    assert 1 < len(factors) <= radial[0]["fd"].shape[0]
    recon = sum(torch.outer(fy, fx) for fy, fx in factors)
    assert (recon - radial[0]["fd"].double()).abs().max() < 1e-6 * radial[0]["fd"].abs().max()


@pytest.mark.parametrize("stack", [True, False])
@pytest.mark.parametrize("name", ["L11-T256", "L10-T256", "R256-radial"])
def test_filtered_lrelu_tiled_many_channels(name, stack, monkeypatch):
    """Channel groups and row tiles (forced small) give the same result as the reference, with the
    terms of a 2-D down filter in one stacked H product or one product each."""
    monkeypatch.setattr(separable, "TILE_BYTES", 256 << 10)
    monkeypatch.setattr(separable, "STACK_DOWN", stack)
    fast._fused_plan.cache_clear()
    cfg = {c["size"][0]: c for n, c in NETWORK_CONFIGS if n.startswith("sg3r_256" if "R" in name else "sg3t_256")}
    size = {"L11-T256": 150, "L10-T256": 150, "R256-radial": 148}[name]
    candidates = [c for c in cfg.values() if c["size"][0] == size]
    if not candidates:
        pytest.skip("configuration not found")
    c = candidates[0]
    torch.manual_seed(2)
    x = torch.randn(1, 40, *c["size"]).contiguous(memory_format=torch.channels_last)
    b = torch.randn(40)
    args = dict(up=c["up"], down=c["down"], padding=c["padding"], gain=c["gain"], slope=c["slope"], clamp=c["clamp"])
    assert_close(fast.filtered_lrelu(x, c["fu"], c["fd"], b, **args), filtered_lrelu_ref(x, c["fu"], c["fd"], b, **args))
    fast._fused_plan.cache_clear()


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("name", ["T256-up2", "R256-radial"])
def test_filtered_lrelu_threaded_channel_groups(name, threads, monkeypatch):
    """Channel groups shared between worker threads (fused op single-threaded inside, see
    threads.py) give the reference result, for whole-image plans split to feed every thread and
    for tiled plans; the caller's thread count is restored afterwards."""
    if not NETWORK_CONFIGS:
        pytest.skip("no shapes_*.json")
    prefix = "sg3r_256" if name.startswith("R") else "sg3t_256"
    c = next((c for n, c in NETWORK_CONFIGS if n.startswith(prefix) and c["up"] == 2 and c["size"][0] <= 60), None)
    if c is None:
        pytest.skip("configuration not found")
    torch.manual_seed(3)
    x = torch.randn(1, 21, *c["size"]).contiguous(memory_format=torch.channels_last)
    b = torch.randn(21)
    args = dict(up=c["up"], down=c["down"], padding=c["padding"], gain=c["gain"], slope=c["slope"], clamp=c["clamp"])
    ref = filtered_lrelu_ref(x, c["fu"], c["fd"], b, **args)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for tile_bytes in (separable.TILE_BYTES, 32 << 10):
            monkeypatch.setattr(separable, "TILE_BYTES", tile_bytes)
            fast._fused_plan.cache_clear()
            assert_close(fast.filtered_lrelu(x, c["fu"], c["fd"], b, **args), ref)
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
        fast._fused_plan.cache_clear()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", ["T256-up2", "R256-radial"])
def test_filtered_lrelu_backward_in_channel_chunks(name, threads, monkeypatch):
    """The backward, run per (sample, channel chunk) and shared between threads, gives the
    reference gradients: chunks forced to 8 channels (21 channels: a short last chunk), two samples,
    a clamp that bites and one that cannot; the caller's thread count is restored."""
    prefix = "sg3r_256" if name.startswith("R") else "sg3t_256"
    c = next((c for n, c in NETWORK_CONFIGS if n.startswith(prefix) and c["up"] == 2 and c["size"][0] <= 60), None)
    if c is None:
        pytest.skip("configuration not found")
    monkeypatch.setattr(fast, "BACKWARD_CHUNK_BYTES", 1)
    assert fast.backward_chunk_channels(100, 100, 21, 4) == 8
    torch.manual_seed(9)
    x = (torch.randn(2, 21, *c["size"]) * 2).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    b = torch.randn(21, requires_grad=True)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for clamp in (0.5, 1e6):
            args = dict(up=c["up"], down=c["down"], padding=c["padding"], gain=c["gain"], slope=c["slope"], clamp=clamp)
            ref = filtered_lrelu_ref(x, c["fu"], c["fd"], b, **args)
            got = fast.filtered_lrelu(x, c["fu"], c["fd"], b, **args)
            g = torch.randn_like(ref)
            expected = torch.autograd.grad((ref * g).sum(), (x, b))
            for a, r in zip(torch.autograd.grad((got * g).sum(), (x, b)), expected):
                assert_close(a, r)
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("layout", ["channels_last", "nchw", "hwnc"])
def test_filtered_lrelu_batch_layouts(layout):
    """A batch in any memory layout gives the reference result (NHWC is read without a copy), the
    result is channels_last, and gradients flow (bias requiring grad, worker threads in grad mode)."""
    c = next((c for n, c in NETWORK_CONFIGS if n.startswith("sg3t_256") and c["up"] == 2), None)
    if c is None:
        pytest.skip("configuration not found")
    torch.manual_seed(5)
    x = torch.randn(3, 10, *c["size"])
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "hwnc":
        x = x.permute(2, 3, 0, 1).contiguous().permute(2, 3, 0, 1)
    x.requires_grad_(True)
    b = torch.randn(10, requires_grad=True)
    args = dict(up=c["up"], down=c["down"], padding=c["padding"], gain=c["gain"], slope=c["slope"], clamp=c["clamp"])
    got = fast.filtered_lrelu(x, c["fu"], c["fd"], b, **args)
    ref = filtered_lrelu_ref(x, c["fu"], c["fd"], b, **args)
    assert_close(got, ref)
    assert got.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(ref)
    for a, r in zip(torch.autograd.grad((got * g).sum(), (x, b)), torch.autograd.grad((ref * g).sum(), (x, b))):
        assert_close(a, r)


def test_run_parallel_splits_and_propagates_errors():
    from torch_utils.ops.cpu import threads

    assert [list(r) for r in threads.split(5, 2)] == [[0, 1], [2, 3, 4]]
    assert threads.split(1, 4) == [range(0, 1)]
    seen: list[int] = []
    threads.run_parallel(lambda r: seen.extend(r), threads.split(10, 3), 3)
    assert sorted(seen) == list(range(10))

    def fail(r: range) -> None:
        if 7 in r:
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        threads.run_parallel(fail, threads.split(10, 3), 3)


def _sg2_upfirdn_calls(reference) -> list[dict]:
    """Every upfirdn2d call of a StyleGAN2 forward (small reference network)."""
    calls = []

    def recorder(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1.0):
        calls.append(dict(shape=tuple(x.shape), f=f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain))
        return upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)

    G = reference("sg2_small").build()
    original = paths.implementation
    try:
        paths.implementation = lambda op, device="cpu": recorder if op == "upfirdn2d" else original(op, device)
        with torch.no_grad():
            G(torch.randn(1, G.z_dim), None, noise_mode="const")
    finally:
        paths.implementation = original
    return calls


def test_upfirdn2d_matches_reference_on_stylegan2_calls(reference):
    calls = _sg2_upfirdn_calls(reference)
    assert calls, "StyleGAN2 made no upfirdn2d calls"
    for call in calls:
        x = torch.randn(2, 3, *call["shape"][2:])
        args = {k: call[k] for k in ("up", "down", "padding", "flip_filter", "gain")}
        assert_close(fast.upfirdn2d(x, call["f"], **args), upfirdn2d_ref(x, call["f"], **args))
        assert_close(fast.polyphase_upfirdn2d(x, call["f"], **args), upfirdn2d_ref(x, call["f"], **args))


@pytest.mark.parametrize("up, down, padding, fshape", [
    (2, 1, [2, 1, 2, 1], (4, 4)), (1, 2, [1, 1, 1, 1], (4, 4)), (1, 1, [1, 2, 2, 1], (3,)), (4, 2, [-3, -4, -2, 5], (12,)),
    (2, 2, [3, 3, 3, 3], (12, 12)), (1, 1, [-1, -2, 0, 1], (5, 3)),
])
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d_general(up, down, padding, fshape, flip_filter):
    torch.manual_seed(3)
    x = torch.randn(2, 5, 19, 17)
    f = torch.randn(fshape)
    args = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=2.5)
    assert_close(fast.polyphase_upfirdn2d(x, f, **args), upfirdn2d_ref(x, f, **args))


def test_upfirdn2d_polyphase_only_for_upsampling():
    """The op path's upfirdn2d takes the polyphase form for upsampling and the reference's
    depthwise convolution (faster there) for filtering and downsampling."""
    torch.manual_seed(3)
    x, f = torch.randn(2, 5, 19, 17), torch.randn(4)
    for up, down in ((1, 1), (1, 2), ([1, 1], [2, 1])):
        args = dict(up=up, down=down, padding=[1, 2, 2, 1], gain=2.0)
        assert torch.equal(fast.upfirdn2d(x, f, **args), upfirdn2d_ref(x, f, **args))
    for up, down in ((2, 1), (2, 2), ([2, 1], 1)):
        args = dict(up=up, down=down, padding=[1, 2, 2, 1], gain=2.0)
        assert torch.equal(fast.upfirdn2d(x, f, **args), fast.polyphase_upfirdn2d(x, f, **args))
        assert not torch.equal(fast.upfirdn2d(x, f, **args), upfirdn2d_ref(x, f, **args))  # a different computation


@pytest.mark.parametrize("act, clamp", [("linear", None), ("lrelu", None), ("lrelu", 0.5), ("relu", 1.0), ("tanh", None)])
def test_bias_act_matches_reference(act, clamp):
    x, b = torch.randn(2, 7, 5, 4), torch.randn(7)
    with torch.no_grad():
        assert_close(fast.bias_act(x, b, act=act, clamp=clamp), bias_act_ref(x, b, act=act, clamp=clamp))


# --- gradients ----------------------------------------------------------------------------------

def _small_cfgs():
    picks = {}
    for name, c in NETWORK_CONFIGS:
        if c["up"] == 1 and c["down"] == 1:
            continue
        key = (c["up"], c["fd"].ndim if c["fd"] is not None else 0, c["padding"][0] < 0)
        picks.setdefault(key, (name, c))
    return list(picks.values())


@pytest.mark.parametrize("cfg", [c for _, c in _small_cfgs()], ids=[n for n, _ in _small_cfgs()])
def test_filtered_lrelu_gradcheck(cfg):
    """float64 gradcheck of the fast op on a small input, and its gradients equal the reference's."""
    torch.manual_seed(4)
    ku, kd = cfg["fu"].shape[0], 1 if cfg["fd"] is None else cfg["fd"].shape[0]
    p0, p1 = cfg["padding"][:2]
    # Smallest input that leaves a 3x3 output (negative padding crops).
    n_in = next(n for n in range(2, 64) if (n * cfg["up"] + p0 + p1 - ku + 1 - kd) // cfg["down"] + 1 >= 3)
    x = torch.randn(1, 2, n_in, n_in, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    fu, fd = cfg["fu"].double(), None if cfg["fd"] is None else cfg["fd"].double()
    args = dict(up=cfg["up"], down=cfg["down"], padding=cfg["padding"], gain=cfg["gain"], slope=cfg["slope"], clamp=2.0)
    assert torch.autograd.gradcheck(lambda x, b: fast.filtered_lrelu(x, fu, fd, b, **args), (x, b), eps=1e-6, atol=1e-6)
    g = torch.randn_like(filtered_lrelu_ref(x, fu, fd, b, **args))
    ref = torch.autograd.grad((filtered_lrelu_ref(x, fu, fd, b, **args) * g).sum(), (x, b))
    got = torch.autograd.grad((fast.filtered_lrelu(x, fu, fd, b, **args) * g).sum(), (x, b))
    for a, r in zip(got, ref):
        assert_close(a, r, 1e-7)


@pytest.mark.parametrize("clamp", [1.0, 1e4, None])
def test_filtered_lrelu_gradient_float32_network_size(clamp):
    """float32 gradients at a real layer size match the reference's (a clamp that bites, one that
    clamps nothing, none)."""
    c = next(c for n, c in NETWORK_CONFIGS if n.startswith("sg3t_small") and c["up"] == 4)
    x = torch.randn(2, 4, *c["size"], requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    args = dict(up=c["up"], down=c["down"], padding=c["padding"], gain=c["gain"], slope=c["slope"], clamp=clamp)
    g = torch.randn_like(filtered_lrelu_ref(x, c["fu"], c["fd"], b, **args))
    ref = torch.autograd.grad((filtered_lrelu_ref(x, c["fu"], c["fd"], b, **args) * g).sum(), (x, b))
    got = torch.autograd.grad((fast.filtered_lrelu(x, c["fu"], c["fd"], b, **args) * g).sum(), (x, b))
    for a, r in zip(got, ref):
        assert_close(a, r)


@pytest.mark.parametrize("slope", [0.2, 1.0, 0.0, -0.3])
@pytest.mark.parametrize("clamp", [None, 0.7, 100.0])
def test_lrelu_clamp_grad_matches_autograd(slope, clamp):
    """The backward's mask (read from z, no float mask formed) equals autograd through lrelu then
    clamp, away from the kinks."""
    torch.manual_seed(6)
    z = (torch.randn(5, 7, 3, dtype=torch.float64) * 2).requires_grad_(True)
    g = torch.randn(5, 7, 3, dtype=torch.float64)
    y = torch.nn.functional.leaky_relu(z, slope)
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    (ref,) = torch.autograd.grad((y * g).sum(), z)
    got = fast._lrelu_clamp_grad(g.clone(), z.detach().clone(), slope, clamp)
    assert torch.equal(got, ref)


@pytest.mark.parametrize("up, down, fshape", [(2, 1, (4, 4)), (1, 2, (4, 4)), (2, 2, (6,))])
def test_upfirdn2d_gradcheck_and_gradgradcheck(up, down, fshape):
    """Linear op: its backward is itself transposed, so second derivatives (R1 through D) work too."""
    torch.manual_seed(5)
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    f = torch.randn(fshape, dtype=torch.float64)
    fn = lambda x: fast.polyphase_upfirdn2d(x, f, up=up, down=down, padding=[1, 2, 2, 1], gain=2.0)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    g = torch.randn_like(fn(x))
    ref = torch.autograd.grad((upfirdn2d_ref(x, f, up=up, down=down, padding=[1, 2, 2, 1], gain=2.0) * g).sum(), x)[0]
    assert_close(torch.autograd.grad((fn(x) * g).sum(), x)[0], ref, 1e-10)


# --- paths --------------------------------------------------------------------------------------

def test_paths_cpu_available_and_forced(monkeypatch):
    assert "cpu" in paths.available()
    monkeypatch.setenv("VIZ_OPS", "reference")
    assert paths.active() == "reference"
    assert paths.implementation("filtered_lrelu") is filtered_lrelu_ref
    monkeypatch.setenv("VIZ_OPS", "cpu")
    assert paths.active() == "cpu"
    assert paths.implementation("filtered_lrelu") is fast.filtered_lrelu
    monkeypatch.setenv("VIZ_OPS", "bogus")
    with pytest.raises(RuntimeError, match="bogus"):
        paths.active()
    monkeypatch.delenv("VIZ_OPS")
    assert paths.active("cpu") == "cpu"
    assert paths.active("meta") == "reference"  # no fast path for other devices yet


def test_selection_is_per_block_and_beats_the_environment(monkeypatch):
    monkeypatch.setenv("VIZ_OPS", "cpu")
    with paths.selected("reference"):
        assert paths.active() == "reference"
        with paths.selected("auto"):
            assert paths.active() == "cpu"
        assert paths.active() == "reference"
    assert paths.active() == "cpu"
    with pytest.raises(ValueError, match="unknown op path"):
        with paths.selected("bogus"):
            pass


def test_selection_does_not_leak_between_threads():
    import threading

    seen = {}
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with paths.selected("reference", "bfloat16"):
            inside.set()
            release.wait(10)
            seen["other"] = (paths.active(), paths.active_precision())

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(10)
    seen["main"] = (paths.active(), paths.active_precision())
    release.set()
    thread.join(10)
    assert seen["other"] == ("reference", "bfloat16")
    assert seen["main"] == ("cpu", "float32")


def test_precision_preview_switch():
    assert paths.active_precision() == "float32"
    cpu = torch.device("cpu")
    with paths.selected(None, "bfloat16"):
        assert "bfloat16 preview" in paths.describe()
        if paths.bfloat16_unsupported_reason(cpu) is None:
            assert paths.compute_dtype(cpu) == torch.bfloat16
        else:   # a CPU whose convolutions have no bfloat16 instructions would run the preview slowly
            assert paths.compute_dtype(cpu) == torch.float32
            assert "bfloat16 instructions" in paths.bfloat16_unsupported_reason(cpu)
    assert paths.compute_dtype(cpu) == torch.float32
    with pytest.raises(ValueError):
        with paths.selected(None, "float8"):
            pass


def test_fast_ops_fall_back_for_unsupported_inputs():
    """A 2-D up filter is not covered by the fast path: the reference result comes back."""
    x, fu, fd = torch.randn(1, 2, 9, 9), torch.randn(4, 4), torch.randn(4)
    args = dict(up=2, down=2, padding=[3, 2, 3, 2])
    assert_close(fast.filtered_lrelu(x, fu, fd, **args), filtered_lrelu_ref(x, fu, fd, **args))


def test_separable_reads_a_prepadded_input():
    """separable() on a buffer from separable_input() (interior filled in place) equals the copying form."""
    from torch_utils.ops.cpu.polyphase import AxisOp

    torch.manual_seed(7)
    x = torch.randn(9, 11, 5)
    yop, xop = AxisOp((0.25, 0.5, 0.75, 1.0), 1, 2, 1), AxisOp((0.5, 1.0, 0.5, -0.25), 2, 1, 2)
    h_out, w_out = yop.out_size(9, 2), xop.out_size(11, 1)
    ref = separable.separable(x, yop, h_out, xop, w_out)
    buf, inner = separable.separable_input(9, 11, 5, xop, w_out, x.dtype)
    inner.copy_(x)
    got = separable.separable(inner, yop, h_out, xop, w_out, padded_input=buf)
    assert torch.equal(got, ref)
    with pytest.raises(ValueError):
        separable.separable(inner, yop, h_out, xop, w_out, bias=torch.ones(5), padded_input=buf)


@pytest.mark.parametrize("name", ["T256-up2", "R256-radial"])
def test_clamp_skip_bound_holds(name):
    """The bound that lets the forward skip its clamp pass really bounds |U (x + b)|; the skip
    decision keeps the clamp when it can bite (or on NaN) and drops it when it cannot."""
    want_r = "R" in name
    c = next((c for n, c in NETWORK_CONFIGS if n.startswith("sg3r_256" if want_r else "sg3t_256") and c["up"] == 2), None)
    if c is None:
        pytest.skip("configuration not found")
    torch.manual_seed(8)
    x = torch.randn(1, 6, *c["size"]) * 3
    b = torch.randn(6)
    args = dict(up=c["up"], down=c["down"], padding=c["padding"], gain=c["gain"], slope=1.0)
    # slope 1 and no down filter: the op's intermediate is gain * U (x + b), read back through upfirdn.
    z = fast.upfirdn2d(x + b.view(1, -1, 1, 1), c["fu"], up=c["up"], padding=c["padding"], gain=c["up"] ** 2)
    peak = float(z.abs().max()) * c["gain"]
    cfg_args = dict(fu=c["fu"], fd=c["fd"], b=b, **args)
    import torch_utils.ops.cpu.ops as ops_mod

    seen = []
    orig = separable.clamp_can_bite

    def spy(x_, bias_, plan, slope, clamp):
        seen.append((plan.up_gain * (float(x_.abs().max()) + float(bias_.abs().max())), orig(x_, bias_, plan, slope, clamp)))
        return seen[-1][1]

    try:
        separable.clamp_can_bite = spy
        for clamp in (0.5 * peak, 1e6):
            ref = filtered_lrelu_ref(x, clamp=clamp, **cfg_args)
            assert_close(ops_mod.filtered_lrelu(x, clamp=clamp, **cfg_args), ref)
    finally:
        separable.clamp_can_bite = orig
    (bound_small, bite_small), (bound_big, bite_big) = seen
    assert bound_small >= peak * (1 - 1e-6)
    assert bite_small and not bite_big
    xn = x.clone()
    xn[0, 0, 0, 0] = float("nan")
    assert separable.clamp_can_bite(xn.permute(2, 3, 0, 1), b, None, 0.2, 1e6)  # NaN: decided before the plan is read
