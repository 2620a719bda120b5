"""Train a small StyleGAN3-T on the emoji set (or any data set folder / zip of training.dataset).

    python -m training.dataset --out data/emoji64.zip
    python -m training.train --data data/emoji64.zip --run-dir runs/emoji --kimg 30 --threads 2
    python -m training.train --resume runs/emoji                 # continue after Ctrl+C or a crash
    python -m training.train --resume runs/emoji --ada-target 0.6  # ... with adaptive augmentation
    python visualizer.py runs/emoji                              # follow the run's newest snapshot

One training step (the loop of StyleGAN2, Appendix B, which StyleGAN3 keeps, reordered to save a
pass):
  1. z ~ N(0, I), fakes G(z). This forward pass also updates G's running statistics
     (mapping.w_avg, each layer's magnitude_ema), as the official D-step pass does.
  2. D step: the fakes (detached) and a batch of x-flipped reals, both augmented (small integer
     shifts; with ada_target > 0 also ADA's pipeline at strength p, see augment.py); D descends
     the logistic loss, plus every r1_interval steps the weighted R1 penalty. The signs of D's
     logits on the reals steer p.
  3. G step: the updated D scores augment(the same fakes); G descends the non-saturating loss.
     The official loop draws a second batch for D with a second G forward pass; reusing one batch
     (as DCGAN-style loops do) saves that pass, about a seventh of a CPU step.
  4. G_ema <- G + beta (G_ema - G), beta = 0.5^(batch / ema_nimg): the network to show
     (Karras et al. 2018, "Progressive Growing of GANs", Section 5; half-life in images).
Adam with beta1 = 0, beta2 = 0.99 for both (StyleGAN2). StyleGAN3's blurring of D's input during
the first 200 kimg is left out: a CPU run is over before it would have faded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from renderer.allocator import tuned_environ
from renderer.worker.latents import seed_images
from renderer.worker.networks import build_generator
from torch_utils.ops import paths
from training import snapshots
from training.config import PRESETS, RESUMABLE_FIELDS, RUNTIME_FIELDS, TrainConfig
from training.augment import AdaptiveP, ada_augment, random_translate, random_xflip
from training.dataset import load_images
from training.discriminator import Discriminator
from training.loss import discriminator_loss, generator_loss
from training.quality import QualityReference, SampleQuality

@dataclass
class Networks:
    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer


@dataclass
class Progress:
    """Counters that survive a resume."""

    images_seen: int = 0
    steps: int = 0
    training_seconds: float = 0.0
    next_snapshot: int = 0
    last_snapshot: int = -1
    losses: dict[str, float] = field(default_factory=dict)
    ada_p: float = 0.0  # the adaptive augmentation's current strength


@dataclass
class RunResult:
    images_seen: int
    steps: int
    stopped_by_user: bool
    last_snapshot: Path | None
    quality: SampleQuality | None


def build_networks(cfg: TrainConfig, img_resolution: int, img_channels: int, device: torch.device) -> Networks:
    """Fresh G, D, G_ema (a copy of G) and their Adam optimisers, initialised from cfg.seed."""
    torch.manual_seed(cfg.seed)
    G = build_generator("stylegan3", cfg.generator_kwargs(img_resolution, img_channels)).train().to(device)
    D = Discriminator(**cfg.discriminator_kwargs(img_resolution, img_channels)).train().to(device)
    G_ema = build_generator("stylegan3", cfg.generator_kwargs(img_resolution, img_channels)).eval().to(device)
    G_ema.load_state_dict(G.state_dict())
    G_ema.requires_grad_(False)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.g_lr, betas=cfg.adam_betas, eps=1e-8)
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.d_lr, betas=cfg.adam_betas, eps=1e-8)
    return Networks(G, D, G_ema, opt_G, opt_D)


def ema_beta(cfg: TrainConfig, images_seen: int) -> float:
    """Per-step decay of G_ema: half-life ema_kimg thousand images, ramped up at the start."""
    ema_nimg = cfg.ema_kimg * 1000
    if cfg.ema_rampup is not None:
        ema_nimg = min(ema_nimg, images_seen * cfg.ema_rampup)
    return 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """Parameters: exponential moving average; buffers (w_avg, magnitude_ema, filters): copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def _finite_grads(module: torch.nn.Module) -> None:
    """Replace NaN/inf gradient entries so that one bad step cannot poison Adam's moments."""
    for p in module.parameters():
        if p.grad is not None:
            torch.nan_to_num_(p.grad, nan=0.0, posinf=1e5, neginf=-1e5)


