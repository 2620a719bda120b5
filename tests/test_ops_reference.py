"""The reference ops against independent, naive definitions (numpy loops over tiny inputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from torch_utils.ops.reference import bias_act_ref
from torch_utils.ops.reference import filtered_lrelu_ref
from torch_utils.ops.reference import upfirdn2d_ref


def naive_upfirdn2d(x: np.ndarray, f: np.ndarray | None, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0),
                    flip_filter: bool = False, gain: float = 1.0) -> np.ndarray:
    """Zero insertion, zero padding / cropping, true 2-D convolution, decimation, one sample at a time."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad
    f2 = np.ones((1, 1)) if f is None else (np.outer(f, f) if f.ndim == 1 else f)
    f2 = f2 * gain
    kh, kw = f2.shape
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * upy, w * upx))
    z[:, :, ::upy, ::upx] = x
    hp, wp = h * upy + py0 + py1, w * upx + px0 + px1
    zp = np.zeros((n, c, hp, wp))
    for i in range(hp):
        for j in range(wp):
            si, sj = i - py0, j - px0
            if 0 <= si < z.shape[2] and 0 <= sj < z.shape[3]:
                zp[:, :, i, j] = z[:, :, si, sj]
    ho, wo = hp - kh + 1, wp - kw + 1
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for b in range(kw):
                    # True convolution: out[i] = sum_t x[i + t] f[K-1-t]; flip_filter correlates instead.
                    tap = f2[a, b] if flip_filter else f2[kh - 1 - a, kw - 1 - b]
                    y[:, :, i, j] += zp[:, :, i + a, j + b] * tap
    return y[:, :, ::downy, ::downx]


def naive_bias_act(x: np.ndarray, b: np.ndarray | None, act: str, alpha: float, gain: float, clamp: float | None) -> np.ndarray:
    y = x if b is None else x + b.reshape(1, -1, *([1] * (x.ndim - 2)))
    if act == "lrelu":
        y = np.where(y >= 0, y, y * alpha)
    elif act == "relu":
        y = np.maximum(y, 0)
    elif act == "tanh":
        y = np.tanh(y)
    y = y * gain
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return y


rng = np.random.default_rng(1)

UPFIRDN_CASES = [
    # (up, down, padding x0 x1 y0 y1, filter shape)
    ((1, 1), (1, 1), (0, 0, 0, 0), (4,)),
    ((2, 2), (1, 1), (2, 1, 2, 1), (4,)),
    ((4, 4), (1, 1), (3, 4, 3, 4), (8,)),
    ((1, 1), (2, 2), (1, 1, 1, 1), (4,)),
    ((2, 2), (2, 2), (3, 2, 3, 2), (6,)),
    ((4, 4), (2, 2), (-3, -4, -3, -4), (8,)),
    ((2, 2), (1, 1), (-1, -2, 1, -1), (4,)),
    ((1, 1), (2, 2), (0, 0, 0, 0), (4, 4)),
    ((2, 2), (2, 2), (2, 3, 3, 2), (5, 3)),
    ((2, 1), (1, 2), (1, 2, 0, 1), (3,)),
    ((1, 1), (1, 1), (1, 1, 1, 1), None),
    ((2, 2), (1, 1), (0, 1, 0, 1), None),
]


@pytest.mark.parametrize("up, down, pad, fshape", UPFIRDN_CASES)
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d_matches_definition(up, down, pad, fshape, flip_filter):
    x = rng.standard_normal((2, 3, 7, 6))
    f = None if fshape is None else rng.standard_normal(fshape)
    gain = 1.7
    expected = naive_upfirdn2d(x, f, up, down, pad, flip_filter, gain ** (1 if f is None else 1.0))
    # The reference scales a 1-D filter by sqrt(gain) per axis, a 2-D one by gain: both give gain overall.
    got = upfirdn2d_ref(torch.from_numpy(x), None if f is None else torch.from_numpy(f), up=up, down=down,
                        padding=list(pad), flip_filter=flip_filter, gain=gain).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_upfirdn2d_flip_matters():
    """An asymmetric filter gives different results with and without flip_filter (the test above could
    not tell convolution from correlation otherwise)."""
    x = torch.from_numpy(rng.standard_normal((1, 1, 6, 6)))
    f = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    assert not torch.allclose(upfirdn2d_ref(x, f), upfirdn2d_ref(x, f, flip_filter=True))


