"""The renderer client: latest args win, frames through shared memory, restarts, clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from renderer.client import RenderClient
from renderer.protocol import RenderArgs

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120.0


def wait_result(client: RenderClient, timeout: float = TIMEOUT_S):
    """Poll as the GUI does, once per frame, until a result comes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = client.get_result()
        if result is not None:
            return result
        time.sleep(0.005)
    pytest.fail(f"no result within {timeout} s")


def wait_idle(client: RenderClient, timeout: float = TIMEOUT_S) -> None:
    end = time.monotonic() + timeout
    while client.is_busy:
        if time.monotonic() > end:
            pytest.fail(f"renderer still busy after {timeout} s")
        time.sleep(0.005)


def shm_names(client: RenderClient) -> list[str]:
    return [slot[0] for slot in client._backend._slots.current() if slot is not None]


@pytest.fixture(scope="module")
def client():
    c = RenderClient()
    yield c
    c.close()


def test_in_process_client_gives_the_renderers_frame(micro_sg2_model):
    from renderer.worker.render import Renderer

    args = RenderArgs(model=str(micro_sg2_model), latent=((3, 1.0),), fft_show=True)
    with RenderClient(in_process=True) as c:
        assert c.pid is None
        c.set_args(args)
        result = wait_result(c)
    assert result.error is None and result.args == args
    assert np.array_equal(result.image, Renderer().render(args).image)


def test_equal_args_do_not_render_again(client, micro_sg2_model):
    args = RenderArgs(model=str(micro_sg2_model), latent=((11, 1.0),))
    client.set_args(args)
    assert wait_result(client).args == args
    count = client.frames_rendered
    client.set_args(RenderArgs(model=str(micro_sg2_model), latent=((11, 1.0),)))  # equal, not the same object
    assert not client.is_busy and client.frames_rendered == count and client.get_result() is None


def test_a_burst_of_changes_renders_far_fewer_frames_and_ends_on_the_last(client, micro_sg2_model):
    from renderer.worker.render import Renderer

    client.set_args(RenderArgs(model=str(micro_sg2_model)))
    wait_result(client)
    before = client.frames_rendered
    returned = []
    last = None
    for i in range(1000):
        last = RenderArgs(model=str(micro_sg2_model), latent=((i, 1.0),), fft_show=i % 2 == 1)
        client.set_args(last)
        returned.append(client.get_result())
    wait_idle(client)
    returned.append(client.get_result())
    returned = [r for r in returned if r is not None]
    final = returned[-1]
    stamps = [r.stamp for r in returned]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # never an older frame after a newer
    assert final.args == last
    assert np.array_equal(final.image, Renderer().render(last).image)
    assert client.frames_rendered - before < 200  # 1,000 requests; renders only when the renderer is free


def test_renderer_memory_stays_flat_over_500_renders(client, micro_sg2_model):
    process = psutil.Process(client.pid)

    def render(i: int) -> None:
        # Alternate the frame size (spectrum on/off) so the shared-memory slots get resized too.
        client.set_args(RenderArgs(model=str(micro_sg2_model), latent=((i, 1.0),), fft_show=i % 3 == 0))
        assert wait_result(client).error is None

    for i in range(50):  # warm-up: caches, allocator pools
        render(i)
    rss_start = process.memory_info().rss
    for i in range(50, 550):
        render(i)
    rss_end = process.memory_info().rss
    assert client.pid == process.pid  # same process all along
    assert rss_end < rss_start * 1.10, (rss_start, rss_end)


def test_killed_renderer_is_restarted_and_the_next_result_says_so(micro_sg2_model):
    with RenderClient() as c:
        c.set_args(RenderArgs(model=str(micro_sg2_model), latent=((1, 1.0),)))
        first = wait_result(c)
        assert first.error is None and first.message is None
        old_pid = c.pid
        os.kill(old_pid, signal.SIGKILL)
        args = RenderArgs(model=str(micro_sg2_model), latent=((2, 1.0),))
        c.set_args(args)
        result = wait_result(c)
        assert c.pid is not None and c.pid != old_pid
        assert result.args == args and result.error is None and result.image is not None
        assert result.message and "stopped unexpectedly" in result.message and "-9" in result.message
        assert "restarted" in result.message
        c.set_args(RenderArgs(model=str(micro_sg2_model), latent=((3, 1.0),)))
        assert wait_result(c).message is None  # said once


def test_close_leaves_no_process_and_no_shared_memory(micro_sg2_model):
    c = RenderClient()
    c.set_args(RenderArgs(model=str(micro_sg2_model)))
    wait_result(c)
    c.set_args(RenderArgs(model=str(micro_sg2_model), fft_show=True))
    wait_result(c)
    pid, names = c.pid, shm_names(c)
    assert names and all(Path("/dev/shm", n).exists() for n in names)
    c.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not any(Path("/dev/shm", n).exists() for n in names)
    assert pid not in [p.pid for p in psutil.Process().children(recursive=True)]


