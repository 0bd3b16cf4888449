"""What the agent sends the collector about a job: progress, the result or failure, the graph.

A result is encoded once, here, into the frames that go both to the spool and to the socket,
so a resend after a reconnect is byte for byte what was sent first. A document the wire
refuses (e.g. over the size limit) becomes a JobFailed that says so: nothing is lost silently.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.jobs.worker import JobOutcome
from shared import protocol
from shared.errors import ProtocolError

log = logging.getLogger("flopgap.agent")


def result_frames(job: protocol.Job, outcome: JobOutcome, result_id: str) -> list[bytes]:
    """The encoded Result of a measured job, or its JobFailed (error text cut to 60,000)."""
    msg: protocol.Message
    if outcome.ok and outcome.document is not None and outcome.latencies_ns is not None:
        msg = protocol.Result(job.job_id, result_id, outcome.document, outcome.latencies_ns)
    else:
        msg = protocol.JobFailed(job.job_id, result_id, outcome.error_kind or "unknown",
                                 (outcome.error or "no error text")[:60_000])  # fmt: skip
    try:
        return protocol.encode(msg)
    except ProtocolError as exc:  # e.g. a document over the size limit: say so, lose nothing
        return protocol.encode(protocol.JobFailed(job.job_id, result_id, "protocol_error",
                                                  str(exc)[:60_000]))  # fmt: skip


def upload_optimized_graph(
    document: dict[str, Any], send: Callable[[protocol.Message], None]
) -> None:
    """Send the graph ORT actually ran (from the profiling pass) so the collector can join
    per-node times to its FLOPs; the local copy is removed and its path left out."""
    profile = document.get("op_profile")
    if not profile or not profile.get("optimized_model_file"):
        return
    path = Path(profile.pop("optimized_model_file"))
    try:
        data = path.read_bytes()
        send(protocol.ModelData(hashlib.sha256(data).hexdigest(), data))
    except (OSError, ProtocolError) as exc:
        log.warning("could not send the optimized graph: %s", exc)
    shutil.rmtree(path.parent, ignore_errors=True)


def progress_message(job_id: str, progress: dict[str, Any]) -> protocol.Progress:
    """A Progress with plain JSON numbers and strings (the wire refuses numpy scalars)."""
    out: dict[str, Any] = {}
    for key, value in progress.items():
        out[str(key)] = value if isinstance(value, (str, int, float, type(None))) else float(value)
    return protocol.Progress(job_id, out)
