"""`python visualizer.py [MODEL ...]`: the command line and the frame loop of the desktop visualizer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "checkpoints" / "demo.safetensors"


def parse_args(argv: list[str]):
    from viz.main_window import Options

    parser = argparse.ArgumentParser(
        prog="visualizer.py",
        description="Interactive StyleGAN3 / StyleGAN2 visualizer. With no MODEL it opens the shipped demo model.")
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="official .pkl, native .safetensors, or a training run directory (newest snapshot)")
    parser.add_argument("--capture-dir", default="captures", help="where Save image, Save GUI and clips go")
    parser.add_argument("--browse-dir", help="a directory of models and training runs to browse")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--in-process", action="store_true", help="render in the GUI process (imports torch)")
    parser.add_argument("--seed", type=int, help="start at this seed")
    parser.add_argument("--layer", help="start on this layer")
    parser.add_argument("--fft", action="store_true", help="start with the spectrum view")
    parser.add_argument("--save-gui", metavar="OUT.png",
                        help="render until the frame is shown, save the window to OUT.png and exit")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds --save-gui waits for the frame")
    ns = parser.parse_args(argv)
    return Options(models=ns.models or [str(DEFAULT_MODEL)], capture_dir=ns.capture_dir, browse_dir=ns.browse_dir,
                   device=ns.device, in_process=ns.in_process, seed=ns.seed, layer=ns.layer, fft=ns.fft,
                   save_gui=ns.save_gui, timeout=ns.timeout)


def main(argv: list[str]) -> int:
    """Open the visualizer; returns the exit status."""
    options = parse_args(argv)
    from gui_utils.window import WindowError
    from viz.main_window import Visualizer
    from viz.script import ScriptRunner

    try:
        viz = Visualizer(options)
    except WindowError as err:
        print(f"visualizer: {err}", file=sys.stderr)
        return 2
    try:
        script = ScriptRunner.from_env(viz)
        if options.save_gui:
            script = ScriptRunner(viz, [{"wait": "frame"}, {"save_gui": options.save_gui}, {"quit": 0}],
                                  timeout=options.timeout)
        if script is not None:
            viz.before_widgets = script.before_frame
        while not viz.should_close:
            viz.frame()
        if script is not None:
            if script.exit_code is None:
                print("visualizer: closed before the script finished", file=sys.stderr)
                return 1
            if options.save_gui and script.exit_code == 0:
                print(f"saved {options.save_gui}")
            return script.exit_code
        return 0
    finally:
        viz.close()