def real_batch(data: torch.Tensor, cfg: TrainConfig, rng: torch.Generator, device: torch.device) -> torch.Tensor:
    """`batch` training images drawn uniformly, as float NCHW in [-1, 1], x-flipped at random."""
    index = torch.randint(0, data.shape[0], [cfg.batch], generator=rng)
    images = data[index].to(device).permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1
    return random_xflip(images, rng) if cfg.xflip else images


def training_step(nets: Networks, data: torch.Tensor, cfg: TrainConfig, progress: Progress,
                  rng: torch.Generator, device: torch.device, ada: AdaptiveP | None = None) -> dict[str, float]:
    """One D step (with R1 every r1_interval steps), one G step and the G_ema update. With `ada`,
    D sees every image through the adaptive augmentation at strength ada.p, and the real logits
    of this step feed the controller that adjusts it (progress.ada_p keeps it for the resume state)."""
    G, D = nets.G, nets.D
    p_aug = ada.p if ada is not None else 0.0

    def augment(images: torch.Tensor) -> torch.Tensor:
        images = random_translate(images, rng, cfg.translate_p, cfg.translate_max)
        return ada_augment(images, p_aug, rng) if p_aug > 0 else images

    # 1. One batch of fakes serves both steps; this pass also updates G's running statistics.
    G.requires_grad_(True)
    z = torch.randn([cfg.batch, cfg.z_dim], generator=rng).to(device)
    fake = G(z, None, update_emas=True)

    # 2. Discriminator.
    D.requires_grad_(True)
    real = real_batch(data, cfg, rng, device)
    with_r1 = cfg.r1_gamma > 0 and cfg.r1_interval > 0 and progress.steps % cfg.r1_interval == 0
    loss_fake, loss_real, r1, real_logits = discriminator_loss(D, real, fake.detach(), augment, with_r1)
    # R1 weight gamma / 2 (Mescheder et al. 2018, Eq. 9), times the lazy interval (StyleGAN2, 3.1).
    loss_D = loss_fake + loss_real + r1 * (cfg.r1_gamma / 2 * cfg.r1_interval)
    nets.opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    _finite_grads(D)
    nets.opt_D.step()

    # 3. Generator: the updated D scores the same fakes; gradients flow through D into G.
    D.requires_grad_(False)
    loss_G = generator_loss(D, fake, augment)
    nets.opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    _finite_grads(G)
    nets.opt_G.step()
    G.requires_grad_(False)

    # 3. Moving average of G.
    progress.images_seen += cfg.batch
    progress.steps += 1
    update_ema(nets.G_ema, G, ema_beta(cfg, progress.images_seen))
    losses = {"G": loss_G.item(), "D_fake": loss_fake.item(), "D_real": loss_real.item()}
    if with_r1:
        losses["R1"] = r1.item()
    if ada is not None:
        ada.observe(real_logits)
        progress.ada_p = ada.p
    return losses


