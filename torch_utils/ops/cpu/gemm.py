"""Large float32 matrix products through oneDNN, the library behind torch's CPU convolutions.

torch.mm on the CPU build goes to MKL, and MKL runs its AVX2 kernels on AMD processors even where
they have AVX-512: measured on the development machine (2-core AMD EPYC, Zen 5), torch.mm reaches
about 200 GFLOP/s where conv2d reaches 480. oneDNN's inner product, which torch exposes as the
operator mkldnn::_linear_pointwise, runs the AVX-512 kernels: 450 GFLOP/s on a [1296, 1024] x
[1024, 1024] product, 310 on [76176, 512] x [512, 362]. It is a private operator, so it is probed
once and every failure falls back to torch.mm; thin products (few output columns), where it was
slower, stay on torch.mm too.
"""

from __future__ import annotations

import functools

import torch

MIN_COLUMNS = 16  # below this many output columns oneDNN measured slower (e.g. 3: 30 vs 57 GFLOP/s)
MIN_WORK = 1 << 22  # multiply-adds below which the call overhead dominates either way


@functools.lru_cache(maxsize=1)
def onednn_available() -> bool:
    """Whether oneDNN's inner product runs here and gives the same product as torch.mm."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
        if not torch.backends.mkldnn.is_available():
            return False
        a = torch.arange(12, dtype=torch.float32).reshape(3, 4)
        w = torch.arange(8, dtype=torch.float32).reshape(2, 4) - 3
        return bool(torch.equal(op(a, w, None, "none", [], ""), a @ w.t()))
    except (AttributeError, RuntimeError):
        return False


def linear(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """a @ w.T for a [M, K] and w [N, K] (a new contiguous [M, N] tensor), on oneDNN where it pays."""
    m, k = a.shape
    n = w.shape[0]
    if (a.device.type == "cpu" and a.dtype in (torch.float32, torch.bfloat16) and w.dtype == a.dtype
            and n >= MIN_COLUMNS and m * n * k >= MIN_WORK and onednn_available()):
        try:
            return torch.ops.mkldnn._linear_pointwise(a.contiguous(), w.contiguous(), None, "none", [], "")
        except RuntimeError:
            pass  # an unsupported case: torch.mm below gives the same product
    return torch.mm(a, w.t())
