"""Runs `visualizer.py` command lines, each in a forked child of this process, which has imported
the visualizer once: starting Python and torch costs seconds a case, a fork milliseconds.

    python -m tests.corpus_server

Reads JSON lines {"argv": [...], "stdout": PATH, "stderr": PATH, "memory_cap": BYTES,
"kill_after": SECONDS} and answers each with {"returncode": N, "seconds": S, "peak": BYTES}:
the child's exit status (negative: the signal that killed it), wall time from fork to exit, and
maximum resident size. The child caps its address space, sends its output to the files and runs
`visualizer.main(argv)` as `python visualizer.py ARGV` would, printing a traceback for anything
that escapes. Nothing here runs torch before forking.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback

import visualizer
from renderer.worker import cli, cli_render, render  # noqa: F401  (imported once, before any fork)


def _child(request: dict) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (request["memory_cap"], request["memory_cap"]))
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    try:
        code = visualizer.main(request["argv"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001  (as the interpreter would: print it and fail)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _child(request)
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.perf_counter() - start > request["kill_after"]:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status), "seconds": time.perf_counter() - start,
                          "peak": usage.ru_maxrss * 1024}), flush=True)


if __name__ == "__main__":
    serve()
