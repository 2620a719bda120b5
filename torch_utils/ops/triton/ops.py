"""upfirdn2d, bias_act and filtered_lrelu on the Triton kernels; same signatures and results as the
reference ops, forward and backward, for float32, float16 and bfloat16 tensors (16-bit tensors are
read and written as they are, everything in between is float32).

What the kernels do not cover goes to the reference op, never to an approximation:
- tensors the kernels cannot take here (see availability.py: CPU tensors without the interpreter),
  other dtypes (float64, integers), filters that require a gradient, inputs other than 4-D (the
  resampling ops), empty outputs;
- filters and factors whose tile windows do not fit the kernels' blocks (tiling.py; roughly
  filters over 40 taps along an axis, or factors of 8 and more);
- bias_act activations other than linear, relu and lrelu.
2-D filters (StyleGAN3-R's radial down filters, StyleGAN2's 4x4 blur) run as exact sums of a few
separable terms (cpu/polyphase.separable_factors).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence, Union

import torch

from torch_utils.ops.cpu.polyphase import AxisOp, separable_factors
from torch_utils.ops.reference.bias_act import ACTIVATIONS, bias_act_ref
from torch_utils.ops.reference.filtered_lrelu import filtered_lrelu_ref
from torch_utils.ops.reference.upfirdn2d import Padding, parse_padding, parse_scaling, upfirdn2d_ref
from torch_utils.ops.triton import kernels
from torch_utils.ops.triton.availability import kernels_interpreted, triton_unavailable_reason
from torch_utils.ops.triton.taps import correlation_taps
from torch_utils.ops.triton.tiling import Plan2d, fused_grad_plan, fused_plan, local_matrix, resample_plan

FLOAT_TYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_PROGRAMS = 2 ** 31 - 1  # one grid axis of (plane, tile) programs
NUM_WARPS = 4
BIAS_ACT_BLOCK = 1024

Term = tuple[AxisOp, AxisOp]  # (along y, along x)
TapPairs = tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]  # (y taps, x taps) per separable term


def _kernels_take(x: torch.Tensor) -> bool:
    return x.dtype in FLOAT_TYPES and triton_unavailable_reason(x.device) is None


@functools.lru_cache(maxsize=16)
def _dot_precision(device: torch.device, dtype: torch.dtype) -> str:
    """tl.dot's input precision: close to float32 from the tensor cores where they take float32
    (3xTF32 for float32 data; 3xBF16, still well beyond 16-bit data, for float16 and bfloat16)."""
    if kernels_interpreted() or device.type != "cuda" or torch.version.hip is not None:
        return "ieee"
    if torch.cuda.get_device_capability(device) < (8, 0):
        return "ieee"
    return "tf32x3" if dtype == torch.float32 else "bf16x3"


def _filter_terms(f: torch.Tensor | None, flip_filter: bool, gain: float) -> TapPairs:
    """(y taps, x taps) of each separable term of f times gain (all of it on the y taps); None is
    the one-tap filter."""
    if f is None:
        return ((float(gain),), (1.0,)),
    shape, taps = correlation_taps(f, flip_filter)
    if len(shape) == 1:
        return (tuple(t * gain for t in taps), taps),
    return _factor(taps, shape, gain)


@functools.lru_cache(maxsize=256)
def _factor(taps: tuple[float, ...], shape: tuple[int, ...], gain: float) -> TapPairs:
    f = torch.tensor(taps, dtype=torch.float64).reshape(shape) * gain
    return tuple((tuple(fy.tolist()), tuple(fx.tolist())) for fy, fx in separable_factors(f))


def _stack(matrices: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    return torch.stack(matrices).to(device=device, dtype=torch.float32).contiguous()


def _fits(plan: Plan2d | None, x_shape: torch.Size) -> bool:
    return plan is not None and x_shape[0] * x_shape[1] * plan.tiles <= MAX_PROGRAMS


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


# ---------------------------------------------------------------------------------------------
# upfirdn2d

@dataclass(frozen=True)
class Resample:
    """upfirdn2d as sum_t (terms[t][0] along H) (x) (terms[t][1] along W) on an h_in x w_in image."""

    terms: tuple[Term, ...]
    h_in: int
    w_in: int
    h_out: int
    w_out: int

    def transpose(self) -> Resample:
        terms = tuple((oy.transpose(), ox.transpose()) for oy, ox in self.terms)
        return Resample(terms, self.h_out, self.w_out, self.h_in, self.w_in)

    def plan(self) -> Plan2d | None:
        oy, ox = self.terms[0]
        return resample_plan(oy, ox, self.h_out, self.w_out, len(self.terms))


@functools.lru_cache(maxsize=256)
def _resample_matrices(spec: Resample, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    plan = spec.plan()
    py, px = plan.y, plan.x
    ay = [local_matrix(oy, 0, py.x.start, py.out.block, py.x.block) for oy, _ in spec.terms]
    axt = [local_matrix(ox, 0, px.x.start, px.out.block, px.x.block).T for _, ox in spec.terms]
    return _stack(ay, device), _stack(axt, device)


def _resample(x: torch.Tensor, spec: Resample) -> torch.Tensor:
    n, c = x.shape[:2]
    y = torch.empty(n, c, spec.h_out, spec.w_out, dtype=x.dtype, device=x.device)
    if y.numel() == 0:
        return y
    plan = spec.plan()
    py, px = plan.y, plan.x
    ay, axt = _resample_matrices(spec, x.device)
    kernels.upfirdn_kernel[(n * c * plan.tiles,)](
        x, y, ay, axt, c, spec.h_in, spec.w_in, spec.h_out, spec.w_out, *x.stride(),
        py.x.start, px.x.start, py.x.step, px.x.step, py.out.step, px.out.step, plan.tiles, plan.tiles_x,
        TERMS=len(spec.terms), XB_Y=py.x.block, XB_X=px.x.block, OB_Y=py.out.block, OB_X=px.out.block,
        DOT=_dot_precision(x.device, x.dtype), num_warps=NUM_WARPS)
    return y


class _ResampleFunction(torch.autograd.Function):
    """Linear: its gradient is the transposed upfirdn2d (flipped filter, up and down swapped), the
    same function again, so derivatives of every order exist."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, spec: Resample) -> torch.Tensor:
        ctx.spec = spec
        return _resample(x, spec)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _ResampleFunction.apply(grad, ctx.spec.transpose()), None