@torch.no_grad()
class StopOnInterrupt:
    """Ctrl+C (SIGINT) asks the training loop to stop after the current step and save; a second
    Ctrl+C interrupts at once. Outside the main thread signals cannot be caught: it does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step and saving (Ctrl+C again to abort at once) ...", flush=True)

    def __enter__(self) -> "StopOnInterrupt":
        if _in_main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def console(line: str) -> None:
    """Print a log line at once, also when stdout is a file or a pipe (nohup, tee)."""
    print(line, flush=True)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(progress: Progress, cfg: TrainConfig, images_per_second: float) -> str:
    """kimg, images/s, losses, time used and left."""
    left = (cfg.total_kimg * 1000 - progress.images_seen) / images_per_second if images_per_second > 0 else math.inf
    losses = " ".join(f"{k} {v:.3f}" for k, v in progress.losses.items())
    aug = f" | augment p {progress.ada_p:.3f}" if cfg.ada_target > 0 else ""
    return (f"kimg {progress.images_seen / 1000:.3f}/{cfg.total_kimg:g} | {images_per_second:.2f} img/s | {losses}{aug} | "
            f"time {_duration(progress.training_seconds)} | left {_duration(max(left, 0.0))}")


class Trainer:
    """A training run in a run directory: fresh, or resumed from its training-state.pt."""

    def __init__(self, cfg: TrainConfig, run_dir: str | os.PathLike, resume: bool = False,
                 log: Callable[[str], None] = console) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.log = log
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        torch.set_flush_denormal(True)  # measured: removes occasional 20x slower CPU steps
        self.device = torch.device(cfg.device)
        images, manifest = load_images(cfg.data)
        self.data = torch.from_numpy(images)  # uint8 NHWC, kept on the CPU
        self.manifest_summary = {k: manifest[k] for k in ("count", "sources") if k in manifest}
        self.quality_reference = QualityReference(self.data)
        resolution, channels = images.shape[1], images.shape[3]
        self.nets = build_networks(cfg, resolution, channels, self.device)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.progress = Progress()
        state_path = self.run_dir / snapshots.STATE_FILE
        if resume:
            self._load_state(snapshots.read_state(state_path))
        else:
            if state_path.exists():
                raise FileExistsError(f"{self.run_dir} already holds a training run; continue it with --resume")
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ada = AdaptiveP(cfg.ada_target, cfg.ada_kimg, cfg.ada_interval, self.progress.ada_p) \
            if cfg.ada_target > 0 else None
        snapshots.write_json(self.run_dir / snapshots.CONFIG_FILE, cfg.to_dict())  # the settings in force

    # --- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        n, p = self.nets, self.progress
        return {
            "G": n.G.state_dict(), "D": n.D.state_dict(), "G_ema": n.G_ema.state_dict(),
            "opt_G": n.opt_G.state_dict(), "opt_D": n.opt_D.state_dict(),
            "rng": self.rng.get_state(),
            "progress": {"images_seen": p.images_seen, "steps": p.steps, "training_seconds": p.training_seconds,
                         "next_snapshot": p.next_snapshot, "last_snapshot": p.last_snapshot, "ada_p": p.ada_p},
            "config": json.dumps(self.cfg.to_dict()),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        n = self.nets
        n.G.load_state_dict(state["G"])
        n.D.load_state_dict(state["D"])
        n.G_ema.load_state_dict(state["G_ema"])
        n.opt_G.load_state_dict(state["opt_G"])
        n.opt_D.load_state_dict(state["opt_D"])
        self.rng.set_state(state["rng"])
        p = state["progress"]
        self.progress = Progress(int(p["images_seen"]), int(p["steps"]), float(p["training_seconds"]),
                                 int(p["next_snapshot"]), int(p["last_snapshot"]), ada_p=float(p.get("ada_p", 0.0)))

    def save_state(self) -> None:
        snapshots.write_state(self.run_dir / snapshots.STATE_FILE, self.state())

    # --- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> tuple[Path, SampleQuality]:
        """Grid, quality number, G_ema snapshot, resume state and a log line, for the current count."""
        cfg, p = self.cfg, self.progress
        count = max(cfg.grid_seeds, cfg.quality_samples)
        samples = seed_images(self.nets.G_ema, range(count), self.device)
        quality = self.quality_reference.measure(samples[:cfg.quality_samples])
        snapshots.write_grid(self.run_dir / snapshots.grid_name(p.images_seen), samples[:cfg.grid_seeds])

        metadata = {
            "kimg": p.images_seen / 1000, "training_seconds": round(p.training_seconds, 1),
            "training_steps": p.steps, "config": cfg.to_dict(), "quality": quality.as_dict(), "ada_p": p.ada_p,
            "quality_metric": "training.quality: Chamfer distance of 16x16 block-averaged RGB and edge_fd (Frechet "
                              "distance of 8x8-cell luma gradient magnitudes), seeds 0..N-1",
            "dataset": self.manifest_summary, "hardware": _hardware(self.device), "op_path": paths.active(self.device),
            "data_license": "Noto Emoji art Apache-2.0; Twemoji art CC-BY 4.0 (c) Twitter, Inc and other "
                            "contributors; see training/DATA_LICENSES.md",
        }
        path = snapshots.write_snapshot(self.nets.G_ema, self.run_dir, p.images_seen, metadata)
        p.last_snapshot = p.images_seen
        while p.next_snapshot <= p.images_seen:
            p.next_snapshot += max(int(cfg.snapshot_kimg * 1000), 1)
        self.save_state()
        snapshots.append_log(self.run_dir, {"event": "snapshot", "file": path.name, "kimg": p.images_seen / 1000,
                                            "images_seen": p.images_seen, "training_seconds": round(p.training_seconds, 1),
                                            "losses": p.losses, "ada_p": p.ada_p, **quality.as_dict()})
        self.log(f"snapshot {path.name}: chamfer {quality.chamfer:.4f} (fidelity {quality.fidelity:.4f}, "
                 f"coverage {quality.coverage:.4f}), edge_fd {quality.edge_fd:.4f}")
        return path, quality

    # --- the loop ------------------------------------------------------------------------------

    def run(self, max_steps: int | None = None,
            on_step: Callable[["Trainer"], None] | None = None) -> RunResult:
        """Train until total_kimg (or max_steps more steps, or Ctrl+C); snapshot and save on the way out."""
        cfg, p = self.cfg, self.progress
        total = int(cfg.total_kimg * 1000)
        last_path: Path | None = None
        quality: SampleQuality | None = None
        steps_here = 0
        n = self.nets
        self.log(f"{'resuming' if p.steps else 'starting'} {self.run_dir} at kimg {p.images_seen / 1000:.3f}: "
                 f"StyleGAN3-T {sum(t.numel() for t in n.G.parameters()) / 1e6:.2f} M, "
                 f"D {sum(t.numel() for t in n.D.parameters()) / 1e6:.2f} M parameters, {len(self.data)} images, "
                 f"batch {cfg.batch}, {self.device} ({torch.get_num_threads()} threads), op path {paths.active(self.device)}")
        with StopOnInterrupt() as stop:
            if p.last_snapshot < 0:
                last_path, quality = self.snapshot()  # the untrained start, for reference
            window_start, window_images = time.perf_counter(), 0
            last_line = time.perf_counter()
            while p.images_seen < total and not stop.requested and (max_steps is None or steps_here < max_steps):
                t0 = time.perf_counter()
                p.losses = training_step(self.nets, self.data, cfg, p, self.rng, self.device, self.ada)
                p.training_seconds += time.perf_counter() - t0
                steps_here += 1
                window_images += cfg.batch
                if on_step is not None:
                    on_step(self)
                now = time.perf_counter()
                if now - last_line >= cfg.progress_seconds or steps_here == 1:
                    self.log(progress_line(p, cfg, window_images / max(now - window_start, 1e-9)))
                    last_line = now
                    window_start, window_images = now, 0
                if p.images_seen >= p.next_snapshot:
                    t1 = time.perf_counter()
                    last_path, quality = self.snapshot()
                    p.training_seconds += time.perf_counter() - t1
                    window_start, window_images = time.perf_counter(), 0
            if p.last_snapshot != p.images_seen:
                last_path, quality = self.snapshot()
            else:
                self.save_state()
        snapshots.append_log(self.run_dir, {"event": "stop", "images_seen": p.images_seen, "steps": p.steps,
                                            "by_user": stop.requested, "training_seconds": round(p.training_seconds, 1)})
        self.log(f"{'stopped' if stop.requested else 'paused' if p.images_seen < total else 'finished'} at "
                 f"kimg {p.images_seen / 1000:.3f}; continue with: python -m training.train --resume {self.run_dir}")
        return RunResult(p.images_seen, p.steps, stop.requested, last_path, quality)


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def load_run_config(run_dir: str | os.PathLike, overrides: dict[str, Any]) -> TrainConfig:
    """The run's saved configuration with the settings a resumed run may change (RESUMABLE_FIELDS) replaced."""
    saved = json.loads((Path(run_dir) / snapshots.CONFIG_FILE).read_text(encoding="utf-8"))
    fixed = sorted(k for k in overrides if k not in RESUMABLE_FIELDS)
    if fixed:
        raise ValueError(f"cannot change {', '.join(fixed)} when resuming; only {', '.join(RESUMABLE_FIELDS)}")
    return TrainConfig.from_dict({**saved, **overrides})


