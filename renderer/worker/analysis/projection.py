"""Projection of a real image into W or W+: find the latent from which the model reproduces it
(StyleGAN2 paper, Karras et al. 2020, Section 5 and Appendix D, "Projection").

Start from w_avg and minimise the image distance (renderer.worker.analysis.image_distance) with
Adam (beta 0.9 / 0.999) over T steps, at step i of t = i / T:
- learning rate lr_max * min(1, t / ramp_up) * (1/2 - 1/2 cos(pi * min(1, (1 - t) / ramp_down))):
  a linear ramp up over the first 5%, a cosine ramp down to zero over the last 25%;
- Gaussian noise of standard deviation 0.05 sigma_w max(0, 1 - t / 0.75)^2 added to w for the
  step's image only (sigma_w^2: the mean squared Euclidean distance of sampled w to their mean), so
  early steps explore and later ones settle;
- StyleGAN2 only (StyleGAN3 has no noise inputs): every per-pixel noise map n (drawn N(0, 1)) is
  optimised too, with the penalty sum over maps and octaves j of
  ((1/r_j^2) sum_xy n_j(x, y) n_j(x - 1, y))^2 + ((1/r_j^2) sum_xy n_j(x, y) n_j(x, y - 1))^2
  (neighbours wrapping around; n_{j+1} = 2 x the 2x2 average of n_j, down to 8x8), weighted
  by 10^5, which keeps the maps from carrying image content; after each step every map is set back
  to zero mean and unit variance.
W optimises one w broadcast to every row; W+ one w per row.

Projector.step() runs a few steps and returns the distance and the current ws, so a worker can
run it in slices, show a preview between them, and cancel by not calling it again. The cached
network is never modified: noise maps go in through torch.func.functional_call for each call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from renderer.worker.analysis.display import to_uint8
from renderer.worker.analysis.image_distance import PixelDistance, psnr

NOISE_MIN_SIZE = 8
W_STD_BATCH = 1000


class ProjectionError(ValueError):
    """A projection that cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True)
class ProjectionSettings:
    """Hyperparameters, named and valued as in the StyleGAN2 paper's projector."""

    steps: int = 1000
    w_plus: bool = False               # one w per ws row instead of one broadcast w
    seed: int = 0                      # initial noise maps and the w noise
    class_idx: int | None = None       # conditional models
    learning_rate: float = 0.1         # lr_max
    lr_ramp_up: float = 0.05           # fractions of the run
    lr_ramp_down: float = 0.25
    w_noise_factor: float = 0.05
    w_noise_ramp: float = 0.75
    noise_regularization: float = 1e5
    optimize_noise: bool = True        # StyleGAN2: False keeps the model's own noise maps
    w_std_samples: int = 10000         # samples that sigma_w is estimated from


@dataclass(frozen=True, eq=False)
class ProjectionStep:
    step: int                          # steps done
    total: int
    distance: float                    # image distance at the last step (with that step's w noise)
    loss: float                        # distance + noise penalty
    learning_rate: float
    ws: np.ndarray                     # current ws [num_ws, w_dim] float32, without the w noise

    @property
    def finished(self) -> bool:
        return self.step >= self.total


def learning_rate(settings: ProjectionSettings, t: float) -> float:
    """The learning rate at run fraction t (module docstring)."""
    ramp = min(1.0, (1.0 - t) / settings.lr_ramp_down)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / settings.lr_ramp_up)
    return settings.learning_rate * ramp


def w_noise_scale(settings: ProjectionSettings, t: float, w_std: float) -> float:
    """Standard deviation of the noise added to w at run fraction t."""
    return w_std * settings.w_noise_factor * max(0.0, 1.0 - t / settings.w_noise_ramp) ** 2


def noise_penalty(noise: torch.Tensor) -> torch.Tensor:
    """The autocorrelation penalty of one noise map [H, W] over its octaves (module docstring)."""
    n = noise[None, None]
    total = n.new_zeros([])
    while True:
        total = total + (n * torch.roll(n, shifts=1, dims=3)).mean().square()
        total = total + (n * torch.roll(n, shifts=1, dims=2)).mean().square()
        if min(n.shape[-2:]) <= NOISE_MIN_SIZE:
            return total
        n = F.avg_pool2d(n, 2) * 2


def w_spread(G: nn.Module, samples: int, seed: int, c: torch.Tensor) -> float:
    """sigma_w: the root mean squared Euclidean distance of mapped w to w_avg."""
    rng = np.random.RandomState(seed)
    device = G.mapping.w_avg.device
    w_avg = G.mapping.w_avg.to(torch.float32)
    total, done = 0.0, 0
    with torch.no_grad():
        while done < samples:
            n = min(W_STD_BATCH, samples - done)
            z = torch.from_numpy(rng.randn(n, G.z_dim)).to(device, torch.float32)
            w = G.mapping(z, c.expand(n, -1))[:, 0].to(torch.float32)
            total += float((w - w_avg).square().sum())
            done += n
    return math.sqrt(total / max(samples, 1))


