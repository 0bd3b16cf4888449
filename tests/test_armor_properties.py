"""No message stops the collector: a property suite against a running `flopgap serve`.

Hypothesis draws batches of mutated valid messages of every type in shared.protocol
(header fields of the wrong type, huge, negative or NaN, keys missing or extra, nested junk;
binary frames truncated, lengthened or huge; sequences such as results for unknown jobs and
reused result ids) and sends them over real ZeroMQ DEALER sockets from an agent's and a
client's role, with and without CURVE keys. After every batch: the collector process is
alive, a fresh client gets a Status, a well-behaved agent's Register gets a Welcome, and the
store's consistency query is clean (tests/armor_helpers.py).

Shrinking is off: once the collector has died every later example fails the same way, so
shrinking would only report a meaningless "smallest" batch. The failure message instead
names every message of the batch (type, role, mutation) and the collector's last log lines,
which hold the traceback. A collector found dead is started again (on a fresh store) for the
next test, so each family of mutations reports its own findings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from agent.board.device import describe
from collector.procs import Child
from shared import keys, protocol
from tests.armor_helpers import (
    consistency_problems,
    raw_dealer,
    replies,
    request,
    start_debug_collector,
)
from tests.conftest import FAST, REPO, matmul_graph, save_model
from tests.fleet_helpers import write_campaign
from tests.test_keys import run_keys
from tests.test_security import submit

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]

WIRE = REPO / "tests" / "data" / "wire" / f"v{protocol.PROTOCOL_VERSION}"
AGENT_KINDS = ("register", "heartbeat", "progress", "model_request", "result", "job_failed",
               "model_data")  # fmt: skip
CLIENT_KINDS = ("model_data", "submit_campaign", "status_request")
SENT_ONLY_KINDS = ("welcome", "job", "campaign_accepted", "status", "ack", "reject")
EXAMPLES = int(os.environ.get("FLOPGAP_ARMOR_EXAMPLES", "3"))


# --- the world: one collector per mode, restarted on a fresh store if a test killed it ---


@dataclass
class World:
    mode: str
    root: Path
    document: dict[str, Any]
    latencies: np.ndarray
    model: bytes
    collector: Child | None = None
    endpoint: str = ""
    db: Path = Path()
    agent_keys: keys.PeerKeys | None = None  # the hostile agent "mutant"
    good_keys: keys.PeerKeys | None = None  # the well-behaved agent "good"
    client_keys: keys.PeerKeys | None = None  # the hostile client "evil"
    ops_keys: keys.PeerKeys | None = None  # the well-behaved client "ops"
    agent: zmq.Socket[bytes] | None = None
    client: zmq.Socket[bytes] | None = None
    jobs: list[str] = field(default_factory=list)  # Job ids the mutant was sent
    stored: list[str] = field(default_factory=list)  # result ids the mutant got acked
    generation: int = 0

    @property
    def job(self) -> str:
        return self.jobs[-1] if self.jobs else "job-" + "0" * 12

    def alive(self) -> bool:
        return self.collector is not None and self.collector.proc.poll() is None

    def drain(self, wait_ms: int = 0) -> None:
        """Read the hostile peers' replies: note Jobs sent to the mutant and Acks it got."""
        for sock in (self.agent, self.client):
            if sock is None:
                continue
            for reply in replies(sock, wait_ms):
                if isinstance(reply, protocol.Job):
                    self.jobs.append(reply.job_id)
                elif isinstance(reply, protocol.Ack):
                    self.stored.append(reply.result_id)


def _keys(key_dir: Path, role: str, name: str) -> keys.PeerKeys:
    assert run_keys(role, name, "--dir", str(key_dir)) == 0
    return keys.load_peer_keys(key_dir / "issued" / f"{name}.key_secret",
                               key_dir / "collector.key")  # fmt: skip


_INSTANCES: dict[str, str] = {}  # one agent process per name: re-registering is a reconnect


def _descriptor(name: str) -> dict[str, Any]:
    return {**describe(), "device_id": hashlib.sha256(name.encode()).hexdigest()[:16],
            "agent_instance": _INSTANCES.setdefault(name, uuid.uuid4().hex)}  # fmt: skip


