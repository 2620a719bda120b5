"""Our network from recorded constructor arguments and a file's tensors, with the memory that
building it takes bounded by what the file holds.

Building runs under a torch function mode that adds up every tensor the constructors allocate
(randn, zeros, ...) before it is allocated, and stops as soon as the total exceeds what the
file's tensors could fill: recorded arguments that describe a network larger than the file are
refused before the memory is spent. The network's state dict is then compared name by name and
shape by shape with the file's tensors, and takes them in place of its random initial values.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from renderer.worker.networks import build_generator

_NUMBER_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                  torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)
MAX_FILTER_TAPS = 16
BUILD_SLACK = 32 << 20   # bytes a build may allocate beyond the file's tensors (small networks)
_SIZED_FACTORIES = (torch.randn, torch.rand, torch.zeros, torch.ones, torch.empty)


class TensorMismatch(ValueError):
    """The tensors do not fit the network the arguments describe; a phrase completing "<file>: ..."."""


class _TooLarge(Exception):
    pass


def _requested_bytes(func: Any, args: tuple, kwargs: dict) -> int:
    """Bytes a tensor factory call will allocate (0 for anything else)."""
    if func in _SIZED_FACTORIES:
        shape = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple, torch.Size)) else args
    elif func is torch.full:
        shape = args[0] if args else kwargs.get("size", ())
    elif func is torch.eye:
        shape = (args[0], args[1] if len(args) > 1 else args[0]) if args else ()
    else:
        return 0
    dtype = kwargs.get("dtype") or torch.get_default_dtype()
    return math.prod(max(int(n), 0) for n in shape) * dtype.itemsize


class _AllocationLimit(TorchFunctionMode):
    """Refuses tensor factory calls once their total would exceed `limit` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.used = limit, 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        self.used += _requested_bytes(func, args, kwargs)
        if self.used > self.limit:
            raise _TooLarge()
        return func(*args, **kwargs)


def stored_elements(tensors: Iterable[torch.Tensor]) -> int:
    """Numbers held by the distinct storages under `tensors` (views of one storage count once)."""
    storages = {}
    for t in tensors:
        storage = t.untyped_storage()
        storages[(storage.data_ptr(), storage.nbytes())] = storage.nbytes() // max(t.element_size(), 1)
    return sum(storages.values())


def build(family: str, init_kwargs: dict, data_elements: int) -> nn.Module:
    """Our generator of `family` from `init_kwargs`, if building it allocates no more than a file
    holding `data_elements` numbers accounts for (twice that in float32, plus BUILD_SLACK)."""
    return build_bounded(lambda: build_generator(family, init_kwargs), data_elements, f"{family} generator")


def build_bounded(make: Callable[[], nn.Module], data_elements: int, what: str) -> nn.Module:
    """`make()` (a network constructor), refused with TensorMismatch as soon as it allocates more
    than a file holding `data_elements` numbers accounts for; `what` names the network in messages."""
    limit = 2 * 4 * data_elements + BUILD_SLACK
    try:
        with _AllocationLimit(limit):
            return make()
    except _TooLarge:
        raise TensorMismatch(f"its constructor arguments describe a network of more than {limit / 2**20:,.0f} MB, "
                             f"but the file holds only {4 * data_elements / 2**20:,.1f} MB of tensors; the file is "
                             "damaged or crafted") from None
    except (TypeError, ValueError, KeyError, IndexError, AssertionError, RuntimeError, ArithmeticError) as e:
        raise TensorMismatch(f"our {what} cannot be built from the recorded constructor arguments "
                             f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None


def _is_stored_filter(family: str, name: str, tensor: torch.Tensor) -> bool:
    """StyleGAN2 upsampling filters are kept as the file stores them: the official block builds
    conv1 with the default [1, 3, 3, 1] filter whatever `resample_filter` says (conv1 never
    resamples, so the buffer is only carried along)."""
    return (family == "stylegan2" and name.endswith("resample_filter") and tensor.dtype in _NUMBER_DTYPES
            and tensor.ndim in (1, 2) and all(1 <= n <= MAX_FILTER_TAPS for n in tensor.shape)
            and bool(torch.isfinite(tensor).all()))


def _listed(label: str, names: list[str]) -> str:
    more = f" (+{len(names) - 5} more)" if len(names) > 5 else ""
    return f"{label}: {', '.join(names[:5])}{more}"


def fill(G: nn.Module, family: str, tensors: dict[str, torch.Tensor], what: str = "generator") -> nn.Module:
    """`G` (from `build`) holding exactly `tensors` (cast to its dtypes) in place of its initial ones;
    `what` names the network in messages."""
    expected = G.state_dict()
    stored_filters = {n for n in expected if n in tensors and tensors[n].shape != expected[n].shape
                      and _is_stored_filter(family, n, tensors[n])}
    missing = [n for n in expected if n not in tensors]
    unexpected = [n for n in tensors if n not in expected]
    wrong_shape = [f"{n} {list(tensors[n].shape)} instead of {list(expected[n].shape)}" for n in expected
                   if n in tensors and tensors[n].shape != expected[n].shape and n not in stored_filters]
    wrong_type = [f"{n} ({str(tensors[n].dtype).removeprefix('torch.')})" for n in expected
                  if n in tensors and tensors[n].dtype not in _NUMBER_DTYPES]
    problems = [_listed(label, names) for label, names in (("missing", missing), ("unexpected", unexpected),
                                                           ("wrong shape", wrong_shape), ("not real numbers", wrong_type))
                if names]
    if problems:
        raise TensorMismatch(f"its tensors do not fit a {family} {what} built from its constructor arguments "
                             f"({'; '.join(problems)}); the file is damaged or from an unsupported variant")
    with torch.no_grad():
        for name in stored_filters:
            module_path, _, buffer = name.rpartition(".")
            G.get_submodule(module_path).register_buffer(buffer, tensors[name].to(torch.float32))
        G.load_state_dict({n: t.to(expected[n].dtype) for n, t in tensors.items()}, assign=True)
    return G
