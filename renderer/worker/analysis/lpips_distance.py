"""LPIPS with VGG16 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", Equation 1), from weights files the user already has; nothing is downloaded.

    d(x, y) = sum over layers l of mean over pixels of sum over channels c of
              w_lc * (u(f_l(x))_c - u(f_l(y))_c)^2

f_l are VGG16's relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 activations of the input scaled by
LPIPS's fixed shift and scale, u divides each pixel's feature vector by its length (plus 1e-10),
and w_l are LPIPS's learned non-negative channel weights (all 1 without them: the uncalibrated
"baseline" of the paper). Images larger than 256 px are first reduced to 256 by area averaging, as
the official StyleGAN2 projector does before its VGG16 distance.

The files:
- VGG16 weights as torchvision publishes them (vgg16-397923af.pth, found in torch's hub cache
  ~/.cache/torch/hub/checkpoints/ once torchvision has fetched it): a state dict whose
  `features.{i}.weight` / `.bias` are the 13 convolutions; the classifier is ignored.
- optionally, LPIPS's linear layers as the `lpips` package ships them (lpips/weights/v0.1/vgg.pth):
  `lin{k}.model.1.weight` of shape [1, C_k, 1, 1].
Both are torch.save files, read with the checked reader (torch_utils.torch_save: no code runs, no
more memory than the file). NVIDIA's vgg16.pt of the StyleGAN projectors is a TorchScript program,
which carries code, and is refused (torch_utils.torch_save).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from renderer.worker.analysis.image_distance import PixelDistance
from torch_utils.torch_save import TorchSaveError, read_checked

# torchvision's vgg16().features: (index of each convolution, in channels, out channels); a 2x2 max
# pool sits before indices 5, 10, 17 and 24; LPIPS taps the ReLU after convolutions 2, 7, 14, 21, 28.
VGG16_CONVS = ((0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
               (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512))
POOL_BEFORE = frozenset((5, 10, 17, 24))
TAPS = (2, 7, 14, 21, 28)
TAP_CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)     # LPIPS's ScalingLayer, for inputs in [-1, 1]
SCALE = (0.458, 0.448, 0.450)
MAX_SIDE = 256
MAX_PICKLE_BYTES = 1 << 20            # a state dict's object tree is small; the tensors are separate
_LIN_KEY = re.compile(r"(?:.*\.)?lin(\d)\.model\.\d\.weight")


class PerceptualWeightsError(ValueError):
    """A weights file that cannot serve as VGG16 or LPIPS weights; the message says why and what to do."""


def _state_dict(path: str, what: str) -> dict[str, torch.Tensor]:
    name = Path(path).name
    try:
        content = read_checked(path, MAX_PICKLE_BYTES)
    except TorchSaveError as e:
        raise PerceptualWeightsError(f"{e}; give {what}") from None
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        content = content["state_dict"]
    if not isinstance(content, dict) or not all(isinstance(k, str) for k in content):
        raise PerceptualWeightsError(f"{name} holds a {type(content).__name__}, not a state dict; give {what}")
    return {k: v for k, v in content.items() if isinstance(v, torch.Tensor)}


def _checked(t: Any, shape: tuple[int, ...], key: str, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise PerceptualWeightsError(f"{name}: {key} is not a floating-point tensor")
    if tuple(t.shape) != shape:
        raise PerceptualWeightsError(f"{name}: {key} has shape {list(t.shape)}, but VGG16's is {list(shape)}; the file "
                                     "is not torchvision's VGG16")
    t = t.detach().to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise PerceptualWeightsError(f"{name}: {key} holds NaN or infinite values")
    return t


def read_vgg16(path: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The 13 convolutions' (weight, bias) from a torchvision VGG16 state dict (a 'module.' prefix,
    as DataParallel saves, is accepted)."""
    what = "torchvision's VGG16 weights (vgg16-397923af.pth)"
    tensors = _state_dict(path, what)
    tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    name = Path(path).name
    missing = [f"features.{i}.weight" for i, _, _ in VGG16_CONVS if f"features.{i}.weight" not in tensors]
    if missing:
        raise PerceptualWeightsError(f"{name} lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}, so it "
                                     f"is not a VGG16 state dict; give {what}")
    convs = []
    for i, cin, cout in VGG16_CONVS:
        w = _checked(tensors[f"features.{i}.weight"], (cout, cin, 3, 3), f"features.{i}.weight", name)
        b = _checked(tensors.get(f"features.{i}.bias"), (cout,), f"features.{i}.bias", name)
        convs.append((w, b))
    return convs


