"""Shared pieces of the remote-link tests: a server on loopback with the echo handler, a client,
bounded waiting, and a pickle payload whose execution would leave a marker file."""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from renderer.remote.client import RemoteClient
from renderer.remote.echo import EchoHandler
from renderer.remote.server import Server

TOKEN = "test-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]
FRAME = np.arange(48 * 64 * 3, dtype=np.uint32).astype(np.uint8).reshape(48, 64, 3)


class WritesMarker:
    """Unpickling this calls open(path, "w"): the marker file appears if any code ran it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def marker_pickle(path: Path) -> bytes:
    return pickle.dumps(WritesMarker(path))


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> object:
    """Poll `condition` until it is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"{what} did not happen within {timeout} s")


@contextlib.contextmanager
def echo_server(root: Path | str = ".", image: np.ndarray = FRAME, **kwargs) -> Iterator[tuple[Server, EchoHandler]]:
    handler = EchoHandler(image, render_seconds=kwargs.pop("render_seconds", 0.0))
    server = Server(handler, root=str(root), token=kwargs.pop("token", TOKEN), **kwargs)
    server.start()
    try:
        yield server, handler
    finally:
        server.stop()


@contextlib.contextmanager
def client_of(port: int, token: str = TOKEN, **kwargs) -> Iterator[RemoteClient]:
    client = RemoteClient(f"127.0.0.1:{port}", token, **kwargs)
    try:
        yield client
    finally:
        client.close()


def next_frame(client: RemoteClient, stamp: int | None = None, timeout: float = 10.0):
    """The next FrameReply (with `stamp`, if given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in client.receive(timeout=0.1):
            if hasattr(message, "result") and (stamp is None or message.stamp == stamp):
                return message
    raise AssertionError(f"no frame{'' if stamp is None else f' {stamp}'} within {timeout} s: {client.status}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def process(*argv: str, ready: str) -> Iterator[subprocess.Popen]:
    """A Python subprocess (knowing the test token) that has printed a line starting with `ready`."""
    env = dict(os.environ, VIZ_TOKEN=TOKEN, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith(ready), line
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        child.stdout.close()
