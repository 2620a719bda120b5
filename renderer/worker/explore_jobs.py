"""Background jobs for exploring a model, run in slices between frames like the others
(renderer.worker.jobs). A slice is at most:
- directions: one batch of GANSpace's seeds mapped (SeFa and files: the whole set, one eigendecomposition);
- projection: one optimiser step (a preview every few steps); reading the discriminator or the VGG16
  weights it measures with happens in a thread, the job yielding a slice every 50 ms meanwhile;
- seed grid: one cell rendered;
- run over time: one snapshot loaded and rendered;
- A/B comparison: one of the two frames;
- pixel probe: one synthesis of the frame's layer (none while the cursor stays on the same frame).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from renderer.conventions import seed_from_cell, weighted_seeds
from renderer.directions import GANSPACE, Directions
from renderer.protocol import (CompareRequest, Comparison, DirectionMove, DirectionsRequest, GridCell,
                               PixelProbeRequest, PROJECTION_SPACES, ProjectionPreview, ProjectionRequest, ProjectionResult,
                               ProjectionTarget, RenderArgs, RunSnapshot, RunTimeline, RunTimelineRequest,
                               SeedGridRequest)
from renderer.worker import latent_moves
from renderer.worker.analysis.distances import DistanceUnavailable, choose_distance
from renderer.worker.analysis.projection import ProjectionError, ProjectionSettings, Projector
from renderer.worker.job_base import JobFailed, JobRun, Step, in_background, network
from renderer.worker.latents import LatentError
from renderer.worker.model_cache import ModelCache
from renderer.worker.pixel_probe import pixel_probe
from renderer.worker.render import Renderer

GANSPACE_BATCHES_PER_SLICE = 1     # 256 seeds through the mapping network
MAX_GRID_CELLS = 400
MAX_PROJECTION_STEPS = 100_000
SNAPSHOT_FILE = re.compile(r"network-snapshot-(\d+)\.(pkl|safetensors)$")
LOG_BOOKKEEPING = {"kimg", "images_seen", "training_seconds", "ada_p", "steps"}


# --- Directions ----------------------------------------------------------------------------------

def _first(directions: Directions, count: int) -> Directions:
    k = max(1, min(int(count), directions.count))
    return Directions(method=directions.method, vectors=directions.vectors[:k], eigenvalues=directions.eigenvalues[:k],
                      explained=directions.explained[:k], rows=directions.rows, num_samples=directions.num_samples,
                      first_seed=directions.first_seed)


def directions(spec: DirectionsRequest, models: ModelCache) -> JobRun:
    """A direction set of the model, kept by the worker for the frames that move along it."""
    G, _ = network(models, spec.args)
    source = spec.source
    try:
        latent_moves.check_source(G, source)
    except LatentError as e:
        raise JobFailed(str(e)) from None
    found = latent_moves.cached(G, source)
    if found is None and source.method == GANSPACE:
        job = latent_moves.ganspace_job(G, source)
        while not job.finished:
            yield Step(job.done, job.total)
            job.run_slice(GANSPACE_BATCHES_PER_SLICE)
        found = job.result()
        latent_moves.keep(G, source, found)
    if found is None:
        yield Step(0, 1)
        try:
            found = latent_moves.directions_of(G, source)
        except LatentError as e:
            raise JobFailed(str(e)) from None
    return _first(found, spec.count)


# --- Projection ----------------------------------------------------------------------------------

def checked_target(target: ProjectionTarget, resolution: int, channels: int) -> np.ndarray:
    """The target's pixels, if they are the uint8 [resolution, resolution, channels] image this model
    needs (they may come from another machine); JobFailed says what is wrong."""
    pixels = target.pixels
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        kind = pixels.dtype if isinstance(pixels, np.ndarray) else type(pixels).__name__
        raise JobFailed(f"The image arrived as {kind} values, not 8-bit pixels; open it again.")
    if pixels.shape != (resolution, resolution, channels):
        raise JobFailed(f"The image was aligned to {' x '.join(map(str, pixels.shape))} pixels, this "
                        f"model takes {resolution} x {resolution} x {channels}; press Project again (a model of "
                        "another resolution may have been opened meanwhile).")
    return pixels


def projection(spec: ProjectionRequest, models: ModelCache) -> JobRun:
    """Project the target image into W or W+, one optimiser step per slice. The model's own noise maps
    are kept (not optimised), so the W of the result alone reproduces its image."""
    if spec.space not in PROJECTION_SPACES:
        raise JobFailed(f"Unknown latent space {spec.space!r}; choose w or w+.")
    if not 1 <= spec.steps <= MAX_PROJECTION_STEPS:
        raise JobFailed(f"A projection takes 1 to {MAX_PROJECTION_STEPS} steps, got {spec.steps}.")
    if not (math.isfinite(spec.w_noise) and spec.w_noise >= 0):
        raise JobFailed(f"The w noise must be 0 or more, got {spec.w_noise}.")
    G, _ = network(models, spec.args)
    pixels = checked_target(spec.target, G.img_resolution, G.img_channels)
    yield Step(0, spec.steps)
    try:
        settings = ProjectionSettings(steps=spec.steps, w_plus=spec.space == "w+", seed=spec.seed,
                                      class_idx=spec.args.class_idx, w_noise_factor=spec.w_noise,
                                      optimize_noise=False)
        # D (a snapshot read again) or VGG16 (a 528 MB file) can take seconds to read: frames go on.
        chosen = yield from in_background(
            lambda: choose_distance(spec.distance, spec.args.model, G, spec.vgg_path, spec.lpips_path), 0, spec.steps)
        projector = Projector(G, pixels, settings, chosen.make)
    except (ProjectionError, DistanceUnavailable) as e:
        raise JobFailed(str(e)) from None
    every = max(1, int(spec.preview_every))
    target = np.ascontiguousarray(pixels if pixels.shape[2] == 3 else np.repeat(pixels, 3, 2))
    first = True
    while not projector.finished:
        state = projector.step(1)
        preview = None
        if state.step % every == 0 or projector.finished:
            preview = ProjectionPreview(step=state.step, total=state.total, distance=state.distance,
                                        image=projector.preview(), w=state.ws, target=target if first else None,
                                        crop_box=spec.target.crop_box if first else None)
            first = False
        yield Step(state.step, state.total, preview)
    return ProjectionResult(w=projector.ws(), image=projector.preview(), target=target,
                            crop_box=spec.target.crop_box, source_size=spec.target.source_size,
                            distances=np.asarray(projector.distances, dtype=np.float64), psnr=float(projector.psnr()),
                            space=spec.space, distance=chosen.kind, distance_note=chosen.note)


# --- Seed grid -----------------------------------------------------------------------------------

def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """The frame with its longer side at most `size` pixels (box filter)."""
    h, w = image.shape[:2]
    scale = min(1.0, size / max(h, w))
    if scale >= 1.0:
        return image
    small = Image.fromarray(image).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    return np.asarray(small)


def _cell_args(spec: SeedGridRequest, column: int, row: int) -> tuple[RenderArgs, tuple[int, int] | None, float | None]:
    base = spec.args
    if spec.direction is None:
        position = (spec.x + column - spec.columns // 2, spec.y + row - spec.rows // 2)
        return base.replace(latent=weighted_seeds(*position), w_file=None, layer=None, fft_show=False), position, None
    index = row * spec.columns + column
    centre = (spec.columns * spec.rows) // 2
    strength = spec.direction.strength + (index - centre) * spec.step
    move = DirectionMove(spec.direction.source, spec.direction.index, strength)
    others = tuple(m for m in base.directions if (m.source, m.index) != (move.source, move.index))
    return base.replace(directions=others + (move,), layer=None, fft_show=False), None, strength


def seed_grid(spec: SeedGridRequest, models: ModelCache) -> JobRun:
    """The grid's cells in reading order, one per slice, each a GridCell output."""
    if spec.columns < 1 or spec.rows < 1 or spec.columns * spec.rows > MAX_GRID_CELLS:
        raise JobFailed(f"A seed grid has 1 to {MAX_GRID_CELLS} cells; {spec.columns} x {spec.rows} asked for.")
    if spec.cell_size < 8:
        raise JobFailed(f"Grid cells are at least 8 pixels, got {spec.cell_size}.")
    if spec.direction is not None and not math.isfinite(spec.step):
        raise JobFailed("The grid's direction step is not a finite number.")
    renderer = Renderer(models)
    total = spec.columns * spec.rows
    for index in range(total):
        row, column = divmod(index, spec.columns)
        args, position, strength = _cell_args(spec, column, row)
        result = renderer.render(args, stamp=index)
        if result.error is not None:
            raise JobFailed(f"Grid cell {index + 1} of {total}: {result.error}")
        cell = GridCell(index=index, column=column, row=row, position=position,
                        seed=None if position is None else seed_from_cell(*position), strength=strength,
                        image=np.ascontiguousarray(thumbnail(result.image, spec.cell_size)))
        yield Step(index + 1, total, cell)
    return None                                # the cells were the outputs


