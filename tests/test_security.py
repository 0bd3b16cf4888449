"""CURVE end to end, with real collector and agent processes on 127.0.0.1.

An unknown key never registers; a valid key that claims another agent's name still acts only
as itself; clients need a client key; the allowlist follows its folder while serving.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from collector.campaign_run import payload_for
from collector.client import Client, CollectorUnreachable
from collector.procs import Child
from shared import keys, protocol
from shared.errors import UsageError
from tests.conftest import matmul_graph, save_model
from tests.fleet_helpers import start_agent, write_campaign
from tests.test_keys import run_keys

pytestmark = pytest.mark.integration

_POLL = threading.Event()  # never set: wait(t) is a bounded polling period


def start_keyed_collector(db: Path, key_dir: Path, heartbeat: float = 0.5) -> tuple[Child, str]:
    """`flopgap serve --keys DIR` on a free loopback port."""
    child = Child([sys.executable, "-m", "collector", "serve", "--bind", "tcp://127.0.0.1:0",
                   "--db", str(db), "--heartbeat", str(heartbeat), "--keys", str(key_dir),
                   "--no-calibrate"], "collector")  # fmt: skip
    return child, child.expect(r"listening on (tcp://\S+)", 30).group(1)


def start_keyed_agent(
    endpoint: str, name: str, root: Path, secret: Path, collector_key: Path
) -> Child:
    """`flopgap-agent run --keys SECRET --collector-key FILE`, claiming the name `name`."""
    return Child(
        [sys.executable, "-m", "agent", "run", "--collector", endpoint, "--name", name,
         "--spool", str(root / name / "spool"), "--cache", str(root / name / "cache"),
         "--keys", str(secret), "--collector-key", str(collector_key)],
        name,
    )  # fmt: skip


def issue(key_dir: Path, role: str, name: str) -> Path:
    """Allowlist a new key pair; returns its secret file."""
    assert run_keys(role, name, "--dir", str(key_dir)) == 0
    return key_dir / "issued" / f"{name}.key_secret"


def client_keys(key_dir: Path, name: str = "ops") -> keys.PeerKeys:
    secret = key_dir / "issued" / f"{name}.key_secret"
    if not secret.exists():
        issue(key_dir, "client", name)
    return keys.load_peer_keys(secret, key_dir / "collector.key")


def status(endpoint: str, peer: keys.PeerKeys, campaign: str = "") -> dict[str, Any]:
    with Client(endpoint, timeout_s=10, keys=peer) as client:
        reply = client.request(protocol.StatusRequest(campaign), protocol.Status)
    assert isinstance(reply, protocol.Status)
    return reply.status


def submit(endpoint: str, peer: keys.PeerKeys | None, config: Path, scratch: Path) -> None:
    """What `flopgap campaign run --detach --keys ...` does: upload models, then submit."""
    payload, blobs = payload_for(config, scratch)
    with Client(endpoint, timeout_s=30, keys=peer) as client:
        for sha, data in blobs.items():
            client.send(protocol.ModelData(sha, data))
        client.request(protocol.SubmitCampaign(payload), protocol.CampaignAccepted)


def wait_done(endpoint: str, peer: keys.PeerKeys, campaign: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        campaigns = status(endpoint, peer, campaign)["campaigns"]
        if campaigns:
            last = campaigns[0]
            if last["state"] == "done":
                return last
        _POLL.wait(0.25)
    raise AssertionError(f"campaign {campaign} not done within {timeout} s: {last}")


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    run_keys("init", str(folder))
    return folder


def test_an_agent_with_an_unknown_key_never_registers_nor_gets_a_job(
    tmp_path: Path, key_dir: Path
) -> None:
    good = issue(key_dir, "agent", "good")
    stranger = tmp_path / "stranger.key_secret"  # a real key pair, never allowlisted
    keys.create_pair(tmp_path / "stranger.key", stranger)
    save_model(matmul_graph(width=32), tmp_path / "m.onnx")
    config = write_campaign(tmp_path, ["m.onnx"], threads=[1], name="sec")
    peer = client_keys(key_dir)
    collector, endpoint = start_keyed_collector(tmp_path / "db.sqlite", key_dir)
    agents = [start_keyed_agent(endpoint, "good", tmp_path, good, key_dir / "collector.key")]
    try:
        collector.seen(r"agent good registered", 60)
        agents.append(start_keyed_agent(endpoint, "stranger", tmp_path, stranger,
                                        key_dir / "collector.key"))  # fmt: skip
        agents[1].expect(r"the collector refused this agent's key", 30)
        assert agents[1].wait(30) == 2
        submit(endpoint, peer, config, tmp_path / "scratch")
        done = wait_done(endpoint, peer, "sec", timeout=120)
        state = status(endpoint, peer)
    finally:
        for child in agents:
            child.stop()
        assert collector.stop() == 0, collector.tail(20)
    assert [a["name"] for a in state["agents"]] == ["good"]
    assert set(done["per_agent"]) == {"good"} and done["jobs"]["done"] == 1
    assert state["counters"]["auth_denied"] >= 1
    assert not [line for line in collector.lines if "stranger" in line]
    assert not [line for line in agents[1].lines if "measuring" in line or "registered" in line]


def test_an_agent_claiming_another_name_acts_only_as_itself(tmp_path: Path, key_dir: Path) -> None:
    alpha, beta = issue(key_dir, "agent", "alpha"), issue(key_dir, "agent", "beta")
    save_model(matmul_graph(width=32), tmp_path / "m.onnx")
    config = write_campaign(tmp_path, ["m.onnx"], threads=[1, 2], name="only-alpha",
                            agents='["alpha"]')  # fmt: skip
    peer = client_keys(key_dir)
    collector, endpoint = start_keyed_collector(tmp_path / "db.sqlite", key_dir)
    server_key = key_dir / "collector.key"
    honest = start_keyed_agent(endpoint, "alpha", tmp_path, alpha, server_key)
    liar = None
    try:
        collector.seen(r"agent alpha registered", 60)
        liar = start_keyed_agent(endpoint, "alpha", tmp_path / "liar", beta, server_key)
        collector.seen(r"agent key beta claimed the name 'alpha': registered as beta", 60)
        collector.seen(r"agent beta registered", 10)
        liar.expect(r"registered as beta", 10)
        submit(endpoint, peer, config, tmp_path / "scratch")
        done = wait_done(endpoint, peer, "only-alpha", timeout=120)
        state = status(endpoint, peer)
    finally:
        for child in (honest, liar):
            if child is not None:
                child.stop()
        assert collector.stop() == 0, collector.tail(20)
    assert set(done["per_agent"]) == {"alpha"} and done["jobs"]["done"] == 2
    assert {a["name"]: a["state"] for a in state["agents"]} == {"alpha": "online",
                                                               "beta": "online"}  # fmt: skip
    assert state["counters"]["name_mismatch"] == 1
    assert len([line for line in collector.lines if "agent alpha registered" in line]) == 1
    assert [line for line in honest.lines if "measuring" in line]
    assert not [line for line in liar.lines if "measuring" in line]


def test_clients_need_an_allowlisted_client_key(tmp_path: Path, key_dir: Path) -> None:
    agent_secret = issue(key_dir, "agent", "board")
    stranger = tmp_path / "x.key_secret"
    keys.create_pair(tmp_path / "x.key", stranger)
    server_key = key_dir / "collector.key"
    collector, endpoint = start_keyed_collector(tmp_path / "db.sqlite", key_dir)
    keyless = None
    try:
        assert status(endpoint, client_keys(key_dir))["agents"] == []
        client_secret = key_dir / "issued" / "ops.key_secret"
        agent_pair = keys.load_secret(agent_secret)
        with pytest.raises(UsageError, match="needs a client key"):  # an agent's key
            status(endpoint, keys.load_peer_keys(agent_secret, server_key))
        # The refusals name their cause (not "no answer within ..."): they are reported from
        # the handshake itself, not after a timeout.
        with pytest.raises(UsageError, match="refused this client's key"):  # unknown key
            status(endpoint, keys.load_peer_keys(stranger, server_key))
        with pytest.raises(UsageError, match="requires CURVE keys"):  # no keys at all
            with Client(endpoint, timeout_s=30) as client:
                client.request(protocol.StatusRequest(""), protocol.Status)
        with pytest.raises(CollectorUnreachable, match="wrong --collector-key"):
            wrong = keys.PeerKeys(keys.load_secret(client_secret), agent_pair.public)
            with Client(endpoint, timeout_s=2, keys=wrong) as client:
                client.request(protocol.StatusRequest(""), protocol.Status)
        keyless = start_agent(endpoint, "keyless", tmp_path)
        keyless.expect(r"the collector requires CURVE keys", 30)
        assert keyless.wait(30) == 2
    finally:
        if keyless is not None:
            keyless.stop()
        assert collector.stop() == 0, collector.tail(20)


def test_keys_added_or_removed_while_serving_take_effect(tmp_path: Path, key_dir: Path) -> None:
    """A key allowlisted after start is accepted; deleting it cuts the agent off (missing)."""
    collector, endpoint = start_keyed_collector(tmp_path / "db.sqlite", key_dir, heartbeat=0.3)
    late = issue(key_dir, "agent", "late")
    agent = start_keyed_agent(endpoint, "late", tmp_path, late, key_dir / "collector.key")
    try:
        collector.expect(r"agent late registered", 60)
        (key_dir / "agents" / "late.key").unlink()
        collector.expect(r"agent late missed its heartbeats", 30)
        state = status(endpoint, client_keys(key_dir))
    finally:
        agent.stop()
        assert collector.stop() == 0, collector.tail(20)
    assert state["agents"][0]["state"] == "missing" and state["counters"]["dropped"] > 0
