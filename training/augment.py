"""Augmentations for a small data set: x-flips of the real images, small integer translations
of every image the discriminator sees, and (optional, below) adaptive discriminator augmentation.

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

import math

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


# ---------------------------------------------------------------------------------------------
# Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial
# Networks with Limited Data"). With a few thousand images the discriminator soon tells the
# training images apart from everything else, and its gradients stop guiding G. ADA shows D
# every image (real and generated alike, differentiably) through random transformations, each
# applied with probability p, and adjusts p during training so that the share of real images D
# calls real stays near a target (Section 3: r_t = E[sign(D(x_real))], target 0.6). Below p of
# about 0.8 the transformations do not leak into G's outputs (Section 2.2): D sees the original
# distribution often enough to tell it from its transformed copies.
#
# The pipeline here follows the paper's "bgc" groups (Appendix B: strengths and order):
# - blit: x-flip, rotation by a multiple of 90 degrees, integer translation (up to 1/8 of the size);
# - geometric: isotropic scaling (log2-normal, sigma 0.2), rotation (uniform), anisotropic
#   scaling (log2-normal, sigma 0.2), fractional translation (normal, sigma 1/8 of the size),
#   resampled bilinearly with mirrored borders (the paper uses a wavelet filter; bilinear is
#   enough at 64 px and much cheaper on a CPU);
# - colour: brightness (normal, sigma 0.2), contrast (log2-normal, sigma 0.5), luma flip, hue
#   rotation (uniform), saturation (log2-normal, sigma 1), as one 4x4 colour matrix.
# Images are NCHW in [-1, 1]; each transformation is drawn independently per image.



def _chance(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """[n] bool: which images get a transformation applied with probability p."""
    return torch.rand([n], generator=generator, device=generator.device) < p


def _normal(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn([n], generator=generator, device=generator.device)


def _uniform(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand([n], generator=generator, device=generator.device)


def _rotation(angle: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] homogeneous 2-D rotations by `angle` (radians)."""
    c, s = torch.cos(angle), torch.sin(angle)
    m = torch.eye(3).repeat(angle.shape[0], 1, 1)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _scaling(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3).repeat(sx.shape[0], 1, 1)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _translation(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3).repeat(tx.shape[0], 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def blit(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """x-flip, quarter turns and integer translation, each with probability p per image."""
    n, _, h, w = images.shape
    images = random_xflip(images, generator, p / 2)  # applied with p, and then a mirror half the time
    if h == w:  # a quarter turn keeps the shape only for square images
        turns = torch.where(_chance(n, p, generator), torch.randint(0, 4, [n], generator=generator,
                                                                    device=generator.device), 0)
        rotated = images
        for k in (1, 2, 3):
            pick = (turns == k).to(images.device)[:, None, None, None]
            rotated = torch.where(pick, torch.rot90(images, k, dims=(2, 3)), rotated)
        images = rotated
    return random_translate(images, generator, p, max(1, round(w / 8)))


def geometric_matrices(n: int, p: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """([N, 3, 3] forward transforms in normalised image coordinates ([-1, 1], y down), [N] bool:
    which images got any transformation). Rotation is drawn twice, around the anisotropic
    scaling, each time with probability 1 - sqrt(1 - p), so that some rotation happens with p."""
    m = torch.eye(3).repeat(n, 1, 1)
    touched = torch.zeros(n, dtype=torch.bool)
    p_rot = 1 - math.sqrt(max(1 - p, 0.0))

    def then(apply: torch.Tensor, t: torch.Tensor) -> None:
        nonlocal m, touched
        eye = torch.eye(3).expand_as(t)
        m = torch.where(apply[:, None, None].cpu(), t, eye) @ m
        touched = touched | apply.cpu()

    s = torch.exp2(_normal(n, generator) * 0.2).cpu()
    then(_chance(n, p, generator), _scaling(s, s))
    then(_chance(n, p_rot, generator), _rotation(((_uniform(n, generator) * 2 - 1) * math.pi).cpu()))
    a = torch.exp2(_normal(n, generator) * 0.2).cpu()
    then(_chance(n, p, generator), _scaling(a, 1 / a))
    then(_chance(n, p_rot, generator), _rotation(((_uniform(n, generator) * 2 - 1) * math.pi).cpu()))
    # sigma 1/8 of the image size = 0.25 in normalised units (the image spans 2)
    t = (torch.stack([_normal(n, generator), _normal(n, generator)], 1) * 0.25).cpu()
    then(_chance(n, p, generator), _translation(t[:, 0], t[:, 1]))
    return m, touched


def geometric(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Scaling, rotation and fractional translation (see geometric_matrices), resampled bilinearly;
    images drawn without any transformation are returned exactly."""
    n = images.shape[0]
    m, touched = geometric_matrices(n, p, generator)
    if not bool(touched.any()):
        return images
    # grid_sample maps each output pixel to the input position it reads: the inverse transform.
    theta = torch.linalg.inv(m)[:, :2].to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return torch.where(touched.to(images.device)[:, None, None, None], warped, images)


LUMA = torch.tensor([1.0, 1.0, 1.0]) / math.sqrt(3)  # the grey axis the colour transforms turn around


def colour_matrices(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """[N, 4, 4] colour transforms of homogeneous RGB (in [-1, 1]): brightness, contrast, luma
    flip, hue rotation, saturation, each with probability p."""
    eye = torch.eye(4).repeat(n, 1, 1)
    c = torch.eye(4).repeat(n, 1, 1)
    v = torch.cat([LUMA, torch.zeros(1)])  # luma axis, homogeneous

    def then(apply: torch.Tensor, t: torch.Tensor) -> None:
        nonlocal c
        c = torch.where(apply[:, None, None].cpu(), t, eye) @ c

    b = (_normal(n, generator) * 0.2).cpu()
    t = eye.clone()
    t[:, :3, 3] = b[:, None]
    then(_chance(n, p, generator), t)
    k = torch.exp2(_normal(n, generator) * 0.5).cpu()
    then(_chance(n, p, generator), eye * torch.stack([k, k, k, torch.ones(n)], 1)[:, :, None])
    flip = eye - 2 * torch.outer(v, v)  # Householder reflection along the luma axis
    then(_chance(n, p, generator) & (_uniform(n, generator) < 0.5).cpu(), flip.expand(n, 4, 4))
    # Rotation about the luma axis (Rodrigues' formula), angle uniform.
    angle = ((_uniform(n, generator) * 2 - 1) * math.pi).cpu()
    lr, lg, lb = LUMA.tolist()
    kx = torch.tensor([[0.0, -lb, lg], [lb, 0.0, -lr], [-lg, lr, 0.0]])  # cross product with the luma axis
    rot = (torch.eye(3) + torch.sin(angle)[:, None, None] * kx
           + (1 - torch.cos(angle))[:, None, None] * (kx @ kx))
    hue = eye.clone()
    hue[:, :3, :3] = rot
    then(_chance(n, p, generator), hue)
    s = torch.exp2(_normal(n, generator) * 1.0).cpu()
    vv = torch.outer(v, v)
    sat = vv + (eye - vv) * s[:, None, None]
    sat[:, 3, 3] = 1
    then(_chance(n, p, generator), sat)
    return c


def colour(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """The colour transforms (see colour_matrices) applied to NCHW RGB images."""
    n = images.shape[0]
    c = colour_matrices(n, p, generator).to(images.device, images.dtype)
    out = torch.einsum("nij,njhw->nihw", c[:, :3, :3], images) + c[:, :3, 3, None, None]
    return out


def ada_augment(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """The whole pipeline at strength p (0: images unchanged). Differentiable in `images`."""
    if p <= 0:
        return images
    images = blit(images, p, generator)
    images = geometric(images, p, generator)
    if images.shape[1] == 3:
        images = colour(images, p, generator)
    return images


class AdaptiveP:
    """ADA's controller (paper Section 3, Eq. 1): every `interval` steps, r_t = mean sign of D's
    logits on the real images of those steps; p moves up if r_t > target (D is overconfident on
    the training images) and down otherwise, by as much as the images of those steps over
    `speed_kimg` thousand (so p can go from 0 to 1 in speed_kimg thousand images), kept in [0, 1)."""

    def __init__(self, target: float, speed_kimg: float, interval: int = 4, p: float = 0.0) -> None:
        self.target, self.speed_kimg, self.interval = target, speed_kimg, interval
        self.p = p
        self._signs, self._count, self._steps = 0.0, 0, 0
        self.last_rt: float | None = None

    def observe(self, real_logits: torch.Tensor) -> None:
        """Record one step's real logits; update p at the end of each interval."""
        self._signs += float(torch.sign(real_logits.detach()).sum())
        self._count += int(real_logits.numel())
        self._steps += 1
        if self._steps >= self.interval:
            self.last_rt = self._signs / max(self._count, 1)
            step = self._count / (self.speed_kimg * 1000)
            self.p = min(max(self.p + math.copysign(step, self.last_rt - self.target), 0.0), 1.0 - 1e-6)
            self._signs, self._count, self._steps = 0.0, 0, 0
