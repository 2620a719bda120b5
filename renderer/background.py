"""A function run in a spawned background process that the GUI polls once per frame: progress (0..1),
cancel, and one outcome (the function's return value, an error message for the user, or cancelled).

Torch-free: the work function imports what it needs inside the background process. The function and
its request must be picklable (a module-level function and a dataclass). The function receives
`report(done, total)` and `cancelled() -> bool`; it stops early by raising JobCancelled, and raises
JobFailed with a message for the user. SIGTERM in the background process also raises JobCancelled,
so the work's cleanup runs when the job is killed.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from renderer.allocator import tuned_children

T = TypeVar("T")
Report = Callable[[int, int], None]
Cancelled = Callable[[], bool]

STOP_WAIT_S = 30.0            # how long close() lets the work notice the cancel before terminating it
OUTCOME_WAIT_S = 1.0          # how long to wait for the outcome of a process that has already exited


class JobCancelled(Exception):
    """The user cancelled the job."""


class JobFailed(Exception):
    """The job could not finish; the message says why, in words for the user."""


@dataclass(frozen=True)
class JobOutcome:
    value: Any = None
    error: str | None = None
    cancelled: bool = False


def _job_main(work: Callable[..., Any], request: Any, failure: str, progress, cancel, outcomes) -> None:
    def report(done: int, total: int) -> None:
        progress.value = done / total if total else 1.0

    def terminated(_signum: int, _frame: object) -> None:
        raise JobCancelled

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, terminated)
    try:
        outcomes.put(JobOutcome(value=work(request, report, cancel.is_set)))
    except JobCancelled:
        outcomes.put(JobOutcome(cancelled=True))
    except JobFailed as e:
        outcomes.put(JobOutcome(error=str(e)))
    except Exception as e:
        outcomes.put(JobOutcome(error=f"{failure}: {type(e).__name__}: {e}"))


def _stop(process, cancel) -> None:
    cancel.set()
    process.join(STOP_WAIT_S)
    if process.is_alive():
        process.terminate()
        process.join(10)


class BackgroundJob(Generic[T]):
    """work(request, report, cancelled) -> T in a spawned process. Poll .progress, .done, .error,
    .value, .cancelled; .cancel() asks the work to stop; .close() also waits for the process."""

    def __init__(self, work: Callable[[Any, Report, Cancelled], T], request: Any, name: str = "background-job",
                 failure: str = "The job failed") -> None:
        ctx = multiprocessing.get_context("spawn")
        self.request = request
        self._progress = ctx.Value("d", 0.0)
        self._cancel = ctx.Event()
        self._outcomes = ctx.Queue()
        self._outcome: JobOutcome | None = None
        self._process = ctx.Process(target=_job_main, name=name, daemon=True,
                                    args=(work, request, failure, self._progress, self._cancel, self._outcomes))
        with tuned_children():  # see allocator.py
            self._process.start()
        self._finalizer = weakref.finalize(self, _stop, self._process, self._cancel)

    def close(self) -> None:
        """Cancel if still running and wait for the process to end (also done at interpreter exit)."""
        self._finalizer()

    @property
    def progress(self) -> float:
        return float(self._progress.value)

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def error(self) -> str | None:
        outcome = self.outcome
        return outcome.error if outcome is not None else None

    @property
    def value(self) -> T | None:
        outcome = self.outcome
        return outcome.value if outcome is not None else None

    @property
    def cancelled(self) -> bool:
        outcome = self.outcome
        return outcome is not None and outcome.cancelled

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (or timeout); True if done."""
        self._process.join(timeout)
        return self.done

    @property
    def outcome(self) -> JobOutcome | None:
        """The outcome once the work has finished; None while it runs."""
        if self._outcome is not None:
            return self._outcome
        try:
            self._outcome = self._outcomes.get_nowait()
        except queue.Empty:
            if self._process.exitcode is not None:
                try:
                    self._outcome = self._outcomes.get(timeout=OUTCOME_WAIT_S)
                except queue.Empty:
                    self._outcome = JobOutcome(
                        error=f"The background process stopped unexpectedly (exit code {self._process.exitcode}).")
        if self._outcome is not None:
            self._process.join()
        return self._outcome
