"""Our own networks: the generators, and the official discriminator (discriminator.py, rebuilt from
training snapshots for the projection's distance). `build_generator` makes a generator from a
family name and the official constructor arguments (as a pickle records them), so state-dict names
and shapes match."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

FAMILIES = ("stylegan3", "stylegan2")


def build_generator(family: str, init_kwargs: dict[str, Any]) -> nn.Module:
    """A generator of `family` ('stylegan3' or 'stylegan2') from the official Generator kwargs."""
    if family == "stylegan3":
        from renderer.worker.networks.stylegan3 import Generator
    elif family == "stylegan2":
        from renderer.worker.networks.stylegan2 import Generator
    else:
        raise ValueError(f"unknown generator family {family!r}; known: {', '.join(FAMILIES)}")
    G = Generator(**init_kwargs)
    if not hasattr(G, "init_kwargs"):  # the native format records the constructor arguments
        G.init_kwargs = copy.deepcopy(dict(init_kwargs))
    return G


def family_label(G: nn.Module) -> str:
    """'stylegan3-t', 'stylegan3-r' or 'stylegan2', as shown to users."""
    family = getattr(G, "family", "")
    if family == "stylegan3":
        return "stylegan3-r" if getattr(G.synthesis, "conv_kernel", 3) == 1 else "stylegan3-t"
    return family
