"""Every case of the hostile corpus (tests/hostile_corpus.py) through `visualizer.py info`,
`visualizer.py render` and the loader API, each in its own process under a memory cap and a timeout.

A refused case must end with exit status 1 or 2 and one line on stderr that names the problem
(the case's pattern), no traceback, no signal, within TIME_LIMIT, with a peak resident size at
most PEAK_ABOVE_BARE above a bare start of the same command, and nothing written: no output file,
no marker. A merely odd case must load or render cleanly under the same bounds.

The command lines run in forked children of tests/corpus_server.py, which has imported the
visualizer once (a fresh interpreter would spend seconds per case starting torch);
test_real_command_lines runs a sample of them as `python visualizer.py ...` as well. The loader
API runs in a few batches of cases per process (tests/corpus_api.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from renderer.worker.models import save_generator
from tests import hostile_corpus
from tests.conftest import ROOT

MEMORY_CAP = 3 << 30          # address space of each case's process (RLIMIT_AS); torch starts in about 0.7 GB
PEAK_ABOVE_BARE = 1 << 30     # resident memory a case may add to a bare start of the same command
TIME_LIMIT = 10.0             # seconds per case (for a fresh interpreter: beyond its bare start)
KILL_AFTER = 60.0
WORKERS = 2
API_BATCHES = 3
# Sets the memory cap, then becomes the command (so that it, and nothing else, runs capped).
CAPPED = ("import os, resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({0}, {0})); "
          "os.execv(sys.executable, [sys.executable] + sys.argv[1:])").format(MEMORY_CAP)
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
REAL_PROCESS_SAMPLE = ("code_os_system_layer", "numpy_void_dtype_with_object_field", "bomb_z_dim_16384", "fifo_model")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak: int                 # bytes, the process's maximum resident set size


def run_capped(args: list[str], folder: Path) -> Run:
    """`python ARGS` in a fresh interpreter in ROOT under MEMORY_CAP; killed after KILL_AFTER seconds."""
    out, err = folder / "stdout.txt", folder / "stderr.txt"
    start = time.perf_counter()
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-c", CAPPED, *args], cwd=ROOT, env=ENV, stdin=subprocess.DEVNULL,
                                   stdout=stdout, stderr=stderr)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > KILL_AFTER:
                process.kill()
            time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Run(process.returncode, out.read_text(errors="replace"), err.read_text(errors="replace"),
               time.perf_counter() - start, usage.ru_maxrss * 1024)


class CommandServer:
    """One tests/corpus_server.py process: `visualizer.py ARGV` in a forked child per call."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.corpus_server"], cwd=ROOT, env=ENV,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, argv: list[str], folder: Path) -> Run:
        folder.mkdir(parents=True, exist_ok=True)
        out, err = folder / "stdout.txt", folder / "stderr.txt"
        request = {"argv": argv, "stdout": str(out), "stderr": str(err), "memory_cap": MEMORY_CAP,
                   "kill_after": KILL_AFTER}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        return Run(answer["returncode"], out.read_text(errors="replace"), err.read_text(errors="replace"),
                   answer["seconds"], answer["peak"])

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@dataclass
class Prepared:
    case: hostile_corpus.Case
    folder: Path
    made: object              # the file, or the render arguments


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[list[Prepared], Path]:
    root = tmp_path_factory.mktemp("corpus")
    micro = save_generator(hostile_corpus.micro_generator(), root / "micro.safetensors")
    prepared = [Prepared(c, root / "cases" / c.name, made) for c, made in hostile_corpus.write_corpus(root / "cases")]
    assert all(item.folder.is_dir() for item in prepared)
    return prepared, micro


