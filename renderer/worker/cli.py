"""`visualizer.py info MODEL` (a model summary with the synthesis layer table) and
`visualizer.py convert IN.pkl OUT.safetensors` (an official, other project's or TensorFlow pickle -> native
checkpoint, verified)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from renderer.worker.models import ModelLoadError, load_generator, model_info, save_generator
from renderer.protocol import ModelInfo
from renderer.worker.latents import seed_inputs

MODEL_HELP = "official network pickle (.pkl), native checkpoint (.safetensors), or a training run directory"


def _size(size) -> str:
    w, h = (size, size) if isinstance(size, int) else tuple(size)
    return f"{int(w)}x{int(h)}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
                       for i, (cell, w) in enumerate(zip(r, widths))).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def stylegan3_layer_table(G: nn.Module) -> str:
    """Input and every synthesis layer: size, channels, sampling rate s, cutoff f_c, half width f_h."""
    synthesis = G.synthesis
    inp = synthesis.input
    rows = [["input", _size(inp.size), str(inp.channels), f"{inp.sampling_rate:g}", f"{inp.bandwidth:.3f}", "-"]]
    for name in synthesis.layer_names:
        layer = getattr(synthesis, name)
        rows.append([name + (" (ToRGB)" if layer.is_torgb else ""), _size(layer.out_size), str(layer.out_channels),
                     f"{layer.out_sampling_rate:g}", f"{layer.out_cutoff:.3f}", f"{layer.out_half_width:.3f}"])
    return _table(["layer", "size", "channels", "sampling rate", "cutoff f_c", "half width f_h"], rows)


def stylegan2_layer_table(G: nn.Module) -> str:
    """Every synthesis block's layers: size and input -> output channels."""
    rows = []
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f"b{res}")
        for part in ("const", "conv0", "conv1", "torgb"):
            layer = getattr(block, part, None)
            if layer is None:
                continue
            if isinstance(layer, torch.Tensor):
                rows.append([f"b{res}.const", _size(res), str(layer.shape[0]), "learned constant"])
                continue
            note = "upsample x2" if part == "conv0" else ("to RGB" if part == "torgb" else "")
            rows.append([f"b{res}.{part}", _size(res), f"{layer.in_channels} -> {layer.out_channels}", note])
    return _table(["layer", "size", "channels", ""], rows)


def _source_line(info: ModelInfo) -> str:
    protocol = f", pickle protocol {info.pickle_protocol}" if info.pickle_protocol is not None else ""
    return f"source       {info.source}: {info.kind}{protocol}"


def _fp16_line(G: nn.Module, info: ModelInfo) -> str:
    stylegan3 = hasattr(G.synthesis, "layer_names")
    total = len(G.synthesis.layer_names) if stylegan3 else len(G.synthesis.block_resolutions)
    unit = "layers" if stylegan3 else "blocks"
    return f"float16      {info.fp16_layers} of {total} {unit} built for float16 on CUDA (used when force_fp32 is off)"


def summary(G: nn.Module, info: ModelInfo) -> str:
    lines = [
        f"model        {info.snapshot}",
        _source_line(info),
        f"family       {info.family}" + ("   (untrained: random weights)" if info.untrained else ""),
        f"resolution   {info.img_resolution}x{info.img_resolution}, {info.img_channels} channels",
        f"z / w / c    {info.z_dim} / {info.w_dim} / {info.c_dim}" + ("   (conditional)" if info.c_dim else ""),
        f"num_ws       {info.num_ws}",
        f"parameters   {info.num_params:,}",
    ]
    if info.trained_kimg is not None:
        lines.append(f"trained on   {info.trained_kimg:g} thousand images (kimg)")
    if info.has_input_transform:
        lines.append("input        Fourier features with a user transform (translate / rotate)")
    if info.has_noise:
        lines.append("noise        per-pixel noise inputs (const / random / none)")
    if info.fp16_layers:
        lines.append(_fp16_line(G, info))
    table = stylegan3_layer_table(G) if info.has_input_transform else stylegan2_layer_table(G)
    return "\n".join(lines) + "\n\nsynthesis layers\n" + table


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def info_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="visualizer.py info", description="Print a summary of a generator.")
    parser.add_argument("model", help=MODEL_HELP)
    args = parser.parse_args(argv)
    try:
        G = load_generator(args.model)
    except ModelLoadError as e:
        return _error(str(e))
    print(summary(G, model_info(G, args.model)))
    return 0


@torch.no_grad()
def _render_seed(G: nn.Module, seed: int) -> torch.Tensor:
    z, c = seed_inputs(G, [seed])
    return G(z, c, truncation_psi=1, noise_mode="const", force_fp32=True)


def convert_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="visualizer.py convert",
        description="Convert an official network pickle to a native .safetensors checkpoint (no code in it runs), "
                    "then load the result back and check that it renders the same image.",
    )
    parser.add_argument("input", help=MODEL_HELP)
    parser.add_argument("output", help="the .safetensors file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image compared after converting (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    args = parser.parse_args(argv)
    out = Path(args.output)
    if out.suffix != ".safetensors":
        return _error(f"{out}: the output must be a .safetensors file")
    if out.exists() and not args.overwrite:
        return _error(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        return _error(f"{out.parent}: no such directory")
    try:
        G = load_generator(args.input)
        provenance = model_info(G, args.input)
        save_generator(G, out, metadata={"converted_from": Path(G.source_path).name, "source": provenance.source,
                                         "source_kind": provenance.kind})
        G2 = load_generator(out)
    except ModelLoadError as e:
        return _error(str(e))
    except OSError as e:
        return _error(f"{out}: cannot write the file ({e.strerror or e})")
    expected, got = _render_seed(G, args.seed), _render_seed(G2, args.seed)
    if not torch.equal(expected, got):
        out.unlink(missing_ok=True)
        diff = (expected - got).abs().max().item()
        return _error(f"{out}: the converted network renders seed {args.seed} differently (max difference {diff:g}); "
                      "the file was removed. Please report this.")
    info = model_info(G2, out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): {info.family}, {info.img_resolution}x{info.img_resolution}, "
          f"{info.num_params:,} parameters")
    print(f"checked: seed {args.seed} renders identically from {G.source_path} and {out}")
    return 0
