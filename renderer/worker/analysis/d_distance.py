"""The projection distance with the discriminator's features, for models whose training run holds D.

A training run of this project keeps D in its resume state (training-state.pt beside config.json,
read with torch's weights-only loader: tensors and plain values, nothing that runs). Its features
are what the run learned to tell images apart by, so they make a perceptual distance that needs no
download (the idea of LPIPS, Zhang et al. 2018, Equation 1, with D in place of an ImageNet network):

    d_D(x, y) = mean over D's stages l of mean over pixels of || u(f_l(x)) - u(f_l(y)) ||^2

where f_l is the output of from_rgb and of each residual block, and u scales each pixel's feature
vector to unit length. The distance minimised is the pixel distance (image_distance) plus d_D: the
pixel terms hold colours and shading, which D's features are largely blind to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from renderer.worker.analysis.image_distance import PixelDistance
from training.config import TrainConfig
from training.discriminator import Discriminator
from training.snapshots import CONFIG_FILE, STATE_FILE, UnreadableState, read_state

DISTANCES = ("auto", "pixels", "discriminator")


class NoDiscriminator(ValueError):
    """No usable D for this model; the message says why."""


def run_directory(model_path: str) -> Path:
    """The training run directory of a model: the path itself when it is a directory, else the folder
    the snapshot file lies in."""
    path = Path(model_path).expanduser()
    return path if path.is_dir() else path.parent


def load_discriminator(model_path: str, G: nn.Module) -> Discriminator:
    """D of the model's training run, for G's resolution and channels, in eval mode on G's device."""
    run = run_directory(model_path)
    state_path, config_path = run / STATE_FILE, run / CONFIG_FILE
    if not state_path.is_file() or not config_path.is_file():
        raise NoDiscriminator(f"{run.name} holds no {STATE_FILE} and {CONFIG_FILE} of a training run, so there is "
                              "no discriminator to measure with; use the pixel distance.")
    try:
        config = TrainConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        D = Discriminator(**config.discriminator_kwargs(int(G.img_resolution), int(G.img_channels)))
        D.load_state_dict(read_state(state_path)["D"])
    except UnreadableState as e:
        raise NoDiscriminator(f"The discriminator of {run.name} cannot be read: {e}; use the pixel distance.") from None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise NoDiscriminator(f"The discriminator of {run.name} cannot be used for this model "
                              f"({type(e).__name__}: {str(e)[:200]}); use the pixel distance.") from None
    return D.eval().requires_grad_(False).to(G.mapping.w_avg.device)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.square().sum(dim=1, keepdim=True).add(1e-10).sqrt()


def stage_features(D: Discriminator, images: torch.Tensor) -> list[torch.Tensor]:
    """f_l(images): the outputs of from_rgb and of each residual block."""
    x = D.from_rgb(images.to(torch.float32))
    features = [x]
    for block in D.blocks:
        x = block(x)
        features.append(x)
    return features


class DiscriminatorDistance:
    """pixel distance + d_D to a fixed target, per batch element [N] (see the module docstring)."""

    def __init__(self, D: Discriminator, target: torch.Tensor) -> None:
        self.D = D
        self.pixels = PixelDistance(target)
        with torch.no_grad():
            self.target_features = [_unit(f) for f in stage_features(D, target)]

    def feature_distance(self, x: torch.Tensor) -> torch.Tensor:
        terms = [(_unit(f) - t).square().sum(dim=1).mean(dim=[1, 2])
                 for f, t in zip(stage_features(self.D, x), self.target_features)]
        return torch.stack(terms).mean(dim=0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixels(x) + self.feature_distance(x)


def choose_distance(kind: str, model_path: str, G: nn.Module) -> tuple[Callable, str]:
    """The distance to minimise (a factory of target -> distance) and its name, for "pixels",
    "discriminator" (NoDiscriminator when the run holds none) or "auto" (D where there is one)."""
    if kind not in DISTANCES:
        raise NoDiscriminator(f"Unknown distance {kind!r}; choose {', '.join(DISTANCES)}.")
    if kind == "pixels":
        return PixelDistance, "pixels"
    try:
        D = load_discriminator(model_path, G)
    except NoDiscriminator:
        if kind == "discriminator":
            raise
        return PixelDistance, "pixels"
    return (lambda target: DiscriminatorDistance(D, target)), "discriminator"
