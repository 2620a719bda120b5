"""glibc allocator settings for the processes that run networks (renderer/allocator.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from renderer import allocator
from renderer.allocator import MALLOC_TUNING, tuned_children, tuned_environ

linux_only = pytest.mark.skipif(not allocator.applies(), reason="only glibc reads these variables")


def _child_environ() -> dict[str, str]:
    code = "import os, json; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('MALLOC_')}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


@linux_only
def test_tuning_added_where_the_user_set_nothing() -> None:
    env = tuned_environ({"PATH": "/bin"})
    assert env == {"PATH": "/bin", **MALLOC_TUNING}


@linux_only
def test_the_users_own_malloc_settings_win() -> None:
    """One variable of the user's is taken as their choice of allocator settings: nothing is added."""
    env = tuned_environ({"MALLOC_TOP_PAD_": "0"})
    assert env == {"MALLOC_TOP_PAD_": "0"}


def test_no_tuning_where_glibc_does_not_read_it(monkeypatch) -> None:
    monkeypatch.setattr(allocator, "applies", lambda: False)
    assert tuned_environ({"PATH": "/bin"}) == {"PATH": "/bin"}


@linux_only
def test_children_started_inside_get_it_and_the_parent_is_restored(monkeypatch) -> None:
    for key in MALLOC_TUNING:
        monkeypatch.delenv(key, raising=False)
    before = dict(os.environ)
    with tuned_children():
        inside = _child_environ()
    assert inside == MALLOC_TUNING
    assert dict(os.environ) == before
    assert _child_environ() == {}


@linux_only
def test_environment_restored_when_starting_fails(monkeypatch) -> None:
    for key in MALLOC_TUNING:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError):
        with tuned_children():
            raise RuntimeError("the child did not start")
    assert not any(key in os.environ for key in MALLOC_TUNING)


@linux_only
def test_release_free_memory_hands_freed_heap_memory_back() -> None:
    """Under the tuning, a freed 400 MB block stays resident until release_free_memory()."""
    code = (
        "import torch\n"
        "from renderer.allocator import release_free_memory\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096 >> 20\n"
        "x = torch.ones(100 << 20)\n"
        "del x\n"
        "held = rss()\n"
        "assert release_free_memory()\n"
        "print(held, rss())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=tuned_environ({k: v for k, v in os.environ.items() if k not in MALLOC_TUNING}),
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    held, after = map(int, out.stdout.split())
    assert held - after >= 300, (held, after)