def target_tensor(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 [H, W, C] -> float [1, C, H, W] in [-1, 1] (the display convention's inverse)."""
    x = torch.from_numpy(np.array(pixels, dtype=np.float32)).to(device)
    return (x.permute(2, 0, 1)[None] - 128.0) / 127.5


class Projector:
    """Optimises W (or W+) of G so that G reproduces `target` (uint8 [res, res, channels])."""

    def __init__(self, G: nn.Module, target: np.ndarray, settings: ProjectionSettings = ProjectionSettings(),
                 distance: Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]] = PixelDistance) -> None:
        """`distance(target)` gives the function minimised (per image [N]); the pixel distance by default."""
        res, channels = int(G.img_resolution), int(G.img_channels)
        if target.dtype != np.uint8 or target.shape != (res, res, channels):
            raise ProjectionError(f"the target must be uint8 [{res}, {res}, {channels}] for this model "
                                  f"(align it first), got {target.dtype} {list(target.shape)}")
        if settings.steps < 1:
            raise ProjectionError(f"projection needs at least 1 step, got {settings.steps}")
        self.G = G
        self.settings = settings
        self.device = G.mapping.w_avg.device
        self.c = self._class_vector(settings.class_idx)
        self.target = target_tensor(target, self.device)
        self.distance = distance(self.target)
        self.w_std = w_spread(G, settings.w_std_samples, settings.seed, self.c)
        self.rng = torch.Generator().manual_seed(settings.seed)

        rows = G.num_ws if settings.w_plus else 1
        start = G.mapping.w_avg.detach().to(torch.float32).reshape(1, 1, -1).repeat(1, rows, 1)
        self.w = start.clone().requires_grad_(True)
        self.noise = self._initial_noise() if settings.optimize_noise else {}
        self.optimizer = torch.optim.Adam([self.w, *self.noise.values()], betas=(0.9, 0.999),
                                          lr=settings.learning_rate)
        self.steps_done = 0
        self.distances: list[float] = []

    def _class_vector(self, class_idx: int | None) -> torch.Tensor:
        c = torch.zeros([1, self.G.c_dim], device=self.device)
        if self.G.c_dim == 0:
            return c
        if class_idx is None or not 0 <= class_idx < self.G.c_dim:
            raise ProjectionError(f"this model is conditional: choose a class 0..{self.G.c_dim - 1} to project into")
        c[0, class_idx] = 1
        return c

    def _initial_noise(self) -> dict[str, torch.Tensor]:
        maps = {}
        for name, buffer in self.G.synthesis.named_buffers():
            if name.endswith("noise_const"):
                values = torch.randn(buffer.shape, generator=self.rng, dtype=torch.float32)
                maps[name] = values.to(self.device).requires_grad_(True)
        return maps

    def _synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        if self.noise:
            return torch.func.functional_call(self.G.synthesis, self.noise, (ws,), dict(noise_mode="const"))
        return self.G.synthesis(ws, noise_mode="const")

    def ws(self) -> np.ndarray:
        """The current ws [num_ws, w_dim] (float32), without the w noise."""
        return self.w.detach()[0].expand(self.G.num_ws, -1).to("cpu", torch.float32).numpy().copy()

    def noise_maps(self) -> dict[str, np.ndarray]:
        """StyleGAN2: the optimised noise maps by buffer name (empty when none are optimised)."""
        return {name: n.detach().cpu().numpy().copy() for name, n in self.noise.items()}

    @property
    def finished(self) -> bool:
        return self.steps_done >= self.settings.steps

    def step(self, count: int = 1) -> ProjectionStep:
        """Run up to `count` optimiser steps (none once finished); the state after them."""
        s = self.settings
        distance = loss = lr = math.nan
        with torch.enable_grad():
            for _ in range(count):
                if self.finished:
                    break
                t = self.steps_done / s.steps
                lr = learning_rate(s, t)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                w_noise = torch.randn(self.w.shape, generator=self.rng) * w_noise_scale(s, t, self.w_std)
                ws = (self.w + w_noise.to(self.device)).expand(-1, self.G.num_ws, -1)
                image = self._synthesize(ws)
                dist = self.distance(image).sum()
                penalty = sum((noise_penalty(n) for n in self.noise.values()), dist.new_zeros([]))
                total = dist + s.noise_regularization * penalty
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                self.optimizer.step()
                with torch.no_grad():
                    for n in self.noise.values():
                        n -= n.mean()
                        n /= n.square().mean().sqrt()
                self.steps_done += 1
                distance, loss = float(dist.detach()), float(total.detach())
                self.distances.append(distance)
        return ProjectionStep(step=self.steps_done, total=s.steps, distance=distance, loss=loss, learning_rate=lr,
                              ws=self.ws())

    def image(self) -> torch.Tensor:
        """The current latent's image [1, C, H, W] in [-1, 1] (with the optimised noise maps)."""
        with torch.no_grad():
            return self._synthesize(self.w.detach().expand(-1, self.G.num_ws, -1))

    def preview(self) -> np.ndarray:
        """The current latent's image as a uint8 frame [H, W, 3] (the display convention)."""
        return to_uint8(self.image()[0])

    def psnr(self) -> float:
        """PSNR (dB) of the current latent's image against the target."""
        return psnr(self.image(), self.target)