def read_lpips_weights(path: str) -> list[torch.Tensor]:
    """LPIPS's five channel weightings [C_k] from the lpips package's vgg.pth."""
    what = "LPIPS's linear weights for VGG (lpips/weights/v0.1/vgg.pth)"
    tensors = _state_dict(path, what)
    name = Path(path).name
    found: dict[int, torch.Tensor] = {}
    for key, t in tensors.items():
        m = _LIN_KEY.fullmatch(key)
        if m and int(m.group(1)) < len(TAP_CHANNELS):
            k = int(m.group(1))
            found[k] = _checked(t, (1, TAP_CHANNELS[k], 1, 1), key, name)
    if sorted(found) != list(range(5)):
        raise PerceptualWeightsError(f"{name} does not hold LPIPS's five VGG layers lin0 ... lin4 (found "
                                     f"{sorted(found) or 'none'}); give {what}")
    return [found[k].reshape(-1) for k in range(5)]


class LPIPS:
    """The network of the module docstring, on `device`, without gradients of its own."""

    def __init__(self, convs: list[tuple[torch.Tensor, torch.Tensor]], lin: list[torch.Tensor] | None,
                 device: torch.device | str = "cpu") -> None:
        self.convs = [(w.to(device), b.to(device)) for w, b in convs]
        self.lin = [w.to(device) for w in lin] if lin is not None else None
        self.shift = torch.tensor(SHIFT, device=device).reshape(1, 3, 1, 1)
        self.scale = torch.tensor(SCALE, device=device).reshape(1, 3, 1, 1)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """u(f_l(images)) for the five taps; images NCHW in [-1, 1] (one channel is repeated to three)."""
        x = images.to(torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if max(x.shape[2], x.shape[3]) > MAX_SIDE:
            x = F.interpolate(x, size=(MAX_SIDE, MAX_SIDE), mode="area")
        x = (x - self.shift) / self.scale
        taps = []
        for (index, _, _), (w, b) in zip(VGG16_CONVS, self.convs):
            if index in POOL_BEFORE:
                x = F.max_pool2d(x, 2, 2)
            x = F.relu(F.conv2d(x, w, b, padding=1))
            if index in TAPS:
                taps.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return taps

    def distance(self, x_features: list[torch.Tensor], y_features: list[torch.Tensor]) -> torch.Tensor:
        """Equation 1 between two feature lists, per batch element [N]."""
        total = 0
        for k, (fx, fy) in enumerate(zip(x_features, y_features)):
            d = (fx - fy).square()
            d = (d * self.lin[k].reshape(1, -1, 1, 1)).sum(dim=1) if self.lin is not None else d.sum(dim=1)
            total = total + d.mean(dim=[1, 2])
        return total

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(x), self.features(y))


class LPIPSDistance:
    """pixel distance + LPIPS to a fixed target, per batch element [N]: LPIPS holds edges and
    texture, the pixel terms colours (LPIPS's unit-length features are blind to overall brightness)."""

    def __init__(self, net: LPIPS, target: torch.Tensor) -> None:
        self.net = net
        self.pixels = PixelDistance(target)
        with torch.no_grad():
            self.target_features = net.features(target)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixels(x) + self.net.distance(self.net.features(x), self.target_features)


_cache: dict[tuple, LPIPS] = {}


def load_lpips(vgg_path: str, lpips_path: str = "", device: torch.device | str = "cpu") -> LPIPS:
    """LPIPS from the two files (the second optional), kept while the files are unchanged."""
    key = [str(device)]
    for path in (vgg_path, lpips_path):
        if path:
            try:
                stat = os.stat(path)
            except OSError as e:
                raise PerceptualWeightsError(f"{path}: cannot be read ({e.strerror or e}); give the path of a weights "
                                             "file") from None
            key += [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]
        else:
            key.append(None)
    key_t = tuple(key)
    if key_t not in _cache:
        net = LPIPS(read_vgg16(vgg_path), read_lpips_weights(lpips_path) if lpips_path else None, device)
        _cache.clear()
        _cache[key_t] = net
    return _cache[key_t]
