"""The shared secret a GUI shows to a server: from VIZ_TOKEN, a file, or fresh at the server's start."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "VIZ_TOKEN"
MIN_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 1024


class TokenError(ValueError):
    """A token that cannot be used (too short, unreadable file, file others can read)."""


def new_token() -> str:
    """A fresh random token (192 bits, URL-safe characters)."""
    return secrets.token_urlsafe(24)


def token_from(token_file: str | os.PathLike | None = None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The token from `token_file` if given, else from VIZ_TOKEN, else None."""
    if token_file is not None:
        path = Path(token_file)
        try:
            if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise TokenError(f"{path}: other users can read this token file; run `chmod 600 {path}`")
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise TokenError(f"Cannot read the token file {path}: {e}") from None
        return check_token(token, f"the token in {path}")
    token = environ.get(TOKEN_ENV)
    if token is None:
        return None
    return check_token(token.strip(), TOKEN_ENV)


def check_token(token: str, where: str = "the token") -> str:
    if len(token) < MIN_TOKEN_CHARS:
        raise TokenError(f"{where} has {len(token)} characters; use at least {MIN_TOKEN_CHARS} (or leave it unset "
                         "and the server makes one)")
    if len(token) > MAX_TOKEN_CHARS or not token.isascii() or not token.isprintable() or " " in token:
        raise TokenError(f"{where} must be at most {MAX_TOKEN_CHARS} printable ASCII characters without spaces")
    return token


def tokens_match(given: str, expected: str) -> bool:
    """Constant-time comparison (of digests, so that not even the length leaks)."""
    a = hashlib.sha256(given.encode("utf-8", "replace")).digest()
    b = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)