def _start(world: World) -> None:
    """A collector on a fresh store, the mutant registered, and a campaign queued for it."""
    world.generation += 1
    here = world.root / f"gen{world.generation}"
    here.mkdir()
    world.db = here / "db.sqlite"
    world.jobs, world.stored = [], []
    if world.mode == "curve":
        key_dir = here / "keys"
        assert run_keys("init", str(key_dir)) == 0
        world.agent_keys = _keys(key_dir, "agent", "mutant")
        world.good_keys = _keys(key_dir, "agent", "good")
        world.client_keys = _keys(key_dir, "client", "evil")
        world.ops_keys = _keys(key_dir, "client", "ops")
        world.collector, world.endpoint = start_debug_collector(world.db, key_dir)
    else:
        world.collector, world.endpoint = start_debug_collector(world.db, None)
    world.agent = raw_dealer(world.endpoint, world.agent_keys)
    world.client = raw_dealer(world.endpoint, world.client_keys)
    register = protocol.Register("mutant", "0.1.0", _descriptor("mutant"), {}, "")
    assert request(world.agent, register, protocol.Welcome) is not None, world.collector.tail(20)
    save_model(matmul_graph(width=16), here / "m.onnx")
    config = write_campaign(here, ["m.onnx"], threads=[1, 2], name="armor",
                            agents='["mutant"]')  # fmt: skip
    for repeat in range(3):  # several campaigns: jobs for the mutant to answer for
        text = config.read_text().replace('name = "armor"', f'name = "armor{repeat}"')
        (here / f"armor{repeat}.toml").write_text(text)
        submit(world.endpoint, world.ops_keys, here / f"armor{repeat}.toml", here / "scratch")
    world.drain(wait_ms=2000)


def _stop(world: World) -> int | None:
    for sock in (world.agent, world.client):
        if sock is not None:
            sock.close()
    world.agent = world.client = None
    return world.collector.stop() if world.collector is not None else None


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], np.ndarray, bytes]:
    """A real result document, its raw latencies and its model, from one real measurement."""
    import subprocess

    folder = tmp_path_factory.mktemp("measured")
    model = save_model(matmul_graph(width=16), folder / "m.onnx")
    raw = folder / "raw.npy"
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "bench", str(model), "--json", "--threads", "1",
         "--raw", str(raw), *FAST],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), np.load(raw).astype(np.int64), model.read_bytes()


@pytest.fixture(scope="module", params=["loopback", "curve"])
def world_holder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    measured: tuple[dict[str, Any], np.ndarray, bytes],
) -> Iterator[World]:  # fmt: skip
    world = World(request.param, tmp_path_factory.mktemp(f"armor-{request.param}"), *measured)
    _start(world)
    yield world
    _stop(world)


@pytest.fixture
def world(world_holder: World) -> World:
    """The module's collector, started again on a fresh store if an earlier test killed it."""
    if not world_holder.alive():
        _stop(world_holder)
        _start(world_holder)
    return world_holder


# --- valid samples of every message type ---------------------------------------------------


def _golden(kind: str) -> list[bytes]:
    sample = json.loads((WIRE / f"{kind}.json").read_text())
    return [base64.b64decode(frame) for frame in sample["frames_b64"]]


def _result(world: World, job_id: str, result_id: str) -> protocol.Result:
    doc = json.loads(json.dumps(world.document))
    return protocol.Result(job_id, result_id, doc, world.latencies)


def _valid(world: World, kind: str) -> list[bytes]:
    """A valid encoded message of `kind`, built from the world's state where it has one."""
    job = world.job
    build: dict[str, Callable[[], protocol.Message]] = {
        "register": lambda: protocol.Register(
            "mutant", "0.1.0", _descriptor("mutant"), {"site": "lab"}, ""
        ),
        "heartbeat": lambda: protocol.Heartbeat("busy", job),
        "progress": lambda: protocol.Progress(
            job, {"phase": "steady", "iterations": 10, "elapsed_s": 0.5, "median_ms": 1.0}
        ),
        "model_request": lambda: protocol.ModelRequest(hashlib.sha256(world.model).hexdigest()),
        "result": lambda: _result(world, job, uuid.uuid4().hex),
        "job_failed": lambda: protocol.JobFailed(job, uuid.uuid4().hex, "crash", "boom"),
        "model_data": lambda: protocol.ModelData(
            hashlib.sha256(world.model).hexdigest(), world.model
        ),
        "submit_campaign": lambda: protocol.SubmitCampaign(_campaign(world)),
        "status_request": lambda: protocol.StatusRequest(""),
    }
    if kind in build:
        return protocol.encode(build[kind]())
    return _golden(kind)


