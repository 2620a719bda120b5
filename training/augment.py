"""Augmentations for a small data set: x-flips of the real images and small integer translations
of every image the discriminator sees.

- X-flip (the official `--mirror`): each real image is mirrored with probability 1/2. A mirrored
  emoji is as plausible as the original, so this doubles the data without anything for G to copy
  that real emoji would not show.
- Integer translation (one of ADA's pixel blitting transforms; Karras et al. 2020, "Training
  Generative Adversarial Networks with Limited Data", Section 2.2 and Appendix B): with
  probability p, an image moves by up to `max_shift` whole pixels in x and y, the border it
  uncovers filled by repeating the edge. It is applied alike to real and generated images, and
  differentiably, so G's gradients pass through; with p well below 1 it does not leak into G's
  outputs (ADA paper, Section 2.2: the transformation is then invertible in distribution).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_xflip(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image of NCHW `images` left-right with probability p."""
    flip = torch.rand([images.shape[0]], generator=generator, device=generator.device) < p
    flip = flip.to(images.device)[:, None, None, None]
    return torch.where(flip, images.flip(3), images)


def translate(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Move each image by whole pixels: shift [N, 2] holds (dx, dy); uncovered pixels repeat the edge.
    Gradients flow to `images`."""
    n, c, h, w = images.shape
    margin = int(shift.abs().max().item()) if shift.numel() else 0
    if margin == 0:
        return images
    padded = F.pad(images, [margin] * 4, mode="replicate")
    # Output pixel (y, x) reads padded pixel (y + margin - dy, x + margin - dx).
    rows = torch.arange(h, device=images.device)[None, :] + margin - shift[:, 1:2]  # [N, H]
    cols = torch.arange(w, device=images.device)[None, :] + margin - shift[:, 0:1]  # [N, W]
    batch = torch.arange(n, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # [N, H, W, C]
    return out.permute(0, 3, 1, 2)


def random_translate(images: torch.Tensor, generator: torch.Generator, p: float, max_shift: int) -> torch.Tensor:
    """With probability p per image, translate by an integer offset uniform in [-max_shift, max_shift]^2."""
    n = images.shape[0]
    if p <= 0 or max_shift <= 0:
        return images
    shift = torch.randint(-max_shift, max_shift + 1, [n, 2], generator=generator, device=generator.device)
    apply = torch.rand([n, 1], generator=generator, device=generator.device) < p
    shift = (shift * apply).to(images.device)
    return translate(images, shift)