def resample_spec(x_shape: torch.Size, f: torch.Tensor | None, up: Union[int, Sequence[int]] = 1,
                  down: Union[int, Sequence[int]] = 1, padding: Padding = 0, flip_filter: bool = False,
                  gain: float = 1.0) -> Resample | None:
    """What the upfirdn2d kernel computes for an input of x_shape (None: the kernels do not cover it)."""
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    terms = tuple((AxisOp(ty, upy, downy, py0), AxisOp(tx, upx, downx, px0))
                  for ty, tx in _filter_terms(f, flip_filter, gain))
    h_out, w_out = terms[0][0].out_size(x_shape[2], py1), terms[0][1].out_size(x_shape[3], px1)
    if h_out <= 0 or w_out <= 0:
        return None
    spec = Resample(terms, x_shape[2], x_shape[3], h_out, w_out)
    plans = spec.plan(), spec.transpose().plan()
    return spec if all(_fits(p, x_shape) for p in plans) else None


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Union[int, Sequence[int]] = 1,
    down: Union[int, Sequence[int]] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """upfirdn2d in one kernel: polyphase (no zero insertion), only the kept outputs computed."""
    args = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    spec = None
    if (x.ndim == 4 and _kernels_take(x) and (f is None or (f.ndim in (1, 2) and not f.requires_grad))
            and x.shape[0] * x.shape[1] > 0):
        spec = resample_spec(x.shape, f, **args)
    if spec is None:
        return upfirdn2d_ref(x, f, **args)
    return _ResampleFunction.apply(x, spec)


# ---------------------------------------------------------------------------------------------
# bias_act

@dataclass(frozen=True)
class Activation:
    """clamp(gain * act(x + b)), act the identity or a leaky ReLU with slope alpha."""

    leaky: bool
    alpha: float
    gain: float
    clamp: float | None


