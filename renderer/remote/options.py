"""The command-line options of `serve` and `--connect`, and turning them into a Server or a RemoteClient."""

from __future__ import annotations

import argparse
import sys

from renderer.remote.client import RemoteClient
from renderer.remote.frames import FRAME_CODECS, FrameCodec
from renderer.remote.server import Handler, Server, ServeError
from renderer.remote.tls import TlsError, default_tls_dir, load_or_create_identity
from renderer.remote.tokens import TOKEN_ENV, TokenError, token_from

DEFAULT_PORT = 5555


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=".", help="the folder whose models GUIs may open (default: this one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: reach it through an SSH tunnel)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--allow-remote", action="store_true",
                        help="let other machines connect (needed for any --host but loopback); the link is then TLS")
    parser.add_argument("--tls", action="store_true", help="use TLS even on loopback")
    parser.add_argument("--tls-dir", default=None, help=f"where the certificate is kept (default {default_tls_dir()})")
    parser.add_argument("--token-file", default=None, help=f"read the token from this file instead of ${TOKEN_ENV}")


def add_connect_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", metavar="HOST:PORT", default=None, help="use a worker started with `serve` there")
    parser.add_argument("--fingerprint", default=None, help="the server's TLS certificate fingerprint (serve prints it)")
    parser.add_argument("--token-file", default=None, help=f"read the token from this file instead of ${TOKEN_ENV}")
    parser.add_argument("--frame-codec", choices=FRAME_CODECS, default="zstd",
                        help="zstd: lossless (default); jpeg: for slow links")
    parser.add_argument("--jpeg-quality", type=int, default=85)


def run_server(options: argparse.Namespace, handler: Handler, model: str = "") -> int:
    """Serve `handler` as the options say until Ctrl+C, after printing the banner (token, how to
    connect); the exit status (2, with the reason on stderr, if the server cannot start)."""
    try:
        server = server_from_options(options, handler, model)
        server.start()
    except (ServeError, TokenError, TlsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(server.banner(), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0


def server_from_options(options: argparse.Namespace, handler: Handler, model: str = "") -> Server:
    """A Server (not started) as the options say, offering `model` (relative to the root) to GUIs that
    open none; ServeError, TokenError or TlsError with a message for the user."""
    tls = load_or_create_identity(options.tls_dir) if options.allow_remote or options.tls else None
    return Server(handler, root=options.root, host=options.host, port=options.port,
                  token=token_from(options.token_file), allow_remote=options.allow_remote, tls=tls, model=model)


def client_from_options(options: argparse.Namespace) -> RemoteClient:
    """A RemoteClient to options.connect; TokenError if no token is given."""
    token = token_from(options.token_file)
    if token is None:
        raise TokenError(f"Connecting needs the token the server printed: set {TOKEN_ENV} or pass --token-file.")
    return RemoteClient(options.connect, token, fingerprint=options.fingerprint,
                        frame_codec=FrameCodec(options.frame_codec, options.jpeg_quality))

