"""One command for a GPU machine: parity, speed, peak memory and first-frame latency of every op path.

    python bench/gpu_check.py                 # the whole table, ended within --budget seconds
    python bench/gpu_check.py --out "$OUT"    # the report files where the machine hands them back
    python bench/gpu_check.py --dry-run       # no GPU needed: imports, fixtures, the plan, and a
                                              # rehearsal of the whole pipeline on the CPU

What it measures, on the first CUDA device, with the torch installed there:
- parity: every reference network found (tests/data, $VIZ_REFERENCE_DIR or ../shared/reference)
  on every op path (reference, gpu, triton), float32 (TF32 off; within 1e-4 as on the CPU) and with
  the official float16 layers (within 2x the reference ops' own float16 error, same run);
- synthesis time per frame (CUDA events, after warm-up; median) and peak GPU memory
  (max_memory_allocated, weights included) for StyleGAN3-T and -R at 256, 512 and 1024 and
  StyleGAN2 at 1024, random weights with the full-size hyperparameters (FULL_SIZE), batch 1 and 8,
  float32 and float16, on each path; torch's defaults otherwise (cuDNN TF32 on, no cudnn.benchmark);
- first-frame latency of StyleGAN3-T and -R 1024: one process with an empty Triton cache (cold:
  compiling), then a new process with that cache (warm). Both first initialise CUDA, cuBLAS and
  cuDNN with small ops and build the network, so the time is the frame's own (kernel compilation,
  loading, autotuning); paths run in the order reference, gpu, triton.

The measurements run in two child processes (cold, then warm-and-the-rest) that report one JSON line
per result; the parent ends a child at its deadline, so the run always ends within --budget seconds
(cells not reached are listed as skipped), then prints the tables with the ratios against the
reference path and writes gpu_check.md and gpu_check.json to --out.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from renderer.files import write_atomic  # noqa: E402
from renderer.worker.networks import build_generator  # noqa: E402
from torch_utils.ops import paths as op_paths  # noqa: E402

PATHS = ("reference", "gpu", "triton")
PRECISIONS = ("fp32", "fp16")
BATCHES = (1, 8)
TARGET_SPEEDUP = 4.0  # the issue's: Triton >= 4x faster than reference (T-1024, R-1024, batch 1) ...
TARGET_MEMORY = 0.5  # ... at <= half its peak memory
PARITY_FP32 = 1e-4  # max abs image error, as the CPU parity tests
PARITY_FP16_FACTOR = 2.0  # fp16: within this factor of the reference path's own fp16 error
RECORD = "@@gpu_check "  # prefix of the children's result lines on stdout

_SG3 = dict(z_dim=512, w_dim=512, mapping_kwargs=dict(num_layers=2), channel_base=32768, channel_max=512,
            magnitude_ema_beta=0.9988915792636801, c_dim=0, img_channels=3)
_SG3R = dict(_SG3, channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)
_SG2 = dict(z_dim=512, w_dim=512, mapping_kwargs=dict(num_layers=8), channel_base=32768, channel_max=512,
            fused_modconv_default="inference_only", c_dim=0, img_channels=3)
# The official train.py's full-size configurations (stylegan3-t, stylegan3-r: conv kernel 1, radial
# filters, doubled channel base and max; stylegan2), as their pickles record the constructor arguments.
FULL_SIZE: dict[str, tuple[str, dict]] = {
    "sg3t_256": ("stylegan3", dict(_SG3, img_resolution=256)),
    "sg3t_512": ("stylegan3", dict(_SG3, img_resolution=512)),
    "sg3t_1024": ("stylegan3", dict(_SG3, img_resolution=1024)),
    "sg3r_256": ("stylegan3", dict(_SG3R, img_resolution=256)),
    "sg3r_512": ("stylegan3", dict(_SG3R, img_resolution=512)),
    "sg3r_1024": ("stylegan3", dict(_SG3R, img_resolution=1024)),
    "sg2_1024": ("stylegan2", dict(_SG2, img_resolution=1024)),
}
# The rehearsal (--dry-run) runs the same pipeline on the CPU with networks of the reference
# fixtures' size (64 px) and random weights.
SMALL: dict[str, tuple[str, dict]] = {
    "sg3t_small": ("stylegan3", dict(_SG3, z_dim=64, w_dim=64, channel_base=2048, channel_max=64, img_resolution=64)),
    "sg3r_small": ("stylegan3", dict(_SG3R, z_dim=64, w_dim=64, channel_base=4096, channel_max=128, img_resolution=64)),
    "sg2_small": ("stylegan2", dict(_SG2, z_dim=64, w_dim=64, channel_base=2048, channel_max=64, img_resolution=64)),
}
FIRST_FRAME = ("sg3t_1024", "sg3r_1024")
FIXTURES = ("sg3t_small", "sg3r_small", "sg2_small", "sg3t_small_identity", "sg3t_small_cond", "sg3t_small_clamp",
            "sg2_small_clamp")


# ---------------------------------------------------------------------------------------------
# What runs: the plan, and the records the children report.

@dataclass(frozen=True)
class Cell:
    """One timing measurement."""

    config: str
    batch: int
    precision: str
    path: str

    @property
    def key(self) -> str:
        return f"{self.config}/b{self.batch}/{self.precision}/{self.path}"


@dataclass(frozen=True)
class Plan:
    device: str  # 'cuda' for the real run, 'cpu' for the rehearsal
    configs: tuple[str, ...]
    first_frame: tuple[str, ...]
    batches: tuple[int, ...]
    precisions: tuple[str, ...]
    paths: tuple[str, ...]
    fixtures: tuple[str, ...]
    parity_samples: int = 4  # of the fixtures' four latents
    min_frames: int = 3
    max_frames: int = 10
    seconds_per_cell: float = 0.5  # timed frames: about this long, within min_frames .. max_frames

    def networks(self) -> dict[str, tuple[str, dict]]:
        return FULL_SIZE if self.device == "cuda" else SMALL

    def cells(self) -> list[Cell]:
        """Timing cells, most important first: the issue's targets (the first-frame networks at the
        first batch size), then the other networks at that batch size, then the next batch size;
        float32 before float16 at each step."""
        def rank(cell: Cell) -> tuple:
            target = cell.batch == self.batches[0] and cell.config in self.first_frame
            return (not target, self.batches.index(cell.batch), self.precisions.index(cell.precision),
                    self.configs.index(cell.config), self.paths.index(cell.path))

        return sorted((Cell(config, batch, precision, path) for config in self.configs for batch in self.batches
                       for precision in self.precisions for path in self.paths), key=rank)

    def first_frame_cells(self) -> list[Cell]:
        precisions = [p for p in ("fp16", "fp32") if p in self.precisions]  # fp16: the default on CUDA
        return [Cell(config, 1, precision, path) for precision in precisions for config in self.first_frame
                for path in self.paths]


def real_plan(configs: tuple[str, ...] = tuple(FULL_SIZE), paths: tuple[str, ...] = PATHS) -> Plan:
    return Plan("cuda", configs, tuple(c for c in FIRST_FRAME if c in configs), BATCHES, PRECISIONS, paths, FIXTURES)


def rehearsal_plan(paths: tuple[str, ...] = PATHS) -> Plan:
    return Plan("cpu", tuple(SMALL), ("sg3t_small",), (1,), ("fp32",), paths, ("sg3t_small", "sg3r_small", "sg2_small"),
                parity_samples=1, min_frames=1, max_frames=1, seconds_per_cell=0.0)


@dataclass
class Environment:
    device_name: str
    torch: str
    cuda: str | None
    triton: str | None
    python: str
    automatic_path: str
    skipped: list[str]
    memory_gb: float | None = None
    capability: str | None = None


@dataclass
class Timing:
    cell: Cell
    ms: float | None = None  # median frame time
    min_ms: float | None = None
    frames: int = 0
    peak_mb: float | None = None
    resident_mb: float | None = None  # allocated before the frame (weights, inputs)
    error: str | None = None


@dataclass
class FirstFrame:
    cell: Cell
    phase: str  # 'cold' or 'warm'
    ms: float | None = None
    error: str | None = None


@dataclass
class Parity:
    fixture: str
    path: str
    precision: str
    max_abs: float | None = None
    error: str | None = None


@dataclass
class Skipped:
    what: str
    reason: str


@dataclass
class Results:
    environment: list[Environment] = field(default_factory=list)
    timing: list[Timing] = field(default_factory=list)
    first_frame: list[FirstFrame] = field(default_factory=list)
    parity: list[Parity] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, data: dict) -> None:
        if "cell" in data:
            data = dict(data, cell=Cell(**data["cell"]))
        record = {"environment": Environment, "timing": Timing, "first_frame": FirstFrame, "parity": Parity,
                  "skipped": Skipped}[kind](**data)
        getattr(self, kind).append(record)


def emit(kind: str, record: object) -> None:
    """One result, as a line the parent reads (flushed at once: it survives the child being ended)."""
    print(RECORD + json.dumps({"kind": kind, "data": asdict(record)}), flush=True)


# ---------------------------------------------------------------------------------------------
# Fixtures: the reference networks' numbers (torch-free loading; no pickle: allow_pickle stays off).

def fixture_dirs() -> list[Path]:
    dirs = [Path(os.environ["VIZ_REFERENCE_DIR"])] if os.environ.get("VIZ_REFERENCE_DIR") else []
    data = ROOT / "tests" / "data"
    if data.is_dir():
        dirs += [data] + sorted(p for p in data.rglob("*") if p.is_dir())
    return dirs + [ROOT / "shared" / "reference", ROOT.parent / "shared" / "reference"]


def find_fixtures(names: tuple[str, ...]) -> dict[str, Path]:
    """name -> the first <name>.npz in fixture_dirs(); missing names are absent."""
    found = {}
    for name in names:
        for directory in fixture_dirs():
            if (directory / f"{name}.npz").is_file():
                found[name] = directory / f"{name}.npz"
                break
    return found


# ---------------------------------------------------------------------------------------------
# The children.

class Deadline:
    def __init__(self, at: float) -> None:
        self.at = at

    def left(self) -> float:
        return self.at - time.time()


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


class Bench:
    """Networks built once per configuration on the device, and the measuring helpers."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.device = torch.device(plan.device)
        self.cuda = self.device.type == "cuda"
        self.networks: dict[str, object] = {}

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def initialise(self) -> None:
        """CUDA context, cuBLAS and cuDNN up before anything is timed."""
        x = torch.randn(2, 8, 16, 16, device=self.device)
        torch.nn.functional.conv2d(x, torch.randn(8, 8, 3, 3, device=self.device), padding=1)
        torch.nn.functional.conv2d(x, torch.randn(8, 1, 1, 5, device=self.device), groups=8)
        (x.flatten(1) @ x.flatten(1).t()).sum().item()
        self.sync()

    def network(self, config: str):
        if config not in self.networks:
            family, kwargs = self.plan.networks()[config]
            torch.manual_seed(0)
            G = build_generator(family, kwargs).eval().requires_grad_(False)
            self.networks[config] = G.to(self.device)
        return self.networks[config]

    def latents(self, config: str, batch: int):
        G = self.network(config)
        gen = torch.Generator().manual_seed(batch)
        z = torch.randn(batch, G.z_dim, generator=gen).to(self.device)
        with torch.no_grad():
            return G.mapping(z, None)

    def frame(self, G, ws, cell: Cell):
        with torch.no_grad(), op_paths.selected(cell.path):
            return G.synthesis(ws, noise_mode="const", force_fp32=cell.precision == "fp32")

    def timed(self, fn) -> float:
        """fn()'s time in ms: CUDA events on the GPU, the wall clock on the CPU."""
        if self.cuda:
            start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        begin = time.perf_counter()
        fn()
        return (time.perf_counter() - begin) * 1e3

    def path_reason(self, path: str) -> str | None:
        return op_paths.unavailable_reason(path, self.device)

    def release(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()


def run_first_frames(bench: Bench, phase: str, deadline: Deadline) -> None:
    bench.initialise()
    for cell in bench.plan.first_frame_cells():
        if deadline.left() < 5:
            emit("skipped", Skipped(f"first frame {phase} {cell.key}", "time budget spent"))
            continue
        reason = bench.path_reason(cell.path)
        if reason is not None:
            emit("first_frame", FirstFrame(cell, phase, error=f"cannot start: {reason}"))
            continue
        try:
            G = bench.network(cell.config)
            ws = bench.latents(cell.config, cell.batch)
            bench.sync()
            begin = time.perf_counter()
            bench.frame(G, ws, cell)
            bench.sync()
            emit("first_frame", FirstFrame(cell, phase, (time.perf_counter() - begin) * 1e3))
        except Exception as error:  # a failing path is a result to report, not the end of the run
            emit("first_frame", FirstFrame(cell, phase, error=_short(error)))
            bench.release()


def run_parity(bench: Bench, deadline: Deadline) -> None:
    found = find_fixtures(bench.plan.fixtures)
    for name in bench.plan.fixtures:
        if name not in found:
            emit("skipped", Skipped(f"parity {name}", "fixture not found in " + ", ".join(map(str, fixture_dirs()))))
            continue
        data = np.load(found[name])
        kwargs = json.loads(str(data["init_kwargs"]))
        family = "stylegan3" if "stylegan3" in str(data["class_name"]) else "stylegan2"
        G = build_generator(family, kwargs)
        G.load_state_dict({k[3:]: torch.from_numpy(np.array(data[k])) for k in data.files if k.startswith("sd/")})
        G = G.eval().requires_grad_(False).to(bench.device)
        count = bench.plan.parity_samples
        z, c = (torch.from_numpy(np.array(data[k][:count])).to(bench.device) for k in ("z", "c"))
        expected = torch.from_numpy(np.array(data["img_psi1"][:count])).double()
        for precision in bench.plan.precisions:
            for path in bench.plan.paths:
                if deadline.left() < 5:
                    emit("skipped", Skipped(f"parity {name} {path} {precision}", "time budget spent"))
                    continue
                reason = bench.path_reason(path)
                if reason is not None:
                    emit("parity", Parity(name, path, precision, error=f"cannot start: {reason}"))
                    continue
                saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
                try:
                    with torch.no_grad(), op_paths.selected(path):
                        image = G(z, c, truncation_psi=1, noise_mode="const", force_fp32=precision == "fp32")
                    error = float((image.double().cpu() - expected).abs().max())
                    emit("parity", Parity(name, path, precision, error))
                except Exception as error:  # reported per path
                    emit("parity", Parity(name, path, precision, error=_short(error)))
                finally:
                    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        del G
        bench.release()


def run_timing(bench: Bench, deadline: Deadline) -> None:
    plan = bench.plan
    seen: dict[tuple[str, str, str], float] = {}  # (config, precision, path) -> ms per sample
    for cell in plan.cells():
        estimate = seen.get((cell.config, cell.precision, cell.path), 0.0) * cell.batch * (2 + plan.min_frames)
        if deadline.left() < 5 or estimate / 1e3 > deadline.left() - 3:
            emit("skipped", Skipped(f"timing {cell.key}", "time budget spent"))
            continue
        reason = bench.path_reason(cell.path)
        if reason is not None:
            emit("timing", Timing(cell, error=f"cannot start: {reason}"))
            continue
        try:
            G = bench.network(cell.config)
            ws = bench.latents(cell.config, cell.batch)
            first = bench.timed(lambda: bench.frame(G, ws, cell))  # warm-up (compiles, autotunes)
            if first < 1000:
                first = bench.timed(lambda: bench.frame(G, ws, cell))
            bench.sync()
            if bench.cuda:
                torch.cuda.reset_peak_memory_stats()
                resident = torch.cuda.memory_allocated() / 2 ** 20
            frames = max(plan.min_frames, min(plan.max_frames, int(plan.seconds_per_cell * 1e3 / max(first, 1e-3))))
            frames = max(1, min(frames, int((deadline.left() - 3) * 1e3 / max(first, 1e-3))))
            times = [bench.timed(lambda: bench.frame(G, ws, cell)) for _ in range(frames)]
            timing = Timing(cell, statistics.median(times), min(times), len(times))
            if bench.cuda:
                timing.peak_mb = torch.cuda.max_memory_allocated() / 2 ** 20
                timing.resident_mb = resident
            seen[(cell.config, cell.precision, cell.path)] = timing.ms / cell.batch
            emit("timing", timing)
        except Exception as error:  # out of memory, a kernel that fails: this cell's result
            emit("timing", Timing(cell, error=_short(error)))
        bench.release()


def environment(bench: Bench) -> Environment:
    try:
        import triton  # optional: only where the Triton path can run

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    path, skipped = op_paths.explain(bench.device)
    env = Environment(platform.processor() or platform.machine(), torch.__version__, torch.version.cuda, triton_version,
                      platform.python_version(), path, skipped)
    if bench.cuda:
        props = torch.cuda.get_device_properties(bench.device)
        env.device_name = props.name
        env.memory_gb = round(props.total_memory / 2 ** 30, 1)
        env.capability = f"{props.major}.{props.minor}"
    return env


def child_main(args: argparse.Namespace) -> None:
    plan = Plan(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.plan).items()})
    deadline = Deadline(args.deadline)
    bench = Bench(plan)
    if args.child == "cold":
        run_first_frames(bench, "cold", deadline)
        return
    run_first_frames(bench, "warm", deadline)
    emit("environment", environment(bench))
    run_parity(bench, deadline)
    run_timing(bench, deadline)


