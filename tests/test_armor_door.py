"""Issue 15 ("armor"), the door: no single message stops the collector, nonsense is refused
before it is stored, and a result id belongs to one job.

Each test first replays the attack (a raw DEALER on 127.0.0.1 speaking shared.protocol to a
real `flopgap serve` subprocess), then checks that the bad message got a Reject that says
why, that a well-behaved agent still registers and gets a Welcome, and that the store is
consistent.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from collector.client import Client
from collector.procs import Child
from shared import protocol
from shared.errors import UsageError
from shared.stats import summarize

pytestmark = pytest.mark.integration

MODEL = b"not an onnx graph: the door is tested, not the FLOPs counter"
SHA = hashlib.sha256(MODEL).hexdigest()
LATENCIES = np.arange(1_000_000, 1_000_000 + 100 * 1000, 1000, dtype=np.int64)


class Rig:
    """A collector subprocess, its endpoint and database."""

    def __init__(self, child: Child, endpoint: str, db: Path) -> None:
        self.child, self.endpoint, self.db = child, endpoint, db

    def peer(self) -> zmq.Socket[bytes]:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 10_000)  # every receive is bounded
        sock.connect(self.endpoint)
        return sock

    def submit(self, payload: dict[str, Any]) -> protocol.Message:
        with Client(self.endpoint, timeout_s=10) as client:
            client.send(protocol.ModelData(SHA, MODEL))
            return client.request(protocol.SubmitCampaign(payload), protocol.CampaignAccepted)

    def still_serving(self) -> None:
        """A well-behaved agent registers and is welcomed; the store is consistent."""
        sock = self.peer()
        try:
            sock.send_multipart(protocol.encode(register("healthy-" + uuid.uuid4().hex[:6])))
            assert isinstance(receive(sock), protocol.Welcome), self.child.tail(20)
        finally:
            sock.close()
        db = sqlite3.connect(self.db)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            orphans = db.execute(
                "SELECT COUNT(*) FROM results r LEFT JOIN jobs j USING (job_id) "
                "WHERE j.job_id IS NULL"
            ).fetchone()[0]
            done_without = db.execute(
                "SELECT COUNT(*) FROM jobs j WHERE state='done' AND NOT EXISTS "
                "(SELECT 1 FROM results r WHERE r.job_id=j.job_id AND r.job_result=1)"
            ).fetchone()[0]
            assert (orphans, done_without) == (0, 0)
        finally:
            db.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    db = tmp_path / "db.sqlite"
    argv = [sys.executable, "-m", "collector", "serve", "--bind", "tcp://127.0.0.1:0",
            "--db", str(db), "--no-calibrate"]  # fmt: skip
    child = Child(argv, "collector")
    try:
        endpoint = child.expect(r"listening on (tcp://\S+)", 30).group(1)
        yield Rig(child, endpoint, db)
    finally:
        assert child.stop() == 0, child.tail(20)


def register(name: str, **device: Any) -> protocol.Register:
    descriptor = {"device_id": name, "providers": ["CPUExecutionProvider"], **device}
    return protocol.Register(name, "0.1.0", descriptor, {}, "")


def receive(sock: zmq.Socket[bytes]) -> protocol.Message:
    return protocol.decode(sock.recv_multipart())


def payload(agent: str, count: int = 1, **over: Any) -> dict[str, Any]:
    job = {"model": "m", "sha256": SHA, "settings": {"threads": 1}, "repeat": 0}
    base = {"name": f"door-{uuid.uuid4().hex[:6]}", "targets": {"agents": [agent], "tags": {}},
            "jobs": [dict(job, repeat=r) for r in range(count)], "timeout_s": 60.0,
            "retries": 0, "spec": {}}  # fmt: skip
    return {**base, **over}


def document(latencies: np.ndarray = LATENCIES, **latency: Any) -> dict[str, Any]:
    """A result document the collector accepts; `latency` overrides latency_ms keys."""
    return {
        "schema_version": 1,
        "model": {"name": "m", "sha256": SHA, "size_bytes": len(MODEL),
                  "inputs": {"x": {"type": "tensor(float)", "shape": [1, 4]}}},
        "load_ms": 1.0, "first_inference_ms": 1.0, "warmup": {"n": 1, "ms": 1.0},
        "latency_ms": {**summarize(latencies), **latency},
        "memory": {"rss_before_mb": 1.0, "rss_after_load_mb": 1.0, "peak_rss_mb": 1.0,
                   "hwm_mb": 1.0, "method": "sampled"},
        "valid": True, "invalid_reasons": [], "warnings": [], "system": {},
        "device": {"device_id": "d", "hostname": "h", "arch": "x86_64", "cpu_model": "c",
                   "logical_cores": 2},
        "settings": {"provider": "CPUExecutionProvider", "threads": 1, "inter_threads": 0,
                     "opt_level": "all"},
        "power": None, "power_unavailable_reason": "none",
    }  # fmt: skip


def agent_with_jobs(rig: Rig, name: str, jobs: int = 1) -> tuple[zmq.Socket[bytes], str]:
    """A raw agent registered with a campaign of `jobs` jobs; returns it and its first job."""
    sock = rig.peer()
    sock.send_multipart(protocol.encode(register(name)))
    assert isinstance(receive(sock), protocol.Welcome)
    rig.submit(payload(name, jobs))
    return sock, next_job(sock)


def next_job(sock: zmq.Socket[bytes]) -> str:
    for _ in range(5):
        msg = receive(sock)
        if isinstance(msg, protocol.Job):
            return msg.job_id
    raise AssertionError("no Job arrived")


def reply(sock: zmq.Socket[bytes], msg: protocol.Message) -> protocol.Message:
    sock.send_multipart(protocol.encode(msg))
    return receive(sock)


def raw_result(job_id: str, result_id: str, doc: dict[str, Any], lat: np.ndarray) -> list[bytes]:
    """A Result's frames as a hostile peer builds them: no encode-side checks."""
    header = {
        "proto": protocol.PROTOCOL_VERSION,
        "type": "result",
        "body": {"document": doc, "job_id": job_id, "result_id": result_id},
        "frames": [{"dtype": "<i8", "field": "latencies_ns", "length": int(lat.size)}],
    }
    return [json.dumps(header).encode(), lat.astype("<i8").tobytes()]  # fmt: skip


