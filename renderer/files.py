"""Writing files so that a reader sees the old file or the complete new one, never a partial one, and
cleaning up the temporary files of a process that was killed while writing. Torch-free: the GUI, the
worker and the trainer all use it."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Sequence


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _write_temporary(path: Path, data: bytes, mode: int = 0o666) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o666) -> None:
    """Write `data` to `path` through a temporary file in the same directory (name ending in .tmp),
    fsync, then rename over `path`; on failure the temporary file is removed and `path` untouched.
    `mode` (less the umask) is the new file's permissions from the moment it exists."""
    write_atomic_group([(path, data)], mode)


def write_atomic_group(files: Sequence[tuple[str | os.PathLike, bytes]], mode: int = 0o666) -> None:
    """Write several files that belong together (a PNG and its sidecar): every one is written completely
    to a temporary name first, then they are renamed into place in the order given. A failure before
    the renames leaves every target untouched; a process killed between two renames leaves the first
    ones only, so put the file the others describe first."""
    written: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            path = Path(path)
            written.append((_write_temporary(path, data, mode), path))
        for tmp, path in written:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        raise
    for directory in {path.parent for _, path in written}:
        _fsync_directory(directory)


_TEMPORARY = re.compile(r"^\..+\.(\d+)-[0-9a-z_]+\.(tmp|partial)$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders (`.<name>.<pid>-<token>.tmp` / `.partial`) that a process
    which no longer runs left in `directory` when it was killed while writing; returns what was removed."""
    directory = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); not possible or needed everywhere."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
