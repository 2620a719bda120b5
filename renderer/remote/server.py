"""The `serve` side: one GUI at a time, authenticated by a token, its requests passed to a Handler.

One I/O thread runs the sockets (asyncio); one work thread calls the handler, so the handler needs
no locks of its own. A second GUI that shows the right token while one is connected is refused as
busy (it retries by itself, and gets in once the first one leaves or its link times out).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol

from renderer.frame_slots import FrameReply
from renderer.protocol import (CancelJob, ClipFrame, FrameRequest, JobDone, JobProgress, JobRequest, RenderResult,
                               StatusRequest)
from renderer.remote import link
from renderer.remote.codec import PROTOCOL_VERSION, MessageError
from renderer.remote.frames import LOSSLESS, FrameCodec, encode_image
from renderer.remote.link import LinkError, framed, is_loopback, read_message
from renderer.remote.messages import (HANDSHAKE, MESSAGES, TO_CLIENT, TO_SERVER, Fault, FrameOptions, Hello,
                                      ListDirectory, Ping, Pong, Refused, Welcome, WireClipFrame, WireFrame)
from renderer.remote.served_files import ServedFiles, ServedPathError
from renderer.remote.tls import TlsIdentity, server_context
from renderer.remote.tokens import check_token, new_token, tokens_match

log = logging.getLogger("renderer.remote.server")

MAX_HANDSHAKES = 16           # connections at once that have not shown a token yet
OUTBOX_MESSAGES = 256         # replies waiting for a client that does not read: then it is dropped
BACKLOG_BYTES = 8 * 1024 * 1024  # while more than this waits for the link, the handler is not polled
IDLE_POLL_S = 0.05            # how often an idle handler is polled


class Handler(Protocol):
    """What the server hosts (see renderer/remote/__init__.py). Every method runs on the server's
    work thread; `send` may be called from any thread."""

    def open(self, send: Callable[[object], None]) -> None: ...

    def handle(self, message: object) -> None: ...

    def poll(self) -> bool: ...

    def close(self) -> None: ...


class ServeError(ValueError):
    """A server that cannot start as asked (address, TLS, token)."""


@dataclass
class _Arrival:
    session: "_Session"
    message: object


class Server:
    def __init__(self, handler: Handler, *, root: str = ".", host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, allow_remote: bool = False, tls: TlsIdentity | None = None,
                 name: str | None = None, model: str = "") -> None:
        if not is_loopback(host) and not allow_remote:
            raise ServeError(f"Listening on {host} lets other machines connect; pass --allow-remote to do that "
                             "(the link is then encrypted), or keep the default 127.0.0.1 and use an SSH tunnel.")
        if allow_remote and tls is None:
            raise ServeError("Listening beyond this machine needs TLS: give the server a certificate (TlsIdentity).")
        self.handler = handler
        self.files = ServedFiles(root)
        self.host, self.port = host, port
        self.token_was_made = token is None
        self.token = new_token() if token is None else check_token(token)
        self.tls = tls
        self.name = name or socket.gethostname()
        self.model = model                # offered to GUIs that open no model of their own
        self.session_id = secrets.token_hex(8)
        self._ssl = server_context(tls) if tls is not None else None
        self._inbox: queue.Queue[tuple[str, _Session, object]] = queue.Queue()
        self._session: _Session | None = None
        self._handshakes = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- running -------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (in the background); returns once the port is bound. OSError if it cannot be."""
        ready = threading.Event()
        failure: list[BaseException] = []
        io = threading.Thread(target=self._run_io, args=(ready, failure), name="remote-server-io", daemon=True)
        io.start()
        ready.wait()
        if failure:
            io.join()
            raise failure[0]
        work = threading.Thread(target=self._run_work, name="remote-server-work", daemon=True)
        work.start()
        self._threads = [io, work]

    def serve_forever(self) -> None:
        """Serve until stop() (or Ctrl+C); starts the server unless start() was called."""
        if not self._threads:
            self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        finally:
            self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(timeout)

    def banner(self) -> str:
        """What `serve` prints: where it listens, the token, the fingerprint, how to reach it."""
        lines = [f"Listening on {self.host}:{self.port}, serving models under {self.files.root}"]
        token = self.token if self.token_was_made else "<the token you gave the server>"
        if self.token_was_made:
            lines.append(f"Token (give it to the GUI as VIZ_TOKEN): {self.token}")
        if self.tls is not None:
            lines.append(f"TLS certificate: {self.tls.fingerprint}")
            lines.append(f"  on your machine: VIZ_TOKEN={token} python visualizer.py --connect {self.name}:{self.port} "
                         f"--fingerprint {self.tls.fingerprint}")
        else:
            lines.append(f"  on your machine: ssh -N -L {self.port}:127.0.0.1:{self.port} USER@{self.name}")
            lines.append(f"  and then:        VIZ_TOKEN={token} python visualizer.py --connect 127.0.0.1:{self.port}")
        return "\n".join(lines)

    def _run_io(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(lambda _loop, context: log.debug("%s", context.get("message")))
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(
                self._on_connection, self.host, self.port, ssl=self._ssl, limit=link.STREAM_BUFFER,
                ssl_handshake_timeout=link.HANDSHAKE_TIMEOUT_S if self._ssl else None))
        except OSError as e:
            failure.append(e)
            ready.set()
            loop.close()
            return
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for writer in self._writers:
                writer.close()
            tasks = list(asyncio.all_tasks(loop))
            if tasks:
                loop.run_until_complete(link.finish(tasks))
            loop.run_until_complete(asyncio.sleep(0.01))  # lets closed transports finish closing
            loop.close()

    def _run_work(self) -> None:
        session: _Session | None = None
        while not self._stopping.is_set():
            busy = False
            if session is not None and session.backlog_bytes() <= BACKLOG_BYTES:
                busy = self._call(session, "poll", self.handler.poll)
            try:
                items = [self._inbox.get_nowait() if busy else self._inbox.get(timeout=IDLE_POLL_S)]
            except queue.Empty:
                continue
            while True:
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            for kind, source, message in items:
                if kind == "open":
                    if session is not None:
                        self._call(session, "close", self.handler.close)
                    session = source
                    self._call(session, "open", lambda: self.handler.open(source.send))
                elif source is not session:
                    continue
                elif kind == "close":
                    self._call(session, "close", self.handler.close)
                    session = None
                else:
                    self._handle(session, message)
        if session is not None:
            self._call(session, "close", self.handler.close)

    def _call(self, session: "_Session", what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception:
            log.exception("The handler failed in %s (GUI at %s)", what, session.peer)
            return False

    def _handle(self, session: "_Session", message: object) -> None:
        try:
            self.handler.handle(message)
        except Exception as e:
            log.exception("The handler failed on a %s", type(message).__name__)
            session.send(_failure_reply(message, f"The server failed on this request: {type(e).__name__}: {e}"))

    # --- connections ---------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._converse(reader, writer)
        finally:
            writer.close()
            self._writers.discard(writer)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_name(writer)
        if self._handshakes >= MAX_HANDSHAKES:
            return
        self._handshakes += 1
        try:
            session = await self._handshake(reader, writer, peer)
        except (LinkError, MessageError, OSError) as e:
            log.info("Dropped a connection from %s before it showed a token: %s", peer, e)
            return
        finally:
            self._handshakes -= 1
        if session is None:
            return
        self._inbox.put(("open", session, None))
        log.info("GUI %s connected from %s", session.client or "(unnamed)", peer)
        reason = "the server stopped"
        try:
            reason = await session.run()
        finally:
            self._session = None
            self._inbox.put(("close", session, None))
            log.info("GUI at %s disconnected: %s", peer, reason)

    async def _handshake(self, reader, writer, peer: str) -> "_Session | None":
        hello, _, _ = await read_message(reader, HANDSHAKE, (Hello,), link.HELLO_MAX_BYTES, link.HANDSHAKE_TIMEOUT_S)
        refusal = None
        if not tokens_match(hello.token, self.token):
            log.warning("Refused a GUI at %s: wrong token", peer)
            refusal = Refused("token", "The server refused the token. Set VIZ_TOKEN (or --token-file) to the "
                                       "token the server printed at its start.")
        elif hello.protocol != PROTOCOL_VERSION or hello.schema != MESSAGES.fingerprint:
            log.warning("Refused a GUI at %s: protocol %s schema %s, this server %s schema %s",
                        peer, hello.protocol, hello.schema, PROTOCOL_VERSION, MESSAGES.fingerprint)
            refusal = Refused("version", f"The server speaks protocol {PROTOCOL_VERSION} (schema {MESSAGES.fingerprint}), "
                                         f"this GUI {hello.protocol} (schema {hello.schema[:16]}): run the same "
                                         "version of the visualizer on both machines.")
        elif self._session is not None:
            log.info("Refused a GUI at %s: busy with the GUI at %s", peer, self._session.peer)
            refusal = Refused("busy", f"The server is busy with another GUI (connected from {self._session.peer}).")
        else:
            try:
                codec = FrameCodec(hello.frame_codec, hello.jpeg_quality)
            except ValueError as e:
                refusal = Refused("version", f"The server cannot send frames that way: {e}")
        if refusal is not None:
            writer.write(framed(HANDSHAKE.encode(refusal)))
            await asyncio.wait_for(writer.drain(), link.HANDSHAKE_TIMEOUT_S)
            return None
        session = _Session(self, reader, writer, peer, codec, hello.client)
        self._session = session
        writer.write(framed(HANDSHAKE.encode(Welcome(server=self.name, root=str(self.files.root),
                                                     session=self.session_id, model=self.model))))
        return session


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


def _failure_reply(message: object, error: str) -> object | None:
    """The reply that tells the GUI a request (or a reply to it) failed; None where none is owed."""
    if isinstance(message, FrameRequest):
        return FrameReply(result=RenderResult(stamp=message.stamp, args=message.args, error=error))
    if isinstance(message, FrameReply):
        return FrameReply(result=RenderResult(stamp=message.result.stamp, args=message.result.args, error=error))
    if isinstance(message, (JobRequest, JobProgress, JobDone)):
        return JobDone(message.job_id, error=error)
    return None


class _Session:
    """One authenticated GUI: reads its requests, writes the replies the handler sends."""

    def __init__(self, server: Server, reader, writer, peer: str, codec: FrameCodec, client: str) -> None:
        self.server, self.reader, self.writer, self.peer = server, reader, writer, peer
        self.codec, self.client = codec, client
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue[bytes | int] = asyncio.Queue(OUTBOX_MESSAGES)  # an int: that job's progress
        self._progress: dict[int, bytes] = {}     # the newest progress of each job, not yet written
        self.closed = threading.Event()
        self._arrivals: dict[int, float] = {}
        self._lock = threading.Lock()
        self._backlog = 0                           # bytes handed to send() and not yet written

    async def run(self) -> str:
        tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._write())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            reason = "closed"
            for task in done:
                error = task.exception() if not task.cancelled() else None
                if error is not None:
                    reason = str(error)
        finally:
            self.closed.set()
            await link.finish(tasks)
            self.writer.close()
        return reason

    async def _read(self) -> None:
        while True:
            try:
                message, _, _ = await read_message(self.reader, MESSAGES, TO_SERVER, link.TO_SERVER_MAX_BYTES,
                                                   link.IDLE_TIMEOUT_S)
            except MessageError as e:
                log.warning("Dropping the GUI at %s: it sent a malformed message: %s", self.peer, e)
                self._write_now(Fault(f"The server could not read a message: {e}"))
                await asyncio.wait_for(self.writer.drain(), link.HANDSHAKE_TIMEOUT_S)
                raise LinkError(f"malformed message: {e}") from None
            if isinstance(message, Ping):
                self._write_now(Pong(message.nonce))
            elif isinstance(message, FrameOptions):
                try:
                    self.codec = FrameCodec(message.codec, message.jpeg_quality)
                except ValueError as e:
                    self._write_now(Fault(str(e)))
                    raise LinkError(str(e)) from None
            elif isinstance(message, ListDirectory):
                self.send(await asyncio.to_thread(self.server.files.listing, message.path))
            else:
                self._pass_on(message)

    def _pass_on(self, message: object) -> None:
        if isinstance(message, (FrameRequest, JobRequest)):
            try:
                message = self.server.files.resolve_in(message)
            except ServedPathError as e:
                self.send(_failure_reply(message, str(e)))
                return
        if isinstance(message, FrameRequest):
            with self._lock:
                self._arrivals[message.stamp] = time.perf_counter()
        elif not isinstance(message, (JobRequest, CancelJob, StatusRequest)):
            return
        self.server._inbox.put(("message", self, message))

    async def _write(self) -> None:
        while True:
            data = await self.outbox.get()
            if isinstance(data, int):
                data = self._progress.pop(data)
            self.writer.write(data)
            try:
                await asyncio.wait_for(self.writer.drain(), link.IDLE_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise LinkError(f"the GUI read nothing for {link.IDLE_TIMEOUT_S:g} s") from None
            self._count_backlog(-len(data))

    def backlog_bytes(self) -> int:
        """Bytes of replies not yet written to the GUI (any thread)."""
        with self._lock:
            return self._backlog

    def _count_backlog(self, change: int) -> None:
        with self._lock:
            self._backlog += change

    def _write_now(self, message: object) -> None:
        self.writer.write(framed(MESSAGES.encode(message)))

    def send(self, message: object | None) -> None:
        """Queue a reply for the GUI (any thread). Images (a FrameReply's, a clip frame's) are encoded
        here; a reply that cannot travel is replaced by one that says so, where one is owed."""
        if message is None or self.closed.is_set():
            return
        if not isinstance(message, TO_CLIENT + (FrameReply,)):
            log.error("The handler sent a %s, which does not go to the GUI; dropped", type(message).__name__)
            return
        try:
            data = framed(MESSAGES.encode(self._on_the_wire(message)))
        except MessageError as e:
            log.error("A %s could not be sent: %s", type(message).__name__, e)
            failure = _failure_reply(message, f"The server could not send this result: {str(e)[:500]}")
            if failure is None:
                return
            data = framed(MESSAGES.encode(self._on_the_wire(failure)))
        self._count_backlog(len(data))
        job = message.job_id if isinstance(message, JobProgress) and message.output is None else None
        try:
            self.loop.call_soon_threadsafe(self._enqueue, data, job)
        except RuntimeError:
            pass  # the I/O loop has stopped

    def _on_the_wire(self, message: object) -> object:
        if isinstance(message, FrameReply):
            return self._wire_frame(message)
        if isinstance(message, JobProgress) and isinstance(message.output, ClipFrame):
            # Clip frames go lossless whatever the view's codec: they are the user's output.
            frame = message.output
            return WireClipFrame(job_id=message.job_id, done=message.done, total=message.total, index=frame.index,
                                 image=encode_image(frame.image, LOSSLESS), op_path=frame.op_path,
                                 precision=frame.precision)
        return message

    def _enqueue(self, data: bytes, progress_of: int | None) -> None:
        if progress_of is not None:
            waiting = self._progress.get(progress_of)
            self._progress[progress_of] = data  # a newer progress report replaces one not yet written
            if waiting is not None:
                self._count_backlog(-len(waiting))
                return
            data = progress_of
        try:
            self.outbox.put_nowait(data)
        except asyncio.QueueFull:
            log.warning("Dropping the GUI at %s: %d replies wait that it has not read", self.peer, OUTBOX_MESSAGES)
            self.writer.transport.abort()

    def _wire_frame(self, reply: FrameReply) -> WireFrame:
        stamp = reply.result.stamp
        with self._lock:
            arrived = self._arrivals.pop(stamp, None)
            for older in [s for s in self._arrivals if s < stamp]:
                del self._arrivals[older]
        result, image = reply.result, None
        if result.image is not None:
            image = encode_image(result.image, self.codec)
            result = replace(result, image=None)
        seconds = time.perf_counter() - arrived if arrived is not None else 0.0
        return WireFrame(stamp=stamp, result=result, image=image, server_seconds=seconds)
