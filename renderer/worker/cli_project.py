"""`python visualizer.py project MODEL IMAGE --out W.npy [--steps N] [--w-plus] [--seed S]`:
project a real image into the model's W (or W+), headless.

The image is centre-cropped to a square and resized to the model's resolution; the result is a W
file ([num_ws, w_dim] float32, written atomically) that `visualizer.py render MODEL --w W.npy`
renders.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

import numpy as np
import torch

from renderer.files import write_atomic
from renderer.protocol import PROJECTION_DISTANCES
from renderer.worker.analysis.distances import DistanceUnavailable, choose_distance
from renderer.image_align import ImageLoadError, align_image, load_image
from renderer.worker.analysis.image_distance import psnr
from renderer.worker.analysis.projection import ProjectionError, ProjectionSettings, Projector
from renderer.worker.cli_analysis import MODEL_HELP
from renderer.worker.models import ModelLoadError, load_generator
from renderer.worker.render import RenderError, resolve_device


def _parser() -> argparse.ArgumentParser:
    defaults = ProjectionSettings()
    p = argparse.ArgumentParser(prog="visualizer.py project",
                                description="Find the W (or W+) from which the model reproduces an image.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("image", help="the image to project (PNG, JPEG, ...); its centred square is used")
    p.add_argument("--out", required=True, help="the W file to write (.npy, [num_ws, w_dim] float32)")
    p.add_argument("--steps", type=int, default=defaults.steps, help=f"optimiser steps (default {defaults.steps})")
    p.add_argument("--w-plus", action="store_true", help="optimise one w per ws row (W+) instead of one w for all")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed of the w noise and initial noise maps (default 0)")
    p.add_argument("--w-noise", type=float, default=defaults.w_noise_factor, metavar="FACTOR",
                   help=f"exploration noise on w early in the run, times sigma_w (default {defaults.w_noise_factor:g}, "
                        "the StyleGAN2 projector's; 0 suits short runs)")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class to project into (conditional models)")
    p.add_argument("--keep-noise", action="store_true",
                   help="StyleGAN2: keep the model's own noise maps instead of optimising them, so that the W file "
                        "alone reproduces the result")
    p.add_argument("--report-every", type=int, default=0, metavar="K", help="print a progress line every K steps "
                   "(default: ten lines per run)")
    p.add_argument("--distance", choices=PROJECTION_DISTANCES, default="auto",
                   help="what is minimised: pixels (Laplacian pyramid L1 + SSIM), discriminator (D's features plus the "
                        "pixel terms; D comes from an official training snapshot or from this project's training run), "
                        "lpips (LPIPS with VGG16 plus the pixel terms; needs --vgg), or auto (lpips with --vgg, else D "
                        "where the model has one, else pixels; the default)")
    p.add_argument("--vgg", default="", metavar="FILE",
                   help="torchvision's VGG16 weights (vgg16-397923af.pth, e.g. from ~/.cache/torch/hub/checkpoints) for "
                        "the LPIPS distance; read as data, never downloaded")
    p.add_argument("--lpips", default="", metavar="FILE",
                   help="LPIPS's linear weights for VGG (lpips/weights/v0.1/vgg.pth of the lpips package); without "
                        "it every VGG16 channel weighs the same")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    return p


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _w_bytes(ws: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(ws, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def project_main(argv: list[str]) -> int:
    try:
        ns = _parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage and the problem
        return int(e.code or 0)
    if ns.steps < 1:
        return _error("--steps must be at least 1")
    if not ns.w_noise >= 0:
        return _error("--w-noise must be 0 or more")
    try:
        device, device_label = resolve_device(ns.device)
        G = load_generator(ns.model, device=device)
        aligned = align_image(load_image(ns.image), G.img_resolution, G.img_channels)
        settings = ProjectionSettings(steps=ns.steps, w_plus=ns.w_plus, seed=ns.seed, class_idx=ns.class_idx,
                                      w_noise_factor=ns.w_noise, optimize_noise=not ns.keep_noise)
        chosen = choose_distance(ns.distance, ns.model, G, ns.vgg, ns.lpips)
        projector = Projector(G, aligned.pixels, settings, chosen.make)
    except (ModelLoadError, RenderError, ImageLoadError, ProjectionError, DistanceUnavailable) as e:
        return _error(str(e))

    left, top, right, bottom = aligned.crop_box
    width, height = aligned.source_size
    print(f"{ns.image}: {width}x{height}, crop ({left}, {top})-({right}, {bottom}) -> {G.img_resolution} px; "
          f"{'W+' if ns.w_plus else 'W'}, {ns.steps} steps on {device_label}, {chosen.kind} distance")
    if chosen.note:
        print(f"({chosen.note})")
    every = ns.report_every if ns.report_every > 0 else max(1, ns.steps // 10)
    start = time.perf_counter()
    while not projector.finished:
        state = projector.step(min(every, ns.steps - projector.steps_done))
        print(f"step {state.step:>5}/{state.total}  distance {state.distance:.4f}  PSNR {projector.psnr():6.2f} dB  "
              f"{time.perf_counter() - start:7.1f} s", flush=True)
    ws = projector.ws()
    try:
        write_atomic(ns.out, _w_bytes(ws))
    except OSError as e:
        return _error(f"could not write {ns.out}: {e}")

    with torch.no_grad():
        as_rendered = psnr(G.synthesis(torch.from_numpy(ws).to(device)[None], noise_mode="const"), projector.target)
    first = projector.distances[0]
    print(f"{ns.out}: [{ws.shape[0]}, {ws.shape[1]}] float32; distance {first:.4f} -> {projector.distances[-1]:.4f}, "
          f"PSNR {as_rendered:.2f} dB as `render --w` shows it")
    if projector.noise:
        print(f"(PSNR {projector.psnr():.2f} dB with the optimised noise maps, which the W file does not hold; "
              "--keep-noise fits W to the model's own)")
    return 0
