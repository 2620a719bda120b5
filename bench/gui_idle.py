"""CPU the GUI process spends while nothing happens, against the same window drawing every frame.

Opens the visualizer on a model (the demo model by default) under the current DISPLAY, or a virtual
screen of its own (Xvfb) when there is none; once the frame is shown it measures the GUI process's
CPU seconds over SECONDS of idling (the window waits for input), then over SECONDS of drawing at
the FPS limit as the window did before it learnt to wait (the baseline), and prints both as
percent of one core and their ratio.

    python bench/gui_idle.py [MODEL] [--seconds 5] [--window 1880x1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gui_utils.virtual_screen import NoVirtualScreen, start_xvfb, stop_xvfb  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(ROOT / "checkpoints" / "demo.safetensors"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", default="1880x1000")
    ns = parser.parse_args()
    xvfb = None
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        try:
            xvfb, env["DISPLAY"] = start_xvfb("1920x1080")
        except NoVirtualScreen as e:
            sys.exit(str(e))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            steps = [{"wait": "frame"}, {"frames": 5}, {"idle": ns.seconds, "out": str(tmp / "idle.json")},
                     {"busy": ns.seconds, "out": str(tmp / "busy.json")}, {"quit": 0}]
            (tmp / "script.json").write_text(json.dumps(steps))
            env.update(STYLEGAN_VIZ_SCRIPT=str(tmp / "script.json"), STYLEGAN_VIZ_CONFIG_DIR=str(tmp / "config"))
            proc = subprocess.run([sys.executable, str(ROOT / "visualizer.py"), ns.model, "--fresh", "--window",
                                   ns.window, "--capture-dir", str(tmp / "captures")], env=env, cwd=tmp,
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            idle, busy = (json.loads((tmp / f"{name}.json").read_text()) for name in ("idle", "busy"))
    finally:
        if xvfb is not None:
            stop_xvfb(xvfb)
    share = {name: m["cpu_seconds"] / m["wall_seconds"] for name, m in (("idle", idle), ("busy", busy))}
    print(f"window {ns.window}, {ns.seconds:g} s each, GUI process only (the worker is a process of its own)")
    print(f"idle (waits for input):   {share['idle'] * 100:5.1f} % of a core, {idle['frames']} frames")
    print(f"busy (every frame drawn): {share['busy'] * 100:5.1f} % of a core, {busy['frames']} frames")
    print(f"idle / busy: {share['idle'] / max(share['busy'], 1e-9):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
