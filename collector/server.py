"""The collector's network loop: a ZeroMQ ROUTER that registers agents, hands out jobs and
stores results before acknowledging them.

Every frame is decoded and validated (shared.protocol) before it has any effect; a bad frame
gets a Reject and the loop serves on. One job at a time per agent, so measurements never
overlap on a device.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from collector.costs import ensure_cost, shapes_key
from collector.store import Store
from shared import protocol
from shared.errors import FlopgapError, ProtocolError, UsageError
from shared.result import check_document

log = logging.getLogger("flopgap.collector")

POLL_MS = 200
HEARTBEAT_S = 2.0


@dataclass(frozen=True)
class ModelFile:
    """A model the collector serves, with its content hash."""

    name: str
    path: Path
    sha256: str
    data: bytes

    @classmethod
    def load(cls, path: Path) -> ModelFile:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(
                f"cannot read model {path}: {exc.strerror}", hint="check the --model path"
            ) from exc
        return cls(path.stem, path, hashlib.sha256(data).hexdigest(), data)


@dataclass
class AgentState:
    """What the collector knows of one connected agent."""

    agent_id: str
    device_id: str
    running: str | None = None  # job id


@dataclass
class Plan:
    """What to run on every agent that registers, and when to stop serving."""

    models: list[ModelFile] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    expect_agents: int | None = None  # with exit_when_done: stop after this many finished
    exit_when_done: bool = False


class Collector:
    """Owns the ROUTER socket and the store; call serve() from one thread."""

    def __init__(self, socket: zmq.Socket[bytes], store: Store, plan: Plan) -> None:
        self.sock = socket
        self.store = store
        self.plan = plan
        self.stop = threading.Event()
        self.agents: dict[bytes, AgentState] = {}
        self.rejected = 0
        for model in plan.models:
            store.add_model(model.sha256, model.name, str(model.path), len(model.data))

    def serve(self) -> int:
        while not self.stop.is_set():
            if self.sock.poll(POLL_MS):
                routing_id, *frames = self.sock.recv_multipart()
                self._handle(routing_id, frames)
                if self._finished():
                    log.info("every planned job is finished")
                    return 0
        return 0

    def _send(self, routing_id: bytes, msg: protocol.Message) -> None:
        self.sock.send_multipart([routing_id, *protocol.encode(msg)])

    def _reject(self, routing_id: bytes, exc: FlopgapError) -> None:
        """Tell the sender why its message was refused, in words meant for the sender."""
        self.rejected += 1
        log.warning("rejected a message: %s", exc)
        reason, hint = exc.message, exc.hint or "check that both sides run the same flopgap"
        if isinstance(exc, protocol.VersionMismatch):
            mine = protocol.PROTOCOL_VERSION
            reason = f"the collector speaks flopgap protocol {mine}, the agent {exc.peer_proto}"
            hint = (
                "upgrade the collector: pip install -U flopgap"
                if exc.peer_proto > mine
                else "upgrade this agent: pip install -U flopgap"
            )
        self._send(routing_id, protocol.Reject(reason, hint, protocol.PROTOCOL_VERSION))

    def _handle(self, routing_id: bytes, frames: list[bytes]) -> None:
        try:
            msg = protocol.decode(frames)
            if isinstance(msg, protocol.Register):
                self._register(routing_id, msg)
                return
            agent = self.agents.get(routing_id)
            if agent is None:
                raise ProtocolError(
                    "message from an unregistered agent", hint="send Register first"
                )
            if isinstance(msg, protocol.Result | protocol.JobFailed):
                self._complete(routing_id, agent, msg)
            elif not isinstance(msg, protocol.Heartbeat):
                raise ProtocolError(f"unexpected {type(msg).__name__} from an agent")
        except ProtocolError as exc:
            self._reject(routing_id, exc)

    def _register(self, routing_id: bytes, msg: protocol.Register) -> None:
        agent_id = msg.agent_name
        device_id = str(msg.device.get("device_id", ""))
        self.store.upsert_agent(agent_id, msg.device, msg.tags)
        self.agents[routing_id] = AgentState(agent_id, device_id)
        if not self.store.jobs(agent_id=agent_id):
            for model in self.plan.models:
                self.store.add_job(uuid.uuid4().hex, agent_id, model.sha256, self.plan.settings)
        log.info(
            "agent %s registered (device %s, %s)",
            agent_id,
            device_id,
            msg.device.get("cpu_model", "?"),
        )
        self._send(routing_id, protocol.Welcome(agent_id, HEARTBEAT_S))
        self._dispatch(routing_id)

    def _dispatch(self, routing_id: bytes) -> None:
        agent = self.agents[routing_id]
        if agent.running is not None:
            return
        queued = self.store.jobs(agent_id=agent.agent_id, state="queued")
        if not queued:
            return
        job = queued[0]
        model = next(m for m in self.plan.models if m.sha256 == job["model_sha256"])
        self.store.set_job_state(job["job_id"], "running")
        agent.running = job["job_id"]
        settings = json.loads(job["settings_json"])
        self._send(
            routing_id, protocol.Job(job["job_id"], model.name, model.sha256, settings, model.data)
        )
        log.info("job %s: %s -> %s", job["job_id"][:8], model.name, agent.agent_id)

    def _complete(
        self, routing_id: bytes, agent: AgentState, msg: protocol.Result | protocol.JobFailed
    ) -> None:
        if msg.job_id != agent.running:
            raise ProtocolError(f"result for job {msg.job_id[:12]} which this agent is not running")
        sha = self.store.job(msg.job_id)["model_sha256"]
        if isinstance(msg, protocol.Result):
            check_document(msg.document)
            self.store.record_result(
                msg.job_id,
                msg.result_id,
                agent.agent_id,
                agent.device_id,
                sha,
                msg.document,
                msg.latencies_ns,
            )
            lat = msg.document["latency_ms"]
            log.info(
                "result %s: %s p50 %.3f ms (%s)",
                msg.result_id[:8],
                msg.document["model"]["name"],
                lat["p50"],
                "valid" if msg.document["valid"] else "INVALID",
            )
        else:
            self.store.record_failure(
                msg.job_id, msg.result_id, agent.agent_id, agent.device_id, sha, msg.kind, msg.error
            )
            log.warning("job %s failed on %s: %s", msg.job_id[:8], agent.agent_id, msg.error)
        agent.running = None
        self._send(routing_id, protocol.Ack(msg.result_id))
        self._dispatch(routing_id)
        if isinstance(msg, protocol.Result):  # after the ack: counting never delays a result
            model = next(m for m in self.plan.models if m.sha256 == sha)
            ensure_cost(self.store, sha, model.path, shapes_key(msg.document))

    def _finished(self) -> bool:
        if not self.plan.exit_when_done:
            return False
        finished_agents = {
            a.agent_id
            for a in self.agents.values()
            if a.running is None and not self.store.jobs(agent_id=a.agent_id, state="queued")
        }
        return len(finished_agents) >= (self.plan.expect_agents or 1)
