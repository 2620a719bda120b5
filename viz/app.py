"""`python visualizer.py [MODEL ...] [--connect HOST:PORT]`: the command line and the frame loop of the
desktop visualizer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from renderer.remote.client import LinkConfigError
from renderer.remote.options import add_connect_options, client_from_options
from renderer.remote.tls import TlsError
from renderer.remote.tokens import TokenError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "checkpoints" / "demo.safetensors"


def _window_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 1280x720") from None
    if not (200 <= width <= 16384 and 200 <= height <= 16384):
        raise argparse.ArgumentTypeError(f"a window of {width}x{height} is outside 200x200 .. 16384x16384")
    return width, height


def parse_args(argv: list[str]):
    from viz.main_window import Options

    parser = argparse.ArgumentParser(
        prog="visualizer.py",
        description="Interactive StyleGAN3 / StyleGAN2 visualizer. It opens where the last session left off; "
                    "with no MODEL and no session, on the shipped demo model.")
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="official .pkl, native .safetensors, or a training run directory (newest snapshot); "
                             "with --connect, a path under the server's --root (default: the model it serves)")
    parser.add_argument("--capture-dir", help="where Save image, Save GUI and clips go (default: captures)")
    parser.add_argument("--browse-dir", help="start the model browser in this directory")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps (default auto)")
    parser.add_argument("--in-process", action="store_true", help="render in the GUI process (imports torch)")
    parser.add_argument("--seed", type=int, help="start at this seed")
    parser.add_argument("--layer", help="start on this layer")
    parser.add_argument("--fft", action="store_true", help="start with the spectrum view")
    parser.add_argument("--session", metavar="FILE.json", help="open this session file instead of the last session")
    parser.add_argument("--fresh", action="store_true",
                        help="start with every setting at its default, and do not keep this run's session")
    parser.add_argument("--window", type=_window_size, metavar="WxH", help="window size (default: fits the screen)")
    parser.add_argument("--save-gui", metavar="OUT.png",
                        help="render until the frame is shown, save the window to OUT.png and exit (implies --fresh)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds --save-gui waits for the frame")
    add_connect_options(parser)
    ns = parser.parse_args(argv)
    default_model = "" if ns.connect else str(DEFAULT_MODEL)  # a server offers its own
    return Options(models=ns.models, default_model=default_model, capture_dir=ns.capture_dir,
                   browse_dir=ns.browse_dir, device=ns.device, in_process=ns.in_process, seed=ns.seed, layer=ns.layer,
                   fft=ns.fft, save_gui=ns.save_gui, timeout=ns.timeout, session=ns.session,
                   fresh=ns.fresh or bool(ns.save_gui), window_size=ns.window), ns


def main(argv: list[str]) -> int:
    """Open the visualizer; returns the exit status."""
    options, ns = parse_args(argv)
    from gui_utils.window import WindowError
    from viz.main_window import Visualizer
    from viz.script import ScriptRunner

    try:
        remote = client_from_options(ns) if ns.connect else None
    except (TokenError, LinkConfigError, TlsError) as err:
        print(f"visualizer: {err}", file=sys.stderr)
        return 2
    try:
        viz = Visualizer(options, remote=remote)
    except WindowError as err:
        if remote is not None:
            remote.close()
        print(f"visualizer: {err}", file=sys.stderr)
        return 2
    try:
        script = ScriptRunner.from_env(viz)
        if options.save_gui:
            script = ScriptRunner(viz, [{"wait": "frame"}, {"save_gui": options.save_gui}, {"quit": 0}],
                                  timeout=options.timeout)
        viz.script = script
        while not viz.should_close:
            viz.frame()
        if script is not None:
            if script.exit_code is None:
                script.window_closed()
            if script.exit_code is None:
                print("visualizer: closed before the script finished", file=sys.stderr)
                return 1
            if options.save_gui and script.exit_code == 0:
                print(f"saved {options.save_gui}")
            return script.exit_code
        return 0
    finally:
        viz.close()
