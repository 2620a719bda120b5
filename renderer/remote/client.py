"""The GUI's end of a link to a remote worker: frames latest-wins, jobs, the model browser, and the
link's state, round-trip time and bandwidth.

A background thread runs the connection (asyncio): it connects, shows the token, and reconnects by
itself after a server restart or a network drop (the latest frame request is sent again; jobs that
were running end with an error). At most one frame request is on the link at a time; a newer one
waits here, replacing any older one that waits, so a slow link never builds a backlog. Every wait
is bounded; close() returns within a few seconds whatever the server does.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import socket
import ssl
import threading
import time
from dataclasses import dataclass, replace

from renderer.frame_slots import FrameReply
from renderer.protocol import ClipFrame, FrameRequest, JobDone, JobProgress, JobRequest, RenderArgs
from renderer.remote import link
from renderer.remote.codec import PROTOCOL_VERSION, MessageError
from renderer.remote.frames import FrameCodec, decode_image
from renderer.remote.link import LinkError, framed, is_loopback, read_message
from renderer.remote.messages import (HANDSHAKE, MESSAGES, TO_CLIENT, TO_SERVER, Fault, FrameOptions, Hello, Ping, Pong,
                                      Refused, Welcome, WireClipFrame, WireFrame)
from renderer.remote.tls import TlsError, check_pinned, client_context, normalized_fingerprint
from renderer.remote.tokens import check_token

RETRY_FIRST_S = 0.2           # the first reconnection attempt after a drop; doubling up to RETRY_MAX_S
RETRY_MAX_S = 2.0
BUSY_RETRY_S = 3.0            # a busy server is asked again this often
CLOSE_TIMEOUT_S = 5.0
SMOOTHING = 0.3               # weight of the newest sample in the round-trip and bandwidth averages


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    REFUSED = "refused"
    CLOSED = "closed"


@dataclass(frozen=True)
class LinkStatus:
    state: LinkState
    message: str = ""             # why, in words for the user (empty when connected)
    server: str = ""              # "gpu-box at 127.0.0.1:5555", once known


@dataclass(frozen=True)
class FrameStats:
    """How one frame crossed the link."""

    stamp: int
    codec: str                    # "zstd", "jpeg", "raw"; "" for a reply without an image
    raw_bytes: int                # the image's pixels
    image_bytes: int              # the image as encoded
    wire_bytes: int               # the whole reply as it came over the link (the image, W, layer list, ...)
    encode_seconds: float         # on the server
    decode_seconds: float         # here
    server_seconds: float         # on the server, from the request's arrival to the reply's encoding
    round_trip_seconds: float     # from sending the request to the decoded image here
    transfer_seconds: float       # from the reply's first byte to its last

    @property
    def compression_ratio(self) -> float:
        """The image's pixels over its encoded bytes."""
        return self.raw_bytes / self.image_bytes if self.image_bytes else 0.0


@dataclass(frozen=True)
class LinkStats:
    round_trip_seconds: float | None = None    # ping, smoothed
    bytes_per_second: float | None = None      # frame bytes over the time they spent on the link, smoothed
    last_frame: FrameStats | None = None
    bytes_received: int = 0
    bytes_sent: int = 0


class LinkConfigError(ValueError):
    """A link that cannot be set up as asked (address, token, fingerprint)."""