def _bias_act_kernel(x: torch.Tensor, b: torch.Tensor | None, grad: torch.Tensor | None, dim: int,
                     spec: Activation) -> torch.Tensor:
    """y = clamp(gain act(x + b)), or with grad: grad * dy/dx. x is contiguous or channels_last."""
    channels_last = not x.is_contiguous()
    inner = 1 if channels_last else math.prod(x.shape[dim + 1:])
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty_like(x, memory_format=fmt)
    if grad is not None:
        grad = grad.to(x.dtype).contiguous(memory_format=fmt)
    numel = x.numel()
    kernels.bias_act_kernel[(_cdiv(numel, BIAS_ACT_BLOCK),)](
        x, x if b is None else b, x if grad is None else grad, out, numel, 1 if b is None else b.numel(), inner,
        spec.alpha, spec.gain, 0.0 if spec.clamp is None else spec.clamp,
        HAS_BIAS=b is not None, LEAKY=spec.leaky, HAS_CLAMP=spec.clamp is not None, GRAD=grad is not None,
        BLOCK=BIAS_ACT_BLOCK, num_warps=NUM_WARPS)
    return out


class _BiasActGradFunction(torch.autograd.Function):
    """grad * dy/dx. dy/dx is piecewise constant in x, so its own gradient is the same mask again
    (and zero with respect to x and b): second derivatives (R1 regularisation) work."""

    @staticmethod
    def forward(ctx, grad: torch.Tensor, x: torch.Tensor, b: torch.Tensor | None, dim: int, spec: Activation):
        ctx.save_for_backward(x, b)
        ctx.dim, ctx.spec = dim, spec
        return _bias_act_kernel(x, b, grad, dim, spec)

    @staticmethod
    def backward(ctx, grad2: torch.Tensor):
        x, b = ctx.saved_tensors
        return _BiasActGradFunction.apply(grad2, x, b, ctx.dim, ctx.spec), None, None, None, None


class _BiasActFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, b: torch.Tensor | None, dim: int, spec: Activation) -> torch.Tensor:
        ctx.save_for_backward(x, b)
        ctx.dim, ctx.spec = dim, spec
        return _bias_act_kernel(x, b, None, dim, spec)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, b = ctx.saved_tensors
        grad_x = _BiasActGradFunction.apply(grad, x, b, ctx.dim, ctx.spec)
        grad_b = None
        if b is not None and ctx.needs_input_grad[1]:
            grad_b = grad_x.sum(dim=[d for d in range(x.ndim) if d != ctx.dim]).to(b.dtype)
        return grad_x, grad_b, None, None


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """bias_act in one elementwise kernel for linear, relu and lrelu (others: the reference)."""
    if act not in ("linear", "relu", "lrelu") or not _kernels_take(x) or x.numel() == 0:
        return bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    dim = dim % x.ndim
    if b is not None and (b.ndim != 1 or b.numel() != x.shape[dim]):
        raise ValueError(f"bias_act: bias of shape {tuple(b.shape)} does not match dimension {dim} of an input "
                         f"of shape {tuple(x.shape)}; give one value per entry of that dimension")
    default = ACTIVATIONS[act]
    alpha = default.default_alpha if alpha is None or act != "lrelu" else float(alpha)
    spec = Activation(act != "linear", alpha, default.default_gain if gain is None else float(gain),
                      None if clamp is None or clamp < 0 else float(clamp))
    if not (x.is_contiguous() or (x.ndim == 4 and dim == 1 and x.is_contiguous(memory_format=torch.channels_last))):
        x = x.contiguous()
    return _BiasActFunction.apply(x, None if b is None else b.to(x.dtype).contiguous(), dim, spec)


# ---------------------------------------------------------------------------------------------
# filtered_lrelu

@dataclass(frozen=True)
class FilteredLReLU:
    """z = U (x + b): U = sum_t up[t][0] (x) up[t][1]; y = D clamp(gain * lrelu(z)), D likewise."""

    up: tuple[Term, ...]
    down: tuple[Term, ...]
    h_in: int
    w_in: int
    h_out: int
    w_out: int
    gain: float
    slope: float
    clamp: float | None

    def _ops(self) -> tuple[AxisOp, AxisOp, AxisOp, AxisOp]:
        return self.up[0][0], self.up[0][1], self.down[0][0], self.down[0][1]

    def plan(self) -> Plan2d | None:
        return fused_plan(*self._ops(), self.h_out, self.w_out, len(self.up), len(self.down))

    def grad_plan(self) -> Plan2d | None:
        return fused_grad_plan(*self._ops(), self.h_in, self.w_in, len(self.up), len(self.down))


