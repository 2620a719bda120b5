"""Faults with real processes on loopback: a server killed in the middle of a frame, a server
restarted, a client killed in the middle of a request. The survivor reports it, nothing hangs,
and the client reconnects by itself and gets the frame it was waiting for."""

from __future__ import annotations

import signal

from renderer.protocol import AverageSpectrumRequest, JobDone, JobRequest, RenderArgs
from renderer.remote.client import LinkState
from tests.remote_support import client_of, echo_server, free_port, next_frame, process, wait_until

def echo_process(port: int):
    return process("-m", "renderer.remote.echo", "--port", str(port), "--size", "64", ready="Listening on")


def args_for(seed: int) -> RenderArgs:
    return RenderArgs(latent=((seed, 1.0),))


def test_a_server_killed_mid_frame_is_reported_and_its_successor_answers_the_request():
    port = free_port()
    with client_of(port) as client:
        with process("tests/remote_dying_peer.py", "server", str(port), ready="listening") as dying:
            client.set_frame(1, args_for(5))
            wait_until(lambda: client.status.state == LinkState.CONNECTED, what="connecting")
            assert client.send(JobRequest(3, AverageSpectrumRequest(RenderArgs(), num_images=8)))
            wait_until(lambda: client.status.state == LinkState.RECONNECTING, what="the drop being noticed")
            message = client.status.message  # which one depends on whether the kernel sent a reset
            assert "in the middle of a message" in message or "connection was cut" in message, message
            assert dying.wait(10) == -signal.SIGKILL
        lost = wait_until(lambda: [m for m in client.receive() if isinstance(m, JobDone)], what="the lost job")
        assert lost[0].job_id == 3 and "lost" in lost[0].error
        with echo_process(port):
            reply = next_frame(client, 1, timeout=20)  # sent again by itself once the new server is there
            assert reply.result.image[0, 0, 0] == 5
            assert client.status.state == LinkState.CONNECTED and "restarted" in client.status.message


def test_a_restarted_server_is_reconnected_and_a_request_made_meanwhile_is_answered():
    port = free_port()
    with client_of(port) as client:
        with echo_process(port) as server:
            client.set_frame(1, args_for(1))
            assert next_frame(client, 1).result.image[0, 0, 0] == 1
            server.send_signal(signal.SIGKILL)
            wait_until(lambda: client.status.state == LinkState.RECONNECTING, what="the drop being noticed")
        client.set_frame(2, args_for(2))  # while no server runs
        assert client.receive(timeout=0.5) == []
        with echo_process(port):
            reply = next_frame(client, 2, timeout=20)
            assert reply.result.image[0, 0, 0] == 2 and "restarted" in client.status.message


def test_a_client_killed_mid_request_leaves_the_server_serving(tmp_path):
    with echo_server(tmp_path) as (server, handler):
        with process("tests/remote_dying_peer.py", "client", str(server.port), ready="sent half") as dying:
            assert dying.wait(10) == -signal.SIGKILL
        with client_of(server.port) as client:
            client.set_frame(1, args_for(8))
            assert next_frame(client, 1, timeout=20).result.image[0, 0, 0] == 8
        assert handler.frames_requested == 1
