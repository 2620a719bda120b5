"""The two forms of StyleGAN3's modulated convolution agree: grouped (per-sample weights, the
official form) and input-modulated (x * s, one shared-weight conv, * demodulation)."""

from __future__ import annotations

import pytest
import torch

from renderer.networks.stylegan3 import modulated_conv2d


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("kernel", [1, 3])
def test_input_modulation_matches_grouped(demodulate: bool, kernel: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 6, 9, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 6, kernel, kernel, dtype=torch.float64, requires_grad=True)
    s = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    gain = torch.tensor(0.7, dtype=torch.float64)
    args = dict(padding=kernel - 1, demodulate=demodulate, input_gain=gain)
    ref = modulated_conv2d(x, w, s, **args)
    got = modulated_conv2d(x, w, s, modulate_input=True, **args)
    assert (got - ref).abs().max() < 1e-12 * ref.abs().max()
    g = torch.randn_like(ref)
    ref_grads = torch.autograd.grad((ref * g).sum(), (x, w, s))
    got_grads = torch.autograd.grad((got * g).sum(), (x, w, s))
    for a, r in zip(got_grads, ref_grads):
        assert (a - r).abs().max() < 1e-11 * r.abs().max()
    assert torch.autograd.gradcheck(lambda x, w, s: modulated_conv2d(x, w, s, modulate_input=True, **args), (x, w, s))


def test_input_modulation_float32() -> None:
    torch.manual_seed(1)
    x = torch.randn(4, 32, 20, 20)
    w = torch.randn(16, 32, 3, 3)
    s = torch.randn(4, 32)
    ref = modulated_conv2d(x, w, s, padding=2)
    got = modulated_conv2d(x, w, s, padding=2, modulate_input=True)
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()