@functools.lru_cache(maxsize=256)
def _fused_matrices(spec: FilteredLReLU, device: torch.device) -> tuple[torch.Tensor, ...]:
    plan = spec.plan()
    py, px = plan.y, plan.x
    uy = [local_matrix(oy, py.mid.start, py.x.start, py.mid.block, py.x.block) for oy, _ in spec.up]
    uxt = [local_matrix(ox, px.mid.start, px.x.start, px.mid.block, px.x.block).T for _, ox in spec.up]
    dy = [local_matrix(oy, 0, py.mid.start, py.out.block, py.mid.block) for oy, _ in spec.down]
    dxt = [local_matrix(ox, 0, px.mid.start, px.out.block, px.mid.block).T for _, ox in spec.down]
    return tuple(_stack(m, device) for m in (uy, uxt, dy, dxt))


@functools.lru_cache(maxsize=256)
def _fused_grad_matrices(spec: FilteredLReLU, device: torch.device) -> tuple[torch.Tensor, ...]:
    plan = spec.grad_plan()
    py, px = plan.y, plan.x
    uy = [local_matrix(oy, py.mid.start, py.x.start, py.mid.block, py.x.block) for oy, _ in spec.up]
    uxt = [local_matrix(ox, px.mid.start, px.x.start, px.mid.block, px.x.block).T for _, ox in spec.up]
    dty = [local_matrix(oy.transpose(), py.mid.start, py.g.start, py.mid.block, py.g.block) for oy, _ in spec.down]
    dtxt = [local_matrix(ox.transpose(), px.mid.start, px.g.start, px.mid.block, px.g.block).T for _, ox in spec.down]
    uty = [local_matrix(oy.transpose(), 0, py.mid.start, py.gx.block, py.mid.block) for oy, _ in spec.up]
    utxt = [local_matrix(ox.transpose(), 0, px.mid.start, px.gx.block, px.mid.block).T for _, ox in spec.up]
    return tuple(_stack(m, device) for m in (uy, uxt, dty, dtxt, uty, utxt))


def _activation_args(spec: FilteredLReLU) -> tuple[float, float, float]:
    return spec.gain, spec.slope, 0.0 if spec.clamp is None else spec.clamp


def _fused_forward(x: torch.Tensor, b: torch.Tensor | None, spec: FilteredLReLU) -> torch.Tensor:
    n, c = x.shape[:2]
    y = torch.empty(n, c, spec.h_out, spec.w_out, dtype=x.dtype, device=x.device)
    plan = spec.plan()
    py, px = plan.y, plan.x
    kernels.filtered_lrelu_kernel[(n * c * plan.tiles,)](
        x, x if b is None else b, y, *_fused_matrices(spec, x.device),
        c, spec.h_in, spec.w_in, spec.h_out, spec.w_out, *x.stride(),
        py.x.start, px.x.start, py.x.step, px.x.step, py.out.step, px.out.step, plan.tiles, plan.tiles_x,
        *_activation_args(spec),
        HAS_BIAS=b is not None, HAS_CLAMP=spec.clamp is not None, UP_TERMS=len(spec.up), DOWN_TERMS=len(spec.down),
        XB_Y=py.x.block, XB_X=px.x.block, MB_Y=py.mid.block, MB_X=px.mid.block,
        OB_Y=py.out.block, OB_X=px.out.block, DOT=_dot_precision(x.device, x.dtype), num_warps=NUM_WARPS)
    return y