def parse_address(address: str) -> tuple[str, int]:
    """"host:port" or "[v6]:port" -> (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise LinkConfigError(f"{address!r} is not HOST:PORT (for example 127.0.0.1:5555)")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


class _Refusal(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class RemoteClient:
    """Frames, jobs and the model browser of a remote worker."""

    def __init__(self, address: str, token: str, *, fingerprint: str | None = None,
                 frame_codec: FrameCodec = FrameCodec(), name: str | None = None) -> None:
        self.host, self.port = parse_address(address)
        self.address = address
        if fingerprint is None and not is_loopback(self.host):
            raise LinkConfigError(f"{self.host} is another machine: give the server's TLS fingerprint (serve prints "
                                  "it), or reach it through an SSH tunnel at 127.0.0.1; the token is never sent "
                                  "unencrypted across a network.")
        self._pin = normalized_fingerprint(fingerprint) if fingerprint is not None else None
        self._token = check_token(token)
        self._name = name if name is not None else socket.gethostname()
        self._codec = frame_codec
        self._lock = threading.Condition()
        self._status = LinkStatus(LinkState.CONNECTING)
        self._stats = LinkStats()
        self._pending: tuple[FrameRequest, bytes] | None = None        # newest request not yet sent, framed
        self._in_flight: tuple[FrameRequest, bytes, float] | None = None  # ... and when it was sent
        self._outbox: list[bytes] = []
        self._jobs: set[int] = set()
        self._received: list[object] = []
        self._pings: dict[int, float] = {}
        self._nonces = itertools.count(1)
        self._session: str | None = None
        self.server_model = ""                          # the model the server was started with (Welcome)
        self._connected = False
        self._loop = asyncio.new_event_loop()
        self._wake = asyncio.Event()
        self._main: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._run, name="remote-client", daemon=True)
        self._thread.start()

    # --- the GUI's side (any thread) -----------------------------------------------------------

    @property
    def status(self) -> LinkStatus:
        with self._lock:
            return self._status

    @property
    def stats(self) -> LinkStats:
        with self._lock:
            return self._stats

    def set_frame(self, stamp: int, args: RenderArgs) -> None:
        """Ask for a frame; it replaces any request not yet sent. MessageError (and nothing sent) if the
        request cannot travel (over a limit: a W file too large, say)."""
        request = FrameRequest(stamp, args)
        data = _request_bytes(request)
        with self._lock:
            self._pending = (request, data)
        self._poke()

    def send(self, message: object) -> bool:
        """Send a request (JobRequest, CancelJob, StatusRequest, ListDirectory); False, and nothing sent,
        while not connected. MessageError if the request cannot travel."""
        if not isinstance(message, TO_SERVER) or isinstance(message, (FrameRequest, Ping)):
            raise TypeError(f"a {type(message).__name__} is not a request to send (frames go through set_frame)")
        data = _request_bytes(message)
        with self._lock:
            if not self._connected:
                return False
            self._outbox.append(data)
            if isinstance(message, JobRequest):
                self._jobs.add(message.job_id)
        self._poke()
        return True

    @property
    def frame_codec(self) -> FrameCodec:
        """How the server is asked to encode frames."""
        with self._lock:
            return self._codec

    def set_frame_codec(self, codec: FrameCodec) -> None:
        with self._lock:
            self._codec = codec
            if self._connected:
                self._outbox.append(framed(MESSAGES.encode(FrameOptions(codec.name, codec.jpeg_quality))))
        self._poke()

    def receive(self, timeout: float = 0.0) -> list[object]:
        """What arrived since the last call: the newest FrameReply (image decoded), JobProgress (clip
        frames decoded, every one of them), JobDone, WorkerStatus, DirectoryListing. Waits up to
        `timeout` seconds for something to arrive."""
        with self._lock:
            if not self._received and timeout > 0:
                self._lock.wait_for(lambda: self._received, timeout)
            received, self._received = self._received, []
        return received

    def close(self) -> None:
        """Drop the link and stop the thread (returns within CLOSE_TIMEOUT_S)."""
        if self._thread.is_alive():
            try:
                self._loop.call_soon_threadsafe(self._stop)
            except RuntimeError:
                pass
            self._thread.join(CLOSE_TIMEOUT_S)
        self._set_status(LinkState.CLOSED, "closed")

    def __enter__(self) -> "RemoteClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _poke(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:
            pass  # closed

    # --- the link (the client's thread) --------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._main = self._loop.create_task(self._maintain())
        try:
            self._loop.run_until_complete(self._main)
        except asyncio.CancelledError:
            pass
        finally:
            left = list(asyncio.all_tasks(self._loop))  # a link's tasks whose cancellation outlasted link.finish
            if left:
                self._loop.run_until_complete(link.finish(left))
            self._loop.run_until_complete(asyncio.sleep(0.01))  # lets closed transports finish closing
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _stop(self) -> None:
        if self._main is not None:
            self._main.cancel()

    async def _maintain(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            try:
                await self._connect_and_serve()
                reason = "the server closed the connection"
            except _Refusal as refusal:
                self._lost(str(refusal))
                if refusal.kind == "busy":
                    self._set_status(LinkState.REFUSED, f"{refusal} Retrying every {BUSY_RETRY_S:g} s.")
                    await asyncio.sleep(BUSY_RETRY_S)
                    continue
                self._set_status(LinkState.REFUSED, str(refusal))
                await asyncio.Event().wait()  # a wrong token or version: until close()
            except TlsError as e:
                self._lost(str(e))
                self._set_status(LinkState.REFUSED, str(e))
                await asyncio.Event().wait()  # not the pinned server: until close()
            except (OSError, LinkError, MessageError, ssl.SSLError, asyncio.TimeoutError) as e:
                reason = _describe(e)
            if self._connected:
                delay = RETRY_FIRST_S
            self._lost(reason)
            self._set_status(LinkState.RECONNECTING, f"{reason}; reconnecting to {self.host}:{self.port}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _connect_and_serve(self) -> None:
        context = client_context() if self._pin is not None else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=context, limit=link.STREAM_BUFFER,
                                        ssl_handshake_timeout=link.HANDSHAKE_TIMEOUT_S if context else None),
                link.CONNECT_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise LinkError(f"no answer from {self.host}:{self.port} within {link.CONNECT_TIMEOUT_S:g} s") from None
        try:
            if self._pin is not None:
                check_pinned(writer.get_extra_info("ssl_object"), self._pin)
            with self._lock:
                codec = self._codec
            hello = Hello(protocol=PROTOCOL_VERSION, schema=MESSAGES.fingerprint, token=self._token,
                          client=self._name[:256], frame_codec=codec.name, jpeg_quality=codec.jpeg_quality)
            writer.write(framed(HANDSHAKE.encode(hello)))
            answer, _, _ = await read_message(reader, HANDSHAKE, (Welcome, Refused), link.WELCOME_MAX_BYTES,
                                              link.HANDSHAKE_TIMEOUT_S)
            if isinstance(answer, Refused):
                raise _Refusal(answer.kind, answer.reason)
            self._welcomed(answer)
            tasks = [asyncio.create_task(self._read(reader)), asyncio.create_task(self._write(writer))]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # raises what ended the link
            finally:
                await link.finish(tasks)
        finally:
            writer.close()

    def _welcomed(self, welcome: Welcome) -> None:
        restarted = self._session is not None and welcome.session != self._session
        self._session = welcome.session
        self.server_model = welcome.model
        with self._lock:
            self._connected = True
            self._pings.clear()
            self._outbox.clear()
        message = "the server had restarted" if restarted else ""
        self._set_status(LinkState.CONNECTED, message, server=f"{welcome.server[:100]} at {self.host}:{self.port}")
        self._wake.set()

    async def _write(self, writer: asyncio.StreamWriter) -> None:
        next_ping = time.perf_counter()
        while True:
            self._wake.clear()
            now = time.perf_counter()
            with self._lock:
                chunks, self._outbox = self._outbox, []
                if self._in_flight is None and self._pending is not None:
                    self._in_flight, self._pending = (*self._pending, now), None
                    chunks.append(self._in_flight[1])
                if now >= next_ping:
                    nonce = next(self._nonces)
                    self._pings[nonce] = now
                    chunks.append(framed(MESSAGES.encode(Ping(nonce))))
                    next_ping = now + link.PING_INTERVAL_S
                if chunks:
                    self._stats = replace(self._stats, bytes_sent=self._stats.bytes_sent + sum(map(len, chunks)))
            for chunk in chunks:
                writer.write(chunk)
            try:
                await asyncio.wait_for(writer.drain(), link.IDLE_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise LinkError(f"the server read nothing for {link.IDLE_TIMEOUT_S:g} s") from None
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([woken], timeout=max(0.0, next_ping - time.perf_counter()))
            finally:
                woken.cancel()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            message, size, transfer = await read_message(reader, MESSAGES, TO_CLIENT, link.TO_CLIENT_MAX_BYTES,
                                                         link.IDLE_TIMEOUT_S)
            with self._lock:
                self._stats = replace(self._stats, bytes_received=self._stats.bytes_received + size)
            if isinstance(message, Pong):
                self._ponged(message.nonce)
            elif isinstance(message, Fault):
                raise LinkError(f"the server reported a fault: {message.reason[:500]}")
            elif isinstance(message, WireFrame):
                self._framed(message, size, transfer)
            elif isinstance(message, WireClipFrame):
                output = ClipFrame(index=message.index, image=decode_image(message.image), op_path=message.op_path,
                                   precision=message.precision)
                self._deliver(JobProgress(message.job_id, message.done, message.total, output))
            else:
                self._deliver(message)

    def _ponged(self, nonce: int) -> None:
        with self._lock:
            sent = self._pings.pop(nonce, None)
            if sent is not None:
                self._stats = replace(self._stats, round_trip_seconds=_smoothed(self._stats.round_trip_seconds,
                                                                                time.perf_counter() - sent))

    def _framed(self, wire: WireFrame, size: int, transfer: float) -> None:
        start = time.perf_counter()
        image = decode_image(wire.image) if wire.image is not None else None
        now = time.perf_counter()
        reply = FrameReply(result=replace(wire.result, stamp=wire.stamp, image=image))
        with self._lock:
            sent = None
            if self._in_flight is not None and self._in_flight[0].stamp <= wire.stamp:
                sent = self._in_flight[2]
                self._in_flight = None
                self._wake.set()
            round_trip = now - sent if sent is not None else 0.0
            stats = FrameStats(
                stamp=wire.stamp, codec=wire.image.codec if wire.image is not None else "",
                raw_bytes=image.nbytes if image is not None else 0,
                image_bytes=len(wire.image.data) if wire.image is not None else 0, wire_bytes=size,
                encode_seconds=wire.image.encode_seconds if wire.image is not None else 0.0,
                decode_seconds=now - start, server_seconds=wire.server_seconds, round_trip_seconds=round_trip,
                transfer_seconds=transfer)
            bandwidth = self._stats.bytes_per_second
            on_link = round_trip - wire.server_seconds - stats.decode_seconds
            if sent is not None and on_link > 0:
                bandwidth = _smoothed(bandwidth, size / on_link)
            self._stats = replace(self._stats, last_frame=stats, bytes_per_second=bandwidth)
            self._received = [m for m in self._received if not isinstance(m, FrameReply)] + [reply]
            self._lock.notify_all()

    def _deliver(self, message: object) -> None:
        with self._lock:
            if isinstance(message, JobDone):
                self._jobs.discard(message.job_id)
            if isinstance(message, JobProgress) and message.output is None:
                # A newer report replaces one not yet taken; reports that carry an output all stay.
                self._received = [m for m in self._received if not (isinstance(m, JobProgress) and
                                                                    m.job_id == message.job_id and m.output is None)]
            self._received.append(message)
            self._lock.notify_all()

    def _lost(self, reason: str) -> None:
        """The link ended: the request on it waits again, running jobs end with an error."""
        with self._lock:
            self._connected = False
            self._outbox.clear()
            if self._in_flight is not None:
                if self._pending is None:
                    self._pending = self._in_flight[:2]
                self._in_flight = None
            lost = [JobDone(job_id, error=f"The connection to the server was lost ({reason}); the job did not finish.")
                    for job_id in sorted(self._jobs)]
            self._jobs.clear()
            if lost:
                self._received.extend(lost)
                self._lock.notify_all()

    def _set_status(self, state: LinkState, message: str = "", server: str | None = None) -> None:
        with self._lock:
            self._status = LinkStatus(state, message, self._status.server if server is None else server)


def _request_bytes(request: object) -> bytes:
    """A request framed for the link; MessageError if it cannot travel or is over the server's limit."""
    data = framed(MESSAGES.encode(request))
    if len(data) > link.TO_SERVER_MAX_BYTES:
        raise MessageError(f"a {type(request).__name__} of {len(data)} bytes is over the server's limit of "
                           f"{link.TO_SERVER_MAX_BYTES}")
    return data


def _smoothed(average: float | None, sample: float) -> float:
    return sample if average is None else (1 - SMOOTHING) * average + SMOOTHING * sample


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "nothing listens there (is the server running?)"
    if isinstance(error, (ConnectionResetError, BrokenPipeError)):
        return "the connection was cut (the server stopped abruptly, or the network dropped)"
    if isinstance(error, (LinkError, MessageError, TlsError)):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
