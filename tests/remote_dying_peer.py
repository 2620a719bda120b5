"""A peer that dies in the middle of a message (run as a subprocess by test_remote_faults.py).

    python tests/remote_dying_peer.py server PORT   # answers the first frame request with half a frame, then dies
    python tests/remote_dying_peer.py client PORT   # sends half a frame request after its Hello, then dies
It is killed by SIGKILL, as a crash or `kill -9` would end it: nothing is flushed or closed politely.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from renderer.protocol import FrameRequest, RenderArgs, RenderResult  # noqa: E402
from renderer.remote.codec import PROTOCOL_VERSION  # noqa: E402
from renderer.remote.frames import FrameCodec, encode_image  # noqa: E402
from renderer.remote.link import framed  # noqa: E402
from renderer.remote.messages import HANDSHAKE, MESSAGES, Hello, Welcome, WireFrame  # noqa: E402


def read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise SystemExit("the other side closed")
            data += chunk
        return data

    _, length = struct.unpack(">4sI", exactly(8))
    return exactly(length)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def serve(port: int) -> None:
    listener = socket.create_server(("127.0.0.1", port))
    print("listening", flush=True)
    sock, _ = listener.accept()
    read_frame(sock)  # the Hello
    sock.sendall(framed(HANDSHAKE.encode(Welcome("dying", "/", "dying-session"))))
    request = MESSAGES.decode(read_frame(sock), accept=(FrameRequest,))
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    wire = WireFrame(request.stamp, RenderResult(stamp=request.stamp), encode_image(image, FrameCodec("raw")))
    data = framed(MESSAGES.encode(wire))
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):  # read what the client sent, so the kernel closes with FIN, not RST
        while sock.recv(65536):
            pass
    sock.setblocking(True)
    sock.sendall(data[: len(data) // 2])
    die()


def connect(port: int, token: str) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(framed(HANDSHAKE.encode(Hello(PROTOCOL_VERSION, MESSAGES.fingerprint, token, "dying"))))
    HANDSHAKE.decode(read_frame(sock), accept=(Welcome,))
    data = framed(MESSAGES.encode(FrameRequest(1, RenderArgs(latent=((1, 1.0),)))))
    sock.sendall(data[: len(data) // 2])
    print("sent half", flush=True)
    die()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    else:
        connect(int(sys.argv[2]), os.environ["VIZ_TOKEN"])
