"""The collector's serving side: `serve` binds the socket (and CURVE keys), `loop` receives,
batches and routes each message, `table` says which handler answers it and who may send it,
`handlers/` hold what the collector does for each message, `context` is all a handler sees,
`registry` is who is connected and `ratelimit` how fast each peer may send."""

from collector.server.context import Refused
from collector.server.loop import BATCH_MAX, HEARTBEAT_S, MISSING_AFTER_BEATS, POLL_MS, Collector

__all__ = ["BATCH_MAX", "HEARTBEAT_S", "MISSING_AFTER_BEATS", "POLL_MS", "Collector", "Refused"]
