"""The GUI process never imports torch: importing every GUI module (and the renderer modules the GUI
uses) in a fresh interpreter leaves torch out of sys.modules. The running app is checked in test_gui."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GUI_MODULES = sorted(
    [f"viz.{p.stem}" for p in (ROOT / "viz").glob("*.py") if p.stem != "__init__"]
    + [f"gui_utils.{p.stem}" for p in (ROOT / "gui_utils").glob("*.py") if p.stem != "__init__"]
)


def test_gui_modules_do_not_import_torch():
    assert "viz.app" in GUI_MODULES and "gui_utils.imgui_window" in GUI_MODULES
    code = (
        "import importlib, sys\n"
        f"for name in {GUI_MODULES + ['renderer.client', 'renderer.capture', 'renderer.worker.export']!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as e:\n"
        "        if not e.name.startswith('renderer.'):\n"
        "            raise\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout + out.stderr


def test_the_check_would_see_torch():
    """The same check reports torch when something does import it (so the test above can fail)."""
    code = "import sys, renderer.worker.render\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "TORCH"
