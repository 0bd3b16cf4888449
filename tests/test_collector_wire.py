"""A real collector subprocess answering raw ZeroMQ peers: bad frames, other versions."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from collector.procs import Child
from shared import protocol

pytestmark = pytest.mark.integration


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[Child, str]]:
    child = Child(
        [
            sys.executable,
            "-m",
            "collector",
            "serve",
            "--bind",
            "tcp://127.0.0.1:0",
            "--db",
            str(tmp_path / "db.sqlite"),
        ],
        "collector",
    )
    try:
        yield child, child.expect(r"listening on (tcp://\S+)", 30).group(1)
    finally:
        assert child.stop() == 0, child.tail(20)


@pytest.fixture
def peer(collector: tuple[Child, str]) -> Iterator[zmq.Socket[bytes]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)  # every receive is bounded
    sock.connect(collector[1])
    yield sock
    sock.close()


def _register() -> protocol.Register:
    return protocol.Register("raw-peer", "0.1.0", {"device_id": "0" * 16}, {}, "")


def test_other_protocol_version_is_told_which_side_to_upgrade(peer: zmq.Socket[bytes]) -> None:
    frames = protocol.encode(_register())
    header = json.loads(frames[0])
    proto = protocol.PROTOCOL_VERSION + 1  # v1 is the first version: no older peer exists
    header["proto"] = proto
    peer.send_multipart([json.dumps(header).encode(), *frames[1:]])
    reply = protocol.decode(peer.recv_multipart())
    assert isinstance(reply, protocol.Reject)
    assert "upgrade the collector" in reply.hint and str(proto) in reply.reason


def test_malformed_frames_are_rejected_and_the_collector_serves_on(
    peer: zmq.Socket[bytes],
) -> None:
    for bad in ([b"\x00\xff garbage"], [b"{}"], [b'{"proto": 2, "type": "nope"}']):
        peer.send_multipart(bad)
        reply = protocol.decode(peer.recv_multipart())
        assert isinstance(reply, protocol.Reject) and reply.code == "malformed"
    peer.send_multipart(protocol.encode(protocol.Heartbeat("idle", "")))  # not registered yet
    reply = protocol.decode(peer.recv_multipart())
    assert isinstance(reply, protocol.Reject) and reply.code == "unregistered"
    peer.send_multipart(protocol.encode(_register()))
    welcome = protocol.decode(peer.recv_multipart())
    assert isinstance(welcome, protocol.Welcome) and welcome.agent_id == "raw-peer"


def test_result_for_a_job_never_sent_is_refused(peer: zmq.Socket[bytes]) -> None:
    peer.send_multipart(protocol.encode(_register()))
    assert isinstance(protocol.decode(peer.recv_multipart()), protocol.Welcome)
    peer.send_multipart(protocol.encode(protocol.JobFailed("f" * 32, "r" * 32, "x", "boom")))
    reply = protocol.decode(peer.recv_multipart())
    assert isinstance(reply, protocol.Reject) and reply.code == "unknown_job"
