"""`flopgap serve`: bind the collector's socket, open the store and run the loop.

With `--keys DIR` the order is pyzmq's ironhouse one: start the ZAP authenticator (its CURVE
credentials callback is DIR's allowlist, re-read when key files change), then make the
ROUTER a CURVE server with the collector's key pair, then bind. Each authenticated peer's
ZAP User-Id is "role:NAME" from the allowlisted file name, so the collector knows an agent by
its key, whatever name it claims.
"""

from __future__ import annotations

import logging
import queue
import signal
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from collector import flops
from collector.server.loop import HEARTBEAT_S, Collector
from collector.server.ratelimit import RateLimiter
from collector.store import Store
from collector.store.location import describe, is_postgres, target
from collector.store.model_files import ModelStore
from shared.errors import UsageError
from shared.keys import Allowlist, KeyPair, load_collector
from shared.log_lines import LineFormatter
from shared.transport import configure_server, require_safe

log = logging.getLogger("flopgap.collector")


class _KeyAuthenticator(ThreadAuthenticator):
    """pyzmq's ZAP thread, with User-Id = the allowlisted "role:NAME" instead of the z85 key."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], allowlist: Allowlist) -> None:
        super().__init__(context, log=logging.getLogger("flopgap.auth"))
        self.allowlist = allowlist

    def curve_user_id(self, client_public_key: bytes) -> str:
        """Called only after the callback accepted the key, so the lookup succeeds."""
        z85_key = z85.encode(client_public_key)
        return self.allowlist.identity(z85_key) or "unknown:"


def start_authenticator(allowlist: Allowlist) -> ThreadAuthenticator:
    """Start ZAP on the shared context; CURVE clients must be in `allowlist`."""
    auth = _KeyAuthenticator(zmq.Context.instance(), allowlist)
    auth.start()
    auth.configure_curve_callback("*", credentials_provider=allowlist)
    return auth


def bind_router(
    endpoint: str, keys: KeyPair | None = None, max_message_bytes: int | None = None
) -> tuple[zmq.Socket[bytes], str]:
    """A bound ROUTER socket and the endpoint it really got (port 0 or * picks a free one).

    With `keys`, the socket is a CURVE server; start the authenticator first.
    """
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable reply raises, never vanishes
    configure_server(sock, keys, max_message_bytes)  # before bind, or it would not apply
    if endpoint.endswith(":0"):
        endpoint = endpoint[:-2] + ":*"
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close()
        raise UsageError(
            f"cannot bind {endpoint}: {exc}",
            hint="pick another port, or stop what already listens there",
        ) from exc
    return sock, sock.getsockopt_string(zmq.LAST_ENDPOINT)


def models_folder(db: Path) -> Path:
    """Uploaded models live beside the database: results.sqlite -> results.models/."""
    return db.with_suffix(".models")


def serve(
    bind: str,
    db: Path,
    insecure: bool,
    heartbeat_s: float = HEARTBEAT_S,
    keys_dir: Path | None = None,
    max_message_bytes: int | None = None,
    calibrate: bool = True,
    limiter: RateLimiter | None = None,
) -> int:
    """Run the collector until SIGTERM/SIGINT; with `keys_dir`, only allowlisted keys connect.
    `limiter`: each peer's message rate (collector.server.ratelimit's defaults when None)."""
    logs = log_from_a_thread()
    try:
        return _serve(bind, db, insecure, heartbeat_s, keys_dir, max_message_bytes, calibrate,
                      limiter)  # fmt: skip
    finally:
        logs.stop()  # writes what is still queued


def log_from_a_thread() -> QueueListener:
    """Log lines are written by a thread: a stderr that drains slowly (a pipe, a busy
    journal) must never stall the loop that acknowledges results. Profiled under the ingest
    bench, writing two lines per result inline was a fifth of the loop's time."""
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = logging.StreamHandler()
    writer.setFormatter(LineFormatter("collector"))
    # The QueueHandler renders the message only (args merged, traceback appended): left
    # without a formatter, basicConfig gives it "LEVEL:name:message" and every line carried
    # its level twice ("collector INFO INFO:flopgap.collector:...").
    enqueue = QueueHandler(lines)
    enqueue.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[enqueue], force=True)
    listener = QueueListener(lines, writer)
    listener.start()
    return listener


def _serve(
    bind: str,
    db: Path,
    insecure: bool,
    heartbeat_s: float,
    keys_dir: Path | None,
    max_message_bytes: int | None,
    calibrate: bool,
    limiter: RateLimiter | None,
) -> int:
    require_safe(bind, insecure, "bind", keys=keys_dir is not None)
    flops.load_counter()
    keys = load_collector(keys_dir) if keys_dir is not None else None  # before anything binds
    allowlist = Allowlist(keys_dir) if keys_dir is not None else None
    auth = start_authenticator(allowlist) if allowlist is not None else None
    store = Store(db)
    try:
        sock, endpoint = bind_router(bind, keys, max_message_bytes)
    except BaseException:
        store.close()
        if auth is not None:
            auth.stop()
        raise
    collector = Collector(
        sock,
        store,
        ModelStore(models_folder(db)),
        heartbeat_s,
        allowlist=allowlist,
        limiter=limiter,
        calibrate=calibrate,
    )

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        collector.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if allowlist is not None:
        names = allowlist.identities()
        log.info("CURVE on: %d allowlisted keys in %s (%s)", len(names), keys_dir,
                 ", ".join(names) or "none yet: add some with flopgap keys agent NAME")  # fmt: skip
    shown = describe(str(target(db))) if is_postgres(db) else db  # never the password
    print(f"flopgap collector listening on {endpoint} (db {shown})", flush=True)
    try:
        return collector.serve()
    finally:
        sock.close()
        store.close()
        if auth is not None:
            auth.stop()
