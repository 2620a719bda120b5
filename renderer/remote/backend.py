"""The remote worker as a backend of renderer.client.RenderClient: the GUI's requests go over a
RemoteClient, and what comes back is the contract's replies, as from a local worker.

Before a request leaves, every W file it names is replaced by the file's bytes (renderer/remote/wfile.py)
and a clip's output path is dropped: paths on this machine mean nothing on the server. A frame's
result comes back with the args the GUI sent, so the GUI recognises its own request. A request
that cannot leave (no link, a W file that cannot be read) is answered here with an error.
"""

from __future__ import annotations

import dataclasses
import os
import time

from renderer.frame_slots import FrameReply
from renderer.protocol import (CancelJob, ClipSpec, FrameRequest, JobDone, JobRequest, RenderArgs, RenderResult,
                               StatusRequest)
from renderer.remote.client import LinkState, RemoteClient
from renderer.remote.codec import MessageError
from renderer.remote.messages import DirectoryListing, ListDirectory
from renderer.remote.walk import replace_args
from renderer.remote.wfile import WFileError, w_file_bytes

LISTING_RETRY_S = 5.0         # a listing asked for and not answered is asked for again after this


class RemoteBackend:
    """send(msg), poll() -> replies, exit_code(), restart(), close(), pid: as the local backends."""

    pid = None

    def __init__(self, link: RemoteClient) -> None:
        self.link = link
        self._sent_args: dict[int, RenderArgs] = {}   # the GUI's args of each frame request on its way
        self._local: list[object] = []                 # replies made here
        self._w_cache: tuple[str, int, int, bytes] | None = None  # path, mtime, size, bytes of the last W file
        self._listings_asked: dict[str, float] = {}

    def send(self, msg: object) -> None:
        try:
            if isinstance(msg, FrameRequest):
                self._sent_args[msg.stamp] = msg.args
                self.link.set_frame(msg.stamp, self._outgoing(msg.args))
            elif isinstance(msg, JobRequest):
                spec = replace_args(msg.spec, self._outgoing)
                if isinstance(spec, ClipSpec):
                    spec = dataclasses.replace(spec, out_path="")  # the clip is written here, not there
                if not self.link.send(JobRequest(msg.job_id, spec)):
                    self._local.append(JobDone(msg.job_id, error=f"Not connected to the server: {self._why()}"))
            elif isinstance(msg, (CancelJob, StatusRequest)):
                self.link.send(msg)
        except (WFileError, MessageError) as e:
            self._refuse(msg, str(e))

    def ask_listing(self, path: str) -> None:
        """Ask the server for the listing of `path`, unless that was asked for recently and not answered."""
        asked = self._listings_asked.get(path)
        if asked is not None and time.monotonic() - asked < LISTING_RETRY_S:
            return
        if self.link.send(ListDirectory(path)):
            self._listings_asked[path] = time.monotonic()
        else:
            self._local.append(DirectoryListing(path=path, asked=path, error=f"Not connected to the server: {self._why()}"))

    def poll(self) -> list[object]:
        replies, self._local = self._local, []
        for msg in self.link.receive():
            if isinstance(msg, FrameReply):
                msg = self._as_sent(msg)
                if msg is None:
                    continue
            elif isinstance(msg, DirectoryListing):
                self._listings_asked.pop(msg.asked, None)
            replies.append(msg)
        return replies

    def exit_code(self) -> int | None:
        return None  # the link reconnects by itself; the server's worker is the server's to restart

    def restart(self) -> None:
        pass

    def close(self) -> None:
        self.link.close()

    # ------------------------------------------------------------------------------------------

    def _outgoing(self, args: RenderArgs) -> RenderArgs:
        """`args` as the server gets them: the W file's bytes in place of its path."""
        if args.w_file is None:
            return args
        return args.replace(w_file=None, w_npy=self._w_bytes(args.w_file))

    def _w_bytes(self, path: str) -> bytes:
        try:
            info = os.stat(path)
        except OSError as e:
            raise WFileError(f"Cannot read the W file {path}: {e.strerror}") from None
        cached = self._w_cache
        if cached is not None and cached[:3] == (path, info.st_mtime_ns, info.st_size):
            return cached[3]
        data = w_file_bytes(path)
        self._w_cache = (path, info.st_mtime_ns, info.st_size, data)
        return data

    def _as_sent(self, reply: FrameReply) -> FrameReply | None:
        """The reply with the args this GUI sent for its stamp; None for a stamp it is not waiting for
        (a reply older than one already taken, or one the server made up)."""
        stamp = reply.result.stamp
        args = self._sent_args.get(stamp)
        if args is None:
            return None
        for older in [s for s in self._sent_args if s <= stamp]:
            del self._sent_args[older]
        return dataclasses.replace(reply, result=dataclasses.replace(reply.result, args=args))

    def _refuse(self, msg: object, error: str) -> None:
        if isinstance(msg, FrameRequest):
            self._sent_args.pop(msg.stamp, None)
            self._local.append(FrameReply(result=RenderResult(stamp=msg.stamp, args=msg.args, error=error)))
        elif isinstance(msg, JobRequest):
            self._local.append(JobDone(msg.job_id, error=error))

    def _why(self) -> str:
        status = self.link.status
        if status.state == LinkState.CONNECTED:
            return "the link dropped just now"
        return status.message or status.state.value
