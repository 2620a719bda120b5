"""GANSpace: principal components of W (Härkönen et al. 2020, "GANSpace: Discovering Interpretable
GAN Controls", Section 2.2), estimated from N sampled seeds.

z for seed s is drawn as the official tools draw it (renderer.worker.latents), mapped without
truncation. The mean and covariance are accumulated a batch at a time (Chan et al.'s pairwise
update of the mean and scatter matrix, in float64), so a job can run in slices between frames;
one symmetric eigendecomposition at the end gives the components. The result depends only on
(model, N, first seed, class): batches are always BATCH seeds long, whatever the slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from renderer.directions import DEFAULT_SAMPLES, GANSPACE, Directions, sorted_eigenvectors
from renderer.worker.latents import mapped_ws

BATCH = 256                 # seeds mapped per batch


@dataclass(frozen=True)
class GanSpaceRequest:
    """What to sample; with the model, also the cache key of the result."""

    num_samples: int = DEFAULT_SAMPLES
    first_seed: int = 0
    class_idx: int | None = None      # conditional models: None = drawn from each seed
    count: int | None = None          # directions kept (None: all w_dim)


class WMoments:
    """Running count, mean and scatter matrix (sum of outer products of deviations) of w samples."""

    def __init__(self, w_dim: int) -> None:
        self.count = 0
        self.mean = np.zeros(w_dim)
        self.scatter = np.zeros((w_dim, w_dim))

    def add(self, w: np.ndarray) -> None:
        """Merge a batch [n, w_dim] (Chan, Golub & LeVeque 1979: pairwise combination of moments)."""
        w = np.asarray(w, dtype=np.float64)
        n = len(w)
        if n == 0:
            return
        batch_mean = w.mean(axis=0)
        centred = w - batch_mean
        delta = batch_mean - self.mean
        total = self.count + n
        self.scatter += centred.T @ centred + np.outer(delta, delta) * (self.count * n / total)
        self.mean += delta * (n / total)
        self.count = total

    def covariance(self) -> np.ndarray:
        if self.count < 2:
            raise ValueError("the covariance of W needs at least 2 samples")
        return self.scatter / (self.count - 1)


class GanSpaceJob:
    """GANSpace in slices: run_slice() maps the next batches; result() once done."""

    def __init__(self, G: nn.Module, request: GanSpaceRequest = GanSpaceRequest()) -> None:
        if request.num_samples < 2:
            raise ValueError(f"GANSpace needs at least 2 samples, got {request.num_samples}")
        self.G = G
        self.request = request
        self.moments = WMoments(G.w_dim)

    @property
    def done(self) -> int:
        return self.moments.count

    @property
    def total(self) -> int:
        return self.request.num_samples

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def run_slice(self, batches: int = 1) -> int:
        """Map up to `batches` more batches of seeds; returns the samples done so far."""
        for _ in range(batches):
            if self.finished:
                break
            start = self.request.first_seed + self.done
            stop = self.request.first_seed + min(self.done + BATCH, self.total)
            w = mapped_ws(self.G, range(start, stop), self.G.mapping.w_avg.device, class_idx=self.request.class_idx)
            self.moments.add(w[:, 0].cpu().numpy())
        return self.done

    def result(self) -> Directions:
        if not self.finished:
            raise RuntimeError(f"GANSpace has mapped {self.done} of {self.total} samples; run it to the end first")
        vectors, values, shares = sorted_eigenvectors(self.moments.covariance(), self.request.count)
        return Directions(method=GANSPACE, vectors=vectors.astype(np.float32), eigenvalues=values,
                          explained=shares, num_samples=self.total, first_seed=self.request.first_seed)


def ganspace(G: nn.Module, request: GanSpaceRequest = GanSpaceRequest()) -> Directions:
    """GANSpace directions of G, computed in one go."""
    job = GanSpaceJob(G, request)
    while not job.finished:
        job.run_slice(batches=16)
    return job.result()