def raw_register(name: str, device: dict[str, Any]) -> list[bytes]:
    body = {"agent_name": name, "agent_version": "0", "device": device, "tags": {},
            "running_job_id": ""}  # fmt: skip
    header = {"proto": protocol.PROTOCOL_VERSION, "type": "register", "body": body, "frames": []}
    return [json.dumps(header).encode()]


def job_state(rig: Rig, job_id: str) -> str:
    db = sqlite3.connect(rig.db)
    try:
        return str(db.execute("SELECT state FROM jobs WHERE job_id=?", (job_id,)).fetchone()[0])
    finally:
        db.close()


def test_item1_a_result_without_model_inputs_is_refused_and_the_collector_serves_on(
    rig: Rig,
) -> None:
    sock, job = agent_with_jobs(rig, "no-inputs")
    doc = document()
    del doc["model"]["inputs"]
    answer = receive_after(sock, raw_result(job, uuid.uuid4().hex, doc, LATENCIES))
    assert isinstance(answer, protocol.Reject) and "model" in answer.reason, answer
    rig.still_serving()
    ok = reply(sock, protocol.Result(job, uuid.uuid4().hex, document(), LATENCIES))
    assert isinstance(ok, protocol.Ack)  # the job was not spoilt by the refused attempt


def receive_after(sock: zmq.Socket[bytes], frames: list[bytes]) -> protocol.Message:
    sock.send_multipart(frames)
    return receive(sock)


def test_item1_a_final_job_failed_reusing_a_stored_result_id_is_refused(rig: Rig) -> None:
    sock, first = agent_with_jobs(rig, "reuser", jobs=2)
    stored = uuid.uuid4().hex
    assert isinstance(reply(sock, protocol.Result(first, stored, document(), LATENCIES)),
                      protocol.Ack)  # fmt: skip
    second = next_job(sock)
    answer = reply(sock, protocol.JobFailed(second, stored, "crash", "boom"))
    assert isinstance(answer, protocol.Reject) and "already stored for job" in answer.reason
    assert job_state(rig, second) == "failed"  # retries = 0: failed for good, not stranded
    assert job_state(rig, first) == "done"
    rig.still_serving()


