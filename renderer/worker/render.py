"""RenderArgs -> RenderResult: latents, mapping, synthesis, layer capture, display.

Follows DESIGN.md's conventions so that seeds, fractional seeds, truncation and transforms give
the official tools' images. The input transform, the op path and the precision are arguments of
each call; the cached network is never modified. render() never raises: every failure comes back
as RenderResult.error.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from renderer.worker import latent_moves, layer_hooks
from renderer.allocator import release_free_memory
from renderer.worker.analysis.display import layer_frame
from renderer.worker.analysis.resample import untransform
from renderer.worker.latents import LatentError, blended_ws, mapped_ws
from renderer.worker.model_cache import LoadedModel, ModelCache, ModelUnavailable
from renderer.worker.wfile import WFileError, read_w_file, w_from_bytes
from renderer.protocol import NOISE_MODES, OP_PATHS, PRECISIONS, RenderArgs, RenderResult
from torch_utils.ops import paths


class RenderError(Exception):
    """A failure to report to the user as is."""


def resolve_device(name: str) -> tuple[torch.device, str]:
    """'auto' -> CUDA if available, else MPS, else CPU; returns the device and its label for users."""
    name = (name or "auto").strip().lower()
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RenderError(f"Device {name!r} was asked for, but CUDA is not available "
                              f"(torch {torch.__version__}); choose 'cpu' or 'auto'.")
        device = torch.device(name)
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise RenderError(f"Device {name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s).")
        return torch.device("cuda", index), f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if name == "mps":
        if not mps_ok:
            raise RenderError("Device 'mps' was asked for, but Apple's MPS backend is not available here.")
        return torch.device("mps"), "mps"
    if name == "cpu":
        return torch.device("cpu"), "cpu"
    raise RenderError(f"Unknown device {name!r}; choose auto, cpu, cuda, cuda:N or mps.")


def frame_ws(G: nn.Module, args: RenderArgs, device: torch.device, notes: list[str] | None = None) -> torch.Tensor:
    """ws [1, num_ws, w_dim] that a frame of `args` uses: the W file, or the (fractional) seeds with class
    and truncation, then the style mix, then the moves along latent directions. Problems the user should
    know of are appended to `notes`."""
    notes = [] if notes is None else notes
    try:
        if args.w_npy is not None:
            ws = torch.from_numpy(w_from_bytes(args.w_npy, G.num_ws, G.w_dim)).to(device)[None]
        elif args.w_file:
            ws = torch.from_numpy(read_w_file(args.w_file, G.num_ws, G.w_dim)).to(device)[None]
        else:
            ws = blended_ws(G, args.latent, device, args.trunc_psi, args.trunc_cutoff, args.class_idx)
        rows = [r for r in args.mix_rows if 0 <= r < G.num_ws]
        if len(rows) != len(args.mix_rows):
            notes.append(f"Style-mix rows outside 0..{G.num_ws - 1} were ignored.")
        if rows:
            ws = ws.clone()
            mixed = mapped_ws(G, [int(args.mix_seed)], device, args.trunc_psi, args.trunc_cutoff, args.class_idx)
            ws[:, rows] = mixed[:, rows]
        ws = latent_moves.move_ws(G, ws, args)
    except (LatentError, WFileError) as e:
        raise RenderError(str(e)) from None
    return ws


def network_transform(G: nn.Module, args: RenderArgs, device: torch.device,
                      notes: list[str] | None = None) -> torch.Tensor | None:
    """What synthesis.input.transform receives for `args`: inv(M) for networks with an input transform
    (StyleGAN3); None for the others."""
    m = np.asarray(args.input_transform, dtype=np.float64)
    if getattr(G, "family", "") != "stylegan3":
        if notes is not None and (not np.allclose(m, np.eye(3)) or args.untransform):
            notes.append("This model has no input transform; translate, rotate and untransform do not apply.")
        return None
    try:
        inverse = np.linalg.inv(m)
    except np.linalg.LinAlgError as e:
        raise RenderError("The input transform is not invertible.") from e
    return torch.from_numpy(inverse).to(device=device, dtype=torch.float32)


def check_request(args: RenderArgs) -> None:
    """Refuse settings no frame can be rendered with (RenderError with the reason)."""
    if args.op_path not in OP_PATHS:
        raise RenderError(f"Unknown op path {args.op_path!r}; choose one of {', '.join(OP_PATHS)}.")
    if args.precision not in PRECISIONS:
        raise RenderError(f"Unknown precision {args.precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if args.noise_mode not in NOISE_MODES:
        raise RenderError(f"Unknown noise mode {args.noise_mode!r}; choose one of {', '.join(NOISE_MODES)}.")
    if not args.model:
        raise RenderError("No model selected: give an official .pkl, a .safetensors checkpoint or a training run directory.")


@contextlib.contextmanager
def request_scope(args: RenderArgs) -> "contextlib.AbstractContextManager[tuple[torch.device, str, str]]":
    """The device of a request, with its op path and precision selected for the calls inside the block;
    yields (device, device label, op path)."""
    check_request(args)
    device, label = resolve_device(args.device)
    with paths.selected(args.op_path, args.precision):
        try:
            op_path = paths.active(device)
        except RuntimeError as e:
            raise RenderError(f"Op path: {e}") from e
        yield device, label, op_path


SLOW_START_PATHS = ("triton",)   # paths that compile kernels for each shape at first use


class KernelWarmup:
    """Compiles a slow-to-start op path's kernels for a model's shapes in a background thread (one
    synthesis pass on that path), so that a newly loaded model's first frames need not wait for the
    compiler: until it is done they render on the next path of the automatic choice."""

    def __init__(self) -> None:
        self._done: dict[tuple, str | None] = {}      # key -> None (ready) or the failure
        self._running: dict[tuple, threading.Thread] = {}
        self._lock = threading.Lock()

    def ready(self, key: tuple) -> bool:
        with self._lock:
            return key in self._done

    def start(self, key: tuple, work: Callable[[], None]) -> None:
        """Run work() once for `key` in a thread (no-op if it runs or ran)."""
        with self._lock:
            if key in self._done or key in self._running:
                return

            def run() -> None:
                try:
                    work()
                    outcome = None
                except Exception as e:  # a failed warm-up leaves the frames on the path that works
                    outcome = f"{type(e).__name__}: {e}"
                with self._lock:
                    self._done[key] = outcome
                    self._running.pop(key, None)

            thread = threading.Thread(target=run, name=f"warm-{key[-1]}", daemon=True)
            self._running[key] = thread
            thread.start()

    def failure(self, key: tuple) -> str | None:
        with self._lock:
            return self._done.get(key)


def fp16_layers(G: nn.Module, device: torch.device, force_fp32: bool) -> int:
    """How many of the network's layers run in float16 on `device` (the official fp16 layers: CUDA only,
    never with force_fp32)."""
    if force_fp32 or device.type != "cuda":
        return 0
    return sum(1 for m in G.synthesis.modules() if getattr(m, "use_fp16", False))


# How running out of memory reads in torch's errors: CUDA and MPS "out of memory", the CPU
# allocator's "DefaultCPUAllocator: can't allocate memory: you tried to allocate ...".
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")


def _is_out_of_memory(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError)
                                          and any(text in str(e).lower() for text in _OUT_OF_MEMORY))


class Renderer:
    """Renders frames from the networks of a model cache (its own, or the worker's shared one)."""

    def __init__(self, models: ModelCache | None = None) -> None:
        self.models = models if models is not None else ModelCache()
        self.warmup = KernelWarmup()
        self._last_model: tuple[str, str] | None = None

    def render(self, args: RenderArgs, stamp: int = 0) -> RenderResult:
        result = RenderResult(stamp=stamp, args=args, precision=args.precision)
        start = time.perf_counter()
        try:
            with request_scope(args) as (device, result.device, result.op_path):
                self._render(args, device, result)
        except (RenderError, ModelUnavailable) as e:
            result.error = str(e)
        except Exception as e:
            if _is_out_of_memory(e):
                self.release_memory()
                result.error = (f"Out of memory on {result.device or 'the device'} while rendering. "
                                "Try a smaller layer, turn off the spectrum or untransform, or render on another device.")
            else:
                result.error = f"Rendering failed: {type(e).__name__}: {e}"
        result.image = result.image if result.error is None else None
        result.render_time = time.perf_counter() - start
        return result

    @staticmethod
    def release_memory() -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        release_free_memory()

    def _render(self, args: RenderArgs, device: torch.device, result: RenderResult) -> None:
        model, result.message = self.models.get(args.model, device)
        if (args.model, str(device)) != self._last_model:
            # The previous model's frames were bigger or smaller: return what they left free (allocator.py).
            if self._last_model is not None:
                release_free_memory()
            self._last_model = (args.model, str(device))
        result.model = model.info
        notes: list[str] = [result.message] if result.message else []
        _, skipped = paths.explain(device)
        result.op_path_note = "; ".join(skipped) if skipped and args.op_path == "auto" else None
        result.fp16_layers = fp16_layers(model.G, device, args.force_fp32)
        if paths.compute_dtype(device) == torch.bfloat16:
            result.precision = "bfloat16 (low-precision preview)"
        elif args.precision != "float32":
            result.precision = "float32"
            notes.append(f"The {args.precision} preview is not available: {paths.bfloat16_unsupported_reason(device)}; "
                         "rendered in float32.")
        with self._while_warming(args, model, device, result, notes):
            self._render_frame(args, model, device, result, notes)

    @contextlib.contextmanager
    def _while_warming(self, args: RenderArgs, model: LoadedModel, device: torch.device, result: RenderResult,
                       notes: list[str]):
        """On an automatically chosen slow-to-start path, warm its kernels for this model in the
        background and render on the next path until they are ready."""
        path = result.op_path
        if args.op_path != "auto" or path not in SLOW_START_PATHS:
            yield
            return
        key = (str(model.file), model.file_state, str(device), path)
        if self.warmup.ready(key):
            failure = self.warmup.failure(key)
            if failure is not None:
                result.op_path = paths.next_path(device, path)
                notes.append(f"The {path} kernels failed for this model ({failure}); using {result.op_path}.")
                with paths.selected(result.op_path, args.precision):
                    yield
                return
            yield
            return
        G, num_ws, w_dim = model.G, model.G.num_ws, model.G.w_dim

        def warm() -> None:
            with torch.no_grad(), paths.selected(path, args.precision):
                G.synthesis(torch.zeros([1, num_ws, w_dim], device=device), noise_mode="const",
                            force_fp32=args.force_fp32)

        self.warmup.start(key, warm)
        result.op_path = paths.next_path(device, path)
        notes.append(f"Compiling the {path} kernels for this model in the background (once; cached on disk); "
                     f"frames use {result.op_path} until they are ready.")
        with paths.selected(result.op_path, args.precision):
            yield

    def _render_frame(self, args: RenderArgs, model: LoadedModel, device: torch.device, result: RenderResult,
                      notes: list[str]) -> None:
        G = model.G
        with torch.no_grad():
            ws = frame_ws(G, args, device, notes)
            result.w = ws[0].float().cpu().numpy()
            transform = network_transform(G, args, device, notes)
            x = self._synthesize(model, ws, transform, args, device, result)
            if not torch.isfinite(x).all():
                raise RenderError(f"The network produced NaN or Inf values in {args.layer or 'the output'}"
                                  f"{' (bfloat16 preview: try float32)' if args.precision == 'bfloat16' else ''}.")
            if args.untransform and transform is not None:
                ppu = self._pixels_per_unit(model, args.layer, G)
                x = untransform(x[None], np.asarray(args.input_transform), ppu)[0]
            image, result.stats_all, result.stats_sel = layer_frame(
                x, sel_channels=args.sel_channels, base_channel=args.base_channel, normalize=args.img_normalize,
                gain_db=args.img_gain_db, fft_show=args.fft_show, fft_all=args.fft_all,
                fft_range_db=args.fft_range_db, fft_beta=args.fft_beta)
        result.image = np.ascontiguousarray(image)
        result.layers = model.layers or ()
        result.message = " ".join(notes) if notes else None

    def _synthesize(self, model: LoadedModel, ws: torch.Tensor, transform: torch.Tensor | None, args: RenderArgs,
                    device: torch.device, result: RenderResult) -> torch.Tensor:
        """The requested layer of batch element 0, float32 [C, H, W]; lists the layers on a model's first render."""
        G = model.G
        kwargs: dict = dict(noise_mode=args.noise_mode, force_fp32=args.force_fp32)
        if transform is not None:
            kwargs["transform"] = transform

        def run() -> torch.Tensor:
            return G.synthesis(ws, **kwargs)

        layer = None if args.layer in (None, layer_hooks.OUTPUT) else args.layer
        with self._noise_rng(args, device):
            try:
                if model.layers is None:
                    model.layers, x = layer_hooks.list_layers(G.synthesis, run, wanted=layer)
                    if x is None:
                        raise KeyError(layer)
                else:
                    x = layer_hooks.capture_layer(G.synthesis, layer, run)
            except KeyError:
                names = ", ".join(info.name for info in (model.layers or ()))
                result.layers = model.layers or ()
                raise RenderError(f"This model has no layer {args.layer!r}. Layers: {names}.") from None
        return x[0].to(torch.float32)

    @contextlib.contextmanager
    def _noise_rng(self, args: RenderArgs, device: torch.device):
        """Random noise drawn from noise_seed, so a frame is reproducible; the global RNG is left as it was."""
        if args.noise_mode != "random":
            yield
            return
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(args.noise_seed)
            yield

    @staticmethod
    def _pixels_per_unit(model: LoadedModel, layer: str | None, G: nn.Module) -> float:
        """Pixels per unit of the input's coordinates in the shown layer (its sampling rate)."""
        name = layer or layer_hooks.OUTPUT
        for info in model.layers or ():
            if info.name == name and info.sampling_rate:
                return float(info.sampling_rate)
        return float(G.img_resolution)