@pytest.mark.parametrize("act, alpha, gain, clamp", [
    ("linear", 0.0, 1.0, None), ("linear", 0.0, 1.0, 0.5), ("lrelu", 0.2, math.sqrt(2), None),
    ("lrelu", 0.2, math.sqrt(2), 1.0), ("lrelu", 0.1, 3.0, 2.0), ("relu", 0.0, math.sqrt(2), None),
    ("tanh", 0.0, 1.0, None),
])
@pytest.mark.parametrize("dim", [1, 2])
def test_bias_act_matches_formula(act, alpha, gain, clamp, dim):
    x = rng.standard_normal((3, 5, 4)) * 2
    b = rng.standard_normal(x.shape[dim])
    expected = naive_bias_act(np.moveaxis(x, dim, 1), b, act, alpha, gain, clamp)
    got = bias_act_ref(torch.from_numpy(x), torch.from_numpy(b), dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    np.testing.assert_allclose(np.moveaxis(got.numpy(), dim, 1), expected, rtol=1e-12, atol=1e-12)


def test_bias_act_defaults():
    """lrelu defaults: slope 0.2, gain sqrt(2); linear: gain 1."""
    x = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(bias_act_ref(x, act="lrelu", dim=0), torch.tensor([-0.2, 2.0], dtype=torch.float64) * math.sqrt(2))
    assert torch.equal(bias_act_ref(x, act="linear", dim=0), x)


FLRELU_CASES = [
    # up, down, padding, up taps, down filter shape, gain, slope, clamp
    (2, 2, (5, 4, 5, 4), 4, (4,), math.sqrt(2), 0.2, None),
    (4, 2, (-2, -3, -2, -3), 8, (4,), math.sqrt(2), 0.2, 0.8),
    (2, 2, (3, 2, 3, 2), 4, (4, 4), math.sqrt(2), 0.2, None),
    (2, 1, (2, 1, 2, 1), 4, None, 2.0, 0.1, 1.0),
    (1, 2, (1, 1, 1, 1), None, (4,), 1.0, 0.3, None),
    (1, 1, (0, 0, 0, 0), None, None, 1.0, 1.0, 0.5),
]


@pytest.mark.parametrize("up, down, pad, ntaps, fdshape, gain, slope, clamp", FLRELU_CASES)
def test_filtered_lrelu_is_its_composition(up, down, pad, ntaps, fdshape, gain, slope, clamp):
    """bias -> upfirdn (gain up^2) -> lrelu * gain -> clamp -> upfirdn(down), from the naive pieces."""
    x = rng.standard_normal((1, 2, 6, 5))
    b = rng.standard_normal(2)
    fu = None if ntaps is None else rng.standard_normal(ntaps)
    fd = None if fdshape is None else rng.standard_normal(fdshape)
    y = naive_upfirdn2d(x + b.reshape(1, -1, 1, 1), fu, (up, up), (1, 1), pad, False, up ** 2)
    y = naive_bias_act(y, None, "lrelu", slope, gain, clamp)
    expected = naive_upfirdn2d(y, fd, (1, 1), (down, down), (0, 0, 0, 0), False, 1.0)
    got = filtered_lrelu_ref(torch.from_numpy(x), None if fu is None else torch.from_numpy(fu),
                             None if fd is None else torch.from_numpy(fd), torch.from_numpy(b), up=up, down=down,
                             padding=list(pad), gain=gain, slope=slope, clamp=clamp).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    if clamp is not None and fd is None:  # the clamp acts before the down filter
        assert np.abs(got).max() <= clamp + 1e-12
