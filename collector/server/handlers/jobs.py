"""A job's way through the collector: dispatch to an idle agent (asking it to calibrate when
needed), completion by a Result or a JobFailed, failed attempts and their retries, and the
end of a campaign.

Order matters for durability: a result is stored before its Ack is sent (inside a batch the
Ack waits for the commit, see collector.server.loop), and enriching runs after the Ack so it never
delays a result.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from collector.enrich import enrich, needs_calibration
from collector.server.context import Context, Refused, Sender
from collector.server.registry import AgentRecord
from collector.store import Failure
from collector.store.db_errors import STORE_TROUBLE
from collector.store.rows import JobRow, JobState
from shared import protocol
from shared.errors import FlopgapError, ProtocolError
from shared.log_safe import safe
from shared.result import check_document, check_latencies
from shared.settings import parse_job_settings
from shared.verdicts import reason_kind

log = logging.getLogger("flopgap.collector")


def dispatch(ctx: Context, agent: AgentRecord) -> None:
    """Give an idle agent its next queued job, if it has one and its device is free: one
    measurement at a time per device, whichever agents hold it."""
    if not agent.idle or ctx.registry.device_busy(agent) is not None:
        return
    store = ctx.store
    job = _claim_next(ctx, agent)
    if job is None:
        return
    agent.running = job.job_id
    settings = job.settings
    if ctx.calibrate and needs_calibration(
        store, agent.agent_id, settings, agent.descriptor.get("onnxruntime")
    ):
        settings["calibrate"] = True  # once per agent, threads and onnxruntime version
    ctx.reply(agent.routing_id, protocol.Job(
        job.job_id, job.model_name, job.model_sha256, settings,
        float(job.timeout_s)))  # fmt: skip
    log.debug("job %s: %s -> %s", job.job_id[:8], safe(job.model_name), safe(agent.agent_id))


CLAIM_TRIES = 8  # queued jobs lost to another collector's claim before giving up this turn


def _claim_next(ctx: Context, agent: AgentRecord) -> JobRow | None:
    """The agent's next queued job, claimed (queued -> running) in the store. A claim can
    lose only to another collector sharing the store; the next job is tried then."""
    store = ctx.store
    for _ in range(CLAIM_TRIES):
        job = store.next_queued_job(agent.agent_id)
        while job is not None and (problem := _job_problem(job)) is not None:
            _fail_unrunnable(ctx, job, problem)  # a row stored before the door checked it
            job = store.next_queued_job(agent.agent_id)
        if job is None or store.start_job(job.job_id):
            return job
    return None


PROGRESS_KEYS = 16  # kept of one Progress; the agent sends phase, iterations, elapsed, median
PROGRESS_KEY_CHARS = 40
PROGRESS_TEXT_CHARS = 200


def _job_problem(job: JobRow) -> str | None:
    """Why a queued job could never be sent (settings, timeout or hash out of rule), or None."""
    try:
        parse_job_settings(job.settings)
        protocol.encode(protocol.Job(job.job_id, job.model_name, job.model_sha256,
                                     job.settings, float(job.timeout_s)))  # fmt: skip
    except (FlopgapError, TypeError, ValueError, OverflowError) as exc:
        return str(exc)
    return None


def _fail_unrunnable(ctx: Context, job: JobRow, problem: str) -> None:
    """Fail a job that cannot run, and its campaign, instead of crashing on it at every
    registration."""
    log.warning("job %s of campaign %s cannot run (%s): campaign marked failed",
                job.job_id[:8], job.campaign_id[:8], problem[:200])  # fmt: skip
    ctx.store.fail_campaign(job.campaign_id, f"job {job.job_id[:8]}: {problem}")


def progress(ctx: Context, sender: Sender, msg: protocol.Progress) -> None:
    """Keep the running job's latest progress for `flopgap status`; nothing is stored.

    Only for the job the agent holds, and cut to a few short scalars: Progress arrives every
    second from every agent, so what it may leave in memory is bounded by the fleet, never by
    what a peer invents (job ids it does not hold, 200 kB payloads).
    """
    agent = sender.registered
    if agent.running != msg.job_id:
        ctx.counters["progress_ignored"] = ctx.counters.get("progress_ignored", 0) + 1
        return
    ctx.progress[msg.job_id] = {**bounded_progress(msg.progress), "agent": agent.agent_id}
    if len(ctx.progress) > 2 * len(ctx.registry.all()) + 16:  # amortised: rarely rebuilt
        held = {a.running for a in ctx.registry.all() if a.running}
        for job_id in [j for j in ctx.progress if j not in held]:
            del ctx.progress[job_id]


def bounded_progress(progress: dict[str, Any]) -> dict[str, Any]:
    """At most PROGRESS_KEYS scalar entries, keys and strings truncated; the rest dropped."""
    out: dict[str, Any] = {}
    for key, value in progress.items():
        if len(out) >= PROGRESS_KEYS:
            break
        if isinstance(value, str):
            value = value[:PROGRESS_TEXT_CHARS]
        elif not isinstance(value, (int, float, bool, type(None))):
            continue  # lists, dicts: not part of progress
        out[str(key)[:PROGRESS_KEY_CHARS]] = value
    return out


def send_model(ctx: Context, sender: Sender, msg: protocol.ModelRequest) -> None:
    """Send an agent the model its job names (it has no copy in its cache)."""
    agent = sender.registered
    data = ctx.models.read(msg.sha256)
    if data is None:
        raise ProtocolError(f"the collector has no model {safe(msg.sha256[:12])}")
    ctx.reply(agent.routing_id, protocol.ModelData(msg.sha256, data))
    log.info("sent model %s (%d bytes) to %s", msg.sha256[:12], len(data), safe(agent.agent_id))


def complete(ctx: Context, sender: Sender, msg: protocol.Result | protocol.JobFailed) -> None:
    """Store a job's Result (or its failed attempt), ack it, then enrich it and check whether
    its campaign is done."""
    store, agent = ctx.store, sender.registered
    job = store.job(msg.job_id)
    if job is None or job.agent_id != agent.agent_id:
        raise Refused(f"result for job {safe(msg.job_id[:12])}, which is not this agent's",
                      "unknown_job")  # fmt: skip
    if isinstance(msg, protocol.Result):
        check_document(msg.document)  # before anything changes: a refusal leaves no trace
        check_latencies(msg.document, msg.latencies_ns)
    owner = store.result_job(msg.result_id)
    if owner is not None and owner != msg.job_id:
        refuse_reused_id(ctx, agent, job, msg.result_id, owner)
        return
    if agent.running == msg.job_id:
        agent.running = None
    ctx.progress.pop(msg.job_id, None)
    if isinstance(msg, protocol.Result):
        state = store.record_result(
            msg.job_id, msg.result_id, agent.device_id, msg.document, msg.latencies_ns, job
        )
        ctx.counters["results" if state is not None else "duplicates"] += 1
        lat = msg.document["latency_ms"]
        if state is None:
            outcome = " [duplicate, not stored]"
        elif state is JobState.QUEUED:
            outcome = (f"; measuring it again later (invalid retry {job.invalid_attempts + 1} "
                       f"of {job.retry_invalid})")  # fmt: skip
        else:
            outcome = ""
        log.info("result %s: %s on %s p50 %s ms (%s)%s", safe(msg.result_id[:8]),
                 safe(job.model_name), safe(agent.agent_id), _ms(lat.get("p50")),
                 _verdict(msg.document), outcome)  # fmt: skip
    else:
        fail(ctx, agent, msg.job_id, msg.kind, msg.error, msg.result_id)
    ctx.reply(agent.routing_id, protocol.Ack(msg.result_id))  # after the durable write
    if isinstance(msg, protocol.Result):  # after the ack: enriching never delays a result
        try:
            with store.message():  # a failure rolls back the extra data alone
                enrich(store, ctx.models, agent.agent_id, msg.result_id, job.model_sha256,
                       msg.document, json.loads(job.settings_json))  # fmt: skip
        except STORE_TROUBLE:
            raise  # the store's own trouble, not this result's
        except Exception as exc:
            log.warning("result %s: enriching failed, the result stays stored without "
                        "costs or op times: %s", msg.result_id[:8], str(exc)[:200])  # fmt: skip
    campaign_progress(ctx, job.campaign_id)
    dispatch_device(ctx, agent)


def refuse_reused_id(
    ctx: Context, agent: AgentRecord, job: JobRow, result_id: str, owner: str
) -> None:
    """A result id is bound to the job it was first stored for: refuse its reuse for another
    job, and count the attempt as failed (retried while attempts remain) so the job is
    never left running for ever."""
    reason = (f"result id {result_id[:12]} is already stored for job {owner[:12]}, not "
              f"{job.job_id[:12]}: each result needs its own id")  # fmt: skip
    if job.state is JobState.RUNNING:
        fail(ctx, agent, job.job_id, "result_id_reused", reason)
        campaign_progress(ctx, job.campaign_id)
        dispatch_device(ctx, agent)
    ctx.counters["rejected"] += 1
    log.warning("agent %s: %s", agent.agent_id, reason)
    ctx.reply(agent.routing_id, protocol.Reject(
        reason, "give each result a fresh id (uuid4); the job was failed and will be retried",
        protocol.PROTOCOL_VERSION, "refused"))  # fmt: skip


def _verdict(document: dict[str, Any]) -> str:
    if document["valid"]:
        return "valid"
    kinds = sorted({reason_kind(r) for r in document.get("invalid_reasons") or []})
    return f"INVALID: {safe(', '.join(kinds)) or 'no reason given'}"


def _ms(value: object) -> str:
    """A latency in ms for a log line; anything else the peer sent, shown safely."""
    return f"{value:.3f}" if isinstance(value, (int, float)) else safe(value, 40)


def dispatch_device(ctx: Context, freed: AgentRecord) -> None:
    """The device `freed` ran on is free again: offer the next job to the other agents that
    share it, in turn starting after `freed`, so no sharer waits for the other's whole queue;
    the loop then offers `freed` its own next job if the device is still free."""
    for agent in ctx.registry.sharing(freed):
        dispatch(ctx, agent)


def fail(
    ctx: Context,
    agent: AgentRecord,
    job_id: str,
    kind: str,
    error: str,
    result_id: str | None = None,
) -> None:
    """Record a failed attempt; the store requeues the job or fails it for good."""
    failure = Failure(result_id or uuid.uuid4().hex, agent.device_id, kind, error)
    state = ctx.store.fail_attempt(job_id, failure)
    if agent.running == job_id:
        agent.running = None
    log.warning("job %s %s on %s (%s: %s)", safe(job_id[:8]),
                "failed for good" if state is JobState.FAILED else "will be retried",
                safe(agent.agent_id), safe(kind, 64), safe(error))  # fmt: skip


def campaign_progress(ctx: Context, campaign_id: str) -> None:
    """Mark the campaign finished once none of its jobs is left to run."""
    if ctx.store.finish_campaign_if_done(campaign_id):
        log.info("campaign %s finished", safe(campaign_id[:8]))
