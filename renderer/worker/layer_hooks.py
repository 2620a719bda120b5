"""Looking inside the synthesis network with forward hooks: list every layer the official
visualizer lists, and capture one layer's output, stopping the forward pass right there.

Layer names are module paths relative to the synthesis network; a module with several 4-D
outputs (a StyleGAN2 block returns (x, img)) gets ':0', ':1', ...; the network's own result
is 'output'.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from renderer.protocol import LayerInfo

OUTPUT = "output"


class _LayerCaptured(Exception):
    """Raised from a hook to end the forward pass once the wanted layer is in hand."""


def _image_outputs(output: object) -> list[torch.Tensor]:
    items = output if isinstance(output, (tuple, list)) else (output,)
    return [t for t in items if isinstance(t, torch.Tensor) and t.ndim == 4]


def _output_names(path: str, count: int) -> list[str]:
    return [path] if count == 1 else [f"{path}:{i}" for i in range(count)]


def split_layer_name(name: str) -> tuple[str, int | None]:
    """'b8:1' -> ('b8', 1); 'L3_52_64' -> ('L3_52_64', None)."""
    path, sep, index = name.rpartition(":")
    if sep and index.isdigit():
        return path, int(index)
    return name, None


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _design(module: nn.Module) -> dict[str, float | bool | None]:
    """Sampling rate, cutoff and half width of a StyleGAN3 layer (empty for other modules), and whether
    its band limit is radial. The Fourier-feature input has no transition band of its own (its half
    width is None, as in the official layer table) and draws its frequencies from a disc."""
    if hasattr(module, "out_sampling_rate"):
        return dict(sampling_rate=float(module.out_sampling_rate), cutoff=float(module.out_cutoff),
                    half_width=float(module.out_half_width), radial=bool(getattr(module, "down_radial", False)))
    if hasattr(module, "sampling_rate") and hasattr(module, "bandwidth"):
        return dict(sampling_rate=float(module.sampling_rate), cutoff=float(module.bandwidth), half_width=None,
                    radial=True)
    return {}


def list_layers(synthesis: nn.Module, run: Callable[[], torch.Tensor], wanted: str | None = None
                ) -> tuple[tuple[LayerInfo, ...], torch.Tensor | None]:
    """Run the whole synthesis once, listing every layer in execution order. Returns the list and
    the output of layer `wanted` (the network output for None or 'output'; None if there is no
    such layer)."""
    found: list[LayerInfo] = []
    captured: dict[str, torch.Tensor] = {}
    last_design: dict[str, float | bool | None] = {}

    def make_hook(path: str) -> Callable:
        def hook(module: nn.Module, _inputs: object, output: object) -> None:
            nonlocal last_design
            tensors = _image_outputs(output)
            design = _design(module)
            if design:
                last_design = design
            for name, t in zip(_output_names(path, len(tensors)), tensors):
                found.append(LayerInfo(name=name, shape=tuple(t.shape), dtype=_dtype_name(t), **design))
                if name == wanted:
                    captured[name] = t.detach()
        return hook

    handles = [m.register_forward_hook(make_hook(path)) for path, m in synthesis.named_modules() if path]
    try:
        out = run()
    finally:
        for h in handles:
            h.remove()
    found.append(LayerInfo(name=OUTPUT, shape=tuple(out.shape), dtype=_dtype_name(out), **last_design))
    if wanted is None or wanted == OUTPUT:
        return tuple(found), out
    return tuple(found), captured.get(wanted)


def capture_layer(synthesis: nn.Module, name: str | None, run: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The output of layer `name` (None or 'output': the network output). The forward pass stops
    as soon as the layer has run."""
    if name is None or name == OUTPUT:
        return run()
    path, index = split_layer_name(name)
    module = dict(synthesis.named_modules()).get(path) if path else None
    if module is None:
        raise KeyError(name)
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        tensors = _image_outputs(output)
        if index is None and len(tensors) == 1:
            captured.append(tensors[0].detach())
        elif index is not None and len(tensors) > 1 and index < len(tensors):
            captured.append(tensors[index].detach())
        raise _LayerCaptured

    handle = module.register_forward_hook(hook)
    try:
        run()
    except _LayerCaptured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise KeyError(name)
    return captured[0]


def capture_layers(synthesis: nn.Module, names: Sequence[str], run: Callable[[], torch.Tensor]) -> list[torch.Tensor]:
    """The outputs of several layers (module paths, as listed) in one forward pass, in the order of
    `names`; the pass runs to the end. KeyError for a name the network does not have."""
    modules = dict(synthesis.named_modules())
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        path, index = split_layer_name(name)
        module = modules.get(path) if path else None
        if module is None:
            raise KeyError(name)

        def hook(_module: nn.Module, _inputs: object, output: object, name: str = name, index: int | None = index) -> None:
            tensors = _image_outputs(output)
            chosen = tensors[0] if index is None and len(tensors) == 1 else (
                tensors[index] if index is not None and index < len(tensors) else None)
            if chosen is not None:
                captured[name] = chosen.detach()
        handles.append(module.register_forward_hook(hook))
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in names if n not in captured]
    if missing:
        raise KeyError(missing[0])
    return [captured[n] for n in names]
