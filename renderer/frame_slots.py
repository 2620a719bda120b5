"""Frames from a local worker process through shared memory: two slots that the client owns (creates,
resizes and unlinks), so a frame crosses the process boundary as one copy in and one copy out, and
only its metadata goes through the message queue. A slot is written only after the client has copied
the previous frame out of it and said so. Torch-free: both sides use it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from multiprocessing import shared_memory

import numpy as np

from renderer.protocol import RenderResult

NUM_SLOTS = 2                 # double buffer: the worker writes one while the client copies the other


# Client -> worker.
@dataclass(frozen=True)
class SlotReady:
    """Slot `index` is (now) the segment `name`, free to write."""
    index: int
    name: str
    size: int


@dataclass(frozen=True)
class SlotFreed:
    index: int


# Worker -> client.
@dataclass(frozen=True)
class FrameReply:
    """A rendered frame: its pixels in a slot here, or in the result (after a remote link decoded them)."""
    result: RenderResult          # image None when the pixels are in slot `slot`
    slot: int | None = None
    shape: tuple[int, ...] = ()

    @property
    def stamp(self) -> int:
        return self.result.stamp


@dataclass(frozen=True)
class NeedSpace:
    index: int
    nbytes: int


def _attach(name: str) -> shared_memory.SharedMemory:
    # The worker process shares its parent's resource tracker (spawn passes it on), so the
    # registration that attaching makes is the parent's own and its unlink() clears it.
    return shared_memory.SharedMemory(name=name)


class SlotWriter:
    """The worker's side: writes frames into free slots, asks for a bigger one when none fits."""

    def __init__(self, slots: list[tuple[str, int] | None]) -> None:
        self._segments: dict[int, shared_memory.SharedMemory] = {}
        for index, slot in enumerate(slots):
            if slot is not None:
                self._segments[index] = _attach(slot[0])
        self._free = set(range(NUM_SLOTS))
        self._resizing: set[int] = set()

    def handle(self, msg: object) -> bool:
        """Take a slot message; False if `msg` is not one."""
        if isinstance(msg, SlotFreed):
            self._free.add(msg.index)
        elif isinstance(msg, SlotReady):
            old = self._segments.pop(msg.index, None)
            if old is not None:
                old.close()
            self._segments[msg.index] = _attach(msg.name)
            self._resizing.discard(msg.index)
            self._free.add(msg.index)
        else:
            return False
        return True

    def deliver(self, result: RenderResult) -> FrameReply | NeedSpace | None:
        """The reply that hands `result` over (its pixels written to a slot); NeedSpace to send when no
        free slot is big enough; None when the frame must wait for a slot."""
        image = result.image
        if image is None:
            return FrameReply(result=result)
        fitting = [i for i in self._free if i in self._segments and self._segments[i].size >= image.nbytes]
        if fitting:
            index = fitting[0]
            np.ndarray(image.shape, np.uint8, buffer=self._segments[index].buf)[...] = image
            self._free.discard(index)
            return FrameReply(result=replace(result, image=None), slot=index, shape=tuple(image.shape))
        growable = sorted(self._free - self._resizing)
        if growable and not self._resizing:
            self._resizing.add(growable[0])
            self._free.discard(growable[0])
            return NeedSpace(index=growable[0], nbytes=image.nbytes)
        return None


class SlotOwner:
    """The client's side: owns the segments; copies frames out and frees their slots."""

    def __init__(self) -> None:
        self._segments: list[shared_memory.SharedMemory | None] = [None] * NUM_SLOTS

    def current(self) -> list[tuple[str, int] | None]:
        return [(s.name, s.size) if s is not None else None for s in self._segments]

    def resize(self, index: int, nbytes: int) -> SlotReady:
        self.unlink(index)
        segment = shared_memory.SharedMemory(create=True, size=max(nbytes, 1))
        self._segments[index] = segment
        return SlotReady(index=index, name=segment.name, size=segment.size)

    def read(self, reply: FrameReply) -> np.ndarray:
        segment = self._segments[reply.slot]
        return np.ndarray(reply.shape, np.uint8, buffer=segment.buf).copy()

    def unlink(self, index: int) -> None:
        segment = self._segments[index]
        self._segments[index] = None
        if segment is not None:
            segment.close()
            try:
                segment.unlink()
            except FileNotFoundError:
                pass

    def unlink_all(self) -> None:
        for index in range(NUM_SLOTS):
            self.unlink(index)
