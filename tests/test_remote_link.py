"""The remote link end to end on loopback, with the echo handler standing in for the worker: frames,
latest-args-wins, jobs, the browser, the token, a busy server, TLS with a pinned certificate."""

from __future__ import annotations

import logging
import os
import stat

import numpy as np
import pytest

from renderer.protocol import (AverageSpectrumRequest, CancelJob, FrameRequest, JobDone, JobProgress, JobRequest,
                               RenderArgs, StatusRequest, WorkerStatus)
from renderer.remote.client import LinkConfigError, LinkState, RemoteClient
from renderer.remote.frames import FrameCodec
from renderer.remote.messages import DirectoryListing, ListDirectory
from renderer.remote.server import Server, ServeError
from renderer.remote.tls import TlsError, load_or_create_identity, normalized_fingerprint
from renderer.remote.tokens import TokenError, check_token, new_token, token_from, tokens_match
from renderer.remote.echo import EchoHandler
from tests.remote_support import FRAME, TOKEN, client_of, echo_server, next_frame, wait_until


def connected(client: RemoteClient) -> bool:
    return client.status.state == LinkState.CONNECTED


def args_for(seed: int, **kwargs) -> RenderArgs:
    return RenderArgs(latent=((seed, 1.0),), **kwargs)


def test_frames_arrive_exactly_with_their_statistics(tmp_path):
    with echo_server(tmp_path) as (server, handler), client_of(server.port) as client:
        client.set_frame(1, args_for(7))
        reply = next_frame(client, 1)
        expected = FRAME.copy()
        expected[0, 0, :] = 7
        assert np.array_equal(reply.result.image, expected) and reply.result.device == "echo"
        assert reply.result.args == args_for(7)
        stats = client.stats.last_frame
        assert stats.stamp == 1 and stats.codec == "zstd" and stats.raw_bytes == FRAME.nbytes
        assert 0 < stats.wire_bytes and stats.round_trip_seconds > 0 and stats.server_seconds >= 0
        assert 0 < stats.image_bytes < stats.wire_bytes
        assert stats.compression_ratio == pytest.approx(FRAME.nbytes / stats.image_bytes)
        assert client.status.server == f"{server.name} at 127.0.0.1:{server.port}"
        assert wait_until(lambda: client.stats.round_trip_seconds, what="a ping's round trip") > 0
        assert client.stats.bytes_received > stats.wire_bytes > 0 and client.stats.bytes_sent > 0

        client.set_frame_codec(FrameCodec("jpeg", 90))
        client.set_frame(2, args_for(8))
        reply = next_frame(client, 2)
        assert client.stats.last_frame.codec == "jpeg" and reply.result.image.shape == FRAME.shape


def test_latest_args_win_across_the_link(tmp_path):
    with echo_server(tmp_path, render_seconds=0.3) as (server, handler), client_of(server.port) as client:
        wait_until(lambda: connected(client), what="connecting")
        for stamp in range(1, 41):
            client.set_frame(stamp, args_for(stamp))
        reply = next_frame(client, 40)
        assert reply.result.image[0, 0, 0] == 40
        # request 1 went out at once; 2..39 were replaced while it rendered; 40 went after it
        assert handler.frames_requested <= 3
        assert [m.stamp for m in handler.messages if isinstance(m, FrameRequest)][-1] == 40


def test_jobs_report_progress_and_finish_and_can_be_cancelled(tmp_path):
    with echo_server(tmp_path) as (server, handler), client_of(server.port) as client:
        wait_until(lambda: connected(client), what="connecting")
        request = AverageSpectrumRequest(RenderArgs(), num_images=12)
        assert client.send(JobRequest(7, request))
        done = []
        progress = []
        wait_until(lambda: [(done if isinstance(m, JobDone) else progress).append(m) for m in client.receive()] and done
                   or done, what="the job's end")
        assert done[0].job_id == 7 and done[0].value == "AverageSpectrumRequest" and done[0].error is None
        assert progress and all(isinstance(p, JobProgress) and 0 < p.done < p.total for p in progress)

        handler.job_steps = 10 ** 9
        assert client.send(JobRequest(8, request))
        assert client.send(CancelJob(8))
        ended = wait_until(lambda: [m for m in client.receive() if isinstance(m, JobDone)], what="the cancellation")
        assert ended[0].job_id == 8 and ended[0].cancelled

        assert client.send(StatusRequest())
        status = wait_until(lambda: [m for m in client.receive() if isinstance(m, WorkerStatus)], what="the status")
        assert status[0].pid > 0 and status[0].jobs == 0


