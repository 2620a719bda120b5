"""The two forms of StyleGAN3's modulated convolution agree: grouped (per-sample weights, the
official form) and input-modulated (x * s, one shared-weight conv, * demodulation)."""

from __future__ import annotations

import pytest
import torch

from renderer.worker.networks.stylegan3 import modulated_conv2d


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


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("bands", [2, 3, 7, 40])
def test_conv2d_row_bands_matches_conv2d(kernel: int, bands: int) -> None:
    """Bands of output rows (padding rows rebuilt at the top and bottom bands) give conv2d's result."""
    from torch_utils.ops.cpu.conv import bands_for, conv2d_row_bands

    torch.manual_seed(2)
    x = torch.randn(1, 8, 17, 13).contiguous(memory_format=torch.channels_last)
    w = torch.randn(6, 8, kernel, kernel)
    ref = torch.nn.functional.conv2d(x, w, padding=kernel - 1)
    got = conv2d_row_bands(x, w, kernel - 1, bands)
    assert got.shape == ref.shape
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()
    assert bands_for(1) == 1 and bands_for(100 << 20) > 1


@pytest.mark.parametrize("top,bottom", [(2, 0), (0, 2), (1, 3)])
def test_pad_rows_is_channels_last_zero_padding(top: int, bottom: int) -> None:
    """The padded top and bottom bands stay channels_last (an NCHW band made oneDNN convert and
    the band's result need a transposing copy) and hold exactly F.pad's values."""
    from torch_utils.ops.cpu.conv import pad_rows

    torch.manual_seed(5)
    x = torch.randn(1, 6, 10, 7).contiguous(memory_format=torch.channels_last)[:, :, 2:8]
    got = pad_rows(x, top, bottom)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, torch.nn.functional.pad(x, (0, 0, top, bottom)))


def test_modulated_conv2d_row_bands() -> None:
    torch.manual_seed(3)
    x = torch.randn(1, 16, 30, 30).contiguous(memory_format=torch.channels_last)
    w = torch.randn(8, 16, 3, 3)
    s = torch.randn(1, 16)
    ref = modulated_conv2d(x, w, s, padding=2)
    got = modulated_conv2d(x, w, s, padding=2, row_bands=4)
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()


@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
@pytest.mark.parametrize("kernel,padding", [(1, 0), (1, 1), (3, 2)])
def test_conv2d_batch1_matches_conv2d(layout: str, kernel: int, padding: int) -> None:
    """The batch-1 fast convolution: a 1x1 one without padding as a matrix product (any input
    layout), the rest in row bands; channels_last result either way."""
    from torch_utils.ops.cpu.conv import conv2d_batch1

    torch.manual_seed(4)
    x = torch.randn(1, 12, 11, 9)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(7, 12, kernel, kernel)
    ref = torch.nn.functional.conv2d(x, w, padding=padding)
    got = conv2d_batch1(x, w, padding, 2)
    assert got.shape == ref.shape
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_modulated_conv2d_pointwise_batch1() -> None:
    torch.manual_seed(5)
    x = torch.randn(1, 16, 10, 10).contiguous(memory_format=torch.channels_last)
    w = torch.randn(8, 16, 1, 1)
    s = torch.randn(1, 16)
    gain = torch.tensor(0.6)
    ref = modulated_conv2d(x, w, s, padding=0, input_gain=gain)
    got = modulated_conv2d(x, w, s, padding=0, input_gain=gain, row_bands=1)
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()
