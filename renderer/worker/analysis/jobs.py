"""Analysis jobs the GUI starts and polls: each runs in a background process (renderer.background) and
returns plain dataclasses of numpy arrays, so the GUI never imports torch.

- layer analysis: every StyleGAN3 layer's radial spectrum profile, energy above f_c and f_t, its
  design numbers, and its up/down filter responses, for the latent and transform on screen;
- filter responses of one layer (or all);
- average spectrum of N seeds of the model, with progress, saved to an .npz; or a saved .npz loaded;
- equivariance readout (EQ-T, EQ-T frac, EQ-R) for the latent on screen, and the error image of the
  user's transform.
Torch is imported only inside the background process (and by the work functions when called directly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from renderer.background import BackgroundJob, JobCancelled, JobFailed
from renderer.protocol import RenderArgs

Report = Callable[[int, int], None]
Cancelled = Callable[[], bool]

FILTER_BINS = 256             # frequency samples per axis of a filter response
SPECTRUM_DISPLAY_MAX = 512    # side of the average-spectrum image sent back (block-averaged if larger)
SPECTRUM_RANGE_DB = 80.0      # dB below the peak that the average-spectrum image spans
STATS_IMAGES = 64             # images the whitening mean and std come from when none are given
BATCH_SIZE = 8
READOUT_SAMPLES = 4           # random transforms of the latent in the live readout
LAYER_SPECTRUM_PAD = 2        # zero padding of the per-layer spectra


# ---------------------------------------------------------------------------------------------
# What comes back.


@dataclass(frozen=True)
class LayerSpectrumData:
    """One layer's radial spectrum profile and design, in cycles per unit (output image = 1 unit wide)."""

    name: str
    sampling_rate: float
    cutoff: float                   # f_c
    stopband: float                 # f_t
    nyquist: float                  # s / 2
    half_width: float | None
    radial: bool
    critically_sampled: bool
    radii: np.ndarray               # ring centres
    profile_db: np.ndarray          # mean power per ring, dB relative to the spectrum's mean
    energy_above_cutoff: float      # fractions of the total energy
    energy_above_stopband: float


@dataclass(frozen=True)
class FilterCurve:
    kind: str                       # "up" or "down"
    sampling_rate: float            # the rate the filter runs at
    cutoff: float
    stopband_edge: float            # f_c + f_h
    radial: bool
    freqs: np.ndarray               # along one axis (separable filters) or ring radii (radial ones)
    magnitude_db: np.ndarray        # 0 dB at DC


@dataclass(frozen=True)
class LayerFilterData:
    layer: str
    up: FilterCurve | None          # None where the layer does not resample
    down: FilterCurve | None


@dataclass(frozen=True)
class LayerAnalysis:
    model: str
    spectra: tuple[LayerSpectrumData, ...]
    filters: tuple[LayerFilterData, ...]

    def spectrum(self, name: str) -> LayerSpectrumData | None:
        return next((s for s in self.spectra if s.name == name), None)

    def filters_of(self, name: str) -> LayerFilterData | None:
        return next((f for f in self.filters if f.layer == name), None)


@dataclass(frozen=True)
class SpectrumSlice:
    freqs: np.ndarray               # cycles per image width, from 0
    power_db: np.ndarray


@dataclass(frozen=True)
class AverageSpectrumData:
    """An average spectrum ready to show: a colour-mapped dB image and its 0 and 45 degree slices."""

    label: str
    resolution: int
    num_images: int
    mean: float                     # whitening constants
    std: float
    freq_limit: float               # the image spans -freq_limit .. freq_limit on both axes
    image: np.ndarray               # uint8 [S, S, 3], row 0 at -freq_limit (fy), column 0 at -freq_limit (fx)
    peak_db: float                  # the image spans peak_db - range_db .. peak_db
    range_db: float
    slice_0deg: SpectrumSlice
    slice_45deg: SpectrumSlice
    path: str | None                # the .npz it was saved to or loaded from


