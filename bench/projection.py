"""Projection speed: optimiser steps per second, W and W+, on the demo model and on a 256 px
StyleGAN3-T with random weights (the full-size hyperparameters of
../shared/reference/shapes_sg3t_256.json, as bench/synthesis.py builds it), batch 1, float32.

    python bench/projection.py                       # both networks, W and W+
    python bench/projection.py --configs demo --steps 20
    python bench/projection.py --configs none --plot docs/projection_loss.png --plot-steps 300
    python bench/projection.py --configs demo --distances pixels,discriminator,lpips

Baseline measured in the same run: one frame of the same network (synthesis without gradients,
as the renderer draws it); "step / frame" is how many frames' time one projection step costs
(forward with gradients, the image distance, backward, Adam).

--distances times the perceptual distances too (renderer.worker.analysis.distances): the model's
D (an official StyleGAN2 discriminator sized for the network, channel_base 32768 and channel_max
512 as the official configurations have it, random weights: the same cost as trained ones) and
LPIPS with VGG16 (random weights of VGG16's shapes). Each adds its cost to the pixel distance's.

--plot projects a real emoji (Noto's U+1F600, drawn as the training set draws it) into the demo
model with the default settings but --plot-steps steps, and draws its distance curve with the
target, the start (w_avg) and the result.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from bench.synthesis import _build  # noqa: E402
from renderer.conventions import SERIES_RGB as PALETTE  # noqa: E402
from renderer.worker.analysis.figures import BACKGROUND, INK, Axes, font  # noqa: E402
from renderer.worker.latents import mapped_ws  # noqa: E402
from renderer.worker.analysis.d_distance import DiscriminatorDistance  # noqa: E402
from renderer.worker.analysis.image_distance import PixelDistance  # noqa: E402
from renderer.worker.analysis.lpips_distance import LPIPS, VGG16_CONVS, LPIPSDistance  # noqa: E402
from renderer.worker.analysis.projection import ProjectionSettings, Projector  # noqa: E402
from renderer.worker.networks.discriminator import Discriminator  # noqa: E402
from renderer.worker.analysis.display import to_uint8  # noqa: E402
from renderer.worker.models import load_generator  # noqa: E402
from renderer.files import write_atomic  # noqa: E402
from training.dataset import Emoji, NotoSource  # noqa: E402

DEMO = ROOT / "checkpoints" / "demo.safetensors"
CONFIGS = ("demo", "sg3t_256")
DISTANCES = ("pixels", "discriminator", "lpips")
PLOT_EMOJI = (0x1F600,)


def network(config: str) -> torch.nn.Module:
    if config == "demo":
        return load_generator(DEMO)
    G, _ = _build(config)
    return G


def own_frame(G: torch.nn.Module, seed: int) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(G.synthesis(mapped_ws(G, [seed]))[0])


def frame_time(G: torch.nn.Module, repeats: int) -> float:
    ws = G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            G.synthesis(ws)
            times.append(time.perf_counter() - start)
    return min(times[1:])


def distance_factory(kind: str, G: torch.nn.Module):
    """target -> distance, as distances.choose_distance would make it, with random weights."""
    if kind == "pixels":
        return PixelDistance
    torch.manual_seed(0)
    if kind == "discriminator":
        D = Discriminator(0, int(G.img_resolution), int(G.img_channels)).eval().requires_grad_(False)
        return lambda target: DiscriminatorDistance(D, target)
    convs = [(torch.randn(cout, cin, 3, 3) * (2 / (cin * 9)) ** 0.5, torch.zeros(cout)) for _, cin, cout in VGG16_CONVS]
    net = LPIPS(convs, None)
    return lambda target: LPIPSDistance(net, target)


def step_rate(G: torch.nn.Module, w_plus: bool, steps: int, distance: str = "pixels") -> float:
    settings = ProjectionSettings(steps=steps + 1, w_plus=w_plus, w_std_samples=1000)
    projector = Projector(G, own_frame(G, 1), settings, distance_factory(distance, G))
    projector.step(1)  # warm-up
    start = time.perf_counter()
    projector.step(steps)
    return steps / (time.perf_counter() - start)


def emoji_target(resolution: int) -> np.ndarray:
    image = NotoSource().render(Emoji(PLOT_EMOJI, "grinning face", "face-smiling"))
    return np.asarray(image.resize((resolution, resolution)), dtype=np.uint8)


def loss_figure(distances: list[float], images: list[tuple[str, np.ndarray]], title: str) -> Image.Image:
    width, height = 820, 420
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    steps = np.arange(1, len(distances) + 1)
    values = np.asarray(distances)
    axes = Axes(draw, (70, 40, 500, 360), (0, float(len(distances))), (0.0, float(values.max()) * 1.05))
    axes.frame(title=title, xlabel="step", ylabel="distance")
    axes.line(steps, values, PALETTE[0], width=1)
    window = max(1, len(values) // 10)
    smoothed = np.convolve(values, np.ones(window) / window, mode="valid")
    axes.line(steps[window - 1:], smoothed, PALETTE[1], width=2)
    axes.legend([("distance at each step", PALETTE[0]), (f"mean of the last {window} steps", PALETTE[1])])
    for k, (label, pixels) in enumerate(images):
        top = 40 + k * 110
        tile = Image.fromarray(pixels).resize((96, 96), Image.Resampling.NEAREST)
        canvas.paste(tile, (540, top))
        draw.text((644, top + 48), label, fill=INK, font=font(12), anchor="lm")
    return canvas


def plot(out: Path, steps: int) -> None:
    G = load_generator(DEMO)
    target = emoji_target(G.img_resolution)
    projector = Projector(G, target, ProjectionSettings(steps=steps, w_plus=True))
    start_image = projector.preview()
    begin = time.perf_counter()
    while not projector.finished:
        state = projector.step(25)
        print(f"  step {state.step}/{state.total}: distance {state.distance:.4f}, PSNR {projector.psnr():.2f} dB "
              f"({time.perf_counter() - begin:.0f} s)", flush=True)
    d = projector.distances
    figure = loss_figure(d, [("target: Noto U+1F600", target), ("start: w_avg", start_image),
                             (f"after {steps} steps", projector.preview())],
                         f"Projecting an emoji into the demo model (W+, {steps} steps)")
    buffer = io.BytesIO()
    figure.save(buffer, format="PNG")
    write_atomic(out, buffer.getvalue())
    print(f"{out}: distance {d[0]:.4f} -> {d[-1]:.4f} ({d[-1] / d[0]:.1%} of the first), PSNR {projector.psnr():.2f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)} (or none)")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per case (default: 20 demo, 3 at 256 px)")
    parser.add_argument("--distances", default="pixels", help=f"comma list of {', '.join(DISTANCES)} (default pixels)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=None, help="also write the emoji projection's loss curve here")
    parser.add_argument("--plot-steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, float32, batch 1")
    for config in [c for c in args.configs.split(",") if c and c != "none"]:
        G = network(config)
        steps = args.steps or (20 if config == "demo" else 3)
        for distance in [d for d in args.distances.split(",") if d]:
            for w_plus in (False, True):
                frame = frame_time(G, repeats=3 if config == "demo" else 1)
                rate = step_rate(G, w_plus, steps, distance)
                print(f"{config:<9} {'W+' if w_plus else 'W ':<3} {distance:<13} {rate:6.2f} steps/s  "
                      f"({1000 / rate:7.0f} ms/step; frame {frame * 1000:6.0f} ms; step / frame {1 / rate / frame:4.1f})",
                      flush=True)
    if args.plot is not None:
        plot(args.plot, args.plot_steps)


if __name__ == "__main__":
    main()
