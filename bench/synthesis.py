"""Synthesis speed of the op paths, measured in one run: reference vs fast CPU vs the convolutions alone.

    python bench/synthesis.py                       # T-256, R-256, T-1024, SG2-1024 + training step
    python bench/synthesis.py --configs sg3t_256 --repeats 2 --threads 2
    python bench/synthesis.py --configs sg3t_256 --bf16   # also the bfloat16 preview and its error
    python bench/synthesis.py --configs none --train      # only the training step

Each (network, path) runs in its own subprocess, so peak memory (ru_maxrss) is per path; the base
line printed is the same process after building the network, before any synthesis. Random weights
with the full-size hyperparameters of ../shared/reference/shapes_<config>.json; batch 1, float32.
Both paths run with the allocator settings the renderer and trainer use (renderer/allocator.py:
glibc otherwise hands big blocks back after each op and page-faults them in again) and
flush-denormal on.

"ref/floor" is the reference time over the convolutions-only time: the largest speed-up any faster
filtering could give while the convolutions stay torch's own. The training step prints the same
bound from its convolutions' forward and backward alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from renderer.allocator import MALLOC_TUNING  # noqa: E402  (torch-free)

CONFIGS = ("sg3t_256", "sg3r_256", "sg3t_1024", "sg2_1024")


def _reference_dir() -> Path:
    for candidate in (os.environ.get("VIZ_REFERENCE_DIR"), ROOT / "shared" / "reference", ROOT.parent / "shared" / "reference"):
        if candidate and Path(candidate, "README.md").exists():
            return Path(candidate)
    raise SystemExit("reference shapes not found (set VIZ_REFERENCE_DIR)")


def _build(config: str):
    import torch

    from renderer.worker.networks import build_generator

    info = json.loads((_reference_dir() / f"shapes_{config}.json").read_text())
    family = "stylegan3" if "stylegan3" in info["class_name"] else "stylegan2"
    torch.manual_seed(0)
    return build_generator(family, info["persistence_init_kwargs"]).eval().requires_grad_(False), info


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_synthesis(config: str, path: str, repeats: int, precision: str, out_file: str) -> dict:
    import torch

    from torch_utils.ops import paths

    G, _ = _build(config)
    torch.manual_seed(1)
    ws = G.mapping(torch.randn(1, G.z_dim), None)
    base = _maxrss_mb()
    times = []
    with torch.no_grad(), paths.selected(path, precision):
        for _ in range(repeats):
            start = time.perf_counter()
            img = G.synthesis(ws, noise_mode="const")
            times.append(time.perf_counter() - start)
        described = paths.describe()
    torch.save(img.float(), out_file)
    return {"time": min(times), "times": times, "maxrss_mb": _maxrss_mb(), "base_mb": base, "path": described}


def worker_floor(config: str, repeats: int) -> dict:
    """The network's convolutions alone: every layer's conv shape through plain conv2d (batch 1)."""
    import torch
    import torch.nn.functional as F

    G, info = _build(config)
    shapes = []
    if "stylegan3" in info["class_name"]:
        for layer in G.synthesis.layers():
            k = layer.conv_kernel
            shapes.append((layer.in_channels, layer.out_channels, k, layer.in_size[1], layer.in_size[0], k - 1, 1))
    else:
        for layer in info["synthesis_layers"]["layers"]:
            up = layer.get("up", 1)
            k = layer.get("kernel_size", 1)
            s = layer["size"][0] // up
            shapes.append((layer["in_channels"], layer["channels"], k, s, s, k // 2, up))
    del G
    tensors = []
    for cin, cout, k, h, w, pad, up in shapes:
        x = torch.randn(1, cin, h, w).contiguous(memory_format=torch.channels_last)
        wt = torch.randn(cout, cin, k, k)
        tensors.append((x, wt, pad, up))
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            for x, wt, pad, up in tensors:
                if up > 1:  # StyleGAN2 upsampling conv: transposed, stride 2
                    F.conv_transpose2d(x, wt.transpose(0, 1), stride=up)
                else:
                    F.conv2d(x, wt, padding=pad)
            times.append(time.perf_counter() - start)
    return {"time": min(times), "times": times}


def worker_train(path: str, batch: int, repeats: int) -> dict:
    """Forward + backward through a small StyleGAN3-T generator (64x64)."""
    import torch

    from torch_utils.ops import paths

    G, _ = _build("sg3t_small")
    G.train().requires_grad_(True)
    torch.manual_seed(2)
    z = torch.randn(batch, G.z_dim)
    times = []
    with paths.selected(path):
        for _ in range(repeats):
            start = time.perf_counter()
            img = G(z, None)
            img.square().mean().backward()
            times.append(time.perf_counter() - start)
            G.zero_grad(set_to_none=True)
    return {"time": min(times), "times": times, "maxrss_mb": _maxrss_mb()}


def worker_train_floor(batch: int, repeats: int) -> dict:
    """The training step's convolutions alone: each layer of the small StyleGAN3-T as one
    shared-weight conv2d (the fast path's form at batch > 1), forward and backward (input and
    weight gradients), on the layout the fast path hands them (channels_last)."""
    import torch
    import torch.nn.functional as F

    G, _ = _build("sg3t_small")
    tensors = []
    for layer in G.synthesis.layers():
        k = layer.conv_kernel
        h, w = layer.in_size[1], layer.in_size[0]
        x = torch.randn(batch, layer.in_channels, h, w).contiguous(memory_format=torch.channels_last)
        wt = torch.randn(layer.out_channels, layer.in_channels, k, k)
        tensors.append((x.requires_grad_(True), wt.requires_grad_(True), k - 1))
    del G
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for x, wt, pad in tensors:
            y = F.conv2d(x, wt, padding=pad)
            y.backward(torch.ones_like(y))
        times.append(time.perf_counter() - start)
        for x, wt, _ in tensors:
            x.grad = wt.grad = None
    return {"time": min(times), "times": times}


def _run(args: list[str], threads: int) -> dict:
    env = dict(os.environ, **MALLOC_TUNING, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--threads", str(threads), "--worker", *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"worker {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)} (or none)")
    parser.add_argument("--repeats", type=int, default=2, help="synthesis calls per path (best is reported)")
    parser.add_argument("--ref-repeats", type=int, default=1, help="synthesis calls on the reference path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="also time the bfloat16 preview and print its error")
    parser.add_argument("--train", dest="train", action="store_true", default=True)
    parser.add_argument("--no-train", dest="train", action="store_false")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--train-rounds", type=int, default=3,
                        help="alternate reference and fast this many times (best of each is reported)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    if args.worker:
        kind, *rest = args.worker
        if kind == "synth":
            config, path, repeats, precision, out_file = rest
            result = worker_synthesis(config, path, int(repeats), precision, out_file)
        elif kind == "floor":
            result = worker_floor(rest[0], int(rest[1]))
        elif kind == "train_floor":
            result = worker_train_floor(int(rest[0]), int(rest[1]))
        else:
            result = worker_train(rest[0], int(rest[1]), int(rest[2]))
        print(json.dumps(result))
        return

    configs = [c for c in args.configs.split(",") if c and c != "none"]
    print(f"torch {torch.__version__}, {args.threads} threads, allocator settings {MALLOC_TUNING}")
    header = (f"{'network':10} {'reference s':>11} {'fast s':>7} {'ratio':>6} {'conv floor s':>12} {'fast/floor':>10} "
              f"{'ref/floor':>9} {'ref peak MB':>11} {'fast peak MB':>12} {'mem ratio':>9} {'(base MB)':>9} {'max |diff|':>10} {'max |ref|':>9}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            ref = _run(["synth", config, "reference", str(args.ref_repeats), "float32", f"{tmp}/ref.pt"], args.threads)
            fast = _run(["synth", config, "cpu", str(args.repeats), "float32", f"{tmp}/fast.pt"], args.threads)
            floor = _run(["floor", config, str(args.repeats)], args.threads)
            a, b = torch.load(f"{tmp}/ref.pt"), torch.load(f"{tmp}/fast.pt")
            diff = (a - b).abs().max().item()
            row = (f"{config:10} {ref['time']:11.2f} {fast['time']:7.2f} {ref['time'] / fast['time']:6.1f} {floor['time']:12.2f} "
                   f"{fast['time'] / floor['time']:10.2f} {ref['time'] / floor['time']:9.1f} {ref['maxrss_mb']:11.0f} {fast['maxrss_mb']:12.0f} "
                   f"{fast['maxrss_mb'] / ref['maxrss_mb']:9.2f} {fast['base_mb']:9.0f} {diff:10.2e} {a.abs().max().item():9.3f}")
            rows.append(row)
            print(header if len(rows) == 1 else "", row, sep="\n" if len(rows) == 1 else "", flush=True)
            if args.bf16:
                bf = _run(["synth", config, "cpu", str(args.repeats), "bfloat16", f"{tmp}/bf.pt"], args.threads)
                c = torch.load(f"{tmp}/bf.pt")
                print(f"  bfloat16 PREVIEW {config}: {bf['time']:.2f} s ({fast['time'] / bf['time']:.2f}x vs fast float32), "
                      f"max |error| vs float32 reference {(c - a).abs().max().item():.3e} "
                      f"(mean {(c - a).abs().mean().item():.2e}, image range +-{a.abs().max().item():.2f})", flush=True)
    if args.train:
        # Alternating the paths makes a busy stretch of the machine hit both, not one.
        refs, fasts = [], []
        for _ in range(max(args.train_rounds, 1)):
            refs.append(_run(["train", "reference", str(args.train_batch), "3"], args.threads))
            fasts.append(_run(["train", "cpu", str(args.train_batch), "3"], args.threads))
        ref, fast = min(refs, key=lambda r: r["time"]), min(fasts, key=lambda r: r["time"])
        floor = _run(["train_floor", str(args.train_batch), "3"], args.threads)
        rounds = ", ".join(f"{r['time'] / f['time']:.1f}x" for r, f in zip(refs, fasts))
        print(f"training step (G forward+backward, StyleGAN3-T 64x64 small, batch {args.train_batch}): "
              f"reference {ref['time']:.2f} s, fast {fast['time']:.2f} s, ratio {ref['time'] / fast['time']:.1f}x "
              f"(each round: {rounds}); peak MB {ref['maxrss_mb']:.0f} vs {fast['maxrss_mb']:.0f}")
        print(f"  its convolutions alone (forward + backward, shared weight): {floor['time']:.2f} s = "
              f"{floor['time'] / fast['time']:.0%} of the fast step; the most any filtering speed-up could give "
              f"is reference / conv-only = {ref['time'] / floor['time']:.1f}x")


if __name__ == "__main__":
    main()
