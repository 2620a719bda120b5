"""Opening a file that the user named, without hanging on something that is not a file.

A FIFO, a character device or a socket named like a model or a W file would block an ordinary
`open()` (a FIFO waits for a writer) or stream endlessly (/dev/zero). These are refused before
and after opening; the open itself is non-blocking, so a FIFO swapped in between cannot hang it.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path


class NotARegularFile(OSError):
    """The path names a directory, FIFO, device or socket, not a regular file."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def describe_if_not_regular(path: str | os.PathLike) -> str | None:
    """None for a regular file (following symlinks); else what the path is, in words.
    Raises OSError when the path cannot be examined."""
    mode = os.stat(path).st_mode
    return None if stat.S_ISREG(mode) else _kind(mode)


def open_regular(path: str | os.PathLike) -> io.BufferedReader:
    """Open `path` for binary reading if it is a regular file; NotARegularFile otherwise."""
    path = Path(path)
    what = describe_if_not_regular(path)
    if what is not None:
        raise NotARegularFile(f"{path} is {what}, not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # replaced between the check and the open
            raise NotARegularFile(f"{path} is {_kind(mode)}, not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