@dataclass(frozen=True)
class EquivarianceData:
    eqt: float                      # PSNR in dB
    eqt_frac: float
    eqr: float
    num_samples: int
    error_image: np.ndarray | None  # uint8 [H, W, 3]: |expected - rendered| for the user's transform
    error_max: float                # the |difference| at full brightness, in image units ([-1, 1] images)
    error_psnr: float
    error_method: str
    transform_is_identity: bool     # then the error image is trivially zero


# ---------------------------------------------------------------------------------------------
# Requests.


@dataclass(frozen=True)
class AverageSpectrumRequest:
    args: RenderArgs                # model, device, truncation psi
    num_images: int
    first_seed: int = 0
    beta: float = 8.0
    pad: int = 4
    mean: float | None = None       # whitening; None: from the model's first STATS_IMAGES images
    std: float | None = None
    save_path: str | None = None    # write the full spectrum here (.npz)
    batch_size: int = BATCH_SIZE


@dataclass(frozen=True)
class EquivarianceRequest:
    args: RenderArgs                # model, device, latent, input transform (the user's M)
    num_samples: int = READOUT_SAMPLES
    error_map: bool = True


@dataclass(frozen=True)
class FilterRequest:
    args: RenderArgs
    layer: str | None = None        # None: every synthesis layer


# ---------------------------------------------------------------------------------------------
# Shared steps (run in the background process).


def _load(args: RenderArgs):
    """The generator and device for args.model / args.device; failures as JobFailed."""
    from renderer.worker.models import ModelLoadError, load_generator
    from renderer.worker.render import RenderError, resolve_device

    if not args.model:
        raise JobFailed("No model is loaded.")
    try:
        device, _ = resolve_device(args.device)
        return load_generator(args.model, device=device), device
    except (ModelLoadError, RenderError, FileNotFoundError) as e:
        raise JobFailed(f"Could not load {args.model}: {e}") from e


def _latent(G, args: RenderArgs, device):
    from renderer.worker.render import RenderError, latent_ws, network_transform

    try:
        return latent_ws(G, args, device), network_transform(G, args, device)
    except RenderError as e:
        raise JobFailed(str(e)) from e


def _check(cancelled: Cancelled) -> None:
    if cancelled():
        raise JobCancelled


def _filter_curve(response) -> FilterCurve:
    if response.radial:
        freqs, magnitude = response.radii, response.radial_magnitude_db()
    else:
        freqs, magnitude = response.freqs, response.magnitude_db()
    return FilterCurve(kind=response.kind, sampling_rate=float(response.sampling_rate), cutoff=float(response.cutoff),
                       stopband_edge=float(response.stopband_edge), radial=bool(response.radial),
                       freqs=np.asarray(freqs, dtype=np.float64), magnitude_db=np.asarray(magnitude, dtype=np.float64))


def _filters(G, layer: str | None) -> tuple[LayerFilterData, ...]:
    from renderer.worker.analysis.filters import layer_filter_responses

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


def _require_stylegan3(G, what: str) -> None:
    if getattr(G, "family", "") != "stylegan3":
        raise JobFailed(f"{what} need a StyleGAN3 generator: this {getattr(G, 'family', '') or 'model'} has no "
                        "designed sampling rates, cutoffs or stopbands.")


# ---------------------------------------------------------------------------------------------
# Work functions: (request, report, cancelled) -> result. Callable directly (tests, CLI) or in a job.


def layer_analysis(args: RenderArgs, report: Report, cancelled: Cancelled) -> LayerAnalysis:
    """Per-layer spectra (and filter responses) of the latent and input transform in `args`."""
    from renderer.worker.analysis.spectrum import model_layer_spectra

    G, device = _load(args)
    _require_stylegan3(G, "Per-layer spectra")
    report(1, 3)
    _check(cancelled)
    ws, transform = _latent(G, args, device)
    spectra = model_layer_spectra(G, ws, transform=transform, beta=args.fft_beta, pad=LAYER_SPECTRUM_PAD)
    report(2, 3)
    _check(cancelled)
    data = tuple(LayerSpectrumData(
        name=s.design.name, sampling_rate=float(s.design.sampling_rate), cutoff=float(s.design.cutoff),
        stopband=float(s.design.stopband), nyquist=float(s.design.nyquist),
        half_width=None if s.design.half_width is None else float(s.design.half_width), radial=s.design.radial,
        critically_sampled=s.design.critically_sampled, radii=np.asarray(s.radii, dtype=np.float64),
        profile_db=np.asarray(s.profile_db(), dtype=np.float64), energy_above_cutoff=float(s.energy_above_cutoff),
        energy_above_stopband=float(s.energy_above_stopband)) for s in spectra)
    filters = _filters(G, None)
    report(3, 3)
    return LayerAnalysis(model=args.model, spectra=data, filters=filters)


