"""Background jobs of the render worker, each a generator that does one slice of work per step.

A job is `run(spec, models) -> Iterator[Step]` whose return value is the job's result (a type of
renderer.protocol, or renderer.spectra.AverageSpectrum). The worker runs one step between frames,
inside the job's request scope (its device, op path and precision), so the interactive frame never
waits behind more than one slice. A slice is at most:
- layer analysis: one synthesis pass of the latent on screen (or the filter responses);
- average spectrum: one batch of seeds, sized so that a batch holds about 8 images of 256 x 256
  (8 images at 256 px and below, 2 at 512, 1 at 1024);
- equivariance readout: one random transform of the latent (four renders at batch 1), or the error image;
- clip: one frame.
Jobs raise JobFailed with a message for the user.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from renderer.conventions import colormap
from renderer.protocol import (AverageSpectrumRequest, ClipFrame, ClipSpec, EquivarianceData, EquivarianceRequest,
                               FilterCurve, FilterRequest, JobSpec, LayerAnalysis, LayerAnalysisRequest,
                               LayerFilterData, LayerSpectrumData, RenderArgs)
from renderer.spectra import AverageSpectrum
from renderer.timeline import check_clip, frame_args
from renderer.worker.analysis import equivariance as eq
from renderer.worker.analysis.filters import layer_filter_responses
from renderer.worker.analysis.image_sources import GeneratorSource
from renderer.worker.analysis.spectrum import SpectrumAccumulator, image_stats, model_layer_spectra
from renderer.worker.explore_jobs import EXPLORE_JOBS
from renderer.worker.job_base import JobFailed, JobRun, Step
from renderer.worker.job_base import network as _network
from renderer.worker.model_cache import ModelCache
from renderer.worker.render import RenderError, Renderer, frame_ws, network_transform

FILTER_BINS = 256             # frequency samples per axis of a filter response
STATS_IMAGES = 64             # images the whitening mean and std come from when none are given
BATCH_PIXELS = 8 * 256 * 256  # images per average-spectrum slice: this many pixels, at least one image


def job_args(spec: JobSpec) -> RenderArgs:
    """The RenderArgs whose model, device, op path and precision a job runs with."""
    return spec.base if isinstance(spec, ClipSpec) else spec.args


def _latent(G: nn.Module, args: RenderArgs, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    try:
        with torch.no_grad():
            return frame_ws(G, args, device), network_transform(G, args, device)
    except RenderError as e:
        raise JobFailed(str(e)) from None


def _require_stylegan3(G: nn.Module, what: str) -> None:
    if getattr(G, "family", "") != "stylegan3":
        raise JobFailed(f"{what} need a StyleGAN3 generator: this {getattr(G, 'family', '') or 'model'} has no "
                        "designed sampling rates, cutoffs or stopbands.")


# --- Filter responses and per-layer spectra ------------------------------------------------------

def _filter_curve(response) -> FilterCurve:
    if response.radial:
        freqs, magnitude = response.radii, response.radial_magnitude_db()
    else:
        freqs, magnitude = response.freqs, response.magnitude_db()
    return FilterCurve(kind=response.kind, sampling_rate=float(response.sampling_rate), cutoff=float(response.cutoff),
                       stopband_edge=float(response.stopband_edge), radial=bool(response.radial),
                       freqs=np.asarray(freqs, dtype=np.float64), magnitude_db=np.asarray(magnitude, dtype=np.float64))


def _filters(G: nn.Module, layer: str | None) -> tuple[LayerFilterData, ...]:
    synthesis = G.synthesis
    names = list(synthesis.layer_names) if layer is None else [layer]
    unknown = [n for n in names if n not in synthesis.layer_names]
    if unknown:
        raise JobFailed(f"This model has no synthesis layer {unknown[0]!r} (the input has no filters).")
    out = []
    for name in names:
        lf = layer_filter_responses(getattr(synthesis, name), name, bins=FILTER_BINS)
        out.append(LayerFilterData(layer=name, up=_filter_curve(lf.up) if lf.up is not None else None,
                                   down=_filter_curve(lf.down) if lf.down is not None else None))
    return tuple(out)


def filter_responses(spec: FilterRequest, models: ModelCache) -> JobRun:
    G, _ = _network(models, spec.args)
    _require_stylegan3(G, "Filter responses")
    yield Step(0, 1)
    return _filters(G, spec.layer)


def layer_analysis(spec: LayerAnalysisRequest, models: ModelCache) -> JobRun:
    """Per-layer spectra and filter responses of the latent and input transform in spec.args."""
    args = spec.args
    G, device = _network(models, args)
    _require_stylegan3(G, "Per-layer spectra")
    yield Step(1, 3)
    ws, transform = _latent(G, args, device)
    spectra = model_layer_spectra(G, ws, transform=transform, beta=args.fft_beta, pad=spec.pad)
    data = tuple(LayerSpectrumData(
        name=s.design.name, sampling_rate=float(s.design.sampling_rate), cutoff=float(s.design.cutoff),
        stopband=float(s.design.stopband), nyquist=float(s.design.nyquist),
        half_width=None if s.design.half_width is None else float(s.design.half_width), radial=s.design.radial,
        critically_sampled=s.design.critically_sampled, radii=np.asarray(s.radii, dtype=np.float64),
        profile_db=np.asarray(s.profile_db(), dtype=np.float64), energy_above_cutoff=float(s.energy_above_cutoff),
        energy_above_stopband=float(s.energy_above_stopband)) for s in spectra)
    yield Step(2, 3)
    return LayerAnalysis(model=args.model, spectra=data, filters=_filters(G, None))


# --- Average spectrum ----------------------------------------------------------------------------

def spectrum_batch_size(resolution: int) -> int:
    return max(1, min(8, BATCH_PIXELS // max(1, resolution * resolution)))


def average_spectrum(spec: AverageSpectrumRequest, models: ModelCache) -> JobRun:
    """The model's average spectrum over seeds first_seed .. first_seed + num_images - 1."""
    if spec.num_images < 1:
        raise JobFailed(f"The number of images must be at least 1, got {spec.num_images}.")
    G, device = _network(models, spec.args)
    batch = spectrum_batch_size(G.img_resolution)
    psi = spec.args.trunc_psi
    mean, std = spec.mean, spec.std
    stats_images = 0 if mean is not None and std is not None else min(STATS_IMAGES, spec.num_images)
    total = stats_images + spec.num_images
    yield Step(0, total)
    if stats_images:
        batches = []
        for images in GeneratorSource(G, stats_images, spec.first_seed, psi, str(device)).batches(batch):
            batches.append(images)
            yield Step(sum(len(b) for b in batches), total)
        m, s = image_stats(batches)
        mean = m if mean is None else mean
        std = s if std is None else std
    label = spec.args.model.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    try:
        acc = SpectrumAccumulator(G.img_resolution, mean, std, beta=spec.beta, pad=spec.pad, device=device, label=label)
    except ValueError as e:
        raise JobFailed(f"Cannot whiten the images: {e}") from None
    for images in GeneratorSource(G, spec.num_images, spec.first_seed, psi, str(device)).batches(batch):
        acc.add(images)
        yield Step(stats_images + acc.count, total)
    result: AverageSpectrum = acc.result()
    return result


