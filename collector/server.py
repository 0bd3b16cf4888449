"""The collector's network loop: a ZeroMQ ROUTER that registers agents, runs campaigns and
stores results before acknowledging them.

Every frame is decoded and validated (shared.protocol) before it has any effect; a bad frame
gets a Reject and the loop serves on. State lives in the store, so a restarted collector
resumes: jobs left running are requeued, and agents re-register with what they are running.

With CURVE keys (an `Allowlist`), a peer is who its key says: the ZAP User-Id ("agent:NAME" or
"client:NAME") of each message, never the name a Register claims. Agents may only act as
agents and clients only submit, upload and ask for status. Each peer is rate limited
(collector.ratelimit), and replies never block the loop on a peer that does not read them.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import zmq

from collector import scheduler
from collector.enrich import enrich, needs_calibration
from collector.model_store import ModelStore
from collector.ratelimit import RateLimiter
from collector.registry import AgentRecord, Registry
from collector.status import status_document
from collector.store import Failure, Store
from shared import protocol
from shared.errors import FlopgapError, ProtocolError, UsageError
from shared.keys import Allowlist
from shared.result import check_document

log = logging.getLogger("flopgap.collector")


class Refused(ProtocolError):
    """A well-formed message the collector will not act on; `code` tells the peer why."""

    def __init__(self, message: str, code: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


POLL_MS = 100
HEARTBEAT_S = 1.0
MISSING_AFTER_BEATS = 5
BATCH_MAX = 256  # messages handled per store transaction (group commit)
REJECT_LOGS_PER_MINUTE = 10  # per peer; a flood of bad messages must not flood the log
_CLIENT_MESSAGES = (protocol.SubmitCampaign, protocol.ModelData, protocol.StatusRequest)


class Collector:
    """Owns the ROUTER socket, the registry and the store; call serve() from one thread."""

    def __init__(
        self,
        socket: zmq.Socket[bytes],
        store: Store,
        models: ModelStore,
        heartbeat_s: float = HEARTBEAT_S,
        allowlist: Allowlist | None = None,
        limiter: RateLimiter | None = None,
        calibrate: bool = True,
    ) -> None:
        self.sock = socket
        self.allowlist = allowlist  # None: loopback dev mode, claimed names are trusted
        self.limiter = limiter if limiter is not None else RateLimiter()  # empty is falsy
        self._reject_logs = RateLimiter(REJECT_LOGS_PER_MINUTE / 60, REJECT_LOGS_PER_MINUTE)
        self.store = store
        self.models = models
        self.heartbeat_s = heartbeat_s
        self.calibrate = calibrate  # ask each agent to calibrate once per threads setting
        self.registry = Registry(missing_after_s=heartbeat_s * MISSING_AFTER_BEATS)
        self.stop = threading.Event()
        self.counters = {"rejected": 0, "results": 0, "duplicates": 0, "dropped": 0,
                         "unsent": 0, "auth_denied": 0, "name_mismatch": 0,
                         "commits": 0}  # fmt: skip
        self.progress: dict[str, dict[str, Any]] = {}
        self._deferred: list[tuple[bytes, protocol.Message]] | None = None
        requeued = store.requeue_running()
        if requeued:
            log.info("resuming: %d jobs left running by the previous collector requeued", requeued)

    def serve(self) -> int:
        while not self.stop.is_set():
            if self.sock.poll(POLL_MS):
                self._receive_batch()
            self._check_liveness()
            if self.allowlist is not None:
                self.counters["auth_denied"] = self.allowlist.denied
        return 0

    def _receive_batch(self) -> None:
        """Handle the messages waiting (up to BATCH_MAX) in one store transaction, then send
        the replies: one durable commit for many results, and no ack before its commit."""
        self._deferred = []
        try:
            with self.store.batch():
                for _ in range(BATCH_MAX):
                    self._receive()
                    if not self.sock.poll(0):
                        break
            self.counters["commits"] += 1  # results / commits: the group commit's batch size
        finally:
            deferred, self._deferred = self._deferred, None
        for routing_id, msg in deferred:
            self._send(routing_id, msg)

    def _receive(self) -> None:
        """One message: find who sent it, drop it if that peer is over its rate, else handle."""
        parts = self.sock.recv_multipart(copy=False)
        routing_id = parts[0].bytes
        identity: str | None = None
        if self.allowlist is not None:
            identity = str(parts[0].get("User-Id"))  # set by ZAP from the CURVE key
            if not self.allowlist.allows(identity):  # key removed since its handshake
                self.counters["dropped"] += 1
                return
        peer = identity or routing_id
        if not self.limiter.allow(peer):
            self._drop(routing_id, peer)
            return
        self._handle(routing_id, [part.buffer for part in parts[1:]], identity)

    def _drop(self, routing_id: bytes, peer: bytes | str) -> None:
        """Count a message over the peer's rate; once a minute, log it and tell the peer."""
        self.counters["dropped"] += 1
        dropped = self.limiter.report(peer)
        if dropped:
            rate = self.limiter.rate
            log.warning("peer %s is over %g messages/s: dropped %d messages", _peer(peer), rate,
                        dropped)  # fmt: skip
            reason = f"over {rate:g} messages/s: {dropped} messages dropped"
            reject = protocol.Reject(reason, "send fewer messages a second",
                                     protocol.PROTOCOL_VERSION, "busy")  # fmt: skip
            self._send(routing_id, reject)

    def _send(self, routing_id: bytes, msg: protocol.Message) -> None:
        """Send without blocking: a peer that does not read its replies loses them, and the
        loop keeps serving everyone else (ROUTER_MANDATORY would block on a full queue).
        Inside a batch, replies wait until the batch has committed."""
        if self._deferred is not None:
            self._deferred.append((routing_id, msg))
            return
        try:
            self.sock.send_multipart([routing_id, *protocol.encode(msg)], flags=zmq.NOBLOCK)
        except zmq.Again:
            self.counters["unsent"] += 1
        except zmq.ZMQError as exc:  # the peer went away (ROUTER_MANDATORY): it will retry
            log.info("could not reach a peer: %s", exc)

    def _reject(self, routing_id: bytes, exc: FlopgapError, code: str) -> None:
        """Tell the sender why its message was refused, in words meant for the sender."""
        self.counters["rejected"] += 1
        if self._reject_logs.allow(routing_id):
            log.warning("rejected a message: %s", exc)
        elif self._reject_logs.report(routing_id):
            log.warning("peer %s keeps sending refused messages: logging a few a minute",
                        routing_id.hex())  # fmt: skip
        reason, hint = exc.message, exc.hint or "check that both sides run the same flopgap"
        if isinstance(exc, protocol.VersionMismatch):
            mine, code = protocol.PROTOCOL_VERSION, "version"
            reason = f"the collector speaks flopgap protocol {mine}, the peer {exc.peer_proto}"
            hint = ("upgrade the collector: pip install -U flopgap" if exc.peer_proto > mine
                    else "upgrade this agent: pip install -U flopgap")  # fmt: skip
        self._send(routing_id, protocol.Reject(reason, hint, protocol.PROTOCOL_VERSION, code))

    def _handle(
        self, routing_id: bytes, frames: Sequence[bytes | memoryview], identity: str | None = None
    ) -> None:
        try:
            msg = protocol.decode(frames)
        except ProtocolError as exc:
            self._reject(routing_id, exc, "malformed")
            return
        try:
            self._check_role(msg, identity)
            self._dispatch_message(routing_id, msg, identity)
        except Refused as exc:
            self._reject(routing_id, exc, exc.code)
        except (ProtocolError, UsageError) as exc:
            self._reject(routing_id, exc, "refused")

    def _check_role(self, msg: protocol.Message, identity: str | None) -> None:
        """With keys, clients only submit, upload and ask; agents only do an agent's work."""
        if identity is None:
            return
        role = identity.partition(":")[0]
        wanted = "client" if isinstance(msg, _CLIENT_MESSAGES) else "agent"
        if role != wanted:
            raise Refused(
                f"{type(msg).__name__} needs a {wanted} key, and {identity} is not one",
                "refused",
                hint=f"create a {wanted} key on the collector: flopgap keys {wanted} NAME",
            )

    def _dispatch_message(
        self, routing_id: bytes, msg: protocol.Message, identity: str | None
    ) -> None:
        if isinstance(msg, protocol.Register):
            self._register(routing_id, msg, identity)
        elif isinstance(msg, protocol.SubmitCampaign):
            self._submit(routing_id, msg)
        elif isinstance(msg, protocol.ModelData):
            self.models.put(msg.model)
        elif isinstance(msg, protocol.StatusRequest):
            self._send(routing_id, protocol.Status(status_document(self, msg.campaign)))
        else:
            agent = self.registry.by_route(routing_id)
            if agent is None or (identity is not None and identity != f"agent:{agent.agent_id}"):
                raise Refused(
                    "message from an unregistered agent", "unregistered", hint="send Register first"
                )
            self.registry.touch(agent)
            self._agent_message(agent, msg)

    def _agent_message(self, agent: AgentRecord, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.Heartbeat):
            if msg.job_id and agent.running is None:
                self._adopt_running(agent, msg.job_id)
        elif isinstance(msg, protocol.Progress):
            self.progress[msg.job_id] = {**msg.progress, "agent": agent.agent_id}
        elif isinstance(msg, protocol.ModelRequest):
            data = self.models.read(msg.sha256)
            if data is None:
                raise ProtocolError(f"the collector has no model {msg.sha256[:12]}")
            self._send(agent.routing_id, protocol.ModelData(msg.sha256, data))
            log.info("sent model %s (%d bytes) to %s", msg.sha256[:12], len(data), agent.agent_id)
        elif isinstance(msg, (protocol.Result, protocol.JobFailed)):
            self._complete(agent, msg)
        else:
            raise ProtocolError(f"unexpected {type(msg).__name__} from an agent")
        self._dispatch(agent)

    def _agent_name(self, msg: protocol.Register, identity: str | None) -> str:
        """Who is registering: the key's name with keys, else the name the agent claims."""
        if identity is None:
            return msg.agent_name
        name = identity.partition(":")[2]
        if msg.agent_name != name:
            self.counters["name_mismatch"] += 1
            log.warning("agent key %s claimed the name %r: registered as %s (its key's name)",
                        name, msg.agent_name[:64], name)  # fmt: skip
        return name

    def _register(self, routing_id: bytes, msg: protocol.Register, identity: str | None) -> None:
        name = self._agent_name(msg, identity)
        previous = self.registry.get(name)
        agent = self.registry.register(AgentRecord(
            name, routing_id, str(msg.device.get("device_id", "")), dict(msg.tags),
            dict(msg.device)))  # fmt: skip
        self.store.upsert_agent(agent.agent_id, msg.device, msg.tags)
        if previous is not None and previous.running and previous.running != msg.running_job_id:
            same_process = previous.descriptor.get("agent_instance") == agent.descriptor.get(
                "agent_instance"
            )
            if same_process:  # a reconnect: the Job may have gone to the old connection
                self.store.unstart_job(previous.running)
            else:
                self._fail(agent, previous.running, "agent_restarted",
                           "the agent restarted while running this job")  # fmt: skip
        if msg.running_job_id:
            self._adopt_running(agent, msg.running_job_id)
        for campaign in self.store.campaigns(state="running"):
            scheduler.expand_for_agent(self.store, campaign, agent.agent_id, agent.tags)
        log.info(
            "agent %s registered (device %s, %s)",
            agent.agent_id,
            agent.device_id,
            msg.device.get("cpu_model", "?"),
        )
        self._send(routing_id, protocol.Welcome(agent.agent_id, self.heartbeat_s))
        self._dispatch(agent)

    def _adopt_running(self, agent: AgentRecord, job_id: str) -> None:
        job = self.store.job(job_id)
        if job is not None and job["agent_id"] == agent.agent_id and job["state"] == "queued":
            self.store.mark_running(job_id)
            agent.running = job_id
        elif job is not None and job["agent_id"] == agent.agent_id and job["state"] == "running":
            agent.running = job_id

    def _dispatch(self, agent: AgentRecord) -> None:
        if not agent.idle:
            return
        job = self.store.next_queued_job(agent.agent_id)
        if job is None:
            return
        self.store.start_job(job["job_id"])
        agent.running = job["job_id"]
        settings = json.loads(job["settings_json"])
        if self.calibrate and needs_calibration(
            self.store, agent.agent_id, settings, agent.descriptor.get("onnxruntime")
        ):
            settings["calibrate"] = True  # once per agent, threads and onnxruntime version
        self._send(agent.routing_id, protocol.Job(
            job["job_id"], job["model_name"], job["model_sha256"], settings,
            float(job["timeout_s"])))  # fmt: skip
        log.debug("job %s: %s -> %s", job["job_id"][:8], job["model_name"], agent.agent_id)

    def _complete(self, agent: AgentRecord, msg: protocol.Result | protocol.JobFailed) -> None:
        job = self.store.job(msg.job_id)
        if job is None or job["agent_id"] != agent.agent_id:
            raise Refused(
                f"result for job {msg.job_id[:12]}, which is not this agent's", "unknown_job"
            )
        if agent.running == msg.job_id:
            agent.running = None
        self.progress.pop(msg.job_id, None)
        if isinstance(msg, protocol.Result):
            check_document(msg.document)
            stored = self.store.record_result(
                msg.job_id, msg.result_id, agent.device_id, msg.document, msg.latencies_ns, job
            )
            self.counters["results" if stored else "duplicates"] += 1
            lat = msg.document["latency_ms"]
            log.info("result %s: %s on %s p50 %.3f ms (%s)%s", msg.result_id[:8],
                     job["model_name"], agent.agent_id, lat["p50"],
                     "valid" if msg.document["valid"] else "INVALID",
                     "" if stored else " [duplicate, not stored]")  # fmt: skip
        else:
            self._fail(agent, msg.job_id, msg.kind, msg.error, msg.result_id)
        self._send(agent.routing_id, protocol.Ack(msg.result_id))  # after the durable write
        if isinstance(msg, protocol.Result):  # after the ack: enriching never delays a result
            enrich(self.store, self.models, agent.agent_id, msg.result_id, job["model_sha256"],
                   msg.document)  # fmt: skip
        self._campaign_progress(job["campaign_id"])

    def _fail(
        self, agent: AgentRecord, job_id: str, kind: str, error: str, result_id: str | None = None
    ) -> None:
        failure = Failure(result_id or uuid.uuid4().hex, agent.device_id, kind, error)
        state = self.store.fail_attempt(job_id, failure)
        if agent.running == job_id:
            agent.running = None
        log.warning("job %s %s on %s (%s: %s)", job_id[:8],
                    "failed for good" if state == "failed" else "will be retried",
                    agent.agent_id, kind, error[:200])  # fmt: skip

    def _campaign_progress(self, campaign_id: str) -> None:
        if self.store.finish_campaign_if_done(campaign_id):
            log.info("campaign %s finished", campaign_id[:8])

    def _check_liveness(self) -> None:
        for agent in self.registry.newly_missing():
            log.warning("agent %s missed its heartbeats: marked missing", agent.agent_id)
            if agent.running is not None:
                job = self.store.job(agent.running)
                self._fail(
                    agent,
                    agent.running,
                    "agent_missing",
                    f"agent went silent for {self.registry.missing_after_s:g} s mid-job",
                )
                if job is not None:
                    self._campaign_progress(job["campaign_id"])

    def _submit(self, routing_id: bytes, msg: protocol.SubmitCampaign) -> None:
        payload = msg.campaign
        scheduler.check_payload(payload)
        for job in payload["jobs"]:
            if job["sha256"] not in self.models:
                raise UsageError(
                    f"model {job['model']} ({job['sha256'][:12]}) was not uploaded",
                    hint="send its ModelData before SubmitCampaign",
                )
        agents = [(a.agent_id, a.tags, list(a.descriptor.get("providers", [])))
                  for a in self.registry.all()]  # fmt: skip
        problem = scheduler.unsatisfiable(payload, agents)
        if problem:
            raise UsageError(problem, hint="change the campaign's matrix or targets")
        campaign_id = uuid.uuid4().hex
        for job in payload["jobs"]:
            self.store.add_model(
                job["sha256"],
                job["model"],
                str(self.models.path(job["sha256"])),
                self.models.path(job["sha256"]).stat().st_size,
            )
        self.store.add_campaign(campaign_id, str(payload["name"]), payload)
        campaign = self.store.campaign_by_name(campaign_id)
        total = sum(scheduler.expand_for_agent(self.store, campaign, a.agent_id, a.tags)
                    for a in self.registry.all())  # fmt: skip
        log.info("campaign %s (%s) accepted: %d jobs on %d agents now", payload["name"],
                 campaign_id[:8], total, len({j["agent_id"] for j in self.store.jobs(
                     campaign_id=campaign_id)}))  # fmt: skip
        self._send(routing_id, protocol.CampaignAccepted(campaign_id, total))
        for agent in self.registry.all():
            self._dispatch(agent)


def _peer(peer: bytes | str) -> str:
    """A peer for a log line: its identity, or its routing id in hex."""
    return peer if isinstance(peer, str) else peer.hex()
