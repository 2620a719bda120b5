#!/usr/bin/env python3
"""StyleGAN3 / StyleGAN2 visualizer.

    python visualizer.py [MODEL ...] [--capture-dir DIR] [--browse-dir DIR] [--device D]   open the GUI
    python visualizer.py info MODEL                                                       model summary
    python visualizer.py convert IN.pkl OUT.safetensors                                   official pickle -> native
    python visualizer.py render MODEL --seed N [...] --out OUT.png                         one frame, headless
    python visualizer.py equivariance MODEL --num N [--seed S]                            EQ-T, EQ-T frac, EQ-R (dB)
    python visualizer.py spectrum SOURCE [SOURCE ...] [--num N] [--layers]                average / per-layer spectra
    python visualizer.py serve [MODEL] [--root DIR] [--port P]                           render for a GUI elsewhere
    python visualizer.py --connect HOST:PORT [MODEL]                                      the GUI, rendering there
    python visualizer.py project MODEL IMAGE --out W.npy [--steps N] [--w-plus]           a real image -> W

The GUI process never imports torch; headless subcommands run the same renderer in this process.
"""

from __future__ import annotations

import sys
from typing import Callable


def _subcommands() -> dict[str, Callable[[list[str]], int]]:
    def info(argv: list[str]) -> int:
        from renderer.worker.cli import info_main
        return info_main(argv)

    def convert(argv: list[str]) -> int:
        from renderer.worker.cli import convert_main
        return convert_main(argv)

    def render(argv: list[str]) -> int:
        from renderer.worker.cli_render import render_main
        return render_main(argv)

    def equivariance(argv: list[str]) -> int:
        from renderer.worker.cli_analysis import equivariance_main
        return equivariance_main(argv)

    def spectrum(argv: list[str]) -> int:
        from renderer.worker.cli_analysis import spectrum_main
        return spectrum_main(argv)

    def serve(argv: list[str]) -> int:
        from renderer.worker.serve import serve_main
        return serve_main(argv)

    def project(argv: list[str]) -> int:
        from renderer.worker.cli_project import project_main
        return project_main(argv)

    return {"info": info, "convert": convert, "render": render, "equivariance": equivariance, "spectrum": spectrum,
            "serve": serve, "project": project}


def main(argv: list[str]) -> int:
    commands = _subcommands()
    if argv and argv[0] in commands:
        return commands[argv[0]](argv[1:])
    from viz.app import main as gui_main
    return gui_main(argv)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        sys.exit(0)