def _check(run: Run, case: hostile_corpus.Case, bare: Run, wrote: Path | None) -> list[str]:
    """What is wrong with this run of `case` (nothing: [])."""
    problems = []
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    if run.returncode < 0:
        problems.append(f"killed by signal {-run.returncode}")
    if "Traceback" in run.stderr:
        problems.append("traceback: " + run.stderr[-300:])
    if case.expect is None:
        if run.returncode != 0:
            problems.append(f"exit {run.returncode} for a file that should load: {run.stderr[-300:]}")
    else:
        if run.returncode not in (1, 2):
            problems.append(f"exit status {run.returncode}")
        if len(lines) != 1 or not lines[0].startswith("error: "):
            problems.append(f"stderr is not one error line: {run.stderr[-300:]!r}")
        elif not re.search(case.expect, lines[0]):
            problems.append(f"message does not match {case.expect!r}: {lines[0][:300]}")
        for written in (wrote, wrote.with_suffix(".json")) if wrote is not None else ():
            if written.exists():
                problems.append(f"wrote {written}")
    if run.seconds - bare.seconds > TIME_LIMIT:
        problems.append(f"took {run.seconds:.1f} s (a bare start {bare.seconds:.1f} s)")
    if run.peak - bare.peak > PEAK_ABOVE_BARE:
        problems.append(f"peak memory {(run.peak - bare.peak) / 2**20:.0f} MB above a bare start")
    return problems


def _run_all(jobs: list[tuple[Prepared, list[str], Path | None]], bare_argv: list[str], folder: str,
             scratch: Path) -> list[str]:
    """Every job's command line in forked children of WORKERS servers; the problems found."""
    def worker(index: int) -> list[str]:
        server = CommandServer()
        try:
            bare = server.run(bare_argv, scratch / f"bare{index}")
            bare = Run(bare.returncode, bare.stdout, bare.stderr, 0.0, bare.peak)  # forks start at once
            problems = []
            for item, argv, wrote in jobs[index::WORKERS]:
                run = server.run(argv, item.folder / folder)
                problems += [f"{item.case.name}: {p}" for p in _check(run, item.case, bare, wrote)]
                slowest[item.case.name] = (run.seconds, (run.peak - bare.peak) / 2**20)
            return problems
        finally:
            server.close()

    slowest: dict[str, tuple[float, float]] = {}
    with ThreadPoolExecutor(WORKERS) as pool:
        problems = [problem for problems in pool.map(worker, range(WORKERS)) for problem in problems]
    seconds, memory = (max(slowest.items(), key=lambda kv: kv[1][i]) for i in (0, 1))
    print(f"\n{folder}: {len(slowest)} cases; slowest {seconds[0]} {seconds[1][0]:.2f} s; most memory {memory[0]} "
          f"{memory[1][1]:.0f} MB above a bare start")
    return problems


def _no_markers(prepared: list[Prepared]) -> list[str]:
    return [f"{item.case.name}: the marker file was written" for item in prepared if (item.folder / "marker").exists()]


def _command_jobs(prepared: list[Prepared], micro: Path, command: str) -> list[tuple[Prepared, list[str], Path | None]]:
    """(case, `visualizer.py` arguments, the output a refusal must not write) for `info` or `render`."""
    jobs = []
    for item in prepared:
        out = item.folder / f"{command}.png"
        if command == "info":
            if item.case.kind == "model":
                jobs.append((item, ["info", str(item.made)], None))
        elif item.case.kind == "model":
            jobs.append((item, ["render", str(item.made), "--out", str(out)], out))
        elif item.case.kind == "w":
            jobs.append((item, ["render", str(micro), "--w", str(item.made), "--out", str(out)], out))
        else:
            extra = [] if "--out" in item.made else ["--out", str(out)]
            jobs.append((item, ["render", str(micro), *item.made, *extra], out))
    return jobs


def test_info(corpus, tmp_path):
    prepared, micro = corpus
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    problems = _run_all(_command_jobs(prepared, micro, "info"), ["info", str(empty)], "info", tmp_path)
    assert not problems + _no_markers(prepared), "\n".join(problems + _no_markers(prepared))


def test_render(corpus, tmp_path):
    prepared, micro = corpus
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    bare = ["render", str(empty), "--out", str(tmp_path / "bare.png")]
    problems = _run_all(_command_jobs(prepared, micro, "render"), bare, "render", tmp_path)
    problems += _no_markers(prepared)
    for item in prepared:
        if item.case.name == "args_out_is_a_directory" and not (item.folder / "frames" / "seed0003.png").exists():
            problems.append("args_out_is_a_directory: no frames/seed0003.png")
    assert not problems, "\n".join(problems)