# --- A training run over time --------------------------------------------------------------------

def run_snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    """(kimg, file) of each complete snapshot in a run directory, oldest first; a .safetensors beats a
    .pkl of the same kimg."""
    found: dict[int, Path] = {}
    for path in sorted(run_dir.iterdir()):
        match = SNAPSHOT_FILE.fullmatch(path.name)
        if match and path.is_file():
            kimg = int(match.group(1))
            if kimg not in found or path.suffix == ".safetensors":
                found[kimg] = path
    return sorted(found.items())


def _numbers(record: dict) -> dict[str, float]:
    return {k: float(v) for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def logged_quality(run_dir: Path) -> dict[str, dict[str, float]]:
    """Quality numbers per snapshot file name: this project's log.jsonl (snapshot records) and the
    official training code's metric-*.jsonl (results per snapshot_pkl). Lines that are not JSON objects
    are skipped."""
    out: dict[str, dict[str, float]] = {}

    def records(path: Path) -> Iterator[dict]:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record

    for record in records(run_dir / "log.jsonl"):
        if record.get("event") == "snapshot" and isinstance(record.get("file"), str):
            numbers = _numbers(record)
            out.setdefault(record["file"], {}).update({k: v for k, v in numbers.items() if k not in LOG_BOOKKEEPING})
    for path in sorted(run_dir.glob("metric-*.jsonl")):
        for record in records(path):
            name, results = record.get("snapshot_pkl"), record.get("results")
            if isinstance(name, str) and isinstance(results, dict):
                out.setdefault(name, {}).update(_numbers(results))
    return out


def run_timeline(spec: RunTimelineRequest, models: ModelCache) -> JobRun:
    """Each snapshot of the run rendered with the same latent and settings, one per slice."""
    run_dir = Path(spec.run_dir).expanduser()
    if not run_dir.is_dir():
        raise JobFailed(f"{spec.run_dir}: not a directory; choose a training run directory.")
    snapshots = run_snapshots(run_dir)
    if not snapshots:
        raise JobFailed(f"{run_dir.name} holds no network-snapshot-NNNNNN.pkl or .safetensors yet.")
    quality = logged_quality(run_dir)
    renderer = Renderer(models)
    total = len(snapshots)
    out = []
    for index, (kimg, path) in enumerate(snapshots):
        yield Step(index, total)
        result = renderer.render(spec.args.replace(model=str(path)), stamp=index)
        metrics = tuple(sorted(quality.get(path.name, {}).items()))
        snapshot = RunSnapshot(index=index, file=str(path), kimg=float(kimg), metrics=metrics,
                               image=result.image if result.error is None else None, error=result.error)
        out.append(snapshot)
        yield Step(index + 1, total, snapshot)
    return RunTimeline(run_dir=str(run_dir), snapshots=tuple(out))


# --- A/B ---------------------------------------------------------------------------------------

def difference_image(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float, float]:
    """|a - b| with the largest difference at full brightness, and the largest and mean difference."""
    if a.shape != b.shape:
        raise JobFailed(f"The two frames differ in size ({a.shape[1]}x{a.shape[0]} and {b.shape[1]}x{b.shape[0]}): "
                        "compare models of the same resolution.")
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    top = float(diff.max())
    image = (diff * (255.0 / top)).round().astype(np.uint8) if top > 0 else diff.astype(np.uint8)
    return image, top, float(diff.mean())


def compare(spec: CompareRequest, models: ModelCache) -> JobRun:
    """The frame of spec.args from both models, and the difference image."""
    if not spec.model_b:
        raise JobFailed("Choose a second model (B) to compare with.")
    renderer = Renderer(models)
    images = []
    for i, model in enumerate((spec.args.model, spec.model_b)):
        yield Step(i, 2)
        result = renderer.render(spec.args.replace(model=model), stamp=i)
        if result.error is not None:
            raise JobFailed(f"Model {'AB'[i]}: {result.error}")
        images.append(result.image)
    diff, top, mean = difference_image(*images)
    return Comparison(image_a=images[0], image_b=images[1], difference=diff, max_difference=top, mean_difference=mean,
                      model_a=spec.args.model, model_b=spec.model_b)


EXPLORE_JOBS: dict[type, Callable[..., Iterator[Step]]] = {
    DirectionsRequest: directions,
    ProjectionRequest: projection,
    SeedGridRequest: seed_grid,
    RunTimelineRequest: run_timeline,
    CompareRequest: compare,
    PixelProbeRequest: pixel_probe,
}