# --- Equivariance readout ------------------------------------------------------------------------

def _error_image(error: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    top = float(error[mask > 0].max()) if (mask > 0).any() else 0.0
    image = colormap(error / top if top > 0 else np.zeros_like(error))
    image[mask <= 0] = 0
    return np.ascontiguousarray(image), top


def equivariance(spec: EquivarianceRequest, models: ModelCache) -> JobRun:
    """EQ-T, EQ-T frac, EQ-R of the latent in spec.args over a few random transforms of it, one per slice,
    and the error image of the user's transform. Models without an input transform: JobFailed."""
    G, device = _network(models, spec.args)
    try:
        eq.check_applicable(G)
    except eq.NotApplicableError as e:
        raise JobFailed(str(e)) from None
    if not 1 <= spec.num_samples <= 1000:
        raise JobFailed(f"The readout takes 1 to 1000 samples, got {spec.num_samples}.")
    ws, _ = _latent(G, spec.args, device)
    total = spec.num_samples + (1 if spec.error_map else 0)
    sums = eq.EquivarianceSums()
    for i in range(spec.num_samples):
        yield Step(i, total)
        draw = eq.draw_sample(i, G.z_dim, G.c_dim, G.img_resolution)
        sums += eq.batch_sums(G, ws[:1], [draw])
    readout = sums.result()
    m = np.asarray(spec.args.input_transform, dtype=np.float64)
    image, top, psnr, method = None, 0.0, float("nan"), ""
    if spec.error_map:
        yield Step(spec.num_samples, total)
        emap = eq.error_map(G, ws, m)
        image, top = _error_image(emap.error, emap.mask)
        psnr, method = float(emap.psnr), emap.method
    return EquivarianceData(eqt=float(readout.eqt), eqt_frac=float(readout.eqt_frac), eqr=float(readout.eqr),
                            num_samples=int(readout.num_samples), error_image=image, error_max=top,
                            error_psnr=psnr, error_method=method, transform_is_identity=bool(np.allclose(m, np.eye(3))))


# --- Clip frames ---------------------------------------------------------------------------------

def clip_frames(spec: ClipSpec, models: ModelCache) -> JobRun:
    """Each frame of the clip, rendered with the worker's renderer and handed out in order; the
    client encodes and writes them."""
    try:
        check_clip(spec)
    except ValueError as e:
        raise JobFailed(str(e)) from None
    renderer = Renderer(models)
    for index in range(spec.num_frames):
        result = renderer.render(frame_args(spec, index), stamp=index)
        if result.error is not None:
            raise JobFailed(f"Frame {index + 1} of {spec.num_frames}: {result.error}")
        yield Step(index + 1, spec.num_frames, ClipFrame(index=index, image=result.image, op_path=result.op_path,
                                                         precision=result.precision))
    return spec.out_path


JOBS: dict[type, Callable[..., Iterator[Step]]] = {
    LayerAnalysisRequest: layer_analysis,
    FilterRequest: filter_responses,
    AverageSpectrumRequest: average_spectrum,
    EquivarianceRequest: equivariance,
    ClipSpec: clip_frames,
    **EXPLORE_JOBS,
}


def start(spec: JobSpec, models: ModelCache) -> JobRun:
    """The generator of a job (nothing runs until its first step)."""
    work = JOBS.get(type(spec))
    if work is None:
        raise JobFailed(f"Unknown job {type(spec).__name__}.")
    return work(spec, models)


def run_to_end(spec: JobSpec, models: ModelCache | None = None,
               on_step: Callable[[Step], None] | None = None) -> object:
    """Run a job in this thread from start to finish (CLI, tests); returns its result."""
    from renderer.worker.render import request_scope

    models = models if models is not None else ModelCache()
    gen = start(spec, models)
    while True:
        try:
            with request_scope(job_args(spec)):
                step = next(gen)
        except StopIteration as stop:
            return stop.value
        except RenderError as e:
            raise JobFailed(str(e)) from None
        if on_step is not None:
            on_step(step)
