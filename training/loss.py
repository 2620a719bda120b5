"""The GAN objective: non-saturating logistic loss with R1 regularisation, lazily applied.

With D's logit l(x) and softplus(t) = log(1 + e^t):
- G minimises E_z[softplus(-l(G(z)))], the non-saturating loss of Goodfellow et al. 2014
  (Section 3: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))).
- D minimises E_z[softplus(l(G(z)))] + E_x[softplus(-l(x))], the logistic loss.
- R1 (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", Eq. 9):
  D also minimises (gamma / 2) E_x[|grad_x l(x)|^2] on real images.
- Lazy regularisation (StyleGAN2 paper, Section 3.1): R1 is evaluated only every k-th
  minibatch, weighted by k so that its expected contribution is unchanged. We add it to that
  minibatch's D loss (one optimiser step), so Adam needs no lazy-step correction.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Augment = Callable[[torch.Tensor], torch.Tensor]


def generator_loss(D: torch.nn.Module, fake: torch.Tensor, augment: Augment) -> torch.Tensor:
    """Mean softplus(-l(G(z))) over the batch."""
    return F.softplus(-D(augment(fake))).mean()


def discriminator_loss(D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, augment: Augment,
                       with_r1: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean softplus(l(fake)), mean softplus(-l(real)), R1 penalty or 0, the real images' logits
    (detached; adaptive augmentation reads their signs)).

    The R1 penalty, mean over the batch of |grad_x l(x)|^2, reuses the real images' forward pass
    and stays differentiable in D's weights; the caller weights it (gamma / 2 times the lazy
    interval) and adds it to this step's loss, so a regularised step costs one extra backward
    pass and no extra optimiser step."""
    loss_fake = F.softplus(D(augment(fake.detach()))).mean()
    real = real.detach().requires_grad_(with_r1)
    logits = D(augment(real))
    loss_real = F.softplus(-logits).mean()
    if not with_r1:
        return loss_fake, loss_real, torch.zeros([], device=real.device), logits.detach()
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return loss_fake, loss_real, grad.square().sum(dim=[1, 2, 3]).mean(), logits.detach()
