"""A sample-quality number cheap enough to compute at every snapshot on a CPU: the nearest-
neighbour (Chamfer) distance between generated samples and the training set.

Feature space: each image shrunk to 16x16 by averaging 4x4 pixel blocks, RGB in [0, 1], a
768-vector. At that size an emoji keeps what a viewer reads first (head shape, skin and hair
colour, eyes and mouth as dark blobs, the white background) and loses what a small GAN cannot be
expected to match pixel for pixel. It is fixed: no learned weights, no randomness, the same on
any machine and torch version, so numbers from different runs compare.

With d(a, b) the RMS difference of two feature vectors (0 = identical, 1 = black vs white):
- fidelity  = mean over generated samples of the distance to the nearest training image: low when
  every sample looks like some training emoji (colour noise scores high);
- coverage  = mean over training images of the distance to the nearest generated sample: low when
  the samples spread over the training set (a collapsed G scores high);
- chamfer   = (fidelity + coverage) / 2, the one number logged per snapshot.
Coverage depends on how many samples are drawn: compare numbers made with the same count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

FEATURE_SIZE = 16


@dataclass(frozen=True)
class SampleQuality:
    fidelity: float
    coverage: float
    chamfer: float
    num_samples: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def features(images: torch.Tensor) -> torch.Tensor:
    """NCHW images in [-1, 1] (or uint8 NHWC) -> [N, 3 * 16 * 16] block-averaged RGB in [0, 1]."""
    if images.dtype == torch.uint8:
        images = images.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1
    x = (images.to(torch.float32).clamp(-1, 1) + 1) / 2
    x = F.adaptive_avg_pool2d(x, FEATURE_SIZE)
    return x.flatten(1)


def nearest_distances(a: torch.Tensor, b: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """For each row of a, the RMS distance to its nearest row of b."""
    out = []
    for start in range(0, a.shape[0], chunk):
        d2 = torch.cdist(a[start:start + chunk].double(), b.double()).square() / a.shape[1]
        out.append(d2.min(dim=1).values.sqrt())
    return torch.cat(out).float()


def sample_quality(fake_features: torch.Tensor, real_features: torch.Tensor) -> SampleQuality:
    """Fidelity, coverage and Chamfer distance (see module docstring) of two feature sets."""
    fidelity = nearest_distances(fake_features, real_features).mean().item()
    coverage = nearest_distances(real_features, fake_features).mean().item()
    return SampleQuality(fidelity, coverage, (fidelity + coverage) / 2, int(fake_features.shape[0]))
