"""A network partition mid-campaign (issue 9): agents in their own network namespaces.

Each agent runs in a namespace this test creates, joined to the root namespace by a veth pair
with a private /30 (10.213.N.0/30; nothing outside the two ends of the pair ever sees it). The
collector binds the first pair's root-side address with CURVE keys, as any non-loopback
collector must (`flopgap keys`), so the handshake is made again over the restored link.
Mid-job, one agent's link is set down for longer than the heartbeat timeout: the collector
marks it missing and requeues its job; the agent finishes the job meanwhile and keeps the
result in its spool. With the link back, every job ends with exactly one stored result.

Needs root and a working `ip netns` (iproute2); otherwise skipped with the reason. Namespaces
and links are deleted in a `finally`. Opt-in like the fault suite: FLOPGAP_FAULTS=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from collector.procs import Child
from collector.store import Store
from tests.conftest import REPO, matmul_graph, save_model
from tests.fleet_helpers import write_campaign
from tests.test_security import client_keys, issue, run_keys, wait_done

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(
        os.environ.get("FLOPGAP_FAULTS") != "1",
        reason="fault-injection suite is opt-in: set FLOPGAP_FAULTS=1",
    ),
]

HEARTBEAT_S = 0.5
MISSING_AFTER_S = HEARTBEAT_S * 5  # collector.server.MISSING_AFTER_BEATS
SUBNET = "10.213"  # 10.213.N.0/30 per namespace: .1 root side, .2 inside
AGENTS = ("near", "far")  # "far" is the one cut off
THREADS, REPEATS = (1, 2), 3
JOBS = len(AGENTS) * len(THREADS) * REPEATS
_POLL = threading.Event()  # never set: wait(t) is a polling period or a fixed outage length


def _ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    argv = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def _why_not() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` command"
    if SUBNET + "." in _ip("-4", "addr", check=False):
        return f"{SUBNET}.0.0/16 is already in use on this host"
    probe = f"fgprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` does not work here: {exc}"
    _ip("netns", "del", probe, check=False)
    return None


@pytest.fixture
def namespaces() -> Iterator[dict[str, tuple[str, str, str]]]:
    """{agent: (namespace, root-side veth, root-side address)}; all removed afterwards."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    made: dict[str, tuple[str, str, str]] = {}
    try:
        for i, agent in enumerate(AGENTS):
            ns, outer, inner = f"fgp{os.getpid()}{agent}", f"fgp{os.getpid() % 10**5}o{i}", "eth0"
            _ip("netns", "add", ns)
            made[agent] = (ns, outer, f"{SUBNET}.{i}.1")
            _ip("link", "add", outer, "type", "veth", "peer", "name", f"fgpi{i}{os.getpid()}"[:15])
            _ip("link", "set", f"fgpi{i}{os.getpid()}"[:15], "netns", ns, "name", inner)
            _ip("addr", "add", f"{SUBNET}.{i}.1/30", "dev", outer)
            _ip("link", "set", outer, "up")
            _ip("addr", "add", f"{SUBNET}.{i}.2/30", "dev", inner, netns=ns)
            _ip("link", "set", inner, "up", netns=ns)
            _ip("link", "set", "lo", "up", netns=ns)
            _ip("route", "add", "default", "via", f"{SUBNET}.{i}.1", netns=ns)
        yield made
    finally:
        for ns, outer, _ in made.values():
            _ip("link", "del", outer, check=False)  # deletes its peer too
            _ip("netns", "del", ns, check=False)


def _submit(tmp: Path, endpoint: str, key_dir: Path) -> None:
    """`flopgap campaign run --detach` with a client key, as an operator would."""
    save_model(matmul_graph(batch=4, width=64), tmp / "p.onnx")
    config = write_campaign(tmp, ["p.onnx"], threads=list(THREADS), name="partition")
    text = config.read_text().replace('name = "partition"', 'name = "partition"\nretries = 10')
    text = text.replace("repeats = 1", f"repeats = {REPEATS}")
    config.write_text(text.replace("min_seconds = 0.2", "min_seconds = 1.0"))  # jobs to cut into
    client_keys(key_dir)  # issues the "ops" client key
    proc = subprocess.run([sys.executable, "-m", "collector", "campaign", "run", str(config),
                           "--collector", endpoint, "--detach", "--keys",
                           str(key_dir / "issued" / "ops.key_secret"), "--collector-key",
                           str(key_dir / "collector.key")],
                          capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0 and "accepted" in proc.stdout, proc.stderr


def test_partitioned_agent_loses_nothing_and_doubles_nothing(
    tmp_path: Path, namespaces: dict[str, tuple[str, str, str]]
) -> None:
    db, key_dir = tmp_path / "partition.sqlite", tmp_path / "keys"
    assert run_keys("init", str(key_dir)) == 0
    bind = f"tcp://{namespaces[AGENTS[0]][2]}:0"
    collector = Child([sys.executable, "-m", "collector", "serve", "--bind", bind, "--db",
                       str(db), "--heartbeat", str(HEARTBEAT_S), "--no-calibrate",
                       "--keys", str(key_dir)], "collector")  # fmt: skip
    agents: dict[str, Child] = {}
    try:
        endpoint = collector.expect(r"listening on (tcp://\S+)", 30).group(1)
        for name, (ns, _, _) in namespaces.items():
            secret = issue(key_dir, "agent", name)
            agents[name] = Child(["ip", "netns", "exec", ns, sys.executable, "-m", "agent", "run",
                                  "--collector", endpoint, "--keys", str(secret),
                                  "--collector-key", str(key_dir / "collector.key"),
                                  "--name", name, "--spool", str(tmp_path / name / "spool"),
                                  "--cache", str(tmp_path / name / "cache")], name)  # fmt: skip
            collector.seen(rf"agent {name} registered", 60)
        _submit(tmp_path, endpoint, key_dir)
        far, link = agents["far"], namespaces["far"][1]
        far.expect(r"job \w+: measuring", 60)
        _ip("link", "set", link, "down")
        cut = time.monotonic()
        try:
            collector.expect(r"agent far missed its heartbeats", MISSING_AFTER_S + 10)
            collector.expect(r"job \w+ will be retried on far \(agent_missing", 5)
            far.expect(r"job \w+: done", 60)  # finished behind the cut: only in its spool
            _POLL.wait(max(0.0, MISSING_AFTER_S + 1.0 - (time.monotonic() - cut)))
        finally:
            _ip("link", "set", link, "up")
        done = wait_done(endpoint, client_keys(key_dir), "partition", 180)
    finally:
        for child in agents.values():
            child.stop()
        collector.stop()
    assert done["jobs"]["done"] == JOBS, done
    _check_store(db)


def _check_store(db: Path) -> None:
    store = Store(db)
    try:
        assert store.integrity_ok()
        jobs, results = store.jobs(), store.result_rows()
        assert len(jobs) == JOBS
        assert len(results) == len(jobs)  # each job completed exactly once
        assert {r.job_id for r in results} == {j.job_id for j in jobs}
        assert len({r.result_id for r in results}) == len(results)
        assert {r.agent_id for r in results} == set(AGENTS)
        for r in results:
            assert r.status == "ok", r.error
            n = (r.document or {})["latency_ms"]["n"]
            lat = store.latencies(r.result_id)
            assert lat.size == n and lat.dtype == np.int64 and (lat > 0).all()
    finally:
        store.close()
