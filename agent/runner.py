"""The agent's network loop: register with a collector, measure the jobs it sends, reply.

The agent connects out (DEALER to the collector's ROUTER), so a board behind NAT works. It
waits with bounded polls, never sleeps, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import zmq

from agent import __version__, device
from agent.measure import measure
from agent.options import settings_from_dict
from shared import protocol
from shared.errors import FlopgapError, ProtocolError
from shared.transport import require_safe

log = logging.getLogger("flopgap.agent")

POLL_MS = 200
DEFAULT_HEARTBEAT_S = 2.0


class Agent:
    """One connection to one collector; measures one job at a time."""

    def __init__(self, endpoint: str, name: str, work_dir: Path) -> None:
        self.endpoint = endpoint
        self.name = name
        self.work_dir = work_dir
        self.stop = threading.Event()
        self.heartbeat_s = DEFAULT_HEARTBEAT_S
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 2000)  # let a last result leave on shutdown

    def serve(self) -> int:
        """Run until stopped; returns the process exit code."""
        self._sock.connect(self.endpoint)
        self._send(protocol.Register(self.name, __version__, device.describe(), {}))
        log.info("agent %s connecting to %s", self.name, self.endpoint)
        next_beat = time.monotonic() + self.heartbeat_s
        try:
            while not self.stop.is_set():
                if self._sock.poll(POLL_MS):
                    code = self._handle(self._sock.recv_multipart())
                    if code is not None:
                        return code
                if time.monotonic() >= next_beat:
                    self._send(protocol.Heartbeat("idle"))
                    next_beat = time.monotonic() + self.heartbeat_s
        finally:
            self._sock.close()
        return 0

    def _send(self, msg: protocol.Message) -> None:
        self._sock.send_multipart(protocol.encode(msg))

    def _handle(self, frames: list[bytes]) -> int | None:
        try:
            msg = protocol.decode(frames)
        except ProtocolError as exc:
            log.error("ignored a malformed message from the collector: %s", exc)
            return None
        if isinstance(msg, protocol.Welcome):
            self.heartbeat_s = msg.heartbeat_interval_s
            log.info("registered as %s", msg.agent_id)
        elif isinstance(msg, protocol.Job):
            self._run_job(msg)
        elif isinstance(msg, protocol.Ack):
            log.debug("collector stored result %s", msg.result_id)
        elif isinstance(msg, protocol.Reject):
            log.error("collector refused us: %s (%s)", msg.reason, msg.hint)
            return 2
        return None

    def _run_job(self, job: protocol.Job) -> None:
        """Measure a job and send its result; any failure becomes a JobFailed, never a crash."""
        result_id = uuid.uuid4().hex
        log.info("job %s: measuring %s", job.job_id, job.model_name)
        try:
            path = self._store_model(job)
            settings = settings_from_dict(job.settings)
            result = measure(path, settings, model_name=job.model_name)
            reply: protocol.Message = protocol.Result(
                job.job_id, result_id, result.document, result.latencies_ns
            )
            frames = protocol.encode(reply)
        except FlopgapError as exc:
            log.warning("job %s failed: %s", job.job_id, exc)
            frames = protocol.encode(
                protocol.JobFailed(job.job_id, result_id, failure_kind(exc), str(exc))
            )
        except Exception as exc:  # a bug here must cost one job, not the agent
            log.exception("job %s: internal error", job.job_id)
            frames = protocol.encode(
                protocol.JobFailed(
                    job.job_id, result_id, "internal_error", f"{type(exc).__name__}: {exc}"[:4000]
                )
            )
        self._sock.send_multipart(frames)

    def _store_model(self, job: protocol.Job) -> Path:
        digest = hashlib.sha256(job.model).hexdigest()
        if digest != job.model_sha256:
            raise ProtocolError(
                f"model bytes for job {job.job_id} hash to {digest[:12]}, "
                f"expected {job.model_sha256[:12]}"
            )
        path = self.work_dir / f"{digest}.onnx"
        if not path.exists():
            tmp = path.with_suffix(".part")
            tmp.write_bytes(job.model)
            tmp.replace(path)
        return path


def failure_kind(exc: FlopgapError) -> str:
    """The wire name of a job failure's cause, e.g. ModelError -> model_error."""
    name = type(exc).__name__.removesuffix("Error") or "Flopgap"
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_") + "_error"


def run_agent(
    endpoint: str, name: str | None = None, work_dir: Path | None = None, insecure: bool = False
) -> int:
    """Entry point of `flopgap-agent run`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(levelname)s %(message)s")
    require_safe(endpoint, insecure, "connect to")
    with tempfile.TemporaryDirectory(prefix="flopgap-agent-") as tmp:
        folder = work_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        agent = Agent(endpoint, name or socket.gethostname(), folder)

        def _stop(signum: int, _frame: object) -> None:
            log.info("signal %d: stopping", signum)
            agent.stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        return agent.serve()
