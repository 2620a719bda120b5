"""The projection distance with the discriminator's features, for models whose file or run holds D.

Where D comes from:
- an official training snapshot (network-snapshot-NNNNNN.pkl of stylegan2-ada-pytorch, stylegan3 or
  stylegan3-fun) holds it beside G_ema, and a legacy TensorFlow pickle as the D of (G, D, Gs); it is
  rebuilt from the same restricted unpickler as the generator, with the same checks
  (renderer.worker.official_discriminator; TensorFlow variables as the official conversion maps them);
- a training run of this project keeps it in its resume state (training-state.pt beside
  config.json, read with torch's weights-only loader: tensors and plain values, nothing that runs).
Bare generators and exported checkpoints hold none, and conditional TensorFlow discriminators are
not converted: those use the pixel distance.

D's features are what the run learned to tell images apart by, so they make a perceptual distance
that needs no download (the idea of LPIPS, Zhang et al. 2018, Equation 1, with D in place of an
ImageNet network):

    d_D(x, y) = mean over D's stages l of mean over pixels of || u(f_l(x)) - u(f_l(y)) ||^2

where f_l is the first stage's fromrgb output and each block's output, and u scales each pixel's
feature vector to unit length. The distance minimised is the pixel distance (image_distance) plus
d_D: the pixel terms hold colours and shading, which D's features are largely blind to.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from renderer.worker.analysis.image_distance import PixelDistance
from renderer.worker.checked_build import TensorMismatch
from renderer.worker.generator_kwargs import BadArguments
from renderer.worker.model_records import SNAPSHOT, TENSORFLOW, MalformedFile
from renderer.worker.official_discriminator import rebuild_discriminator
from renderer.worker.tf_conversion import UnsupportedTensorFlow
from torch_utils.persistence import RefusedPickle, read_pickle
from training.config import TrainConfig
from training.discriminator import Discriminator
from training.snapshots import CONFIG_FILE, STATE_FILE, UnreadableState, read_state

class DistanceUnavailable(ValueError):
    """The distance asked for cannot be used for this model; the message says why and what to do."""


class NoDiscriminator(DistanceUnavailable):
    """No usable D for this model; the message says why."""


def run_directory(model_path: str) -> Path:
    """The training run directory of a model: the path itself when it is a directory, else the folder
    the snapshot file lies in."""
    path = Path(model_path).expanduser()
    return path if path.is_dir() else path.parent


def load_discriminator(model_path: str, G: nn.Module) -> nn.Module:
    """D for G, in eval mode on G's device: the D of G's official snapshot file, else the D of the
    training run G's file lies in. NoDiscriminator (with the reason) when neither has one."""
    provenance = getattr(G, "provenance", None)
    source = getattr(G, "source_path", None)
    if source and provenance is not None and provenance.kind in (SNAPSHOT, TENSORFLOW):
        D = _snapshot_discriminator(Path(source))
    else:
        D = _run_discriminator(model_path, G)
    if int(D.img_resolution) != int(G.img_resolution) or int(D.img_channels) != int(G.img_channels):
        raise NoDiscriminator(f"The discriminator sees {D.img_resolution} px images of {D.img_channels} channels, "
                              f"but the model makes {G.img_resolution} px of {G.img_channels}; use the pixel distance.")
    return D.to(G.mapping.w_avg.device)


_snapshot_cache: dict[tuple, nn.Module] = {}


def _snapshot_discriminator(path: Path) -> nn.Module:
    """The D of an official snapshot pickle, kept for the file as it is now (size and mtime)."""
    try:
        stat = os.stat(path)
    except OSError as e:
        raise NoDiscriminator(f"{path.name} cannot be read again for its discriminator ({e.strerror or e}); use the "
                              "pixel distance.") from None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _snapshot_cache:
        try:
            D = rebuild_discriminator(read_pickle(path).content)
        except (RefusedPickle, MalformedFile, BadArguments, TensorMismatch, UnsupportedTensorFlow) as e:
            raise NoDiscriminator(f"The discriminator of {path.name} cannot be used: {e}; use the pixel "
                                  "distance.") from None
        except MemoryError:
            raise NoDiscriminator(f"Not enough memory to read the discriminator of {path.name}; use the pixel "
                                  "distance.") from None
        _snapshot_cache.clear()
        _snapshot_cache[key] = D
    return _snapshot_cache[key]


def _run_discriminator(model_path: str, G: nn.Module) -> nn.Module:
    """D of the model's training run (this project's), for G's resolution and channels, in eval mode."""
    run = run_directory(model_path)
    state_path, config_path = run / STATE_FILE, run / CONFIG_FILE
    if not state_path.is_file() or not config_path.is_file():
        raise NoDiscriminator(f"{run.name} holds no {STATE_FILE} and {CONFIG_FILE} of a training run, and the model "
                              "is not an official training snapshot, so there is no discriminator to measure with; "
                              "use the pixel distance.")
    try:
        config = TrainConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        D = Discriminator(**config.discriminator_kwargs(int(G.img_resolution), int(G.img_channels)))
        D.load_state_dict(read_state(state_path)["D"])
    except UnreadableState as e:
        raise NoDiscriminator(f"The discriminator of {run.name} cannot be read: {e}; use the pixel distance.") from None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise NoDiscriminator(f"The discriminator of {run.name} cannot be used for this model "
                              f"({type(e).__name__}: {str(e)[:200]}); use the pixel distance.") from None
    return D.eval().requires_grad_(False)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.square().sum(dim=1, keepdim=True).add(1e-10).sqrt()


class DiscriminatorDistance:
    """pixel distance + d_D to a fixed target, per batch element [N] (see the module docstring); D is
    either discriminator, each giving its stage_features(images)."""

    def __init__(self, D: nn.Module, target: torch.Tensor) -> None:
        self.D = D
        self.pixels = PixelDistance(target)
        with torch.no_grad():
            self.target_features = [_unit(f) for f in D.stage_features(target)]

    def feature_distance(self, x: torch.Tensor) -> torch.Tensor:
        terms = [(_unit(f) - t).square().sum(dim=1).mean(dim=[1, 2])
                 for f, t in zip(self.D.stage_features(x), self.target_features)]
        return torch.stack(terms).mean(dim=0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixels(x) + self.feature_distance(x)
