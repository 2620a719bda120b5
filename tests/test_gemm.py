"""Large matrix products through oneDNN (torch_utils/ops/cpu/gemm.py) and their fallback."""

from __future__ import annotations

import pytest
import torch

from torch_utils.ops.cpu import gemm
from torch_utils.ops.cpu.conv import conv2d_batch1


def _operands(m: int, k: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, k, generator=g), torch.randn(n, k, generator=g) / k ** 0.5


def test_onednn_is_used_where_torch_has_it() -> None:
    """On a torch build with oneDNN (the pinned CPU build has it) the fast product is available."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN")
    assert gemm.onednn_available()


@pytest.mark.parametrize("m,k,n", [(1296, 1024, 1024), (5000, 256, 181), (300, 64, 16), (4096, 128, 3), (7, 5, 4)])
def test_linear_matches_float64_product(m: int, k: int, n: int) -> None:
    a, w = _operands(m, k, n)
    got = gemm.linear(a, w)
    ref = a.double() @ w.double().t()
    assert got.shape == (m, n) and got.dtype == torch.float32 and got.is_contiguous()
    assert (got.double() - ref).abs().max() <= 2e-6 * ref.abs().max()


def test_linear_reads_transposed_and_sliced_operands() -> None:
    a, w = _operands(2048, 300, 64, seed=1)
    a_view = a.t().contiguous().t()[:, :256]  # column-major, then a slice of its columns
    w_view = w[:, :256]
    ref = a[:, :256].double() @ w[:, :256].double().t()
    assert (gemm.linear(a_view, w_view).double() - ref).abs().max() <= 2e-6 * ref.abs().max()


def test_linear_falls_back_to_mm(monkeypatch) -> None:
    """Without oneDNN, or when its operator refuses the call, the product comes from torch.mm."""
    a, w = _operands(1024, 256, 128, seed=2)
    ref = a @ w.t()
    monkeypatch.setattr(gemm, "onednn_available", lambda: False)
    assert torch.equal(gemm.linear(a, w), ref)
    monkeypatch.undo()

    def refuse(*args, **kwargs):
        raise RuntimeError("unsupported")

    monkeypatch.setattr(gemm, "onednn_available", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", refuse)
    assert torch.equal(gemm.linear(a, w), ref)


def test_onednn_probe_rejects_a_broken_operator(monkeypatch) -> None:
    """The probe checks the operator's answer, not only that it exists."""
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", lambda a, w, *rest: torch.zeros(a.shape[0], w.shape[0]))
    gemm.onednn_available.cache_clear()
    try:
        assert not gemm.onednn_available()
    finally:
        monkeypatch.undo()
        gemm.onednn_available.cache_clear()


def test_pointwise_conv_of_network_size_matches_conv2d() -> None:
    """StyleGAN3-R's 1x1 layers at batch 1: one oneDNN product, channels_last result."""
    torch.manual_seed(3)
    x = torch.randn(1, 256, 40, 36).contiguous(memory_format=torch.channels_last)
    w = torch.randn(181, 256, 1, 1) / 16
    ref = torch.nn.functional.conv2d(x.double(), w.double())
    got = conv2d_batch1(x, w, 0, 1)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert (got.double() - ref).abs().max() <= 2e-6 * ref.abs().max()
