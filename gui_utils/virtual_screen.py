"""A virtual X screen (Xvfb) of a given size, for the GUI tests, benchmarks and screenshots."""

from __future__ import annotations

import os
import shutil
import subprocess

INSTALL_HINT = "apt-get install -y --no-install-recommends xvfb"


class NoVirtualScreen(RuntimeError):
    """Xvfb is missing or did not start; the message says what to do."""


def start_xvfb(size: str = "1920x1080") -> tuple[subprocess.Popen, str]:
    """Start Xvfb with one screen of `size` (WxH) on a free display; (its process, the DISPLAY value)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise NoVirtualScreen(f"Xvfb is not installed ({INSTALL_HINT})")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        proc.wait(10)
        raise NoVirtualScreen("Xvfb did not report a display number")
    return proc, f":{number}"


def stop_xvfb(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)