def test_real_command_lines(corpus, tmp_path):
    """A sample of the cases as `python visualizer.py ...`, each in a fresh interpreter: the same outcome."""
    prepared, micro = corpus
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    problems = []
    for command in ("info", "render"):
        bare_args = ["visualizer.py", command, str(empty)] + (["--out", str(tmp_path / "x.png")] if command == "render" else [])
        (tmp_path / command).mkdir()
        bare = run_capped(bare_args, tmp_path / command)
        sample = [job for job in _command_jobs(prepared, micro, command) if job[0].case.name in REAL_PROCESS_SAMPLE]
        assert len(sample) == len(REAL_PROCESS_SAMPLE)
        for item, argv, wrote in sample:
            folder = item.folder / f"real-{command}"
            folder.mkdir()
            run = run_capped(["visualizer.py", *argv], folder)
            problems += [f"{item.case.name} ({command}): {p}" for p in _check(run, item.case, bare, wrote)]
    problems += _no_markers(prepared)
    assert not problems, "\n".join(problems)


def test_loader_api(corpus, tmp_path):
    """load_generator and read_w_file on every model and W case, in API_BATCHES processes."""
    prepared, micro = corpus
    items = [item for item in prepared if item.case.kind in ("model", "w")]
    by_name = {item.case.name: item.case for item in items}
    batches = [items[i::API_BATCHES] for i in range(API_BATCHES + 1)]
    batches[-1] = []  # a batch of no cases: the bare start
    specs = []
    for index, batch in enumerate(batches):
        folder = tmp_path / f"batch{index}"
        folder.mkdir()
        spec = folder / "cases.json"
        spec.write_text(json.dumps({"micro_model": str(micro), "cases": [
            {"name": item.case.name, "kind": item.case.kind, "path": str(item.made)} for item in batch]}))
        specs.append((spec, folder))
    with ThreadPoolExecutor(WORKERS) as pool:
        runs = list(pool.map(lambda spec: run_capped(["-m", "tests.corpus_api", str(spec[0])], spec[1]), specs))
    bare = runs.pop()
    problems = []
    for run, batch in zip(runs, batches):
        if run.returncode != 0:
            problems.append(f"a batch died (exit {run.returncode}) at: {run.stderr.splitlines()[-1:]}")
        if run.peak - bare.peak > PEAK_ABOVE_BARE:
            problems.append(f"a batch peaked {(run.peak - bare.peak) / 2**20:.0f} MB above a bare start")
        results = [json.loads(line) for line in run.stdout.splitlines()]
        if len(results) != len(batch):
            problems.append(f"a batch answered {len(results)} of {len(batch)} cases")
        for result in results:
            case = by_name[result["name"]]
            expected = "loaded" if case.expect is None else "refused"
            if result["outcome"] != expected:
                problems.append(f"{case.name}: {result['outcome']} {result['type']}: {result['message'][:300]}")
            elif case.expect is not None and (not re.search(case.expect, result["message"]) or "\n" in result["message"]):
                problems.append(f"{case.name}: message does not match {case.expect!r}: {result['message'][:300]}")
            if result["seconds"] > TIME_LIMIT:
                problems.append(f"{case.name}: took {result['seconds']:.1f} s")
    problems += _no_markers(prepared)
    assert not problems, "\n".join(problems)


def test_the_corpus_covers_the_classes_of_issue_14():
    groups = {c.group for c in hostile_corpus.CASES}
    assert {"code execution", "numpy state", "memory bomb", "malformed record", "not a regular file", "W file",
            "render argument", "protocol 5 _frombuffer", "protocol 2 _codecs.encode", "protocol 2 set",
            "recognised, unsupported", "TensorFlow record", "other file"} <= groups
    assert len({c.name for c in hostile_corpus.CASES}) == len(hostile_corpus.CASES)
