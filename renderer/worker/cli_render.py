"""`python visualizer.py render MODEL --seed N ... --out OUT.png`: one frame, headless.

Writes exactly the frame the GUI shows for the same settings (same Renderer, same display code),
with the render state in the PNG's metadata and a JSON sidecar, as the GUI's Save image does.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable

from renderer.capture import args_from_json
from renderer.conventions import as_matrix3, displayed_seed, round_translation, user_transform, weighted_seeds
from renderer.protocol import DEVICES, NOISE_MODES, OP_PATHS, PRECISIONS, RenderArgs

SEED_LIMIT = 2 ** 32 - 1   # seeds feed numpy's RandomState
MAX_ROW = 1_000            # ws rows: a 1024 px StyleGAN2 has 18, a StyleGAN3 16


class _Parser(argparse.ArgumentParser):
    """argparse, with a problem reported as one line (no usage dump) and exit status 2."""

    def error(self, message: str) -> None:
        print(f"error: {message} (see `visualizer.py render --help`)", file=sys.stderr)
        raise SystemExit(2)


def _number(lo: float, hi: float, integer: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [lo, hi] (an integer if asked)."""
    kind = "an integer" if integer else "a number"
    bounds = f"{lo:,} to {hi:,}" if integer else f"{lo:g} to {hi:g}"

    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not {kind}") from None
        if not (math.isfinite(value) and lo <= value <= hi):
            raise argparse.ArgumentTypeError(f"must be {kind} from {bounds}, got {text[:40]}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="visualizer.py render", description="Render one frame of a generator to a PNG.")
    p.add_argument("model", nargs="?", help="official .pkl, native .safetensors, or a training run directory (newest "
                   "snapshot); with --state, replaces the saved frame's model")
    p.add_argument("--seed", type=_number(0, SEED_LIMIT, integer=True), default=0, help="latent seed (default 0)")
    p.add_argument("--w", dest="w_file", default=None, metavar="FILE",
                   help="render this W (.npy from Save W, or the official projector's .npz) instead of a seed")
    p.add_argument("--psi", type=_number(-10, 10), default=1.0, help="truncation psi (default 1)")
    p.add_argument("--cutoff", type=_number(0, 10_000, integer=True), default=None,
                   help="truncate only the first CUTOFF ws rows")
    p.add_argument("--class", dest="class_idx", type=_number(0, 1_000_000, integer=True), default=None,
                   help="class of a conditional model (default: from the seed)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const")
    p.add_argument("--noise-seed", type=_number(0, SEED_LIMIT, integer=True), default=0)
    p.add_argument("--layer", default=None, help="layer to show (default: the output); see `visualizer.py info`")
    p.add_argument("--channel", type=_number(0, 65_535, integer=True), default=0, help="first channel shown (default 0)")
    p.add_argument("--grey", action="store_true", help="show one channel as grey instead of three as RGB")
    p.add_argument("--normalize", action="store_true", help="divide each channel by its max |value|")
    p.add_argument("--gain-db", type=_number(-200, 200), default=0.0)
    p.add_argument("--fft", action="store_true", help="place the power spectrum beside the image")
    p.add_argument("--fft-range-db", type=_number(1, 300), default=50.0)
    p.add_argument("--fft-beta", type=_number(0, 100), default=8.0)
    p.add_argument("--translate", type=_number(-100, 100), nargs=2, metavar=("X", "Y"), default=(0.0, 0.0),
                   help="input translation in image widths (StyleGAN3)")
    p.add_argument("--rotate", type=_number(-100, 100), default=0.0, metavar="TURNS",
                   help="input rotation in turns (StyleGAN3)")
    p.add_argument("--round", action="store_true", help="snap the translation to whole pixels")
    p.add_argument("--untransform", action="store_true", help="resample the output back by the inverse transform")
    p.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} or cuda:N (default auto)")
    p.add_argument("--op-path", choices=OP_PATHS, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="float32")
    p.add_argument("--force-fp32", action="store_true", help="run the official fp16 layers in float32 too (CUDA)")
    p.add_argument("--out", required=True, help="output PNG (a .json with the render state is written beside it); "
                                                 "an existing directory gets seedNNNN.png")
    # What the GUI sets beyond a whole seed; --state takes every setting from a saved frame.
    p.add_argument("--position", type=_number(-1e6, 1e6), nargs=2, metavar=("X", "Y"), default=None,
                   help="fractional latent position (seed x + 100 y, blended bilinearly as in the GUI); replaces --seed")
    p.add_argument("--mix-seed", type=_number(0, SEED_LIMIT, integer=True), default=0,
                   help="style mixing: the seed whose W gives --mix-rows")
    p.add_argument("--mix-rows", type=_rows, default=(), metavar="ROWS",
                   help="style mixing: ws rows from the mix seed, e.g. 0,1,2 or 4-7")
    p.add_argument("--state", metavar="FRAME", default=None,
                   help="a PNG saved by the visualizer or its .json: render exactly that frame (other settings ignored)")
    return p


