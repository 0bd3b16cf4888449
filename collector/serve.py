"""`flopgap serve`: bind the collector's socket, open the store and run the loop."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import zmq

from collector.model_store import ModelStore
from collector.server import HEARTBEAT_S, Collector
from collector.store import Store
from shared.errors import UsageError
from shared.transport import require_safe

log = logging.getLogger("flopgap.collector")


def bind_router(endpoint: str) -> tuple[zmq.Socket[bytes], str]:
    """A bound ROUTER socket and the endpoint it really got (port 0 or * picks a free one)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable reply raises, never vanishes
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


def serve(bind: str, db: Path, insecure: bool, heartbeat_s: float = HEARTBEAT_S) -> int:
    """Run the collector until SIGTERM/SIGINT."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s collector %(levelname)s %(message)s"
    )
    require_safe(bind, insecure, "bind")
    store = Store(db)
    sock, endpoint = bind_router(bind)
    collector = Collector(sock, store, ModelStore(models_folder(db)), heartbeat_s)

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        collector.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"flopgap collector listening on {endpoint} (db {db})", flush=True)
    try:
        return collector.serve()
    finally:
        sock.close()
        store.close()
