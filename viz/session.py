"""A session as a JSON file: every setting (viz.state.Settings) and the window's arrangement, restored
at the next launch from the config directory (viz.config) and savable / openable under any name.

Reading is strict about types (a number where a number belongs, and so on) so that a damaged or
hand-edited file is reported with the field at fault and ignored, never half applied; fields a file
lacks keep their defaults, fields this version does not know are ignored, and a file written by a
newer version is refused with a sentence saying so. Writes are atomic (renderer.files)."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Union

from renderer.files import write_atomic
from viz.config import per_server
from viz.state import Session, Settings, ViewState

SESSION_VERSION = 1
SESSION_KIND = "stylegan-visualizer session"
SESSION_FILE = "session.json"
MAX_SESSION_BYTES = 64 << 20


class SessionError(ValueError):
    """A file is not a session this version can read; the message says why, for the user."""


class NewerSessionError(SessionError):
    """The session was written by a newer version of the visualizer."""


def default_session_path(server: str | None = None) -> Path:
    """The session restored at launch: this machine's, or a server's (--connect HOST:PORT), whose model
    paths are the server's."""
    return per_server(SESSION_FILE, server)


# Encoding --------------------------------------------------------------------------------------

def to_json_data(value: Any) -> Any:
    """A dataclass (nested, with tuples) as plain JSON data."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def session_document(session: Session) -> dict[str, Any]:
    return {"kind": SESSION_KIND, "session_version": SESSION_VERSION, "settings": to_json_data(session.settings),
            "view": to_json_data(session.view)}


def save_session(path: str | Path, session: Session) -> Path:
    """Write the session to `path` atomically; OSError if it cannot be written."""
    path = Path(path).expanduser()
    write_atomic(path, (json.dumps(session_document(session), indent=1) + "\n").encode("utf-8"))
    return path


# Decoding --------------------------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    return {float: "a number", int: "a whole number", bool: "true or false", str: "text"}.get(tp, str(tp))


def _decode(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SessionError(f"{where} should be an object, not {type(value).__name__}")
        return decode_dataclass(tp, value, where)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(option, value, where)
            except SessionError as e:
                errors.append(str(e))
        raise SessionError(errors[0] if errors else f"{where} has an unexpected value")
    if origin is tuple:
        if not isinstance(value, list):
            raise SessionError(f"{where} should be a list, not {type(value).__name__}")
        items = typing.get_args(tp)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_decode(items[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(items) != len(value):
            raise SessionError(f"{where} should have {len(items)} entries, not {len(value)}")
        return tuple(_decode(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(items, value)))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise SessionError(f"{where}: cannot read a value of type {tp}")
    raise SessionError(f"{where} should be {_type_name(tp)}, not {json.dumps(value)[:40]}")


def decode_dataclass(cls: type, data: dict, where: str) -> Any:
    """An instance of the frozen dataclass `cls` from JSON data, every field checked against its type."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}" if where else f.name)
    return cls(**values)


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise SessionError(f"{where} should be an object, not {type(value).__name__}")
    return value


def session_from_document(document: Any, source: str) -> Session:
    """A Session from a parsed session file; SessionError naming `source` if it is not one."""
    if not isinstance(document, dict) or document.get("kind") != SESSION_KIND:
        raise SessionError(f"{source} is not a visualizer session file")
    version = document.get("session_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SessionError(f"{source} has no session version")
    if version > SESSION_VERSION:
        raise NewerSessionError(f"{source} was written by a newer version of the visualizer (session version "
                           f"{version}; this one reads up to {SESSION_VERSION}); it was not opened")
    try:
        settings = decode_dataclass(Settings, _object(document.get("settings", {}), "settings"), "settings")
        view = decode_dataclass(ViewState, _object(document.get("view", {}), "view"), "view")
    except SessionError as e:
        raise SessionError(f"{source} is damaged: {e}") from None
    return Session(settings=settings, view=view)


def is_session_document(document: Any) -> bool:
    return isinstance(document, dict) and document.get("kind") == SESSION_KIND


def read_json(path: str | Path) -> Any:
    """A JSON file's content; SessionError (saying why) when it cannot be read or parsed."""
    path = Path(path).expanduser()
    try:
        if path.stat().st_size > MAX_SESSION_BYTES:
            raise SessionError(f"{path} is too large for a session file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SessionError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SessionError(f"{path} could not be read: {e}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise SessionError(f"{path} is damaged (not valid JSON: {e})") from None


def load_session(path: str | Path) -> Session:
    """The session saved in `path`; SessionError if it is missing, damaged or from a newer version."""
    return session_from_document(read_json(path), str(Path(path).expanduser()))


class SessionFiles:
    """Where sessions go: the default file in the config directory (restored at launch, written as the
    settings change) and a file the user named (File > Save session as)."""

    def __init__(self, autosave: bool, server: str | None = None) -> None:
        self.default_path = default_session_path(server)
        self.autosave = autosave
        self.named_path: Path | None = None
        self.named_settings: Settings | None = None     # as last saved to or opened from the named file
        self._written: str | None = None                # the text last written to the default file

    def restore_default(self) -> tuple[Session | None, str | None]:
        """The session of the last run (None if there is none) and a note when it could not be used.
        A damaged file is moved aside; one from a newer version is left alone and not overwritten."""
        path = self.default_path
        if not path.exists():
            return None, None
        try:
            return load_session(path), None
        except NewerSessionError as e:
            self.autosave = False
            return None, f"{e}; this run's settings will not be kept"
        except SessionError as e:
            aside = path.with_name(path.name + ".damaged")
            try:
                path.replace(aside)
            except OSError:
                self.autosave = False
            return None, f"The last session could not be restored ({e}); starting afresh (the file is kept as {aside.name})"

    def write_default(self, session: Session) -> str | None:
        """Save the session for the next launch if it changed; a note if it could not be written."""
        if not self.autosave:
            return None
        text = json.dumps(session_document(session), indent=1) + "\n"
        if text == self._written:
            return None
        try:
            write_atomic(self.default_path, text.encode("utf-8"))
        except OSError as e:
            self.autosave = False
            return f"could not save the session to {self.default_path}: {e}; it will not be restored"
        self._written = text
        return None

    def unsaved_named_changes(self, settings: Settings) -> bool:
        return self.named_path is not None and self.named_settings is not None and \
            settings.settled() != self.named_settings.settled()
