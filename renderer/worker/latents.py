"""Seeds to network inputs on the torch side: z and one-hot class per seed (renderer.conventions'
official draws), mapped and truncated W, and the bilinear blend of fractional seeds. The one place
the renderer, the analyses, the CLI and the trainer turn seeds into latents."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from renderer.conventions import latent_draw


class LatentError(ValueError):
    """A latent setting this model cannot take; the message says why."""


def seed_inputs(G: nn.Module, seeds: Sequence[int], device: torch.device | str = "cpu",
                class_idx: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(z [N, z_dim] float32, c [N, c_dim] one-hot) for the seeds; the class is drawn from each seed as the
    official tools do unless `class_idx` is given."""
    if class_idx is not None and G.c_dim and not 0 <= class_idx < G.c_dim:
        raise LatentError(f"Class {class_idx} does not exist: this model has classes 0..{G.c_dim - 1}.")
    draws = [latent_draw(int(s), G.z_dim, G.c_dim) for s in seeds]
    z = torch.as_tensor(np.stack([d[0] for d in draws]), dtype=torch.float32, device=device)
    c = torch.zeros([len(draws), G.c_dim], device=device)
    for row, (_, drawn, _) in enumerate(draws):
        if G.c_dim:
            c[row, class_idx if class_idx is not None else drawn] = 1
    return z, c


def mapped_ws(G: nn.Module, seeds: Sequence[int], device: torch.device | str = "cpu", truncation_psi: float = 1.0,
              truncation_cutoff: int | None = None, class_idx: int | None = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] of the seeds: mapped and truncated (w_avg + psi (w - w_avg) on the first
    `truncation_cutoff` rows, all rows for None)."""
    if truncation_cutoff is not None and truncation_cutoff < 0:
        raise LatentError(f"Truncation cutoff must be >= 0, got {truncation_cutoff}.")
    z, c = seed_inputs(G, seeds, device, class_idx)
    with torch.no_grad():
        return G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


def blended_ws(G: nn.Module, weighted: Sequence[tuple[int, float]], device: torch.device | str = "cpu",
               truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
               class_idx: int | None = None) -> torch.Tensor:
    """ws [1, num_ws, w_dim] of a fractional latent position: w_avg + sum weight * (W_seed - w_avg), each
    W_seed taken after truncation (DESIGN.md, "Conventions")."""
    if not weighted:
        raise LatentError("No latent given: at least one (seed, weight) is needed.")
    mapped = mapped_ws(G, [s for s, _ in weighted], device, truncation_psi, truncation_cutoff, class_idx)
    w_avg = G.mapping.w_avg.to(device=mapped.device, dtype=torch.float32)
    weights = torch.tensor([float(w) for _, w in weighted], device=mapped.device)
    return w_avg + ((mapped - w_avg) * weights[:, None, None]).sum(dim=0, keepdim=True)


def seed_images(G: nn.Module, seeds: range | Sequence[int], device: torch.device | str = "cpu",
                batch: int = 16) -> torch.Tensor:
    """G(z_seed) for each seed (noise 'const', no truncation), in batches; NCHW float on the CPU."""
    seeds = list(seeds)
    out = []
    for start in range(0, len(seeds), batch):
        z, c = seed_inputs(G, seeds[start:start + batch], device)
        with torch.no_grad():
            out.append(G(z, c, noise_mode="const").cpu())
    return torch.cat(out)
