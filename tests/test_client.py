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
    return [s.name for s in client._backend._segments if s is not None]


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
        "    print(c.pid, *[s.name for s in c._backend._segments if s is not None], flush=True)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    pid, *names = out.stdout.split()
    assert names
    assert not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
    assert not any(Path("/dev/shm", n).exists() for n in names)
    assert "leaked" not in out.stderr


def test_client_capture_and_export_import_without_torch():
    code = ("import sys; import renderer.client, renderer.capture, renderer.worker.export; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


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
