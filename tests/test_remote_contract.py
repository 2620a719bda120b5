"""renderer/remote is part of the torch-free contract, and nothing in it, nor in the code that takes
what it received (the classes it builds, the worker behind `serve`), can run code it receives."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "renderer" / "remote"
# Where received messages go after the link: the classes the codec builds, the GUI's client of a
# remote worker, and the worker that serves one.
RECEIVERS = ("renderer/protocol.py", "renderer/animation.py", "renderer/spectra.py", "renderer/frame_slots.py",
             "renderer/timeline.py", "renderer/clip_writer.py", "renderer/worker/serve.py", "renderer/worker/worker.py",
             "renderer/worker/jobs.py", "renderer/worker/render.py", "renderer/worker/wfile.py")
CODE_CARRIERS = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "importlib", "runpy", "code", "codeop"}
CODE_RUNNERS = {"eval", "exec", "compile", "__import__"}


def code_paths(source: str) -> list[str]:
    """Imports of modules that load code, calls that run it, and numpy loads with pickles allowed."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in CODE_CARRIERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in CODE_CARRIERS:
            found.append(node.module)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in CODE_RUNNERS:
                found.append(node.func.id)
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                    found.append("allow_pickle")
        elif isinstance(node, ast.Attribute) and node.attr in ("loads", "load") and isinstance(node.value, ast.Name) \
                and node.value.id in CODE_CARRIERS:
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_the_scan_finds_what_it_looks_for():
    sample = ("import pickle\nfrom marshal import loads\nimport importlib.util\neval('1')\nexec('x')\n"
              "np.load(f, allow_pickle=True)\n__import__('os')\n")
    assert set(code_paths(sample)) >= {"pickle", "marshal", "importlib.util", "eval", "exec", "allow_pickle", "__import__"}
    assert code_paths("np.load(f, allow_pickle=False)\nimport json\n") == []


def test_no_module_of_the_link_or_its_receivers_can_run_received_code():
    modules = sorted(PACKAGE.glob("*.py")) + [ROOT / name for name in RECEIVERS]
    assert len(modules) >= 20 and {"backend.py", "walk.py", "serve.py"} <= {p.name for p in modules}
    for path in modules:
        assert code_paths(path.read_text()) == [], path.name


def test_the_link_does_not_import_torch():
    names = [f"renderer.remote.{p.stem}" for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "NO-TORCH", out.stdout + out.stderr
