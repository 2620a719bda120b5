"""Runs hostile-corpus cases through the loader API in one process, one JSON line per case.

    python -m tests.corpus_api CASES.json

CASES.json: {"micro_model": path, "cases": [{"name": ..., "kind": "model" | "w", "path": ...}]}.
Each line: name, outcome ("refused": the documented error; "loaded"; "raised": anything else),
the exception type and message, and the seconds taken. "begin NAME" goes to stderr first, so a
process that dies shows which case killed it.
"""

from __future__ import annotations

import json
import sys
import time

from renderer.worker.models import ModelLoadError, load_generator
from renderer.worker.wfile import WFileError, read_w_file


def run(spec: dict) -> None:
    micro = load_generator(spec["micro_model"])
    for case in spec["cases"]:
        print(f"begin {case['name']}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            if case["kind"] == "model":
                load_generator(case["path"])
            else:
                read_w_file(case["path"], micro.num_ws, micro.w_dim)
            outcome, kind, message = "loaded", "", ""
        except (ModelLoadError, WFileError) as e:
            outcome, kind, message = "refused", type(e).__name__, str(e)
        except Exception as e:  # noqa: BLE001  (what the test is looking for: anything undocumented)
            outcome, kind, message = "raised", type(e).__name__, str(e)[:500]
        print(json.dumps({"name": case["name"], "outcome": outcome, "type": kind, "message": message,
                          "seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        run(json.load(f))