def test_item1_a_register_with_providers_5_is_refused_then_a_campaign_still_submits(
    rig: Rig,
) -> None:
    sock = rig.peer()
    answer = receive_after(sock, raw_register("p5", {"device_id": "p5", "providers": 5}))
    assert isinstance(answer, protocol.Reject) and "device.providers" in answer.reason
    huge = receive_after(sock, raw_register("cpu", {"device_id": "c", "cpu_model": "x" * 140_000}))
    assert isinstance(huge, protocol.Reject) and "device.cpu_model" in huge.reason
    sock.send_multipart(protocol.encode(register("after")))
    assert isinstance(receive(sock), protocol.Welcome)
    rig.submit(payload("after"))
    assert isinstance(receive(sock), protocol.Job)
    rig.still_serving()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"jobs": [{"model": "m", "sha256": SHA, "settings": {"threads": "many"},
                    "repeat": 0}]}, "jobs[0].settings"),
        ({"timeout_s": -1}, "campaign.timeout_s"),
        ({"jobs": [{"model": "m", "sha256": f"../db.models/{SHA}", "settings": {},
                    "repeat": 0}]}, "jobs[0].sha256"),
        ({"retries": "2"}, "campaign.retries"),
        ({"targets": {"agents": [5], "tags": {}}}, "targets.agents[0]"),
    ],
)  # fmt: skip
def test_item2_a_campaign_with_a_bad_field_is_refused_at_submission_naming_it(
    rig: Rig, override: dict[str, Any], field: str
) -> None:
    sock = rig.peer()
    sock.send_multipart(protocol.encode(register("target")))
    assert isinstance(receive(sock), protocol.Welcome)
    with pytest.raises(UsageError, match=field.replace("[", r"\[").replace("]", r"\]")):
        rig.submit(payload("target", **override))
    rig.still_serving()


@pytest.mark.parametrize(
    ("latency", "lat", "words"),
    [
        ({"p50": None}, LATENCIES, "latency_ms.p50"),
        ({"p50": "fast"}, LATENCIES, "latency_ms.p50"),
        ({"p50": -1.0, "min": -2.0}, LATENCIES, "latency_ms"),
        ({"n": -1}, LATENCIES, "latency_ms.n"),
        ({"p90": 0.5}, LATENCIES, "above latency_ms.p90"),
        ({}, np.concatenate([LATENCIES, LATENCIES]), "latency_ms.n says 100"),
        ({}, np.where(LATENCIES == LATENCIES[3], 0, LATENCIES), "<= 0 ns"),
    ],
)
def test_item5_nonsense_results_are_refused_and_not_stored(
    rig: Rig, latency: dict[str, Any], lat: np.ndarray, words: str
) -> None:
    sock, job = agent_with_jobs(rig, "nonsense")
    doc = document(**latency)
    answer = receive_after(sock, raw_result(job, uuid.uuid4().hex, doc, lat))
    assert isinstance(answer, protocol.Reject) and words in answer.reason, answer
    db = sqlite3.connect(rig.db)
    try:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    finally:
        db.close()
    rig.still_serving()


def test_item11_a_result_id_reused_for_another_job_is_refused_and_the_job_retried(
    rig: Rig,
) -> None:
    sock = rig.peer()
    sock.send_multipart(protocol.encode(register("twice")))
    assert isinstance(receive(sock), protocol.Welcome)
    rig.submit(payload("twice", 2, retries=1))
    first = next_job(sock)
    stored = uuid.uuid4().hex
    assert isinstance(reply(sock, protocol.Result(first, stored, document(), LATENCIES)),
                      protocol.Ack)  # fmt: skip
    second = next_job(sock)
    answer = reply(sock, protocol.Result(second, stored, document(), LATENCIES))
    assert isinstance(answer, protocol.Reject) and "already stored for job" in answer.reason
    assert next_job(sock) == second  # a failed attempt with one retry left: sent again
    fresh = reply(sock, protocol.Result(second, uuid.uuid4().hex, document(), LATENCIES))
    assert isinstance(fresh, protocol.Ack)
    assert job_state(rig, second) == "done"
    rig.still_serving()


def test_item2_a_stored_campaign_that_cannot_run_is_marked_failed_not_crash_looped(
    tmp_path: Path,
) -> None:
    """A campaign stored before the door checked it (threads = "many", timeout_s = -1) used
    to kill the collector whenever a matching agent registered, on every restart."""
    from collector.store import Store

    store = Store(tmp_path / "db.sqlite")
    bad = payload("old", timeout_s=-1)
    bad["jobs"][0]["settings"] = {"threads": "many"}
    store.add_campaign(uuid.uuid4().hex, "old-bad", bad)
    store.close()
    for _ in range(2):  # and again after a restart
        argv = [sys.executable, "-m", "collector", "serve", "--bind", "tcp://127.0.0.1:0",
                "--db", str(tmp_path / "db.sqlite")]  # fmt: skip
        child = Child(argv, "collector")
        try:
            rig = Rig(child, child.expect(r"listening on (tcp://\S+)", 30).group(1),
                      tmp_path / "db.sqlite")  # fmt: skip
            sock = rig.peer()
            assert isinstance(reply(sock, register("old")), protocol.Welcome)
            sock.close()
            rig.still_serving()
        finally:
            assert child.stop() == 0, child.tail(20)
    db = sqlite3.connect(tmp_path / "db.sqlite")
    try:
        assert db.execute("SELECT state FROM campaigns").fetchone()[0] == "failed"
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    finally:
        db.close()
