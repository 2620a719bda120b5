"""Undo and redo over every setting (viz.state.Settings).

The frame loop shows the history the settings once per frame. A change becomes one step when the
edit is over: a drag, a slider held or a field being typed in is one step however many frames it
lasts. What a running animation moves is not a step (Settings.settled), and automatic follow-ups
of a step (a layer carried over to a new model) are folded into it (`amend`)."""

from __future__ import annotations

from viz.state import Settings

MAX_STEPS = 200


class History:
    def __init__(self, initial: Settings) -> None:
        self.committed = initial
        self._undo: list[Settings] = []
        self._redo: list[Settings] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def observe(self, current: Settings, editing: bool) -> None:
        """The settings as the widgets hold them this frame; `editing`: an edit is still in progress."""
        if current == self.committed or editing:
            return
        if current.settled() != self.committed.settled():
            self._undo.append(self.committed)
            del self._undo[:-MAX_STEPS]
            self._redo.clear()
        self.committed = current

    def amend(self, current: Settings) -> None:
        """Take `current` as part of the latest step (a change the app made, not the user: a layer
        carried over to a new model, a model that failed to load); a step that this undoes is dropped."""
        self.committed = current
        if self._undo and self._undo[-1] == current:
            self._undo.pop()

    def adopt(self, current: Settings) -> None:
        """The widgets' settings right after an undo or redo restored them (restoring may tidy values)."""
        self.committed = current

    def undo(self, current: Settings) -> Settings | None:
        """The settings to go back to (None: nothing to undo); an edit not yet observed counts as a step."""
        self.observe(current, editing=False)
        if not self._undo:
            return None
        self._redo.append(self.committed)
        self.committed = self._undo.pop()
        return self.committed

    def redo(self, current: Settings) -> Settings | None:
        self.observe(current, editing=False)
        if not self._redo:
            return None
        self._undo.append(self.committed)
        self.committed = self._redo.pop()
        return self.committed

    def reset(self, current: Settings) -> None:
        """Forget every step (another session was opened)."""
        self.committed = current
        self._undo.clear()
        self._redo.clear()
