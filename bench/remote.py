"""A 1024x1024 RGB frame to the GUI: local shared memory vs a remote worker on loopback, lossless and JPEG.

In one run, per frame: round-trip latency (request sent to the decoded frame in hand), bytes on
the wire, the server's encode time, the client's decode time, and the compression ratio, for
  shared memory: the local client's path (bench/transport.py: a spawned process writes the frame
                 into a multiprocessing.shared_memory segment, this side copies it out);
  remote raw / zstd / jpeg: renderer.remote's client against `python -m renderer.remote.echo` in
                 another process on 127.0.0.1, which answers each request with the same image.
Two images: "synthetic", a smooth random image with a natural image's 1/f amplitude spectrum
(exponent 1.25) plus Gaussian noise of 1 grey level; and "demo", a frame of the demo model
(64 px) rendered once and upscaled to 1024 px with Lanczos: far smoother than a real 1024 px
frame, so its lossless ratio is a best case. The remote rows add only the link's own cost:
the stand-in worker renders nothing.

    python bench/remote.py [--repeats 30] [--jpeg-quality 85] [--images synthetic,demo]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from transport import bench_shared_memory  # noqa: E402  (bench/transport.py)

from renderer.protocol import RenderArgs  # noqa: E402
from renderer.remote.client import LinkState, RemoteClient  # noqa: E402
from renderer.remote.frames import FrameCodec  # noqa: E402
from renderer.remote.tokens import new_token  # noqa: E402

SIZE = 1024
SPECTRUM_EXPONENT = 1.25
NOISE_GREY_LEVELS = 1.0


def synthetic_image(size: int = SIZE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = (rng.standard_normal(radius.shape) + 1j * rng.standard_normal(radius.shape)) / radius ** SPECTRUM_EXPONENT
        spectrum[0, 0] = 0
        channels.append(np.fft.irfft2(spectrum, s=(size, size)))
    x = np.stack(channels, -1)
    x = 0.5 * x + 0.5 * x.mean(-1, keepdims=True)  # colour channels correlate, as in photographs
    x = (x - x.mean()) / x.std() * 40 + 128 + rng.normal(0, NOISE_GREY_LEVELS, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def demo_image(size: int = SIZE) -> np.ndarray:
    from renderer.worker.render import Renderer

    result = Renderer().render(RenderArgs(model=str(ROOT / "checkpoints" / "demo.safetensors"), latent=((3, 1.0),)))
    if result.error:
        raise SystemExit(f"the demo model did not render: {result.error}")
    return np.asarray(Image.fromarray(result.image).resize((size, size), Image.LANCZOS))


def start_echo_server(image_path: Path, token: str, log_path: Path) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, VIZ_TOKEN=token, PYTHONPATH=str(ROOT))
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "renderer.remote.echo", "--port", "0", "--image", str(image_path)],
                                   cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    line = process.stdout.readline()
    if not line.startswith("Listening on 127.0.0.1:"):
        process.kill()
        raise SystemExit(f"the echo server did not start: {line!r}\n{log_path.read_text()}")
    return process, int(line.split()[2].split(":")[1].rstrip(","))


def remote_frames(client: RemoteClient, codec: FrameCodec, repeats: int, first_stamp: int) -> list:
    client.set_frame_codec(codec)
    stats = []
    for i in range(repeats + 3):  # the first three warm up
        stamp = first_stamp + i
        client.set_frame(stamp, RenderArgs(latent=((stamp, 1.0),)))
        deadline = time.monotonic() + 30
        reply = None
        while reply is None and time.monotonic() < deadline:
            reply = next((m for m in client.receive(timeout=1.0) if getattr(m, "stamp", None) == stamp), None)
        if reply is None:
            raise SystemExit(f"no frame came back: {client.status}")
        if i >= 3:
            stats.append(client.stats.last_frame)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--jpeg-quality", type=int, default=85)
    parser.add_argument("--images", default="synthetic,demo")
    opts = parser.parse_args()
    shape = (SIZE, SIZE, 3)
    raw_bytes = int(np.prod(shape))
    shm_times = bench_shared_memory(multiprocessing.get_context("spawn"), shape, opts.repeats)
    shm = statistics.median(shm_times)
    modes = [("remote raw", FrameCodec("raw")), ("remote zstd (lossless)", FrameCodec("zstd")),
             (f"remote jpeg q{opts.jpeg_quality}", FrameCodec("jpeg", opts.jpeg_quality))]
    print(f"{SIZE}x{SIZE}x3 uint8 frame ({raw_bytes / 2**20:.1f} MiB), median (and fastest) of {opts.repeats} round trips "
          "on 127.0.0.1; added = median latency - shared memory's")
    header = (f"{'image':10} {'mode':24} {'latency ms':>10} {'min ms':>7} {'added ms':>9} {'wire KiB':>9} {'ratio':>6} "
              f"{'encode ms':>9} {'decode ms':>9}")
    print(header)
    print("-" * len(header))
    token = new_token()
    for name in opts.images.split(","):
        image = synthetic_image() if name == "synthetic" else demo_image()
        print(f"{name:10} {'shared memory (local)':24} {shm * 1e3:10.2f} {min(shm_times) * 1e3:7.2f} {0:9.2f} {0:9.0f} "
              f"{'-':>6} {'-':>9} {'-':>9}")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "frame.npy"
            np.save(path, image)
            process, port = start_echo_server(path, token, Path(tmp) / "server.log")
            try:
                with RemoteClient(f"127.0.0.1:{port}", token) as client:
                    deadline = time.monotonic() + 10
                    while client.status.state != LinkState.CONNECTED and time.monotonic() < deadline:
                        time.sleep(0.01)
                    for index, (label, codec) in enumerate(modes):
                        stats = remote_frames(client, codec, opts.repeats, first_stamp=1 + index * (opts.repeats + 3))
                        latency = statistics.median(s.round_trip_seconds for s in stats)
                        fastest = min(s.round_trip_seconds for s in stats)
                        wire = statistics.median(s.wire_bytes for s in stats)
                        encode = statistics.median(s.encode_seconds for s in stats)
                        decode = statistics.median(s.decode_seconds for s in stats)
                        print(f"{name:10} {label:24} {latency * 1e3:10.2f} {fastest * 1e3:7.2f} {(latency - shm) * 1e3:9.2f} "
                              f"{wire / 1024:9.0f} {raw_bytes / wire:6.2f} {encode * 1e3:9.2f} {decode * 1e3:9.2f}")
            finally:
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    main()
