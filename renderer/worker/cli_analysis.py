"""Headless analysis commands:

    python visualizer.py equivariance MODEL --num N [--seed S] [--device D]
    torchrun --nproc_per_node K visualizer.py equivariance MODEL --samples N   (samples sharded over K processes)
    python visualizer.py spectrum SOURCE [SOURCE ...] [--num N] [--out-dir DIR]
    python visualizer.py spectrum MODEL --layers [--seed S] [--out-dir DIR]

SOURCE is a model (official pickle, native checkpoint, training run directory), a folder or zip of
images, or a spectrum .npz written earlier (to overlay a saved result)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, TextIO

import torch
from torch import nn

from renderer.worker.analysis.image_sources import GeneratorSource, ImageFolderSource

MODEL_HELP = "official network pickle (.pkl), native checkpoint (.safetensors), or a training run directory"


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


class ProgressBar:
    """A one-line text progress bar on a terminal stream, redrawn in place."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr, enabled: bool = True, width: int = 30) -> None:
        self.total, self.label, self.stream, self.enabled, self.width = max(total, 1), label, stream, enabled, width
        self.start = time.monotonic()

    def update(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        total = self.total if total is None else max(total, 1)
        filled = int(self.width * min(done, total) / total)
        elapsed = time.monotonic() - self.start
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {elapsed:.1f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _load(path: str, device: torch.device) -> nn.Module:
    from renderer.worker.models import load_generator

    return load_generator(path, device=device)


# ---------------------------------------------------------------------------------------------
# equivariance


def _init_distributed(device_name: str) -> tuple[bool, str]:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1): nccl with one GPU
    per process (LOCAL_RANK) on CUDA, gloo on the CPU. Returns (joined, device name to use)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, device_name
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device_name = f"cuda:{local_rank}"
    elif device_name == "auto":
        device_name = "cpu"
    torch.distributed.init_process_group(backend="nccl" if device_name.startswith("cuda") else "gloo")
    return True, device_name


def equivariance_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="visualizer.py equivariance",
        description="EQ-T, EQ-T frac and EQ-R of a StyleGAN3 generator as PSNR in dB (StyleGAN3 paper, Appendix E). "
                    "Launch with torchrun to shard the samples over several processes or GPUs.")
    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("--num", "--samples", dest="num", type=int, default=1000,
                        help="number of samples (the paper uses 50,000; default 1000); under torchrun write "
                             "--samples, since torchrun takes --num for its own --numa-binding")
    parser.add_argument("--seed", type=int, default=0, help="sample i uses seed SEED + i for z and its transforms (default 0)")
    parser.add_argument("--psi", type=float, default=1.0, help="truncation psi (default 1)")
    parser.add_argument("--batch", type=int, default=4, help="samples per batch (default 4)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    args = parser.parse_args(argv)
    if args.num < 1 or args.batch < 1:
        return _error("--num and --batch must be at least 1")

    from renderer.worker.analysis.equivariance import METRIC_NAMES, NotApplicableError, compute_equivariance
    from renderer.worker.models import ModelLoadError
    from renderer.worker.render import RenderError, resolve_device

    distributed, device_name = _init_distributed(args.device)
    try:
        rank = torch.distributed.get_rank() if distributed else 0
        world = torch.distributed.get_world_size() if distributed else 1
        try:
            device, device_label = resolve_device(device_name)
            G = _load(args.model, device)
        except (ModelLoadError, RenderError) as e:
            return _error(str(e))
        try:
            bar = ProgressBar(args.num, "equivariance", enabled=rank == 0)
            result = compute_equivariance(G, args.num, seed=args.seed, batch_size=args.batch,
                                          truncation_psi=args.psi, progress=bar.update)
            bar.close()
        except NotApplicableError as e:
            return _error(str(e))
        if rank == 0:
            for name, value in zip(METRIC_NAMES, result.values()):
                print(f"{name:<10} {value:8.3f} dB")
            print(f"({result.num_samples} samples, seeds {args.seed}..{args.seed + args.num - 1}, psi {args.psi:g}, "
                  f"{world} process{'es' if world > 1 else ''}, {device_label})")
        return 0
    finally:
        if distributed:
            torch.distributed.destroy_process_group()


# ---------------------------------------------------------------------------------------------
# spectrum


@dataclass(frozen=True)
class SourceSpec:
    path: str
    kind: str       # "model", "images" or "saved"
    label: str


def _classify(path: str) -> str:
    p = Path(path)
    if p.suffix.lower() == ".npz":
        return "saved"
    if p.is_file() and zipfile.is_zipfile(p):
        return "images"
    if p.is_dir():
        has_models = any(q.suffix in (".pkl", ".safetensors") for q in p.iterdir())
        if not has_models:
            return "images"
    return "model"


def _labels(paths: Iterable[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path.rstrip("/")).stem) or "source"
        label, k = base, 2
        while label in out:
            label, k = f"{base}_{k}", k + 1
        out.append(label)
    return out


def _image_source(spec: SourceSpec, G: nn.Module | None, resolution: int, channels: int,
                  args: argparse.Namespace) -> ImageFolderSource | GeneratorSource:
    if spec.kind == "images":
        return ImageFolderSource(spec.path, resolution, channels, max_images=args.num)
    return GeneratorSource(G, args.num, first_seed=args.seed, truncation_psi=args.psi,
                           device=str(next(G.parameters()).device))


def _layers(args: argparse.Namespace, device: torch.device, out_dir: Path) -> int:
    from renderer.worker.analysis.figures import layer_overview_figure
    from renderer.worker.analysis.spectrum import model_layer_spectra, ws_for_seed

    for path, label in zip(args.sources, _labels(args.sources)):
        G = _load(path, device)
        if getattr(G, "family", "") != "stylegan3":
            return _error(f"{path}: per-layer design spectra need a StyleGAN3 model (this is {G.family}: "
                          "its layers have no designed sampling rate, cutoff or stopband)")
        spectra = model_layer_spectra(G, ws_for_seed(G, args.seed, args.psi, device), beta=args.beta)
        print(f"{label}, seed {args.seed}: energy outside the passband (fraction of the layer's total)")
        print(f"{'layer':<14}{'s':>6}{'f_c':>9}{'f_t':>9}{'> f_c':>11}{'> f_t':>11}")
        for s in spectra:
            d = s.design
            print(f"{d.name:<14}{d.sampling_rate:>6g}{d.cutoff:>9.3f}{d.stopband:>9.3f}"
                  f"{s.energy_above_cutoff:>11.2e}{s.energy_above_stopband:>11.2e}")
        target = out_dir / f"{label}_layers.png"
        layer_overview_figure(spectra, f"{label}: per-layer spectra, seed {args.seed} "
                                       "(green f_c, blue f_t, border = Nyquist s/2)").save(target)
        print(f"wrote {target}")
    return 0


def spectrum_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="visualizer.py spectrum",
        description="Average power spectrum of models and image sets as the official spectrum tool computes it "
                    "(whitened, unit-energy Kaiser window, zero-padded FFT, |FFT|^2 averaged); writes one .npz per "
                    "source and a heatmap and a slices figure comparing them. With --layers: each model's "
                    "per-layer spectra annotated with its filter design.")
    parser.add_argument("sources", nargs="+", help=f"{MODEL_HELP}; a folder or zip of images; or a saved spectrum .npz")
    parser.add_argument("--num", type=int, default=1000, help="images per source (seeds SEED.. for models; default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="first seed for models (default 0)")
    parser.add_argument("--psi", type=float, default=1.0, help="truncation psi for models (default 1)")
    parser.add_argument("--mean", type=float, default=None, help="whitening mean (default: from the first image set, else a saved spectrum, else the first model)")
    parser.add_argument("--std", type=float, default=None, help="whitening std (default: as --mean)")
    parser.add_argument("--beta", type=float, default=8.0, help="Kaiser window beta (default 8)")
    parser.add_argument("--pad", type=int, default=4, help="zero-padding factor (default 4)")
    parser.add_argument("--batch", type=int, default=16, help="images per batch (default 16)")
    parser.add_argument("--range-db", type=float, default=80.0, help="dB range of the figures (default 80)")
    parser.add_argument("--out-dir", default="spectrum_out", help="where the .npz files and figures go (default spectrum_out)")
    parser.add_argument("--layers", action="store_true", help="per-layer annotated spectra of each model at --seed instead")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    args = parser.parse_args(argv)

    from renderer.worker.analysis.figures import heatmap_figure, slices_figure
    from renderer.spectra import AverageSpectrum
    from renderer.worker.analysis.spectrum import SpectrumAccumulator, image_stats
    from renderer.worker.models import ModelLoadError
    from renderer.worker.render import RenderError, resolve_device

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        device, _ = resolve_device(args.device)
        if args.layers:
            return _layers(args, device, out_dir)

        specs = [SourceSpec(p, _classify(p), label) for p, label in zip(args.sources, _labels(args.sources))]
        for spec in specs:
            if spec.kind != "model" and not Path(spec.path).exists():
                return _error(f"{spec.path}: no such file or folder")
        models = {spec.path: _load(spec.path, device) for spec in specs if spec.kind == "model"}
        saved = {spec.path: AverageSpectrum.load(spec.path) for spec in specs if spec.kind == "saved"}
        if models:
            first = next(iter(models.values()))
            resolution, channels = first.img_resolution, first.img_channels
        elif saved:
            resolution, channels = next(iter(saved.values())).resolution, 3
        else:
            resolution, channels = ImageFolderSource(specs[0].path, 0).native_resolution(), 3

        # Whitening constants: given, else from the first image set (as the official tool takes them
        # from the training data), else those of a saved spectrum (so that it stays comparable),
        # else from the first model's images.
        mean, std = args.mean, args.std
        if mean is None or std is None:
            images_spec = next((s for s in specs if s.kind == "images"), None)
            model_spec = next((s for s in specs if s.kind == "model"), None)
            if images_spec is None and saved:
                m, s = next(iter(saved.values())).mean, next(iter(saved.values())).std
            else:
                stats_spec = images_spec or model_spec
                source = _image_source(stats_spec, models.get(stats_spec.path), resolution, channels, args)
                m, s = image_stats(source.batches(args.batch))
            mean = m if mean is None else mean
            std = s if std is None else std
        print(f"whitening: mean {mean:.4f}, std {std:.4f}; Kaiser beta {args.beta:g}, padding x{args.pad}")

        results: list[AverageSpectrum] = []
        for spec in specs:
            if spec.kind == "saved":
                results.append(saved[spec.path])
                continue
            source = _image_source(spec, models.get(spec.path), resolution, channels, args)
            acc = SpectrumAccumulator(resolution, mean, std, beta=args.beta, pad=args.pad, device=device, label=spec.label)
            bar = ProgressBar(len(source), spec.label)
            for batch in source.batches(args.batch):
                acc.add(batch)
                bar.update(acc.count)
            bar.close()
            result = acc.result()
            result.save(str(out_dir / f"{spec.label}.npz"))
            results.append(result)
            print(f"wrote {out_dir / (spec.label + '.npz')} ({result.num_images} images)")
    except (ModelLoadError, RenderError, FileNotFoundError, ValueError) as e:
        return _error(str(e))

    mismatched = [r.label for r in results if r.resolution != results[0].resolution]
    if mismatched:
        return _error(f"cannot compare spectra of different resolutions ({', '.join(mismatched)} differ from {results[0].label})")
    heatmap_figure(results, range_db=args.range_db).save(out_dir / "heatmap.png")
    slices_figure(results, range_db=args.range_db).save(out_dir / "slices.png")
    print(f"wrote {out_dir / 'heatmap.png'} and {out_dir / 'slices.png'}")
    return 0
