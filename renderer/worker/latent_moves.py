"""Latent directions on the torch side: each model's direction sets, computed once and kept while the
network is loaded, and the frame's moves along them (RenderArgs.directions) applied to its ws.

A set is kept per loaded network object (a weak key): a reloaded or evicted model starts afresh,
so a changed snapshot never reuses another network's directions. A direction file is read again
when it changes on disk.
"""

from __future__ import annotations

import os
import weakref

import numpy as np
import torch
from torch import nn

from renderer.directions import (FILE, GANSPACE, SEFA, DirectionFileError, DirectionSource, Directions,
                                 apply_directions, directions_from_file)
from renderer.protocol import RenderArgs
from renderer.worker.analysis.ganspace import GanSpaceJob, GanSpaceRequest
from renderer.worker.analysis.sefa import sefa
from renderer.worker.analysis.style_rows import ROW_GROUPS, row_group
from renderer.worker.latents import LatentError

_sets: "weakref.WeakKeyDictionary[nn.Module, dict[object, Directions]]" = weakref.WeakKeyDictionary()


def _key(source: DirectionSource) -> object:
    if source.method == FILE:
        try:
            st = os.stat(source.path)
        except OSError:
            return source
        return source, st.st_mtime_ns, st.st_size
    return source


def check_source(G: nn.Module, source: DirectionSource) -> None:
    """LatentError unless `source` can give directions for G."""
    if source.method == GANSPACE and source.num_samples < 2:
        raise LatentError(f"GANSpace needs at least 2 samples, got {source.num_samples}.")
    if source.method == SEFA:
        if not source.rows and source.row_range not in ROW_GROUPS:
            raise LatentError(f"Unknown SeFa row range {source.row_range!r}; choose all, coarse, middle or fine.")
        bad = [r for r in source.rows if not 0 <= r < G.num_ws]
        if bad:
            raise LatentError(f"SeFa rows {bad} do not exist: this model has ws rows 0..{G.num_ws - 1}.")
    if source.method not in (GANSPACE, SEFA, FILE):
        raise LatentError(f"Unknown direction method {source.method!r}; choose ganspace, sefa or file.")


def cached(G: nn.Module, source: DirectionSource) -> Directions | None:
    return _sets.get(G, {}).get(_key(source))


def keep(G: nn.Module, source: DirectionSource, directions: Directions) -> None:
    _sets.setdefault(G, {})[_key(source)] = directions


def ganspace_job(G: nn.Module, source: DirectionSource) -> GanSpaceJob:
    return GanSpaceJob(G, GanSpaceRequest(num_samples=source.num_samples, first_seed=source.first_seed))


def directions_of(G: nn.Module, source: DirectionSource) -> Directions:
    """The directions of `source` for G, computed (in one go) unless kept already."""
    found = cached(G, source)
    if found is not None:
        return found
    check_source(G, source)
    try:
        if source.method == GANSPACE:
            job = ganspace_job(G, source)
            while not job.finished:
                job.run_slice(batches=16)
            result = job.result()
        elif source.method == SEFA:
            result = sefa(G, source.rows or row_group(G, source.row_range))
        else:
            result = directions_from_file(source.path, G.w_dim)
    except DirectionFileError as e:
        raise LatentError(str(e)) from None
    except ValueError as e:
        raise LatentError(f"{source.label()}: {e}.") from None
    keep(G, source, result)
    return result


def moved_rows(G: nn.Module, args: RenderArgs) -> tuple[int, ...]:
    """The ws rows that args.directions move."""
    if args.direction_rows == "custom":
        bad = [r for r in args.direction_custom_rows if not 0 <= r < G.num_ws]
        if bad:
            raise LatentError(f"Direction rows {bad} do not exist: this model has ws rows 0..{G.num_ws - 1}.")
        return tuple(sorted(set(args.direction_custom_rows)))
    if args.direction_rows not in ROW_GROUPS:
        raise LatentError(f"Unknown direction row range {args.direction_rows!r}; choose all, coarse, middle, fine "
                          "or custom.")
    return row_group(G, args.direction_rows)


def move_ws(G: nn.Module, ws: torch.Tensor, args: RenderArgs) -> torch.Tensor:
    """ws [1, num_ws, w_dim] moved along args.directions on the chosen rows; ws itself when nothing moves."""
    moves = [m for m in args.directions if m.strength != 0]
    if not moves:
        return ws
    vectors, strengths = [], []
    for move in moves:
        directions = directions_of(G, move.source)
        if not 0 <= move.index < directions.count:
            raise LatentError(f"{move.source.label()} has directions 0..{directions.count - 1}; "
                              f"direction {move.index} does not exist.")
        vectors.append(directions.vectors[move.index])
        strengths.append(move.strength)
    if not all(np.isfinite(strengths)):
        raise LatentError("A direction strength is not a finite number.")
    moved = apply_directions(ws[0].cpu().numpy(), np.stack(vectors), strengths, moved_rows(G, args))
    return torch.from_numpy(moved).to(ws.device)[None]