def _campaign(world: World) -> dict[str, Any]:
    sha = hashlib.sha256(world.model).hexdigest()
    job = {"model": "m", "sha256": sha, "repeat": 0,
           "settings": {"threads": 1, "provider": "CPUExecutionProvider"}}  # fmt: skip
    return {"name": f"p{uuid.uuid4().hex[:8]}", "targets": {"agents": ["mutant"], "tags": {}},
            "jobs": [job], "timeout_s": 60.0, "retries": 1, "retry_invalid": 0,
            "spec": {}}  # fmt: skip


# --- mutations --------------------------------------------------------------------------------

HUGE = st.sampled_from([300, 5_000, 70_000, 140_000, 300_000]).map(lambda n: "A" * n)
ATOMS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([-1, 0, 2**40, 10_000]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=16), HUGE,
    st.sampled_from(["many", "../db.models/" + "0" * 64, "line\nforged: agent x registered",
                     "\x00", "ü" * 50]),
)  # fmt: skip
JUNK = st.recursive(ATOMS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
), max_leaves=8)  # fmt: skip


@dataclass(frozen=True)
class Mutation:
    """One change to a valid message: `how` names it, `pick` chooses where, `value` is junk."""

    how: str
    pick: int = 0
    value: Any = None

    def __repr__(self) -> str:
        shown = repr(self.value)
        return f"{self.how}@{self.pick}={shown[:60]}{'…' if len(shown) > 60 else ''}"


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON tree (dict keys and list indexes)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:8]):
            out += _paths(value, (*prefix, index))
    return out


