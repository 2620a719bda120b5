"""SeFa, closed-form factorisation of the style affines (Shen & Zhou 2021, "Closed-Form
Factorization of Latent Semantics in GANs", Section 2.2).

A style affine maps w to y = A w + b, so moving w by n moves the styles by A n. The directions that
move the styles most are the maximisers of ||A n||^2 subject to ||n|| = 1: the eigenvectors of
A^T A with the largest eigenvalues. A stacks the weights of every affine that reads the chosen ws
rows; as in the paper's release, each row of A (one style channel's weight vector) is first
scaled to unit length, so that no layer outweighs another by its weight scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from torch import nn

from renderer.directions import SEFA, Directions, sorted_eigenvectors
from renderer.worker.analysis.style_rows import StyleAffine, style_affines


@dataclass(frozen=True)
class SefaRequest:
    """Which rows to factorise (and how many directions to keep); also a cache key per model."""

    rows: tuple[int, ...]
    count: int | None = None          # None: all w_dim


def affine_matrix(affines: Sequence[StyleAffine]) -> np.ndarray:
    """A: the affines' weights stacked [sum of outputs, w_dim] (float64), each row of unit length.
    Rows that are exactly zero (an untrained input affine) carry no direction and are dropped."""
    blocks = [a.module.weight.detach().to("cpu").double().numpy() for a in affines]
    matrix = np.concatenate(blocks, axis=0)
    norms = np.linalg.norm(matrix, axis=1)
    keep = norms > 0
    return matrix[keep] / norms[keep, None]


def sefa(G: nn.Module, rows: Sequence[int], count: int | None = None) -> Directions:
    """SeFa directions for the affines reading ws `rows`, by decreasing eigenvalue of A^T A."""
    rows = tuple(sorted({int(r) for r in rows}))
    bad = [r for r in rows if not 0 <= r < G.num_ws]
    if not rows or bad:
        raise ValueError(f"choose ws rows among 0..{G.num_ws - 1} for SeFa" + (f" ({bad} do not exist)" if bad else ""))
    chosen = [a for a in style_affines(G) if a.row in rows]
    matrix = affine_matrix(chosen)
    if matrix.shape[0] == 0:
        raise ValueError(f"the style affines of rows {list(rows)} are all zero (an untrained model?): SeFa has nothing to factorise")
    vectors, values, shares = sorted_eigenvectors(matrix.T @ matrix, count)
    return Directions(method=SEFA, vectors=vectors.astype(np.float32), eigenvalues=values, explained=shares, rows=rows)


def sefa_for(G: nn.Module, request: SefaRequest) -> Directions:
    return sefa(G, request.rows, request.count)