def _rows(text: str) -> tuple[int, ...]:
    """'0,1,4-6' -> (0, 1, 4, 5, 6)."""
    rows: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, _, last = part.partition("-")
            lo, hi = int(first), int(last or first)
            if not 0 <= lo <= hi <= MAX_ROW:
                raise ValueError
            rows.update(range(lo, hi + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a list of ws rows like 0,1,2 or 4-7 "
                                         f"(rows 0 to {MAX_ROW})") from None
    return tuple(sorted(rows))


def _gui_extras(ns: argparse.Namespace, args: RenderArgs) -> RenderArgs:
    """The fractional position and style mixing of the command line, as the GUI sets them."""
    if ns.position is not None:
        args = args.replace(latent=weighted_seeds(*ns.position))
    if ns.mix_rows:
        args = args.replace(mix_seed=ns.mix_seed, mix_rows=ns.mix_rows)
    return args


def _state_args(ns: argparse.Namespace) -> RenderArgs:
    """The RenderArgs of a saved frame (--state), with MODEL in place of its model if given."""
    args = args_from_json(ns.state)
    return args.replace(model=ns.model) if ns.model else args


def args_from_cli(ns: argparse.Namespace, img_resolution: int | None = None) -> RenderArgs:
    """The RenderArgs the GUI would hold for these command-line settings."""
    translate = tuple(ns.translate)
    if ns.round and img_resolution:
        translate = round_translation(translate, img_resolution)
    return _gui_extras(ns, RenderArgs(
        model=ns.model, device=ns.device, op_path=ns.op_path, precision=ns.precision, force_fp32=ns.force_fp32,
        latent=((ns.seed, 1.0),), w_file=ns.w_file, class_idx=ns.class_idx, trunc_psi=ns.psi, trunc_cutoff=ns.cutoff,
        noise_mode=ns.noise_mode, noise_seed=ns.noise_seed,
        input_transform=as_matrix3(user_transform(translate, ns.rotate)), untransform=ns.untransform,
        layer=ns.layer, sel_channels=1 if ns.grey else 3, base_channel=ns.channel, img_normalize=ns.normalize,
        img_gain_db=ns.gain_db, fft_show=ns.fft, fft_range_db=ns.fft_range_db, fft_beta=ns.fft_beta,
    ))


def render_main(argv: list[str]) -> int:
    try:
        ns = _parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed the problem (or the help)
        return int(e.code or 0)

    from renderer.capture import save_png
    from renderer.worker.render import Renderer

    if ns.state is None and not ns.model:
        print("error: give a MODEL to render (or --state FRAME to render a saved frame)", file=sys.stderr)
        return 2
    try:
        args = _state_args(ns) if ns.state is not None else args_from_cli(ns)
    except (OSError, ValueError, TypeError) as e:
        print(f"error: {ns.state} is not a frame saved by the visualizer: {e}", file=sys.stderr)
        return 1
    renderer = Renderer()
    result = renderer.render(args)
    if ns.state is None and ns.round and result.error is None and result.model.img_resolution:
        args = args_from_cli(ns, result.model.img_resolution)
        result = renderer.render(args)
    if result.error is not None:
        print(f"error: {_one_line(result.error)}", file=sys.stderr)
        return 1
    if result.message:
        print(f"note: {_one_line(result.message)}", file=sys.stderr)
    out = Path(ns.out)
    if out.is_dir():
        out = out / _file_name(ns)
    try:
        path = save_png(out, result.image, args, result.model)
    except (OSError, ValueError) as e:
        print(f"error: could not write {out}: {_one_line(str(e))}", file=sys.stderr)
        return 1
    height, width = result.image.shape[:2]
    print(f"{path}  ({width}x{height}, {result.model.family}, {result.device}, ops {result.op_path}, "
          f"{result.render_time * 1000:.0f} ms)")
    return 0


def _file_name(ns: argparse.Namespace) -> str:
    """The PNG's name inside an --out directory: seedNNNN.png as the official gen_images.py names its
    frames (the seed shown for a fractional position), or the saved frame's own name."""
    if ns.state is not None:
        return Path(ns.state).with_suffix(".png").name
    seed = displayed_seed(*ns.position) if ns.position is not None else ns.seed
    return f"seed{seed:04d}.png"


def _one_line(text: str) -> str:
    return " ".join(text.split())
