"""Weights files with the names and shapes of torchvision's VGG16 and of LPIPS's linear layers, random
values (nothing can be downloaded here), for the LPIPS tests of the worker and the GUI."""

from __future__ import annotations

import collections
from pathlib import Path

import torch

# VGG16's configuration "D" (Simonyan & Zisserman 2015, Table 1): channels, "M" for a 2x2 max pool.
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
LPIPS_CHANNELS = (64, 128, 256, 512, 512)


def vgg16_state_dict(seed: int = 0) -> collections.OrderedDict:
    """torchvision's vgg16().state_dict() names and shapes (features.{i}), random values scaled so
    activations neither vanish nor explode; a small stand-in for the classifier."""
    g = torch.Generator().manual_seed(seed)
    sd = collections.OrderedDict()
    index, cin = 0, 3
    for item in VGG16_CFG:
        if item == "M":
            index += 1
            continue
        sd[f"features.{index}.weight"] = torch.randn(item, cin, 3, 3, generator=g) * (2 / (cin * 9)) ** 0.5
        sd[f"features.{index}.bias"] = torch.randn(item, generator=g) * 0.01
        index += 2                                 # the convolution and its ReLU
        cin = item
    sd["classifier.0.weight"] = torch.randn(8, 8, generator=g)
    return sd


def lin_state_dict(seed: int = 1) -> collections.OrderedDict:
    """The lpips package's vgg.pth names and shapes: lin{k}.model.1.weight [1, C_k, 1, 1]."""
    g = torch.Generator().manual_seed(seed)
    return collections.OrderedDict((f"lin{k}.model.1.weight", torch.rand(1, c, 1, 1, generator=g))
                                   for k, c in enumerate(LPIPS_CHANNELS))


def write_vgg16(path: Path, legacy: bool = True) -> Path:
    """vgg16_state_dict() as torch.save writes it: the legacy layout torchvision's file has, or zip."""
    torch.save(vgg16_state_dict(), path, _use_new_zipfile_serialization=not legacy)
    return path


def write_lin(path: Path) -> Path:
    torch.save(lin_state_dict(), path, _use_new_zipfile_serialization=False)
    return path