def test_the_browser_lists_the_servers_folder_and_paths_outside_are_refused(tmp_path):
    root = tmp_path / "root"
    (root / "models").mkdir(parents=True)
    (root / "models" / "a.pkl").write_bytes(b"\x80\x04.")
    (tmp_path / "secret.pkl").write_bytes(b"\x80\x04.")
    with echo_server(root) as (server, handler), client_of(server.port) as client:
        wait_until(lambda: connected(client), what="connecting")
        client.send(ListDirectory("models"))
        listing = wait_until(lambda: [m for m in client.receive() if isinstance(m, DirectoryListing)])[0]
        assert [(e.name, e.kind) for e in listing.entries] == [("a.pkl", "model")]

        client.set_frame(1, RenderArgs(model="models/a.pkl"))
        assert next_frame(client, 1).result.args.model == str(root / "models" / "a.pkl")
        client.set_frame(2, RenderArgs(model="../secret.pkl"))
        refused = next_frame(client, 2)
        assert "outside the served folder" in refused.result.error and refused.result.image is None
        assert all(m.args.model != "../secret.pkl" for m in handler.messages if isinstance(m, FrameRequest))


def test_a_wrong_token_is_refused_on_both_sides(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="renderer.remote.server"):
        with echo_server(tmp_path) as (server, handler), client_of(server.port, token="not-the-right-token-at-all") as client:
            wait_until(lambda: client.status.state == LinkState.REFUSED, what="the refusal")
            assert "refused the token" in client.status.message and "VIZ_TOKEN" in client.status.message
            client.set_frame(1, args_for(1))
            assert not client.send(JobRequest(1, AverageSpectrumRequest(RenderArgs(), num_images=1)))
            assert handler.messages == []
    assert any("wrong token" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_a_second_gui_is_told_the_server_is_busy_and_gets_in_when_the_first_leaves(tmp_path):
    with echo_server(tmp_path) as (server, handler):
        first = RemoteClient(f"127.0.0.1:{server.port}", TOKEN)
        try:
            wait_until(lambda: connected(first), what="the first GUI connecting")
            with client_of(server.port) as second:
                wait_until(lambda: second.status.state == LinkState.REFUSED, what="the busy refusal")
                assert "busy with another GUI" in second.status.message
                first.close()
                wait_until(lambda: connected(second), timeout=15, what="the second GUI getting in")
                second.set_frame(1, args_for(3))
                assert next_frame(second, 1).result.image[0, 0, 0] == 3
        finally:
            first.close()


def test_tls_with_a_pinned_certificate(tmp_path):
    identity = load_or_create_identity(tmp_path / "tls")
    assert load_or_create_identity(tmp_path / "tls").fingerprint == identity.fingerprint  # kept across restarts
    assert stat.S_IMODE(os.stat(identity.key_path).st_mode) & 0o077 == 0
    with echo_server(tmp_path, tls=identity) as (server, handler):
        assert identity.fingerprint in server.banner()
        with client_of(server.port, fingerprint=identity.fingerprint.replace(":", "").lower()) as client:
            client.set_frame(1, args_for(5))
            assert next_frame(client, 1).result.image[0, 0, 0] == 5
        other = load_or_create_identity(tmp_path / "other").fingerprint
        with client_of(server.port, fingerprint=other) as client:
            wait_until(lambda: client.status.state == LinkState.REFUSED, what="the pin refusal")
            assert "not the pinned" in client.status.message
        with client_of(server.port) as plain:  # a client without TLS gets nowhere, and nothing breaks
            wait_until(lambda: plain.status.state == LinkState.RECONNECTING, what="the failed plain connection")
    assert [m for m in handler.messages if isinstance(m, FrameRequest)][0].stamp == 1 and len(handler.messages) == 1


def test_listening_beyond_loopback_needs_a_flag_and_tls(tmp_path):
    handler = EchoHandler(FRAME)
    with pytest.raises(ServeError, match="--allow-remote"):
        Server(handler, root=str(tmp_path), host="0.0.0.0")
    with pytest.raises(ServeError, match="TLS"):
        Server(handler, root=str(tmp_path), host="0.0.0.0", allow_remote=True)
    with pytest.raises(LinkConfigError, match="fingerprint"):
        RemoteClient("gpu.invalid:5555", TOKEN)
    with pytest.raises(LinkConfigError, match="HOST:PORT"):
        RemoteClient("127.0.0.1", TOKEN)
    with pytest.raises(TlsError, match="not a SHA-256 fingerprint"):
        normalized_fingerprint("ab:cd")


def test_tokens(tmp_path):
    server = Server(EchoHandler(FRAME), root=str(tmp_path))
    assert server.token_was_made and len(server.token) >= 16 and server.token in server.banner()
    assert new_token() != new_token()
    assert tokens_match(TOKEN, TOKEN) and not tokens_match(TOKEN, TOKEN + "x") and not tokens_match("", TOKEN)
    with pytest.raises(TokenError, match="at least 16"):
        check_token("short")
    assert token_from(environ={"VIZ_TOKEN": TOKEN}) == TOKEN and token_from(environ={}) is None
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o644)
    with pytest.raises(TokenError, match="chmod 600"):
        token_from(path, environ={})
    path.chmod(0o600)
    assert token_from(path, environ={"VIZ_TOKEN": "ignored-because-the-file-wins"}) == TOKEN
