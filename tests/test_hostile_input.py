"""A hostile peer cannot starve the fleet: floods are rate limited, replies never block the
collector, oversized frames are cut off by libzmq, and decode never allocates beyond limits."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.procs import Child
from collector.server import Collector
from collector.server.ratelimit import MAX_PEERS, RateLimiter
from collector.store import Store
from collector.store.model_files import ModelStore
from shared import protocol
from shared.errors import ProtocolError
from shared.transport import configure_client, max_message_bytes
from tests.conftest import matmul_graph, save_model
from tests.fleet_helpers import (
    campaign_status,
    start_agent,
    start_collector,
    wait_for_campaign,
    write_campaign,
)
from tests.test_security import submit

FLOOD = 10_000
_POLL = threading.Event()  # never set: wait(t) is a bounded polling period


def _malformed() -> list[list[bytes]]:
    """Kinds of bad message a peer can send: each fails a different check."""
    register = protocol.encode(protocol.Register("x", "0", {}, {}, ""))
    header = json.loads(register[0])
    newer = json.dumps({**header, "proto": protocol.PROTOCOL_VERSION + 1}).encode()
    model = protocol.encode(protocol.ModelData(hashlib.sha256(b"").hexdigest(), b""))
    lying = json.loads(model[0])
    lying["frames"][0]["length"] = 2**62
    return [
        [b"\x00\xff garbage"],
        [b"{}"],
        [b'{"proto": 2, "type": "nope", "body": {}, "frames": []}'],
        [newer],
        [json.dumps(lying).encode(), b""],
        protocol.encode(protocol.Heartbeat("idle", "")),  # valid, but never registered
        [b"[" * 5000],
        [b""],  # an empty header frame
    ]


def _raw_peer(endpoint: str) -> zmq.Socket[bytes]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)  # queue the whole flood; the collector decides its pace
    sock.setsockopt(zmq.SNDTIMEO, 10_000)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.connect(endpoint)
    return sock


@pytest.mark.integration
def test_a_flood_of_malformed_messages_does_not_starve_a_working_agent(tmp_path: Path) -> None:
    save_model(matmul_graph(width=32), tmp_path / "m.onnx")
    config = write_campaign(tmp_path, ["m.onnx"], threads=[1, 2], name="steady")
    collector, endpoint = start_collector(tmp_path / "db.sqlite", heartbeat=0.5)
    agent = start_agent(endpoint, "steady", tmp_path)
    peer = _raw_peer(endpoint)
    try:
        collector.seen(r"agent steady registered", 60)
        kinds = _malformed()
        started = time.monotonic()
        for i in range(FLOOD):  # never reads a reply: they must not block the collector
            peer.send_multipart(kinds[i % len(kinds)])
        submit(endpoint, None, config, tmp_path / "scratch")
        deadline = time.monotonic() + 60
        while True:  # bounded: until every flood message is rejected or dropped
            status = campaign_status(endpoint, "")
            counters = status["counters"]
            assert status["agents"][0]["state"] == "online"
            assert status["agents"][0]["last_seen_s"] < 2.0  # beats every 0.5 s; missing at 2.5
            if counters["rejected"] + counters["dropped"] >= FLOOD or time.monotonic() > deadline:
                break
            _POLL.wait(0.1)
        assert counters["rejected"] + counters["dropped"] == FLOOD, counters
        assert counters["dropped"] > 0
        wait_for_campaign(endpoint, "steady", timeout=120)
        elapsed = time.monotonic() - started
    finally:
        peer.close()
        agent.stop()
        assert collector.stop() == 0, collector.tail(20)
    assert elapsed < 120
    assert not [line for line in collector.lines if "missed its heartbeats" in line]
    assert len([line for line in collector.lines if "rejected a message" in line]) <= 20
    assert len([line for line in collector.lines if "messages/s: dropped" in line]) == 1


@pytest.mark.integration
def test_serve_takes_the_peer_rate_from_its_flags(tmp_path: Path) -> None:
    collector, endpoint = start_collector(
        tmp_path / "db.sqlite", extra=("--peer-rate", "1", "--peer-burst", "3")
    )
    peer = _raw_peer(endpoint)
    try:
        started = time.monotonic()
        beat = protocol.encode(protocol.Heartbeat("idle", ""))  # refused: never registered
        for _ in range(30):  # well-formed, so not also charged as malformed (penalize)
            peer.send_multipart(beat)
        deadline = time.monotonic() + 30
        while True:  # bounded: until all 30 are either rejected (handled) or dropped
            counters = campaign_status(endpoint, "")["counters"]
            if counters["rejected"] + counters["dropped"] >= 30 or time.monotonic() > deadline:
                break
            _POLL.wait(0.05)
        handled_at_most = 3 + (time.monotonic() - started) * 1 + 1  # burst + rate x elapsed
    finally:
        peer.close()
        assert collector.stop() == 0, collector.tail(20)
    assert counters["rejected"] + counters["dropped"] == 30, counters
    assert 3 <= counters["rejected"] <= handled_at_most, counters  # the default would take all


@pytest.mark.integration
def test_a_frame_over_the_size_cap_never_reaches_the_collector(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from collector.server.serve import serve; "
        f"sys.exit(serve('tcp://127.0.0.1:0', Path({str(tmp_path / 'db.sqlite')!r}), False, "
        "max_message_bytes=65536))"
    )
    collector = Child([sys.executable, "-c", code], "collector")
    endpoint = collector.expect(r"listening on (tcp://\S+)", 30).group(1)
    big, small = _raw_peer(endpoint), _raw_peer(endpoint)
    big.setsockopt(zmq.RCVTIMEO, 1000)
    try:
        big.send_multipart([b"{" + b" " * 200_000 + b"}"])  # libzmq drops this connection
        small.send_multipart(protocol.encode(protocol.Register("ok", "0", {}, {}, "")))
        assert isinstance(protocol.decode(small.recv_multipart()), protocol.Welcome)
        with pytest.raises(zmq.Again):  # no Reject: the frame never reached Python
            big.recv_multipart()
        assert campaign_status(endpoint, "")["counters"]["rejected"] == 0
    finally:
        big.close()
        small.close()
        assert collector.stop() == 0, collector.tail(20)


def test_sockets_cap_frames_at_the_largest_valid_one_by_default() -> None:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    try:
        configure_client(sock, None)
        cap = sock.getsockopt(zmq.MAXMSGSIZE)
        assert cap == max_message_bytes() > protocol.MAX_MODEL_BYTES
        assert cap > protocol.MAX_LATENCY_SAMPLES * 8
        configure_client(sock, None, 4096)
        assert sock.getsockopt(zmq.MAXMSGSIZE) == 4096
    finally:
        sock.close(linger=0)


def test_replies_to_a_peer_that_never_reads_do_not_block(tmp_path: Path) -> None:
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.setsockopt(zmq.SNDHWM, 10)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    peer = ctx.socket(zmq.DEALER)
    peer.setsockopt(zmq.RCVHWM, 10)
    peer.connect(f"tcp://127.0.0.1:{port}")
    store = Store(tmp_path / "db.sqlite")
    try:
        peer.send(b"hello")
        assert router.poll(5000)
        routing_id = router.recv_multipart()[0]
        collector = Collector(router, store, ModelStore(tmp_path / "models"))
        reply = protocol.Reject("no", "read your replies", protocol.PROTOCOL_VERSION, "refused")
        padded = protocol.Reject("x" * 60_000, "", protocol.PROTOCOL_VERSION, "refused")
        started = time.monotonic()
        for i in range(20_000):  # far beyond both queues and the socket buffers
            collector._send(routing_id, padded if i % 2 else reply)
        assert time.monotonic() - started < 30
        assert collector.counters["unsent"] > 0
    finally:
        store.close()
        peer.close(linger=0)
        router.close(linger=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=200, burst=400, clock=clock)
    assert sum(limiter.allow("a") for _ in range(1000)) == 400
    assert limiter.allow("b")  # another peer has its own bucket
    clock.now += 0.5
    assert sum(limiter.allow("a") for _ in range(1000)) == 100


def test_drops_are_reported_once_per_peer_per_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    limiter.allow("p")
    assert limiter.report("p") == 0  # nothing dropped yet
    for _ in range(5):
        limiter.allow("p")
    assert limiter.report("p") == 5  # the first report comes at once
    limiter.allow("p")
    assert limiter.report("p") == 0
    clock.now += 61
    limiter.allow("p")  # refilled: allowed
    limiter.allow("p")  # dropped
    assert limiter.report("p") == 2


def test_limiter_state_stays_bounded_under_many_peers() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=200, burst=400, clock=clock)
    for i in range(3 * MAX_PEERS):
        limiter.allow(i)
        clock.now += 0.0001
    assert len(limiter) <= MAX_PEERS


def _bulk_messages() -> dict[str, list[bytes]]:
    model = b"onnx" * 64
    return {
        "model": protocol.encode(protocol.ModelData(hashlib.sha256(model).hexdigest(), model)),
        "latencies": protocol.encode(protocol.Result("j", "r", {}, np.arange(32, dtype=np.int64))),
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(_bulk_messages())),
    st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([2**31, 2**62, 2**64]),
    st.integers(min_value=0, max_value=8192),
)
def test_decode_never_allocates_beyond_what_it_received(
    kind: str, declared: int, frame_size: int
) -> None:
    """Whatever length a header declares, decode allocates about what arrived, no more."""
    frames = _bulk_messages()[kind]
    header = json.loads(frames[0])
    header["frames"][0]["length"] = declared
    sent = [json.dumps(header).encode(), b"\x01" * frame_size]
    tracemalloc.start()
    try:
        protocol.decode(sent)
    except ProtocolError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < (1 << 20) + 4 * sum(len(f) for f in sent)
