"""Hostile peers on loopback: a client that sends malformed, oversized, truncated and pickle-shaped
messages to the server, and a server that sends the same to the client. Neither side crashes,
hangs or runs code; the server goes on serving good clients, the client reports the fault and
keeps trying to reconnect."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import msgspec
import pytest

from renderer.client import RenderClient
from renderer.protocol import AverageSpectrumRequest, FrameRequest, JobDone, JobRequest, RenderArgs, RenderResult
from renderer.remote import link
from renderer.remote.client import LinkState, RemoteClient
from renderer.remote.codec import PROTOCOL_VERSION
from renderer.remote.link import MAGIC, framed
from renderer.remote.messages import HANDSHAKE, MESSAGES, EncodedImage, Fault, Hello, Refused, Welcome, WireFrame
from tests.remote_support import TOKEN, client_of, echo_server, marker_pickle, next_frame, wait_until

pack = msgspec.msgpack.encode


def hello(token: str = TOKEN, **changes) -> bytes:
    fields = dict(protocol=PROTOCOL_VERSION, schema=MESSAGES.fingerprint, token=token, client="hostile")
    fields.update(changes)
    return framed(HANDSHAKE.encode(Hello(**fields)))


def read_frame(sock: socket.socket) -> bytes | None:
    """One framed payload, or None if the other side closed."""
    header = _read_exactly(sock, 8)
    if header is None:
        return None
    magic, length = struct.unpack(">4sI", header)
    assert magic == MAGIC
    return _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def closed_by_peer(sock: socket.socket) -> bool:
    """True once the other side has closed (reads until EOF, bounded by the socket's timeout)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


@contextlib.contextmanager
def raw_connection(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        yield sock
    finally:
        sock.close()


def authenticated(sock: socket.socket) -> Welcome:
    sock.sendall(hello())
    return HANDSHAKE.decode(read_frame(sock), accept=(Welcome,))


def assert_still_serving(port: int) -> None:
    with client_of(port) as client:
        client.set_frame(1, RenderArgs(latent=((9, 1.0),)))
        assert next_frame(client, 1).result.image[0, 0, 0] == 9


# --- a hostile client ----------------------------------------------------------------------------


def before_token(marker: Path) -> list[bytes]:
    return [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        marker_pickle(marker),
        MAGIC + struct.pack(">I", link.HELLO_MAX_BYTES + 1) + b"x" * 100,       # over the pre-token limit
        MAGIC + struct.pack(">I", 2**32 - 1),
        MAGIC + struct.pack(">I", 100) + b"cut short",
        framed(marker_pickle(marker)),
        framed(pack(["Hello", {"protocol": 1, "schema": "x", "token": TOKEN, "junk": marker_pickle(marker)}])),
        framed(pack(["FrameRequest", {"stamp": 1, "args": ["RenderArgs", {}]}])),  # not a Hello
        framed(b"\x91" * 3000 + b"\xc0"),
    ]


def test_a_hostile_client_before_the_token_is_dropped_and_the_server_serves_on(tmp_path):
    marker = tmp_path / "marker"
    with echo_server(tmp_path) as (server, handler):
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)  # holds a handshake open
        try:
            for payload in before_token(marker):
                with raw_connection(server.port) as sock:
                    sock.sendall(payload)
                    sock.shutdown(socket.SHUT_WR)
                    assert read_frame(sock) is None  # closed without an answer
            assert_still_serving(server.port)
        finally:
            silent.close()
        assert not marker.exists()
        assert all(not isinstance(m, JobRequest) for m in handler.messages)


def test_a_wrong_version_is_told_so(tmp_path):
    with echo_server(tmp_path) as (server, _), raw_connection(server.port) as sock:
        sock.sendall(hello(schema="0123456789abcdef"))
        refusal = HANDSHAKE.decode(read_frame(sock), accept=(Refused,))
        assert refusal.kind == "version" and "same version" in refusal.reason


def projection(pixels: object) -> list:
    """A ProjectionRequest as MessagePack, with `pixels` as its target's pixels."""
    target = ["ProjectionTarget", {"pixels": pixels, "crop_box": [0, 0, 1, 1], "source_size": [1, 1]}]
    return ["ProjectionRequest", {"args": ["RenderArgs", {}], "target": target}]


def after_token(marker: Path) -> list[tuple[bytes, str]]:
    """(what the client sends after its Hello, a word in the server's Fault or None if it just closes)."""
    good = MESSAGES.encode(FrameRequest(1, RenderArgs()))
    return [
        (framed(b"\xc1\xc1\xc1"), "could not read"),
        (framed(marker_pickle(marker)), "could not read"),
        (framed(pack(["FrameRequest", {"stamp": 1, "args": marker_pickle(marker)}])), "FrameRequest.args"),
        (framed(pack(["JobRequest", {"job_id": 1, "spec": ["os.system", {"command": "touch x"}]}])), "unknown message type"),
        (framed(pack(["JobRequest", {"job_id": 1, "spec": ["ModelInfo", {}]}])), "not expected here"),
        (framed(pack(["FrameRequest", {"stamp": 1, "args": ["RenderArgs", {"w_npy": b"x" * (16 * 1024 * 1024 + 1)}]}])),
         "RenderArgs.w_npy"),
        (framed(pack(["JobRequest", {"job_id": 1, "spec": projection(["uint8", [2049, 2048, 3], bytes(2049 * 2048 * 3)])}])),
         "ProjectionTarget.pixels"),                                # an image to project over the limit
        (framed(pack(["JobRequest", {"job_id": 1, "spec": projection(marker_pickle(marker))}])), "ProjectionTarget.pixels"),
        (framed(MESSAGES.encode(WireFrame(1, RenderResult(), None))), "not expected"),   # a server's message
        (framed(MESSAGES.encode(Fault("x"))), "not expected"),
        (framed(pack(["FrameRequest", {"stamp": "1", "args": ["RenderArgs", {}]}])), "FrameRequest.stamp"),
        (framed(pack(["FrameRequest", {"stamp": 1, "args": ["RenderArgs", {"model": "x" * 70_000}]}])), "RenderArgs.model"),
        (framed(good[:-2]), "could not read"),
        (MAGIC + struct.pack(">I", link.TO_SERVER_MAX_BYTES + 1), None),
        (MAGIC + struct.pack(">I", len(good)) + good[:5], None),   # truncated, then the client leaves
        (marker_pickle(marker), None),                              # not framed at all
    ]


def test_a_hostile_client_after_the_token_gets_a_fault_and_the_server_serves_on(tmp_path):
    marker = tmp_path / "marker"
    with echo_server(tmp_path) as (server, handler):
        for payload, word in after_token(marker):
            with raw_connection(server.port) as sock:
                authenticated(sock)
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                answer = read_frame(sock)
                if word is None:
                    assert answer is None or isinstance(MESSAGES.decode(answer), Fault)
                else:
                    fault = MESSAGES.decode(answer, accept=(Fault,))
                    assert word in fault.reason, (word, fault.reason)
                    assert closed_by_peer(sock)
            wait_until(lambda: server._session is None, what="the server letting the hostile client go")
        assert_still_serving(server.port)
    assert not marker.exists()
    assert not [m for m in handler.messages if not isinstance(m, FrameRequest)]
    assert all(m.args == RenderArgs(latent=((9, 1.0),)) for m in handler.messages)


# --- a hostile server ----------------------------------------------------------------------------


class HostileServer:
    """Accepts connections on loopback, reads the client's Hello, then sends `script`'s bytes."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            self.connections += 1
            with sock:
                sock.settimeout(5)
                try:
                    read_frame(sock)
                    self.script(sock)
                    sock.shutdown(socket.SHUT_WR)
                    closed_by_peer(sock)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()


def welcome_then(payload: bytes) -> Callable[[socket.socket], None]:
    def script(sock: socket.socket) -> None:
        sock.sendall(framed(HANDSHAKE.encode(Welcome("evil", "/", "s1"))) + payload)
    return script


def _bomb() -> bytes:
    import zstandard

    side = 16384
    image = EncodedImage("zstd", (side, side, 3), zstandard.ZstdCompressor().compress(bytes(side * side * 3)))
    return framed(MESSAGES.encode(WireFrame(1, RenderResult(stamp=1), image)))


def hostile_servers(marker: Path) -> list[tuple[Callable[[socket.socket], None], str]]:
    return [
        (lambda sock: sock.sendall(marker_pickle(marker)), "not a message of this protocol"),
        (lambda sock: sock.sendall(framed(marker_pickle(marker))), "message"),
        (welcome_then(marker_pickle(marker)), "not a message of this protocol"),
        (welcome_then(framed(marker_pickle(marker))), "message"),
        (welcome_then(framed(pack(["JobDone", {"job_id": 1, "value": marker_pickle(marker)}]))), "JobDone.value"),
        (welcome_then(framed(pack(["JobDone", {"job_id": 1, "value": [0, ["subprocess.Popen", {}]]}]))), "unknown message type"),
        (welcome_then(framed(pack(["WireClipFrame", {"job_id": 1, "done": 1, "total": 2, "index": 0,
                                                     "image": marker_pickle(marker)}]))), "WireClipFrame.image"),
        (welcome_then(framed(b"\xc1garbage")), "message"),
        (welcome_then(MAGIC + struct.pack(">I", 2**32 - 1)), "the limit is"),
        (welcome_then(MAGIC + struct.pack(">I", 1000) + b"x" * 10), "in the middle of a message"),
        (welcome_then(framed(MESSAGES.encode(FrameRequest(1, RenderArgs())))), "not expected"),  # a client's message
        (welcome_then(_bomb()), "over the limit"),
        (welcome_then(framed(MESSAGES.encode(Fault("I am broken")))), "I am broken"),
    ]


@pytest.mark.parametrize("case", range(13))
def test_a_hostile_server_cannot_crash_hang_or_run_code_in_the_client(tmp_path, case):
    marker = tmp_path / "marker"
    script, words = hostile_servers(marker)[case]
    server = HostileServer(script)
    try:
        with client_of(server.port) as client:
            client.set_frame(1, RenderArgs())
            state = wait_until(lambda: client.status.state == LinkState.RECONNECTING and words in client.status.message,
                               what=f"the client reporting {words!r}")
            assert state
            wait_until(lambda: server.connections >= 2, what="the client trying again")
            started = time.monotonic()
        assert time.monotonic() - started < 6  # close() returned promptly
    finally:
        server.close()
    assert not marker.exists()


def test_a_silent_server_is_detected_by_the_idle_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(link, "IDLE_TIMEOUT_S", 1.0)
    gate = threading.Event()

    def silent(sock: socket.socket) -> None:
        sock.sendall(framed(HANDSHAKE.encode(Welcome("mute", "/", "s1"))))
        gate.wait(10)  # then never says anything (reads nothing either)

    server = HostileServer(silent)
    try:
        with client_of(server.port) as client:
            client.send_ok = wait_until(lambda: client.status.state == LinkState.CONNECTED, what="connecting")
            assert client.send(JobRequest(4, AverageSpectrumRequest(RenderArgs(), num_images=4)))
            wait_until(lambda: client.status.state == LinkState.RECONNECTING and "seems dead" in client.status.message,
                       timeout=10, what="the dead link being noticed")
            lost = wait_until(lambda: [m for m in client.receive() if isinstance(m, JobDone)], what="the lost job")
            assert lost[0].job_id == 4 and "lost" in lost[0].error
    finally:
        gate.set()
        server.close()


def test_a_frame_the_gui_did_not_ask_for_never_reaches_it():
    bogus = WireFrame(99, RenderResult(stamp=99, args=RenderArgs(w_file="/etc/passwd"), error="look at me"), None)
    server = HostileServer(welcome_then(framed(MESSAGES.encode(bogus))))
    client = RenderClient(remote=RemoteClient(f"127.0.0.1:{server.port}", TOKEN))
    try:
        client.set_args(RenderArgs(latent=((1, 1.0),)))
        wait_until(lambda: server.connections >= 2, what="the bogus frame arriving (and the client trying again)")
        assert client.get_result() is None
    finally:
        client.close()
        server.close()
