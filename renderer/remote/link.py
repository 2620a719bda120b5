"""Messages on a byte stream: each one framed as MAGIC, a 4-byte big-endian length, and the encoded
message, with a limit on the length that is checked before anything is read or allocated, and a
bound on every wait. Shared by both ends (asyncio streams, plain TCP or TLS)."""

from __future__ import annotations

import asyncio
import ipaddress
import struct
import time
from typing import Any

from renderer.remote.codec import Registry

MAGIC = b"SGVZ"
_HEADER = struct.Struct(">4sI")

HELLO_MAX_BYTES = 4096                    # what a server reads from a peer before it has shown a token
WELCOME_MAX_BYTES = 64 * 1024
TO_SERVER_MAX_BYTES = 32 * 1024 * 1024    # requests: args, W files, clip frame lists
TO_CLIENT_MAX_BYTES = 256 * 1024 * 1024   # frames, analysis results

CONNECT_TIMEOUT_S = 5.0
HANDSHAKE_TIMEOUT_S = 5.0
IDLE_TIMEOUT_S = 10.0                     # no byte from the other side for this long: the link is dead
CANCEL_WAIT_S = 1.0                       # for cancelled tasks to finish
PING_INTERVAL_S = 1.0                     # the client pings this often, so an idle link is never silent
STREAM_BUFFER = 8 * 1024 * 1024
_CHUNK = 8 * 1024 * 1024


class LinkError(ConnectionError):
    """The connection broke, or the other side sent something that is not a message of this protocol."""


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (where an unencrypted link is fine)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def framed(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, max_bytes: int, idle_timeout: float) -> tuple[bytearray, float]:
    """One message's bytes, and the seconds from its header to its last byte."""
    header = await _bounded(reader.readexactly(_HEADER.size), idle_timeout, at_start=True)
    start = time.perf_counter()
    magic, length = _HEADER.unpack(header)
    if magic != MAGIC:
        raise LinkError(f"the other side sent something that is not a message of this protocol "
                        f"(it began {header[:8]!r})")
    if length > max_bytes:
        raise LinkError(f"the other side sent a message of {length} bytes; the limit is {max_bytes}")
    payload = bytearray(length)
    view = memoryview(payload)
    got = 0
    while got < length:
        chunk = await _bounded(reader.read(min(length - got, _CHUNK)), idle_timeout, at_start=False)
        if not chunk:
            raise LinkError(f"the connection closed in the middle of a message ({got} of {length} bytes)")
        view[got:got + len(chunk)] = chunk
        got += len(chunk)
    return payload, time.perf_counter() - start


async def read_message(reader: asyncio.StreamReader, registry: Registry, accept: tuple[type, ...],
                       max_bytes: int, idle_timeout: float) -> tuple[Any, int, float]:
    """The next message (checked by `registry`, one of `accept`), its size on the wire and its
    transfer time. MessageError if it is malformed, LinkError if the stream breaks."""
    payload, seconds = await read_frame(reader, max_bytes, idle_timeout)
    return registry.decode(payload, accept=accept), len(payload) + _HEADER.size, seconds


async def finish(tasks: list[asyncio.Task]) -> None:
    """Cancel `tasks` and wait for them, a bounded time (a cancellation can be lost in 3.11's wait_for);
    what they raised is taken, also from those that end later or when this wait is itself cancelled,
    so that nothing is reported as never retrieved."""
    for task in tasks:
        task.cancel()
    try:
        await asyncio.wait(tasks, timeout=CANCEL_WAIT_S)
    finally:
        for task in tasks:
            if task.done():
                _taken(task)
            else:
                task.add_done_callback(_taken)


def _taken(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


async def _bounded(read, timeout: float, at_start: bool) -> bytes:
    try:
        return await asyncio.wait_for(read, timeout)
    except asyncio.IncompleteReadError as e:
        if at_start and not e.partial:
            raise LinkError("the other side closed the connection") from None
        raise LinkError("the connection closed in the middle of a message") from None
    except asyncio.TimeoutError:
        raise LinkError(f"nothing arrived for {timeout:g} s; the link seems dead") from None