def train(cfg: TrainConfig, run_dir: str | os.PathLike, resume: bool = False, max_steps: int | None = None,
          on_step: Callable[[Trainer], None] | None = None, log: Callable[[str], None] = console) -> RunResult:
    """Run (or continue) training in `run_dir`; see Trainer."""
    return Trainer(cfg, run_dir, resume=resume, log=log).run(max_steps=max_steps, on_step=on_step)


# --- command line ------------------------------------------------------------------------------

def _with_malloc_tuning(argv: list[str]) -> None:
    """glibc's defaults return and re-map the big training buffers every step; measured here, these
    settings halve a StyleGAN3 training step. They must be set before the process starts, so re-exec."""
    env = tuned_environ()
    if env != dict(os.environ):
        os.execve(sys.executable, [sys.executable, "-m", "training.train", *argv], env)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description="Train a small StyleGAN3-T (see training/train.py).")
    parser.add_argument("--data", help="data set folder or zip (python -m training.dataset)")
    parser.add_argument("--run-dir", help="new run directory")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--kimg", type=float, help="train until this many thousand images (total, across runs)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--snapshot-kimg", type=float)
    parser.add_argument("--r1-gamma", type=float)
    parser.add_argument("--ada-target", type=float,
                        help="adaptive augmentation: keep the share of real images D calls real near this "
                             "(0.6 in the ADA paper; 0 = off); may be switched on when resuming")
    parser.add_argument("--ada-kimg", type=float, help="adaptive augmentation: thousand images for p to go 0 -> 1")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--steps", type=int, help="stop (and save) after this many steps of this run")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--device", help="cpu (default) or cuda")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's allocator defaults")
    args = parser.parse_args(argv)
    if not args.no_malloc_tuning:
        _with_malloc_tuning(argv)

    overrides = {"total_kimg": args.kimg, "threads": args.threads, "device": args.device,
                 "ada_target": args.ada_target, "ada_kimg": args.ada_kimg}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        if args.resume:
            changed = {"data": args.data, "snapshot_kimg": args.snapshot_kimg, "batch": args.batch,
                       "r1_gamma": args.r1_gamma, "seed": args.seed}
            overrides.update({k: v for k, v in changed.items() if v is not None})
            cfg = load_run_config(args.resume, overrides)
            run_dir = args.resume
        else:
            if not args.data or not args.run_dir:
                parser.error("a new run needs --data and --run-dir (or --resume RUN_DIR)")
            settings = {**PRESETS[args.preset], "data": str(args.data), **overrides}
            for key in ("batch", "snapshot_kimg", "r1_gamma", "seed"):
                if getattr(args, key) is not None:
                    settings[key] = getattr(args, key)
            cfg = TrainConfig.from_dict(settings)
            run_dir = args.run_dir
        train(cfg, run_dir, resume=bool(args.resume), max_steps=args.steps)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