def filter_responses(request: FilterRequest, report: Report, cancelled: Cancelled) -> tuple[LayerFilterData, ...]:
    G, _ = _load(request.args)
    _require_stylegan3(G, "Filter responses")
    _check(cancelled)
    result = _filters(G, request.layer)
    report(1, 1)
    return result


def _block_mean(power: np.ndarray, limit: int) -> np.ndarray:
    """Average non-overlapping blocks so that the side is at most `limit` (edge rows/columns dropped)."""
    factor = max(1, math.ceil(power.shape[0] / limit))
    if factor == 1:
        return power
    n = power.shape[0] // factor
    return power[:n * factor, :n * factor].reshape(n, factor, n, factor).mean(axis=(1, 3))


def spectrum_display(spectrum, path: str | None) -> AverageSpectrumData:
    """An AverageSpectrum as the GUI shows it: colour-mapped dB image (at most SPECTRUM_DISPLAY_MAX wide)
    spanning SPECTRUM_RANGE_DB below the peak, and the slices in dB."""
    from renderer.worker.analysis.figures import colormap

    power = _block_mean(np.asarray(spectrum.power, dtype=np.float64), SPECTRUM_DISPLAY_MAX)
    db = 10 * np.log10(np.maximum(power, 1e-30))
    peak = float(db.max())
    image = colormap((db - (peak - SPECTRUM_RANGE_DB)) / SPECTRUM_RANGE_DB)
    f0, p0 = spectrum.slice_0deg()
    f45, p45 = spectrum.slice_45deg()
    to_db = lambda p: 10 * np.log10(np.maximum(np.asarray(p, dtype=np.float64), 1e-30))  # noqa: E731
    return AverageSpectrumData(
        label=spectrum.label, resolution=int(spectrum.resolution), num_images=int(spectrum.num_images),
        mean=float(spectrum.mean), std=float(spectrum.std), freq_limit=float(spectrum.resolution) / 2,
        image=np.ascontiguousarray(image), peak_db=peak, range_db=SPECTRUM_RANGE_DB,
        slice_0deg=SpectrumSlice(np.asarray(f0, dtype=np.float64), to_db(p0)),
        slice_45deg=SpectrumSlice(np.asarray(f45, dtype=np.float64), to_db(p45)), path=path)


def average_spectrum(request: AverageSpectrumRequest, report: Report, cancelled: Cancelled) -> AverageSpectrumData:
    """The model's average spectrum over seeds first_seed .. first_seed + num_images - 1."""
    from pathlib import Path

    from renderer.worker.analysis.image_sources import GeneratorSource
    from renderer.worker.analysis.spectrum import SpectrumAccumulator, image_stats

    if request.num_images < 1:
        raise JobFailed(f"The number of images must be at least 1, got {request.num_images}.")
    G, device = _load(request.args)
    mean, std = request.mean, request.std
    stats_images = 0 if mean is not None and std is not None else min(STATS_IMAGES, request.num_images)
    total = stats_images + request.num_images
    if stats_images:
        def counted(batches):
            for done, batch in enumerate(batches, 1):
                _check(cancelled)
                yield batch
                report(min(done * request.batch_size, stats_images), total)

        source = GeneratorSource(G, stats_images, request.first_seed, request.args.trunc_psi, str(device))
        m, s = image_stats(counted(source.batches(request.batch_size)))
        mean = m if mean is None else mean
        std = s if std is None else std
    label = Path(request.args.model).stem
    try:
        acc = SpectrumAccumulator(G.img_resolution, mean, std, beta=request.beta, pad=request.pad, device=device,
                                  label=label)
    except ValueError as e:
        raise JobFailed(f"Cannot whiten the images: {e}") from e
    source = GeneratorSource(G, request.num_images, request.first_seed, request.args.trunc_psi, str(device))
    for batch in source.batches(request.batch_size):
        _check(cancelled)
        acc.add(batch)
        report(stats_images + acc.count, total)
    spectrum = acc.result()
    if request.save_path:
        Path(request.save_path).parent.mkdir(parents=True, exist_ok=True)
        spectrum.save(request.save_path)
    return spectrum_display(spectrum, request.save_path)