def test_interpreter_exit_without_close_cleans_up(micro_sg2_model, tmp_path):
    script = tmp_path / "leaky.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from renderer.client import RenderClient\n"
        "from renderer.protocol import RenderArgs\n"
        "if __name__ == '__main__':\n"
        "    c = RenderClient()\n"
        f"    c.set_args(RenderArgs(model={str(micro_sg2_model)!r}))\n"
        "    while c.get_result() is None:\n"
        "        time.sleep(0.01)\n"
        "    print(c.pid, *[s[0] for s in c._backend._slots.current() if s is not None], flush=True)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    pid, *names = out.stdout.split()
    assert names
    assert not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
    assert not any(Path("/dev/shm", n).exists() for n in names)
    assert "leaked" not in out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and glibc")
def test_renderer_process_runs_with_the_allocator_tuning(client, micro_sg2_model):
    """The renderer reuses its frames' memory (renderer/allocator.py); the GUI process is unchanged."""
    from renderer.allocator import MALLOC_TUNING

    if any(key in os.environ for key in MALLOC_TUNING):
        pytest.skip("the user's own allocator settings are in force")
    client.set_args(RenderArgs(model=str(micro_sg2_model), latent=((5, 1.0),)))
    wait_result(client)
    env = dict(item.split("=", 1) for item in Path(f"/proc/{client.pid}/environ").read_text().split("\0") if "=" in item)
    assert {key: env.get(key) for key in MALLOC_TUNING} == MALLOC_TUNING
    assert not any(key in os.environ for key in MALLOC_TUNING)


def test_closing_an_in_process_client_is_bounded_even_when_its_worker_is_stuck(micro_sg2_model, monkeypatch):
    """Esc with --in-process used to join the worker thread without a timeout: a worker stuck in a frame
    (a hung file read, a huge model) froze the window. close() now waits a bounded time."""
    import threading

    from renderer import client as client_module
    from renderer.worker import render as render_module

    entered, release = threading.Event(), threading.Event()

    def stuck(self, args, stamp=0):  # a stand-in for a frame that never finishes
        entered.set()
        release.wait(300)
        return render_module.RenderResult(stamp=stamp, args=args, error="released")

    monkeypatch.setattr(render_module.Renderer, "render", stuck)
    monkeypatch.setattr(client_module, "SHUTDOWN_WAIT_S", 1.0)
    c = RenderClient(in_process=True)
    c.set_args(RenderArgs(model=str(micro_sg2_model)))
    assert entered.wait(60), "the worker never started the frame"
    start = time.monotonic()
    c.close()
    took = time.monotonic() - start
    release.set()
    assert took < 10, f"close() took {took:.1f} s"


def test_a_model_that_kills_the_worker_is_not_retried_on_every_setting(micro_sg2_model, tmp_path, monkeypatch):
    """A file that crashes the worker process (here: a worker that dies on loading it) is given up after
    MAX_RESTARTS crashes; the message names the file; other settings of that model are not retried, and
    another model renders again."""
    crashing = tmp_path / "crashes-the-loader.pkl"
    crashing.write_bytes(b"\x80\x04K\x01.")
    # The worker process is a fresh interpreter: a sitecustomize on its path makes its loader die
    # (exit 139, as a segfault) on that one file, the way a file that crashes the unpickler would.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASH_HOOK)
    monkeypatch.setenv("VIZ_TEST_CRASH_ON", str(crashing))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with RenderClient() as c:
        c.set_args(RenderArgs(model=str(crashing)))
        result = wait_result(c)
        while "not tried again" not in (result.error or ""):
            result = wait_result(c)
        assert "crashes-the-loader.pkl" in result.error
        sent = c._stamp
        c.set_args(RenderArgs(model=str(crashing), latent=((5, 1.0),)))   # another setting, same file
        assert c._stamp == sent, "the crashing model was sent to the worker again"
        c.set_args(RenderArgs(model=str(micro_sg2_model)))
        assert wait_result(c).error is None


CRASH_HOOK = """
import importlib.abc, importlib.util, os, sys

class _CrashOnFile(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "renderer.worker.models":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            real = module.load_generator

            def load_generator(path, *args, **kwargs):
                if str(path) == os.environ["VIZ_TEST_CRASH_ON"]:
                    os._exit(139)
                return real(path, *args, **kwargs)
            module.load_generator = load_generator
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _CrashOnFile())
"""


@pytest.mark.parametrize("role", ["model", "w_file"])
def test_a_named_pipe_is_refused_and_the_next_setting_is_answered(client, micro_sg2_model, tmp_path, role):
    """A FIFO named like a model or a W file used to block the renderer for good (issue 14, item 3)."""
    fifo = tmp_path / ("x.pkl" if role == "model" else "w.npy")
    os.mkfifo(fifo)
    if role == "model":
        refused = RenderArgs(model=str(fifo), latent=((5, 1.0),))
    else:
        refused = RenderArgs(model=str(micro_sg2_model), latent=((5, 1.0),), w_file=str(fifo))
    client.set_args(refused)
    result = wait_result(client, timeout=30.0)
    assert result.args == refused
    assert result.error is not None and "named pipe (FIFO)" in result.error
    assert "Traceback" not in result.error

    answered = RenderArgs(model=str(micro_sg2_model), latent=((6, 1.0),))
    client.set_args(answered)
    result = wait_result(client, timeout=30.0)
    assert result.args == answered and result.error is None and result.image is not None
