"""Our StyleGAN2 generator against the official implementation's stored outputs (reference/*.npz),
on every op path available in this process."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torch_utils.ops import paths

NETWORKS = ["sg2_small", "sg2_small_clamp"]
IMAGE_TOL = 1e-4  # of max(1, max |image|): outputs can go beyond +-1
WS_TOL = 1e-5
HOOK_TOL = 1e-4  # relative to the reference tensor's own max absolute value


@pytest.fixture(params=paths.available())
def op_path(request):
    with paths.selected(request.param):
        yield request.param


def inputs(ref) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])


def image_tolerance(expected: np.ndarray) -> float:
    return IMAGE_TOL * max(1.0, float(np.abs(expected).max()))


def max_diff(ours: torch.Tensor, expected: np.ndarray) -> float:
    assert tuple(ours.shape) == expected.shape
    return float(np.abs(ours.detach().numpy().astype(np.float64) - expected).max())


def capture(G: torch.nn.Module, names: list[str]) -> tuple[dict, list]:
    """Forward hooks on the modules that the reference hooked; a block's tuple output is kept whole."""
    outputs: dict = {}
    modules = dict(G.named_modules())
    handles = []
    for name in names:
        def hook(module, args, output, name=name):
            outputs[name] = output
        handles.append(modules[name].register_forward_hook(hook))
    return outputs, handles


@pytest.mark.parametrize("name", NETWORKS)
def test_mapping_matches_reference(reference, name, op_path):
    ref = reference(name)
    G = ref.build()
    z, c = inputs(ref)
    with torch.no_grad():
        assert max_diff(G.mapping(z, c, truncation_psi=1), ref["ws_psi1"]) <= WS_TOL
        assert max_diff(G.mapping(z, c, truncation_psi=0.7), ref["ws_psi07"]) <= WS_TOL


@pytest.mark.parametrize("name", NETWORKS)
def test_images_match_reference(reference, name, op_path):
    ref = reference(name)
    G = ref.build()
    z, c = inputs(ref)
    calls = {
        "img_psi1": dict(truncation_psi=1),
        "img_psi1_noise_none": dict(truncation_psi=1, noise_mode="none"),
        "img_psi1_nonfused": dict(truncation_psi=1, fused_modconv=False),
    }
    with torch.no_grad():
        for key, kwargs in calls.items():
            if key in ref.data.files:
                img = G(z, c, noise_mode=kwargs.pop("noise_mode", "const"), force_fp32=True, **kwargs)
                assert img.dtype == torch.float32
                assert max_diff(img, ref[key]) <= image_tolerance(ref[key]), key


@pytest.mark.parametrize("name", NETWORKS)
def test_layers_match_reference_at_psi07(reference, name, op_path):
    """The psi 0.7 image and every hooked module output of that run (README: hook/ keys)."""
    ref = reference(name)
    G = ref.build()
    z, c = inputs(ref)
    expected = ref.hooks()
    assert expected, "reference file has no hook/ tensors"
    modules = sorted({key.split("#")[0] for key in expected})
    outputs, handles = capture(G, modules)
    try:
        with torch.no_grad():
            img = G(z, c, truncation_psi=0.7, noise_mode="const", force_fp32=True)
    finally:
        for handle in handles:
            handle.remove()
    assert max_diff(img, ref["img_psi07"]) <= image_tolerance(ref["img_psi07"])

    for key, want in expected.items():
        module, _, index = key.partition("#")
        got = outputs[module]
        if index:
            assert isinstance(got, tuple), f"{module} should return a tuple"
            got = got[int(index)]
        if module.startswith("synthesis.") and not module.endswith(".affine"):
            got = got[: want.shape[0], : want.shape[1]]
        scale = float(np.abs(want).max())
        assert scale > 0, key
        assert max_diff(got, want) <= HOOK_TOL * scale, key