def load_average_spectrum(path: str, report: Report, cancelled: Cancelled) -> AverageSpectrumData:
    """A saved average spectrum (.npz of `visualizer.py spectrum` or of the GUI) ready to show."""
    import zipfile

    from renderer.worker.analysis.spectrum import AverageSpectrum

    try:
        spectrum = AverageSpectrum.load(path)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise JobFailed(f"{path} is not a saved average spectrum: {e}") from e
    report(1, 1)
    return spectrum_display(spectrum, path)


def _error_image(error: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    from renderer.worker.analysis.figures import colormap

    top = float(error[mask > 0].max()) if (mask > 0).any() else 0.0
    image = colormap(error / top if top > 0 else np.zeros_like(error))
    image[mask <= 0] = 0
    return np.ascontiguousarray(image), top


def equivariance(request: EquivarianceRequest, report: Report, cancelled: Cancelled) -> EquivarianceData:
    """EQ-T, EQ-T frac, EQ-R of the latent in `args` (a few random transforms of it), and the error image
    of the user's transform. Models without an input transform: JobFailed with the reason."""
    from renderer.worker.analysis.equivariance import NotApplicableError, check_applicable, error_map, latent_readout

    G, device = _load(request.args)
    try:
        check_applicable(G)
    except NotApplicableError as e:
        raise JobFailed(str(e)) from e
    ws, _ = _latent(G, request.args, device)
    steps = 2 if request.error_map else 1
    report(0, steps)
    _check(cancelled)
    readout = latent_readout(G, ws, num_samples=request.num_samples)
    report(1, steps)
    m = np.asarray(request.args.input_transform, dtype=np.float64)
    image, top, psnr, method = None, 0.0, float("nan"), ""
    if request.error_map:
        _check(cancelled)
        emap = error_map(G, ws, m)
        image, top = _error_image(emap.error, emap.mask)
        psnr, method = float(emap.psnr), emap.method
        report(2, steps)
    return EquivarianceData(eqt=float(readout.eqt), eqt_frac=float(readout.eqt_frac), eqr=float(readout.eqr),
                            num_samples=int(readout.num_samples), error_image=image, error_max=top,
                            error_psnr=psnr, error_method=method, transform_is_identity=bool(np.allclose(m, np.eye(3))))


# ---------------------------------------------------------------------------------------------
# Starting them in the background.


def _start(work: Callable[[Any, Report, Cancelled], Any], request: Any, name: str, failure: str) -> BackgroundJob:
    return BackgroundJob(work, request, name=name, failure=failure)


def start_layer_analysis(args: RenderArgs) -> BackgroundJob[LayerAnalysis]:
    return _start(layer_analysis, args, "layer-spectra", "Per-layer spectra failed")


def start_filter_responses(request: FilterRequest) -> BackgroundJob[tuple[LayerFilterData, ...]]:
    return _start(filter_responses, request, "filter-responses", "Filter responses failed")


def start_average_spectrum(request: AverageSpectrumRequest) -> BackgroundJob[AverageSpectrumData]:
    return _start(average_spectrum, request, "average-spectrum", "Average spectrum failed")


def start_load_average_spectrum(path: str) -> BackgroundJob[AverageSpectrumData]:
    return _start(load_average_spectrum, path, "load-spectrum", "Loading the spectrum failed")


def start_equivariance(request: EquivarianceRequest) -> BackgroundJob[EquivarianceData]:
    return _start(equivariance, request, "equivariance", "Equivariance readout failed")
