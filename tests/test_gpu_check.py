"""bench/gpu_check.py without a GPU: its dry run (a rehearsal of the whole pipeline on the CPU), its
plan, its report's ratios and verdicts, its time budget, and its full-size hyperparameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from bench import gpu_check
from bench.gpu_check import Cell, FirstFrame, Parity, Results, Timing
from tests.conftest import REFERENCE_DIR, ROOT


def test_dry_run_rehearses_the_pipeline(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if (REFERENCE_DIR / "README.md").exists():
        env["VIZ_REFERENCE_DIR"] = str(REFERENCE_DIR)
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Would measure on cuda" in res.stdout and "84 cells" in res.stdout
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert (tmp_path / "gpu_check.md").read_text().startswith("# gpu_check on ")
    measured = {(t["cell"]["config"], t["cell"]["path"]): t for t in data["timing"]}
    for config in gpu_check.SMALL:
        for path in ("reference", "gpu"):
            assert measured[(config, path)]["ms"] > 0 and measured[(config, path)]["error"] is None
    phases = {(f["cell"]["path"], f["phase"]) for f in data["first_frame"] if f["ms"] is not None}
    assert {("reference", "cold"), ("gpu", "cold"), ("reference", "warm"), ("gpu", "warm")} <= phases
    if "VIZ_REFERENCE_DIR" in env:  # the reference fixtures, on the CPU, on both paths
        rows = {(p["fixture"], p["path"]): p for p in data["parity"]}
        for name in ("sg3t_small", "sg3r_small", "sg2_small"):
            for path in ("reference", "gpu"):
                assert rows[(name, path)]["within"] is True, rows[(name, path)]
    else:
        assert "WARNING: parity will be skipped" in res.stdout


def test_plan_puts_the_targets_first_and_covers_every_cell():
    plan = gpu_check.real_plan()
    cells = plan.cells()
    assert len(cells) == len(set(cells)) == 7 * 2 * 2 * 3
    assert [c.key for c in cells[:6]] == [f"{n}/b1/fp32/{p}" for n in ("sg3t_1024", "sg3r_1024")
                                          for p in ("reference", "gpu", "triton")]
    assert {c.config for c in cells[:12]} == {"sg3t_1024", "sg3r_1024"}
    assert all(c.batch == 8 for c in cells[len(cells) // 2:])
    assert len(plan.first_frame_cells()) == 2 * 2 * 3


def test_report_ratios_and_verdicts():
    plan = gpu_check.real_plan(("sg3t_1024", "sg3r_1024"))
    results = Results()
    for config, triton_ms, triton_mb in (("sg3t_1024", 20.0, 400.0), ("sg3r_1024", 40.0, 900.0)):
        results.timing += [Timing(Cell(config, 1, "fp32", "reference"), 100.0, 99.0, 5, 1000.0, 100.0),
                           Timing(Cell(config, 1, "fp32", "gpu"), 50.0, 49.0, 5, 600.0, 100.0),
                           Timing(Cell(config, 1, "fp32", "triton"), triton_ms, triton_ms, 5, triton_mb, 100.0)]
    results.timing.append(Timing(Cell("sg3t_1024", 8, "fp32", "reference"), error="OutOfMemoryError: CUDA out of memory"))
    results.first_frame.append(FirstFrame(Cell("sg3t_1024", 1, "fp16", "triton"), "cold", 9000.0))
    results.parity += [Parity("sg3t_small", "reference", "fp32", 3e-5), Parity("sg3t_small", "gpu", "fp32", 2e-4),
                       Parity("sg3t_small", "reference", "fp16", 1e-2), Parity("sg3t_small", "gpu", "fp16", 1.5e-2),
                       Parity("sg3t_small", "triton", "fp16", 3e-2)]
    markdown, data = gpu_check.report(plan, results, 285, 200)
    targets = {(t["config"], t["precision"]): t for t in data["targets"]}
    assert targets[("sg3t_1024", "fp32")]["triton_speedup"] == pytest.approx(5.0)
    assert targets[("sg3t_1024", "fp32")]["triton_memory_ratio"] == pytest.approx(0.4)
    assert targets[("sg3t_1024", "fp32")]["met"] is True
    assert targets[("sg3r_1024", "fp32")]["met"] is False  # 2.5x, 0.9 of the memory
    assert targets[("sg3t_1024", "fp16")]["met"] is None  # not measured
    assert "| sg3t_1024 | 1 | fp32 | 100.0 | 50.0 | 20.0 | 2.00x | 5.00x | 1000 | 600 | 400 | 0.60 | 0.40 |" in markdown
    assert "sg3t_1024/b8/fp32/reference: OutOfMemoryError" in markdown
    within = {(p["path"], p["precision"]): p["within"] for p in data["parity"]}
    assert within == {("reference", "fp32"): True, ("gpu", "fp32"): False, ("reference", "fp16"): None,
                      ("gpu", "fp16"): True, ("triton", "fp16"): False}
    assert "| sg3t_1024 | fp16 | triton | 9000 | - |" in markdown


def test_budget_guard_ends_the_run_in_time(tmp_path):
    """With far too little time, the children are ended at their deadlines and every cell they did
    not reach is listed as skipped: the run still ends within its budget."""
    plan = gpu_check.rehearsal_plan()
    begin = time.time()
    results = gpu_check.measure(plan, 12.0, tmp_path / "log")
    assert time.time() - begin <= 12.0
    reported = {t.cell.key for t in results.timing}
    skipped = {s.what for s in results.skipped}
    assert all(c.key in reported or f"timing {c.key}" in skipped for c in plan.cells())
    assert len(reported) < len(plan.cells())


@pytest.mark.parametrize("name", ["sg3t_256", "sg3t_512", "sg3t_1024", "sg3r_256", "sg3r_1024", "sg2_1024"])
def test_full_size_hyperparameters_match_the_official_shapes(name):
    path = REFERENCE_DIR / f"shapes_{name}.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    info = json.loads(path.read_text())
    family, kwargs = gpu_check.FULL_SIZE[name]
    assert kwargs == info["persistence_init_kwargs"]
    assert family in info["class_name"]
