"""When the window draws its next frame. Something that moves (an animation, a script, a drag) draws
at the FPS limit; input keeps frames coming for a moment after it (hover highlights, tooltips);
while the worker renders a frame or runs a job, the window looks for its replies a few times a
second; otherwise it sleeps until input arrives or a timer it was given (a note that expires, a run
to poll) runs out, and at most IDLE_WAIT_S."""

from __future__ import annotations

import math
import time

IDLE_WAIT_S = 3.0           # the longest an idle window sleeps between frames
REPLY_POLL_S = 1 / 20       # how often it looks for the worker's replies while it works
TYPING_WAIT_S = 0.5         # a text field has the keyboard: its cursor blinks
AFTER_INPUT_S = 0.6         # frames keep coming this long after input (ImGui's hover delays are shorter)


class RedrawClock:
    def __init__(self) -> None:
        self._deadline = math.inf
        self._last_input = -math.inf

    def wake_after(self, seconds: float) -> None:
        """Draw a frame at the latest `seconds` from now (asked afresh every frame)."""
        self._deadline = min(self._deadline, time.monotonic() + max(0.0, seconds))

    def saw_input(self) -> None:
        self._last_input = time.monotonic()

    def wait(self, moving: bool, waiting_for_worker: bool, typing: bool) -> float:
        """Seconds the next frame may wait for input (0: draw it at once); the timers are used up."""
        now = time.monotonic()
        deadline, self._deadline = self._deadline, math.inf
        if moving or now - self._last_input < AFTER_INPUT_S:
            return 0.0
        limit = IDLE_WAIT_S
        if waiting_for_worker:
            limit = REPLY_POLL_S
        if typing:
            limit = min(limit, TYPING_WAIT_S)
        return max(0.0, min(limit, deadline - now))
