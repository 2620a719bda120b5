"""`serve` and `--connect` options: what they build, and the refusals a user sees."""

from __future__ import annotations

import argparse

import pytest

from renderer.protocol import RenderArgs
from renderer.remote.client import LinkState
from renderer.remote.echo import EchoHandler
from renderer.remote.options import add_connect_options, add_serve_options, client_from_options, server_from_options
from renderer.remote.server import ServeError
from renderer.remote.tokens import TokenError
from tests.remote_support import FRAME, TOKEN, free_port, next_frame, wait_until


def parsed(add, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


def test_serve_options_build_a_server_and_refuse_an_open_address(tmp_path, monkeypatch):
    monkeypatch.delenv("VIZ_TOKEN", raising=False)
    handler = EchoHandler(FRAME)
    with pytest.raises(ServeError, match="--allow-remote"):
        server_from_options(parsed(add_serve_options, ["--host", "0.0.0.0", "--tls-dir", str(tmp_path)]), handler)
    server = server_from_options(parsed(add_serve_options, ["--root", str(tmp_path), "--tls", "--tls-dir", str(tmp_path / "tls")]), handler)
    assert server.tls is not None and server.tls.fingerprint in server.banner() and server.token_was_made
    plain = server_from_options(parsed(add_serve_options, ["--root", str(tmp_path)]), handler)
    assert plain.tls is None and plain.port == 5555 and "ssh -N -L 5555:127.0.0.1:5555" in plain.banner()


def test_connect_options_need_a_token_and_connect(tmp_path, monkeypatch):
    monkeypatch.delenv("VIZ_TOKEN", raising=False)
    port = free_port()
    options = parsed(add_connect_options, ["--connect", f"127.0.0.1:{port}", "--frame-codec", "jpeg"])
    with pytest.raises(TokenError, match="VIZ_TOKEN"):
        client_from_options(options)
    monkeypatch.setenv("VIZ_TOKEN", TOKEN)
    server = server_from_options(parsed(add_serve_options, ["--root", str(tmp_path), "--port", str(port)]), EchoHandler(FRAME))
    server.start()
    try:
        client = client_from_options(options)
        try:
            wait_until(lambda: client.status.state == LinkState.CONNECTED, what="connecting")
            client.set_frame(1, RenderArgs())
            next_frame(client, 1)
            assert client.stats.last_frame.codec == "jpeg"
        finally:
            client.close()
    finally:
        server.stop()