def test_clamp_network_actually_clamps(reference):
    """conv_clamp 1.0 bounds the layer outputs, and the unclamped network does exceed the bound."""
    clamped = reference("sg2_small_clamp").build()
    z, c = inputs(reference("sg2_small_clamp"))
    outputs, handles = capture(clamped, ["synthesis.b8.conv0"])
    with torch.no_grad():
        clamped(z, c)
    for handle in handles:
        handle.remove()
    assert float(outputs["synthesis.b8.conv0"].abs().max()) <= 1.0

    free = reference("sg2_small").build()
    outputs, handles = capture(free, ["synthesis.b8.conv0"])
    with torch.no_grad():
        free(z, c)
    for handle in handles:
        handle.remove()
    assert float(outputs["synthesis.b8.conv0"].abs().max()) > 1.0


def test_training_mode_uses_nonfused_modconv(reference):
    """fused_modconv_default 'inference_only': in training mode the non-fused form runs."""
    ref = reference("sg2_small")
    G = ref.build().train()
    z, c = inputs(ref)
    with torch.no_grad():
        img = G(z, c)
    assert max_diff(img, ref["img_psi1_nonfused"]) <= image_tolerance(ref["img_psi1_nonfused"])


def test_noise_modes(reference):
    ref = reference("sg2_small")
    G = ref.build()
    z, c = inputs(ref)
    with torch.no_grad():
        const = G(z, c, noise_mode="const")
        const_again = G(z, c, noise_mode="const")
        none = G(z, c, noise_mode="none")
        none_again = G(z, c, noise_mode="none")
        torch.manual_seed(0)
        random_a = G(z, c, noise_mode="random")
        random_b = G(z, c, noise_mode="random")
    assert torch.equal(const, const_again)
    assert torch.equal(none, none_again)
    assert not torch.allclose(none, const, atol=1e-3)
    assert not torch.allclose(random_a, const, atol=1e-3)
    assert not torch.allclose(random_a, random_b, atol=1e-3)
    # The default is 'const', as in the brief's calling convention.
    with torch.no_grad():
        assert torch.equal(G(z, c), const)
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, c, noise_mode="fresh")


def test_synthesis_alone_and_truncation_cutoff(reference):
    ref = reference("sg2_small")
    G = ref.build()
    z, c = inputs(ref)
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7)
        img = G.synthesis(ws, noise_mode="const", force_fp32=True)
        assert max_diff(img, ref["img_psi07"]) <= image_tolerance(ref["img_psi07"])
        cut = G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=4)
    psi1 = torch.from_numpy(ref["ws_psi1"])
    psi07 = torch.from_numpy(ref["ws_psi07"])
    assert torch.allclose(cut[:, :4], psi07[:, :4], atol=WS_TOL)
    assert torch.allclose(cut[:, 4:], psi1[:, 4:], atol=WS_TOL)


def test_attributes_follow_reference(reference):
    ref = reference("sg2_small")
    G = ref.build()
    table = ref.layer_table["synthesis"]
    assert G.family == "stylegan2"
    assert G.num_ws == G.synthesis.num_ws == table["num_ws"] == ref["ws_psi1"].shape[1]
    assert G.synthesis.block_resolutions == table["block_resolutions"]
    assert (G.z_dim, G.c_dim, G.w_dim) == (ref["z"].shape[1], ref["c"].shape[1], ref["ws_psi1"].shape[2])
    assert (G.img_resolution, G.img_channels) == (ref["img_psi1"].shape[2], ref["img_psi1"].shape[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 runs only on CUDA")
def test_fp16_on_cuda_stays_close(reference):
    """With force_fp32=False the high-resolution blocks run in float16; the image stays close."""
    ref = reference("sg2_small")
    G = ref.build().cuda()
    z, c = (t.cuda() for t in inputs(ref))
    with torch.no_grad():
        fp32 = G(z, c, force_fp32=True)
        fp16 = G(z, c, force_fp32=False)
    assert fp16.dtype == torch.float32
    assert max_diff(fp32.cpu(), ref["img_psi1"]) <= image_tolerance(ref["img_psi1"])
    err = float((fp16 - fp32).abs().max())
    assert 0 < err < 0.05