def _fused_backward(x: torch.Tensor, b: torch.Tensor | None, grad: torch.Tensor, spec: FilteredLReLU) -> torch.Tensor:
    n, c = x.shape[:2]
    gx = torch.empty(n, c, spec.h_in, spec.w_in, dtype=x.dtype, device=x.device)
    plan = spec.grad_plan()
    py, px = plan.y, plan.x
    grad = grad.to(x.dtype)
    kernels.filtered_lrelu_grad_kernel[(n * c * plan.tiles,)](
        x, x if b is None else b, grad, gx, *_fused_grad_matrices(spec, x.device),
        c, spec.h_in, spec.w_in, spec.h_out, spec.w_out, *x.stride(), *grad.stride(),
        py.x.start, px.x.start, py.g.start, px.g.start, py.gx.step, px.gx.step, py.g.step, px.g.step,
        plan.tiles, plan.tiles_x,
        *_activation_args(spec),
        HAS_BIAS=b is not None, HAS_CLAMP=spec.clamp is not None, UP_TERMS=len(spec.up), DOWN_TERMS=len(spec.down),
        XB_Y=py.x.block, XB_X=px.x.block, MB_Y=py.mid.block, MB_X=px.mid.block, GB_Y=py.g.block, GB_X=px.g.block,
        IB_Y=py.gx.block, IB_X=px.gx.block, DOT=_dot_precision(x.device, x.dtype), num_warps=NUM_WARPS)
    return gx


class _FilteredLReLUFunction(torch.autograd.Function):
    """Forward fused per tile; backward recomputes the intermediate per tile (nothing but x and b is
    saved): dL/dx = U^T (mask * D^T g), dL/db its sum over samples and pixels."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, b: torch.Tensor | None, spec: FilteredLReLU) -> torch.Tensor:
        ctx.save_for_backward(x, b)
        ctx.spec = spec
        return _fused_forward(x, b, spec)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, b = ctx.saved_tensors
        gx = _fused_backward(x, b, grad, ctx.spec)
        gb = gx.sum(dim=(0, 2, 3)) if b is not None and ctx.needs_input_grad[1] else None
        return gx, gb, None


def filtered_lrelu_spec(x_shape: torch.Size, fu: torch.Tensor | None, fd: torch.Tensor | None, up: int = 1,
                        down: int = 1, padding: Padding = 0, gain: float = math.sqrt(2), slope: float = 0.2,
                        clamp: float | None = None, flip_filter: bool = False,
                        with_grad: bool = False) -> FilteredLReLU | None:
    """What the filtered leaky ReLU kernels compute for an input of x_shape (None: they do not cover
    it; with_grad: the backward kernel must cover it too)."""
    px0, px1, py0, py1 = parse_padding(padding)
    up_terms = tuple((AxisOp(ty, up, 1, py0), AxisOp(tx, up, 1, px0))
                     for ty, tx in _filter_terms(fu, flip_filter, up * up))
    down_terms = tuple((AxisOp(ty, 1, down, 0), AxisOp(tx, 1, down, 0))
                       for ty, tx in _filter_terms(fd, flip_filter, 1.0))
    h_mid, w_mid = up_terms[0][0].out_size(x_shape[2], py1), up_terms[0][1].out_size(x_shape[3], px1)
    h_out, w_out = down_terms[0][0].out_size(h_mid, 0), down_terms[0][1].out_size(w_mid, 0)
    if min(h_mid, w_mid, h_out, w_out) <= 0:
        return None
    spec = FilteredLReLU(up_terms, down_terms, x_shape[2], x_shape[3], h_out, w_out, float(gain), float(slope),
                         None if clamp is None or clamp < 0 else float(clamp))
    plans = (spec.plan(), spec.grad_plan()) if with_grad else (spec.plan(),)
    return spec if all(_fits(p, x_shape) for p in plans) else None


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Fused filtered leaky ReLU: bias, polyphase upsampling, leaky ReLU, gain and clamp, and
    downsampling in one kernel; without filters or resampling (ToRGB) it is bias_act's kernel."""
    args = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip_filter)
    filters_ok = all(f is None or (f.ndim in (1, 2) and not f.requires_grad) for f in (fu, fd))
    if x.ndim != 4 or not filters_ok or not _kernels_take(x) or x.shape[0] * x.shape[1] == 0:
        return filtered_lrelu_ref(x, fu, fd, b, **args)
    if fu is None and fd is None and up == 1 and down == 1 and parse_padding(padding) == (0, 0, 0, 0):
        return bias_act(x, b, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    wants_grad = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    spec = filtered_lrelu_spec(x.shape, fu, fd, with_grad=wants_grad, **args)
    if spec is None:
        return filtered_lrelu_ref(x, fu, fd, b, **args)
    if b is not None:
        b = b.to(x.dtype).contiguous()
    return _FilteredLReLUFunction.apply(x, b, spec)
