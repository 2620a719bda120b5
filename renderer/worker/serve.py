"""`python visualizer.py serve [MODEL] [--root DIR] [--port P] ...`: the render worker for a GUI on
another machine. One Worker (one model cache, kept across reconnections) behind renderer.remote's
Server; its requests take the same turns as a local GUI's (renderer.worker.worker.Schedule)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

from renderer.frame_slots import FrameReply
from renderer.protocol import FrameRequest, RenderArgs
from renderer.remote.options import add_serve_options, run_server
from renderer.remote.served_files import ServedFiles, ServedPathError
from renderer.worker.worker import Schedule, Worker


class WorkerHandler:
    """The Handler (renderer/remote/server.py) that hosts one Worker: frames first, job slices between them."""

    def __init__(self, worker: Worker | None = None) -> None:
        self.worker = worker if worker is not None else Worker()
        self._send: Callable[[object], None] | None = None
        self._schedule: Schedule | None = None

    def open(self, send: Callable[[object], None]) -> None:
        self._send = send
        self._schedule = Schedule(self.worker, send)

    def handle(self, message: object) -> None:
        if self._schedule is not None:
            self._schedule.take(message)

    def poll(self) -> bool:
        if self._schedule is None:
            return False
        result = self._schedule.run_next()
        if result is not None:
            self._send(FrameReply(result=result))
        return self._schedule.has_work()

    def close(self) -> None:
        """The GUI left: its jobs are cancelled and its frame request forgotten; the models stay loaded."""
        self.worker.close()
        self._schedule = self._send = None


def _offered_model(root: str, model: str | None) -> tuple[str, str]:
    """(absolute path, path relative to the root) of the model `serve` was started with; ServedPathError."""
    if not model:
        return "", ""
    files = ServedFiles(root)
    path = files.model_path(str(Path(model).expanduser().resolve()))
    return str(path), path.relative_to(files.root).as_posix()


def serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="visualizer.py serve", description=(
        "Render for a visualizer on another machine (python visualizer.py --connect HOST:PORT there)."))
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="a model under --root, loaded now and opened by GUIs that name none")
    add_serve_options(parser)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    handler = WorkerHandler()
    try:
        model_path, model = _offered_model(options.root, options.model)
    except ServedPathError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if model_path:
        result = handler.worker.render(FrameRequest(stamp=0, args=RenderArgs(model=model_path)))
        if result.error is not None:
            print(f"error: {result.error}", file=sys.stderr)
            return 2
        print(f"Loaded {model} ({result.model.family}, {result.model.img_resolution} px) on {result.device}",
              file=sys.stderr)
    return run_server(options, handler, model)
