"""The values under a pixel of the frame: the shown layer's channel values, or on the spectrum half the
frequency and power there. The layer of the last frame asked about is kept, so that moving the cursor
over the same frame renders nothing again."""

from __future__ import annotations

import math

import numpy as np
import torch

from renderer.conventions import frame_parts
from renderer.protocol import PixelProbeRequest, PixelValues, RenderArgs
from renderer.worker import layer_hooks
from renderer.worker.analysis.display import select_channels
from renderer.worker.analysis.spectrum import frequency_axis, power_spectrum
from renderer.worker.job_base import JobFailed, JobRun, Step, network
from renderer.worker.model_cache import ModelCache
from renderer.worker.render import RenderError, frame_ws, network_transform

_last: tuple[RenderArgs, torch.Tensor, torch.Tensor | None, float] | None = None  # args, layer, power, rate


def _sampling_rate(models: ModelCache, args: RenderArgs, device: torch.device, width: int) -> float:
    """Samples per unit of the layer (its designed rate where the model lists one, else its width)."""
    loaded, _ = models.get(args.model, device)
    name = args.layer or layer_hooks.OUTPUT
    info = next((i for i in (loaded.layers or ()) if i.name == name), None)
    return float(info.sampling_rate) if info is not None and info.sampling_rate else float(width)


def _layer(models: ModelCache, args: RenderArgs) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    global _last
    key = args.replace(img_gain_db=0.0, img_normalize=False)
    if _last is not None and _last[0] == key:
        return _last[1], _last[2], _last[3]
    G, device = network(models, args)
    try:
        with torch.no_grad():
            ws = frame_ws(G, args, device)
            transform = network_transform(G, args, device)
            kwargs: dict = dict(noise_mode=args.noise_mode, force_fp32=args.force_fp32)
            if transform is not None:
                kwargs["transform"] = transform
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.noise_seed)
                x = layer_hooks.capture_layer(G.synthesis, args.layer, lambda: G.synthesis(ws, **kwargs))[0].float()
    except RenderError as e:
        raise JobFailed(str(e)) from None
    except KeyError:
        raise JobFailed(f"This model has no layer {args.layer!r}.") from None
    power = None
    if args.fft_show:
        power = power_spectrum(x if args.fft_all else select_channels(x, args.sel_channels, args.base_channel),
                               args.fft_beta)
    rate = _sampling_rate(models, args, device, x.shape[-1])
    _last = (key, x, power, rate)
    return x, power, rate


def pixel_probe(spec: PixelProbeRequest, models: ModelCache) -> JobRun:
    """The PixelValues under frame pixel (spec.x, spec.y); JobFailed outside the frame."""
    yield Step(0, 1)
    args = spec.args
    x, power, rate = _layer(models, args)
    _, h, w = x.shape
    width = w * 2 if args.fft_show else w
    parts = frame_parts(width, h, args.fft_show)
    layer = args.layer or layer_hooks.OUTPUT
    for index, (px, py, pw, ph) in enumerate(parts):
        if not (px <= spec.x < px + pw and py <= spec.y < py + ph):
            continue
        if index == 0:
            column, row = spec.x - px, spec.y - py
            return PixelValues(part="image", column=column, row=row, layer=layer,
                               values=x[:, row, column].cpu().numpy().astype(np.float32))
        bins_y, bins_x = power.shape
        column, row = (spec.x - px) * bins_x // pw, (spec.y - py) * bins_y // ph
        db = 10 * math.log10(float(power[row, column]) / max(float(power.mean()), 1e-30) + 1e-30)
        fx, fy = frequency_axis(bins_x, rate)[column], frequency_axis(bins_y, rate)[row]
        return PixelValues(part="spectrum", column=column, row=row, layer=layer, frequency=(float(fx), float(fy)),
                           power_db=db)
    raise JobFailed(f"Pixel ({spec.x}, {spec.y}) is outside the {width} x {h} frame.")
