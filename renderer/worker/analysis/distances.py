"""Which distance a projection minimises (renderer.worker.analysis.projection), from the request.

    pixels          Laplacian-pyramid L1 + SSIM (image_distance); always available
    discriminator   the pixel terms + the features of the model's own D (d_distance): an official
                    training snapshot holds it, and so does a training run of this project
    lpips           the pixel terms + LPIPS with VGG16, from weights files the user points to
                    (lpips_distance); never downloaded
    auto            lpips when a VGG16 file is given, else the discriminator where the model has
                    one, else pixels (with the reason D was not used)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from renderer.protocol import PROJECTION_DISTANCES
from renderer.worker.analysis.d_distance import (DiscriminatorDistance, DistanceUnavailable, NoDiscriminator,
                                                 load_discriminator)
from renderer.worker.analysis.image_distance import PixelDistance
from renderer.worker.analysis.lpips_distance import LPIPSDistance, PerceptualWeightsError, load_lpips

__all__ = ["ChosenDistance", "DistanceUnavailable", "choose_distance"]


@dataclass(frozen=True)
class ChosenDistance:
    make: Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]   # target -> distance per image [N]
    kind: str                              # "pixels", "discriminator" or "lpips"
    note: str = ""                         # why "auto" chose what it did, when it fell back


def choose_distance(kind: str, model_path: str, G: nn.Module, vgg_path: str = "", lpips_path: str = "") -> ChosenDistance:
    """The distance for `kind` (see the module docstring); DistanceUnavailable when the one asked for
    cannot be used (no D, no or unreadable weights file), with the reason."""
    if kind not in PROJECTION_DISTANCES:
        raise DistanceUnavailable(f"Unknown distance {kind!r}; choose {', '.join(PROJECTION_DISTANCES)}.")
    if lpips_path and not vgg_path:
        raise DistanceUnavailable("LPIPS weights were given without the VGG16 weights they weigh; give both files "
                                  "(or neither).")
    if kind == "pixels":
        return ChosenDistance(PixelDistance, "pixels")
    if kind == "lpips" or (kind == "auto" and vgg_path):
        if not vgg_path:
            raise DistanceUnavailable("The LPIPS distance needs torchvision's VGG16 weights file "
                                      "(vgg16-397923af.pth); give its path, or choose another distance.")
        device = G.mapping.w_avg.device
        try:
            net = load_lpips(vgg_path, lpips_path, device)
        except PerceptualWeightsError as e:
            raise DistanceUnavailable(f"{e}.") from None
        note = "" if lpips_path else "lpips uncalibrated: without LPIPS's weights every VGG16 channel weighs the same"
        return ChosenDistance(lambda target: LPIPSDistance(net, target), "lpips", note)
    try:
        D = load_discriminator(model_path, G)
    except NoDiscriminator as e:
        if kind == "discriminator":
            raise
        reason = str(e).removesuffix("; use the pixel distance.")
        return ChosenDistance(PixelDistance, "pixels", f"{reason}; so the pixel distance is used.")
    return ChosenDistance(lambda target: DiscriminatorDistance(D, target), "discriminator")