def _parent(tree: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        tree = tree[step]
    return tree


def _mutate_json(header: dict[str, Any], m: Mutation) -> None:
    paths = _paths(header["body"]) or [()]
    path = ("body", *paths[m.pick % len(paths)])
    parent = _parent(header, path)
    if m.how == "set":
        parent[path[-1]] = m.value
    elif m.how == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif m.how == "extra":
        target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else header["body"]
        target[f"x{m.pick}"] = m.value
    elif m.how == "header":
        header[("proto", "type", "frames", "body")[m.pick % 4]] = m.value


def _mutate_frames(frames: list[bytes], m: Mutation) -> list[bytes]:
    index = 1 + m.pick % max(len(frames) - 1, 1) if len(frames) > 1 else 0
    frame = frames[index]
    kinds = {
        "truncate": lambda: frame[: len(frame) // 2],
        "lengthen": lambda: frame + b"\x01" * (1 + m.pick % 64),
        "huge": lambda: frame + b"\x00" * (3 << 20),
        "empty": lambda: b"",
    }
    if m.how == "drop":
        return frames[:-1] if len(frames) > 1 else frames
    if m.how == "add":
        return [*frames, b"\x00" * 8]
    return [*frames[:index], kinds[m.how](), *frames[index + 1 :]]


def _apply(frames: list[bytes], m: Mutation) -> list[bytes]:
    if m.how == "none":
        return frames
    if m.how in ("set", "delete", "extra", "header"):
        header = json.loads(frames[0])
        _mutate_json(header, m)
        return [json.dumps(header, allow_nan=True).encode(), *frames[1:]]
    return _mutate_frames(frames, m)


def _sequence(world: World, kind: str, m: Mutation) -> list[bytes]:
    """Well-formed messages that make no sense in context (the issue's numbered attacks)."""
    other = world.jobs[m.pick % len(world.jobs)] if world.jobs else world.job
    reused = world.stored[m.pick % len(world.stored)] if world.stored else uuid.uuid4().hex
    doc = json.loads(json.dumps(world.document))
    lat = world.latencies
    if m.how == "unknown_job":
        msg: protocol.Message = _result(world, "job-" + uuid.uuid4().hex[:12], uuid.uuid4().hex)
    elif m.how == "other_job":
        msg = _result(world, other, uuid.uuid4().hex)
    elif m.how == "reused_result_id":  # item 11: an id stored for another job
        msg = _result(world, world.job, reused)
    elif m.how == "failed_reused_id":  # item 1: a final JobFailed reusing a stored id
        msg = protocol.JobFailed(world.job, reused, "crash", "boom")
    elif m.how == "progress_flood":  # item 6: progress for invented jobs, 200 kB each
        msg = protocol.Progress("job-" + uuid.uuid4().hex[:12], {"pad": "P" * 200_000})
    elif m.how == "no_model_inputs":  # item 1: a document without model.inputs
        doc["model"].pop("inputs", None)
        msg = protocol.Result(world.job, uuid.uuid4().hex, doc, lat)
    elif m.how == "nonsense_latency":  # item 5: p50 / n set to the value
        doc["latency_ms"][("p50", "n", "p99", "min")[m.pick % 4]] = m.value
        msg = protocol.Result(world.job, uuid.uuid4().hex, doc, lat)
    elif m.how == "long_frame":  # item 5: far more latencies than the document's n
        msg = protocol.Result(
            world.job,
            uuid.uuid4().hex,
            doc,
            np.full(50_000 + m.pick % 1000, 1_000_000, dtype=np.int64),
        )
    else:
        msg = _bad_register_or_campaign(world, m)
    try:
        return protocol.encode(msg)
    except Exception:  # encode refuses some junk; send the same message raw, as an attacker can
        return _raw(msg)


def _bad_register_or_campaign(world: World, m: Mutation) -> protocol.Message:
    """A Register with a nonsense descriptor (item 1: providers = 5, a 140 kB cpu_model) or
    a campaign with a nonsense setting (item 2: threads = "many", timeout_s = -1, a sha256
    that is a path)."""
    if m.how == "bad_descriptor":
        device = _descriptor("mutant")
        device[("providers", "cpu_model", "logical_cores", "device_id")[m.pick % 4]] = m.value
        return protocol.Register("mutant", "0.1.0", device, {}, "")
    campaign = _campaign(world)
    key = ("threads", "timeout_s", "sha256", "inter_threads")[m.pick % 4]
    if key == "timeout_s":
        campaign[key] = m.value
    elif key == "sha256":
        campaign["jobs"][0]["sha256"] = "../db.models/" + "0" * 64
    else:
        campaign["jobs"][0]["settings"][key] = m.value
    return protocol.SubmitCampaign(campaign)


def _raw(msg: protocol.Message) -> list[bytes]:
    """Encode without encode()'s checks: what a peer that skips them would put on the wire."""
    from dataclasses import fields

    body = {f.name: getattr(msg, f.name) for f in fields(msg)}  # type: ignore[arg-type]
    body.pop("latencies_ns", None)
    body.pop("model", None)
    frames_decl, bulk = [], []
    if isinstance(msg, protocol.Result):
        frames_decl = [{"dtype": "<i8", "field": "latencies_ns", "length": len(msg.latencies_ns)}]
        bulk = [np.asarray(msg.latencies_ns, dtype="<i8").tobytes()]
    wire = {cls: name for name, cls in protocol.MESSAGE_TYPES.items()}[type(msg)]
    header = {"body": body, "frames": frames_decl, "proto": protocol.PROTOCOL_VERSION,
              "type": wire}  # fmt: skip
    return [json.dumps(header, allow_nan=True, sort_keys=True).encode(), *bulk]


JSON_MUTATION = st.builds(Mutation, st.sampled_from(["none", "set", "set", "delete", "extra",
                                                     "header"]),
                          st.integers(0, 1000), JUNK)  # fmt: skip
FRAME_MUTATION = st.builds(Mutation, st.sampled_from(["truncate", "lengthen", "huge", "empty",
                                                      "drop", "add"]),
                           st.integers(0, 1000))  # fmt: skip
SEQUENCE_MUTATION = st.builds(
    Mutation,
    st.sampled_from(
        [
            "unknown_job",
            "other_job",
            "reused_result_id",
            "failed_reused_id",
            "progress_flood",
            "no_model_inputs",
            "nonsense_latency",
            "long_frame",
            "bad_descriptor",
            "bad_setting",
        ]
    ),
    st.integers(0, 1000),
    st.one_of(ATOMS, st.just(-1), st.just(None), st.just("text")),
)


@dataclass(frozen=True)
class Action:
    role: str  # "agent" (the mutant) or "client" (evil)
    kind: str  # wire name
    mutation: Mutation

    def __repr__(self) -> str:
        return f"{self.kind} from {self.role}: {self.mutation!r}"


def actions(roles: tuple[str, ...], kinds: tuple[str, ...], mutation: Any) -> Any:
    return st.builds(Action, st.sampled_from(roles), st.sampled_from(kinds), mutation)


# --- running a batch and checking the collector afterwards ------------------------------------


def _frames_for(world: World, action: Action) -> list[bytes]:
    if action.mutation.how in SEQUENCE_KINDS:
        return _sequence(world, action.kind, action.mutation)
    return _apply(_valid(world, action.kind), action.mutation)


SEQUENCE_KINDS = frozenset({
    "unknown_job", "other_job", "reused_result_id", "failed_reused_id", "progress_flood",
    "no_model_inputs", "nonsense_latency", "long_frame", "bad_descriptor", "bad_setting",
})  # fmt: skip


def _served(world: World) -> list[str]:
    """What is wrong with the collector now, as seen by well-behaved peers and the store."""
    if not world.alive():
        return [f"collector exited with code {world.collector.proc.poll()}"]  # type: ignore[union-attr]
    problems = []
    ops = raw_dealer(world.endpoint, world.ops_keys)
    good = raw_dealer(world.endpoint, world.good_keys)
    try:
        if request(ops, protocol.StatusRequest(""), protocol.Status) is None:
            problems.append("a fresh client's StatusRequest got no Status within 10 s")
        welcome = request(good, protocol.Register("good", "0.1.0", _descriptor("good"), {}, ""),
                          protocol.Welcome)  # fmt: skip
        if welcome is None:
            problems.append("a well-behaved agent's Register got no Welcome within 10 s")
    finally:
        ops.close()
        good.close()
    if not world.alive():
        problems.append(f"collector exited with code {world.collector.proc.poll()}")  # type: ignore[union-attr]
    return problems + consistency_problems(world.db)


def run_batch(world: World, batch: list[Action]) -> None:
    """Send the batch (the mutant re-registers first, so agent messages reach the handlers),
    then assert the collector still serves everyone and the store is consistent."""
    assert world.agent is not None and world.client is not None
    world.agent.send_multipart(_valid(world, "register"))
    world.drain(wait_ms=1000)
    sent = []
    for action in batch:
        frames = _frames_for(world, action)
        sock = world.agent if action.role == "agent" else world.client
        try:
            sock.send_multipart(frames, flags=zmq.NOBLOCK)
            sent.append(action)
        except zmq.Again:  # our own queue is full: the collector is not reading
            break
        world.drain()
    world.drain(wait_ms=200)
    problems = _served(world)
    if problems:
        log = "\n    ".join(world.collector.lines[-60:]) if world.collector else ""
        listing = "\n    ".join(repr(a) for a in sent)
        pytest.fail(
            f"[{world.mode}] after a batch of {len(sent)} messages:\n  "
            + "\n  ".join(problems)
            + f"\n  batch:\n    {listing}\n  collector log (last 60 lines):\n    {log}",
            pytrace=False,
        )


PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=list(HealthCheck))  # fmt: skip


@PROPERTY
@given(batch=st.lists(actions(("agent",), AGENT_KINDS, JSON_MUTATION), min_size=20, max_size=40))
def test_mutated_agent_messages_leave_the_collector_serving(
    world: World, batch: list[Action]
) -> None:
    run_batch(world, batch)


@PROPERTY
@given(batch=st.lists(actions(("client",), CLIENT_KINDS, JSON_MUTATION), min_size=20, max_size=40))
def test_mutated_client_messages_leave_the_collector_serving(
    world: World, batch: list[Action]
) -> None:
    run_batch(world, batch)


@PROPERTY
@given(batch=st.lists(actions(("agent", "client"), tuple(protocol.MESSAGE_TYPES), JSON_MUTATION),
                      min_size=20, max_size=40))  # fmt: skip
def test_any_message_from_either_role_leaves_the_collector_serving(
    world: World, batch: list[Action]
) -> None:
    """Every type, the collector-only ones included, from the role that may send it or not."""
    run_batch(world, batch)


@PROPERTY
@given(batch=st.lists(actions(("agent", "client"), ("result", "model_data"), FRAME_MUTATION),
                      min_size=20, max_size=30))  # fmt: skip
def test_mutated_binary_frames_leave_the_collector_serving(
    world: World, batch: list[Action]
) -> None:
    run_batch(world, batch)


@PROPERTY
@given(batch=st.lists(st.builds(Action, st.just("agent"), st.just("result"), SEQUENCE_MUTATION),
                      min_size=20, max_size=40))  # fmt: skip
def test_messages_that_make_no_sense_in_context_leave_the_collector_serving(
    world: World, batch: list[Action]
) -> None:
    """Results for unknown or other jobs, reused result ids, nonsense latencies, bad
    descriptors, bad settings (the role is fixed per attack: see _sequence)."""
    batch = [Action("client" if a.mutation.how == "bad_setting" else "agent", a.kind, a.mutation)
             for a in batch]  # fmt: skip
    run_batch(world, batch)