# ---------------------------------------------------------------------------------------------
# The parent: children under a deadline, then the report.

def _plan_json(plan: Plan) -> str:
    return json.dumps(asdict(plan))


def run_child(kind: str, plan: Plan, deadline: float, env: dict, results: Results, log: Path) -> None:
    """Run one child until it ends or `deadline` (+ a few seconds' grace) passes, reading its results
    as they come."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--plan", _plan_json(plan),
           "--deadline", repr(deadline)]
    with open(log, "a") as err:
        err.write(f"--- {kind} child: {' '.join(cmd[:4])} ...\n")
        err.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT, env=env)
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline + 5 - time.time()))
            except queue.Empty:
                proc.kill()
                results.notes.append(f"the {kind} child was ended at its deadline")
                break
            if line is None:
                break
            if line.startswith(RECORD):
                record = json.loads(line[len(RECORD):])
                results.add(record["kind"], record["data"])
        proc.wait()
    if proc.returncode not in (0, -9):
        tail = log.read_text()[-2000:]
        results.notes.append(f"the {kind} child failed (exit {proc.returncode}); its last output:\n{tail}")


def measure(plan: Plan, budget: float, log: Path) -> Results:
    start = time.time()
    results = Results()
    log.parent.mkdir(parents=True, exist_ok=True)
    cache = tempfile.mkdtemp(prefix="gpu_check_triton_cache_")
    env = dict(os.environ, TRITON_CACHE_DIR=cache, PYTHONUNBUFFERED="1")
    end = start + budget - 8  # the report's few seconds
    run_child("cold", plan, min(end, start + 0.25 * budget), env, results, log)
    run_child("warm", plan, end, env, results, log)
    reported = {t.cell.key for t in results.timing} | {s.what.split(" ", 1)[1] for s in results.skipped
                                                      if s.what.startswith("timing ")}
    for cell in plan.cells():
        if cell.key not in reported:
            results.skipped.append(Skipped(f"timing {cell.key}", "not reached within the time budget"))
    return results


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _shown(t: Timing | None, value: str) -> str:
    """A timing table entry: the value, or why there is none."""
    if t is None:
        return "skipped"
    return "error" if t.error else _fmt(getattr(t, value), 1 if value == "ms" else 0)


def report(plan: Plan, results: Results, budget: float, elapsed: float) -> tuple[str, dict]:
    """The markdown report and its JSON form."""
    env = results.environment[0] if results.environment else None
    timing = {t.cell.key: t for t in results.timing}
    device_name = env.device_name if env else None
    if device_name is None and plan.device == "cuda" and torch.cuda.is_available():  # the child died early
        device_name = torch.cuda.get_device_name()

    def cell_ms(config: str, batch: int, precision: str, path: str) -> Timing | None:
        return timing.get(Cell(config, batch, precision, path).key)

    lines = [f"# gpu_check on {device_name or 'an unknown device'}", ""]
    if env:
        lines += [f"torch {env.torch}, CUDA {env.cuda}, Triton {env.triton}, Python {env.python}"
                  + (f", {env.memory_gb} GiB, compute capability {env.capability}" if env.memory_gb else ""),
                  f"Automatic op path: **{env.automatic_path}**"
                  + ("".join(f"; skipped {s}" for s in env.skipped) if env.skipped else ""), ""]
    clock = "CUDA events" if plan.device == "cuda" else "wall clock"
    lines += [f"Budget {budget:.0f} s, used {elapsed:.0f} s. Frame times: median over the timed frames ({clock}, after"
              " warm-up); memory: peak allocated during them, weights included (CUDA only).", ""]

    targets = []
    lines += ["## Targets (Triton against reference, batch 1)", ""]
    for config in plan.first_frame:
        for precision in plan.precisions:
            ref, tri, gpu = (cell_ms(config, 1, precision, p) for p in ("reference", "triton", "gpu"))
            speed = _ratio(ref.ms if ref else None, tri.ms if tri else None)
            memory = _ratio(tri.peak_mb if tri else None, ref.peak_mb if ref else None)
            gpu_speed = _ratio(ref.ms if ref else None, gpu.ms if gpu else None)
            met = None if speed is None or memory is None else speed >= TARGET_SPEEDUP and memory <= TARGET_MEMORY
            targets.append(dict(config=config, precision=precision, triton_speedup=speed, triton_memory_ratio=memory,
                                gpu_speedup=gpu_speed, met=met))
            lines.append(f"- {config} {precision}: Triton {_times(speed)} as fast (target >= {TARGET_SPEEDUP:g}x), "
                         f"peak memory {_fmt(memory, 2)} of reference's (target <= {TARGET_MEMORY:g}); "
                         f"gpu path {_times(gpu_speed)} -> "
                         + {None: "not measured", True: "met", False: "NOT met"}[met])
    lines.append("")

    paths = plan.paths
    lines += ["## Synthesis time per frame (ms) and peak memory (MB)", "",
              "| network | batch | precision | " + " | ".join(f"{p} ms" for p in paths) + " | "
              + " | ".join(f"{p} vs ref" for p in paths if p != "reference") + " | "
              + " | ".join(f"{p} MB" for p in paths) + " | "
              + " | ".join(f"{p}/ref memory" for p in paths if p != "reference") + " |",
              "|" + " --- |" * (3 + 4 * len(paths) - 2)]
    for config in plan.configs:
        for batch in plan.batches:
            for precision in plan.precisions:
                row = {p: cell_ms(config, batch, precision, p) for p in paths}
                ref = row.get("reference")
                cells = [_shown(row[p], "ms") for p in paths]
                cells += [_times(_ratio(ref.ms if ref else None, row[p].ms if row[p] else None))
                          for p in paths if p != "reference"]
                cells += [_shown(row[p], "peak_mb") for p in paths]
                cells += [_fmt(_ratio(row[p].peak_mb if row[p] else None, ref.peak_mb if ref else None), 2)
                          for p in paths if p != "reference"]
                lines.append(f"| {config} | {batch} | {precision} | " + " | ".join(cells) + " |")
    errors = [t for t in results.timing if t.error]
    if errors:
        lines += ["", "Cells that did not run:"] + [f"- {t.cell.key}: {t.error}" for t in errors]
    lines.append("")

    lines += ["## First frame (ms): cold (empty Triton cache) and warm (cache filled, new process)", "",
              "| network | precision | path | cold | warm |", "| --- | --- | --- | --- | --- |"]
    first = {(f.cell.key, f.phase): f for f in results.first_frame}
    for cell in plan.first_frame_cells():
        shown = [first.get((cell.key, phase)) for phase in ("cold", "warm")]
        text = ["-" if f is None else (f.error if f.error else _fmt(f.ms, 0)) for f in shown]
        lines.append(f"| {cell.config} | {cell.precision} | {cell.path} | {text[0]} | {text[1]} |")
    lines.append("")

    lines += ["## Parity against the reference fixtures (max abs image error)", "",
              f"float32: within {PARITY_FP32:g}. float16 (the official fp16 layers): within {PARITY_FP16_FACTOR:g}x "
              "the reference path's own float16 error on the same network.", "",
              "| fixture | precision | path | max abs error | within |", "| --- | --- | --- | --- | --- |"]
    parity_rows = []
    by = {(p.fixture, p.path, p.precision): p for p in results.parity}
    for p in results.parity:
        if p.error:
            ok = None
        elif p.precision == "fp32":
            ok = p.max_abs <= PARITY_FP32
        else:
            ref = by.get((p.fixture, "reference", p.precision))
            ok = None if ref is None or ref.max_abs is None or p.path == "reference" else \
                p.max_abs <= PARITY_FP16_FACTOR * ref.max_abs + 1e-6
        parity_rows.append(dict(asdict(p), within=ok))
        lines.append(f"| {p.fixture} | {p.precision} | {p.path} | {p.error or f'{p.max_abs:.2e}'} | "
                     + {None: "-", True: "yes", False: "NO"}[ok] + " |")
    lines.append("")
    if results.skipped:
        lines += ["## Skipped", ""] + [f"- {s.what}: {s.reason}" for s in results.skipped] + [""]
    if results.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in results.notes] + [""]

    data = dict(gpu=device_name, environment=asdict(env) if env else None, budget_s=budget,
                elapsed_s=elapsed, targets=targets, timing=[asdict(t) for t in results.timing],
                first_frame=[asdict(f) for f in results.first_frame], parity=parity_rows,
                skipped=[asdict(s) for s in results.skipped], notes=results.notes)
    return "\n".join(lines), data


def write_report(out: Path, markdown: str, data: dict) -> None:
    write_atomic(out / "gpu_check.md", (markdown + "\n").encode())
    write_atomic(out / "gpu_check.json", (json.dumps(data, indent=1) + "\n").encode())


def describe_plan(plan: Plan, budget: float) -> str:
    cells = plan.cells()
    found = find_fixtures(plan.fixtures)
    lines = [f"Would measure on {plan.device}, within {budget:.0f} s:",
             f"- first frame, cold then warm: {', '.join(c.key for c in plan.first_frame_cells())}",
             f"- parity: {len(found)} of {len(plan.fixtures)} fixtures x {', '.join(plan.paths)} x "
             f"{', '.join(plan.precisions)}",
             f"- timing and peak memory: {len(cells)} cells ({', '.join(plan.configs)}; batch "
             f"{', '.join(map(str, plan.batches))}; {', '.join(plan.precisions)}; {', '.join(plan.paths)}), "
             f"in this order: {', '.join(c.key for c in cells[:6])}, ..."]
    for name in plan.fixtures:
        lines.append(f"  fixture {name}: {found.get(name, 'NOT FOUND')}")
    return "\n".join(lines)


def dry_run(args: argparse.Namespace, paths: tuple[str, ...]) -> int:
    """Start-up checks, the plan of the real run, and a rehearsal of the pipeline on the CPU."""
    print(f"gpu_check --dry-run: Python {platform.python_version()}, torch {torch.__version__}, "
          f"CUDA available: {torch.cuda.is_available()}")
    for path in paths:
        print(f"  op path {path}: {op_paths.unavailable_reason(path) or 'importable'}")
    real = real_plan(args.configs, paths)
    print(describe_plan(real, args.budget))
    missing = [n for n in real.fixtures if n not in find_fixtures(real.fixtures)]
    if missing:
        print(f"WARNING: parity will be skipped for {', '.join(missing)} (fixtures not found)")
    plan = rehearsal_plan(paths)
    print(f"Rehearsal on the CPU ({', '.join(plan.configs)}, random weights):")
    begin = time.time()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gpu_check_dry_run_"))
    results = measure(plan, args.rehearsal_budget, out / "gpu_check.log")
    markdown, data = report(plan, results, args.rehearsal_budget, time.time() - begin)
    write_report(out, markdown, data)
    print(markdown)
    print(f"Rehearsal report written to {out / 'gpu_check.md'} and {out / 'gpu_check.json'}")
    failed = [n for n in results.notes if "failed" in n]
    return 1 if failed or not results.timing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="no GPU: check the set-up and rehearse on the CPU")
    parser.add_argument("--budget", type=float, default=285.0, help="seconds the whole run may take")
    parser.add_argument("--rehearsal-budget", type=float, default=120.0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help="folder for gpu_check.md and .json (default bench/results)")
    parser.add_argument("--configs", default=",".join(FULL_SIZE), help=f"comma list of {', '.join(FULL_SIZE)}")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    parser.add_argument("--child", choices=("cold", "warm"), help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    args.configs = tuple(c for c in args.configs.split(",") if c)
    unknown = [c for c in args.configs if c not in FULL_SIZE]
    paths = tuple(p for p in args.paths.split(",") if p)
    unknown += [p for p in paths if p not in PATHS]
    if unknown:
        parser.error(f"unknown configuration or path {', '.join(unknown)}")
    if args.dry_run:
        return dry_run(args, paths)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run with --dry-run to check the set-up without one", file=sys.stderr)
        return 2
    plan = real_plan(args.configs, paths)
    print(describe_plan(plan, args.budget), flush=True)
    out = Path(args.out) if args.out else ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    begin = time.time()
    results = measure(plan, args.budget, out / "gpu_check.log")
    markdown, data = report(plan, results, args.budget, time.time() - begin)
    write_report(out, markdown, data)
    print(markdown)
    print(f"Written to {out / 'gpu_check.md'} and {out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
