"""The package boundary of DESIGN.md, checked on the code: the GUI packages (viz/, gui_utils/) and the
contract (the modules at the top of renderer/) import nothing that imports torch, directly or through
another module; the worker side (renderer/worker/) imports no GUI toolkit. The only crossings are the
two documented entry points of the worker: the spawned process's target and the in-process thread.
The running app is checked in test_gui."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = ("torch", "torchvision", "triton", "safetensors.torch")
GUI_TOOLKITS = ("imgui_bundle", "glfw", "OpenGL")
# (module, function) whose imports run only in the worker: the process target and the thread backend.
WORKER_ENTRY_POINTS = {("renderer.client", "_worker_process"), ("renderer.client", "_run")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules() -> dict[str, Path]:
    packages = ("viz", "gui_utils", "renderer", "torch_utils", "training")
    return {_module_name(p): p for pkg in packages for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path, module: str) -> list[tuple[str, str | None]]:
    """(imported module, enclosing function or None) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = module.rsplit(".", child.level)[0]
                    base = f"{package}.{base}" if base else package
                found.append((base, function))
                found.extend((f"{base}.{alias.name}", function) for alias in child.names)
            visit(child, function)

    visit(tree, None)
    return found


def _reachable(start: list[str], modules: dict[str, Path]) -> dict[str, list[str]]:
    """Every module reachable from `start` through imports (outside the worker entry points), with the
    chain that reaches it."""
    chains: dict[str, list[str]] = {m: [m] for m in start}
    todo = list(start)
    while todo:
        current = todo.pop()
        if current not in modules:
            continue
        for imported, function in _imports(modules[current], current):
            if (current, function) in WORKER_ENTRY_POINTS:
                continue
            # "from a.b import c" names a.b and a.b.c; a package import also runs its __init__.
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name not in chains:
                    chains[name] = chains[current] + [name]
                    if name in modules:
                        todo.append(name)
    return chains


def _forbidden(chains: dict[str, list[str]], roots: tuple[str, ...]) -> list[str]:
    return [" -> ".join(chain) for name, chain in chains.items()
            if any(name == r or name.startswith(r + ".") for r in roots)]


def test_gui_and_contract_reach_no_torch():
    modules = _project_modules()
    gui_side = [m for m in modules if m.split(".")[0] in ("viz", "gui_utils")
                or (m.startswith("renderer") and not m.startswith("renderer.worker"))]
    assert "viz.app" in gui_side and "renderer.protocol" in gui_side and "renderer.client" in gui_side
    assert _forbidden(_reachable(gui_side, modules), TORCH) == []


def test_worker_reaches_no_gui_toolkit():
    modules = _project_modules()
    worker_side = [m for m in modules if m.startswith("renderer.worker") or m.startswith("torch_utils")]
    assert "renderer.worker.worker" in worker_side
    assert _forbidden(_reachable(worker_side, modules), GUI_TOOLKITS) == []


def test_the_check_sees_a_crossing(tmp_path):
    """The same analysis reports a chain when a contract module does import the torch side."""
    modules = _project_modules()
    fake = tmp_path / "renderer" / "leaky.py"
    fake.parent.mkdir()
    fake.write_text("from renderer.worker.render import Renderer\n")
    modules["renderer.leaky"] = fake
    found = _forbidden(_reachable(["renderer.leaky"], modules), TORCH)
    assert any(chain.startswith("renderer.leaky -> renderer.worker") and chain.endswith("torch") for chain in found)


def test_importing_every_gui_module_leaves_torch_out():
    """At run time too: a fresh interpreter that imports every GUI and contract module has no torch."""
    modules = [m for m in _project_modules() if m.split(".")[0] in ("viz", "gui_utils")
               or (m.startswith("renderer") and not m.startswith("renderer.worker"))]
    code = ("import importlib, sys\n"
            f"for name in {sorted(modules)!r}:\n"
            "    importlib.import_module(name)\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout + out.stderr
