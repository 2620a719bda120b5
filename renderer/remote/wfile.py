"""W files that travel with a request: the bytes of the user's .npy or .npz, read on the GUI's
machine; the server parses them without pickle (renderer.worker.wfile.w_from_bytes), checking
type, shape and length against its model."""

from __future__ import annotations

import os
from pathlib import Path

from torch_utils.regular_file import NotARegularFile, open_regular

MAX_W_FILE_BYTES = 16 * 1024 * 1024
FORMAT_MAGICS = (b"\x93NUMPY", b"PK\x03\x04")   # .npy, .npz (a zip archive)


class WFileError(ValueError):
    """A W file that cannot be sent."""


def w_file_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a W file on this machine, for a request to a remote server; WFileError for a file
    that is not a regular file, is too large, or is neither a .npy nor a .npz."""
    path = Path(path)
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_W_FILE_BYTES:
                raise WFileError(f"W file {path.name} holds {size:,} bytes; a W file may have at most "
                                 f"{MAX_W_FILE_BYTES:,}")
            data = f.read(MAX_W_FILE_BYTES + 1)
    except NotARegularFile as e:
        raise WFileError(f"Cannot send W: {e}; give a .npy or .npz file") from None
    except OSError as e:
        raise WFileError(f"Cannot read the W file {path}: {e.strerror or e}") from None
    if len(data) > MAX_W_FILE_BYTES:
        raise WFileError(f"W file {path.name} grew past {MAX_W_FILE_BYTES:,} bytes while it was read")
    if not data.startswith(FORMAT_MAGICS):
        raise WFileError(f"W file {path.name} is neither a .npy nor a .npz file; save W from the visualizer or "
                         "use the official projector's projected_w.npz")
    return data
