"""Regenerate the README's screenshots of the visualizer on the demo model: scripted sessions of the
real app on virtual screens (Xvfb) of 1920x1080, 1280x720 and 3840x2160, started from a scratch
folder so that the paths on screen are a user's.

    python docs/screenshots.py [--only NAME ...]
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

from gui_utils.virtual_screen import start_xvfb, stop_xvfb  # noqa: E402
from tests.images import write_emoji_like  # noqa: E402
DOCS = ROOT / "docs"
JOB = 600


def _layer_fft(layer: str) -> list[dict]:
    return [{"click": f"{layer}##layer"}, {"click": "Spectrum (FFT)"}, {"wait": "frame"}]


def _per_layer_spectra() -> list[dict]:
    return [{"click": "Analysis"}, {"click": "Per-layer spectra"}, {"wait": "analysis", "timeout": JOB}, {"frames": 5}]


def _shot(name: str) -> list[dict]:
    return [{"frames": 3}, {"save_gui": str(DOCS / f"{name}.png")}]


# name -> (screen, steps); every session starts on the demo model with fresh settings.
SESSIONS = {
    "screenshot_default": ("1920x1080", [{"wait": "frame"}, *_shot("screenshot_default")]),
    "screenshot_layer_fft": ("1920x1080", [{"wait": "frame"}, *_layer_fft("L4_72_128"), *_shot("screenshot_layer_fft")]),
    "screenshot_equivariance": ("1920x1080", [
        {"wait": "frame"}, {"click": "Layers"}, {"click": "Truncation & noise"}, {"click": "Equivariance"},
        {"set": "equivariance.translate", "value": [0.12, -0.05]}, {"set": "equivariance.rotate", "value": 0.04},
        {"click": "Anim##rotate"}, {"frames": 30}, {"click": "Anim##rotate"}, {"wait": "frame"},
        *_shot("screenshot_equivariance"),
        {"click": "Error image"}, {"wait": "analysis", "timeout": JOB}, {"wait": "frame"},
        *_shot("screenshot_equivariance_readout")]),
    "screenshot_analysis": ("1920x1080", [
        {"wait": "frame"}, *_layer_fft("L4_72_128"), {"click": "Layers"}, *_per_layer_spectra(),
        *_shot("screenshot_analysis"),
        {"set": "analysis.avg_num", "value": 32}, {"click": "Start##avg"}, {"wait": "analysis", "timeout": JOB},
        {"set": "analysis.layer_name", "value": "L4_72_128"}, *_shot("screenshot_analysis_average")]),
    "screenshot_directions": ("1920x1080", [
        {"wait": "frame"}, {"click": "Latent"}, {"click": "Truncation & noise"}, {"click": "Layers"},
        {"click": "Directions"}, {"set": "explore.directions.num_samples", "value": 1024},
        {"click": "Compute directions"}, {"wait": "explore", "timeout": JOB}, {"frames": 2},
        {"click": "##dir0", "at": [0.6, 0.5]}, {"click": "##dir2", "at": [0.2, 0.5]}, {"wait": "frame"},
        *_shot("screenshot_directions")]),
    "screenshot_projection": ("1920x1080", [
        {"wait": "frame"}, {"click": "Latent"}, {"click": "Truncation & noise"}, {"click": "Layers"},
        {"click": "Projection"}, {"set": "explore.projection.image_path", "value": "target.png"},
        {"set": "explore.projection.steps", "value": 40}, {"click": "Project##projection"},
        {"wait": "explore", "timeout": JOB}, {"wait": "frame"},
        *_shot("screenshot_projection")]),
    "screenshot_seed_grid": ("1920x1080", [
        {"wait": "frame"}, {"click": "Latent"}, {"click": "Truncation & noise"}, {"click": "Layers"},
        {"click": "Seed grid"}, {"click": "Render grid"}, {"wait": "explore", "timeout": JOB},
        *_shot("screenshot_seed_grid")]),
    "screenshot_inspect": ("1920x1080", [
        {"wait": "frame"}, {"click": "Latent"}, {"click": "Truncation & noise"}, {"click": "Layers"},
        {"click": "Inspect pixels"}, {"click": "Inspect pixels under the cursor"},
        {"wheel": "##image", "at": [0.5, 0.45], "by": 2}, {"frames": 2},
        {"click": "##image", "at": [0.5, 0.45]}, {"frames": 3}, {"wait": "explore", "timeout": JOB},
        *_shot("screenshot_inspect")]),
    "screenshot_1280x720": ("1280x720", [
        {"wait": "frame"}, *_layer_fft("L4_72_128"), *_per_layer_spectra(), *_shot("screenshot_1280x720")]),
    "screenshot_3840x2160": ("3840x2160", [
        {"wait": "frame"}, *_layer_fft("L4_72_128"), *_per_layer_spectra(), *_shot("screenshot_3840x2160")]),
}


def run(name: str, screen: str, steps: list[dict]) -> None:
    xvfb, display = start_xvfb(screen)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "script.json"
            script.write_text(json.dumps([*steps, {"quit": 0}]))
            env = dict(os.environ, DISPLAY=display, STYLEGAN_VIZ_SCRIPT=str(script),
                       STYLEGAN_VIZ_CONFIG_DIR=str(Path(tmp) / "config"))
            (Path(tmp) / "checkpoints").symlink_to(ROOT / "checkpoints")    # paths on screen as a user's
            write_emoji_like(Path(tmp) / "target.png")
            proc = subprocess.run([sys.executable, str(ROOT / "visualizer.py"), "checkpoints/demo.safetensors",
                                   "--fresh", "--capture-dir", "captures"], env=env, cwd=tmp, capture_output=True,
                                  text=True, timeout=2 * JOB)
            if proc.returncode != 0:
                sys.exit(f"{name}: {proc.stderr[-2000:]}")
    finally:
        stop_xvfb(xvfb)
    print(f"{name} ({screen})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SESSIONS), help="just these sessions")
    names = parser.parse_args().only or list(SESSIONS)
    for name in names:
        run(name, *SESSIONS[name])


if __name__ == "__main__":
    main()
