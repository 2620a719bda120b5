"""The local worker process: serve() over two multiprocessing queues, frames through shared memory."""

from __future__ import annotations

import multiprocessing
import signal

from renderer.frame_slots import FrameReply, SlotWriter
from renderer.protocol import RenderResult
from renderer.worker.worker import serve


def main(requests, replies, slots: list[tuple[str, int] | None]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the GUI's to handle; it closes the client
    writer = SlotWriter(slots)
    parent = multiprocessing.parent_process()

    def receive(timeout: float | None) -> object:
        return requests.get(timeout=timeout) if timeout else requests.get_nowait()

    def deliver(result: RenderResult) -> bool:
        reply = writer.deliver(result)
        if reply is not None:
            replies.put(reply)
        return isinstance(reply, FrameReply)

    serve(receive, replies.put, deliver, writer.handle, keep_going=lambda: parent is None or parent.is_alive())
