"""The models queued jobs wait for: asked of the collector once per connection, cached on arrival.

A job names its model by content hash; the agent runs it only from its cache
(agent.link.model_cache).
A missing model is requested once, and again only after a reconnection or after a copy that
failed to cache (hash mismatch, disk trouble), so a slow transfer is never asked for twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from agent.link.model_cache import ModelCache
from shared import protocol
from shared.errors import FlopgapError

log = logging.getLogger("flopgap.agent")


class ModelFetch:
    """The model cache, and the requests sent for what it lacks."""

    def __init__(self, cache: ModelCache, send: Callable[[protocol.Message], None]) -> None:
        self.cache = cache
        self._send = send
        self._requested: set[str] = set()

    def path(self, sha256: str) -> Path | None:
        """The cached model, or None once it has been asked for (at most once per connection)."""
        path = self.cache.get(sha256)
        if path is None and sha256 not in self._requested:
            self._requested.add(sha256)
            self._send(protocol.ModelRequest(sha256))
        return path

    def received(self, msg: protocol.ModelData) -> None:
        self._requested.discard(msg.sha256)  # a later corruption or failure asks again
        try:
            self.cache.put(msg.sha256, msg.model)
        except FlopgapError as exc:  # hash mismatch or disk trouble: ask once more later
            log.error("could not cache model %s: %s", msg.sha256[:12], exc)

    def reconnected(self) -> None:
        """A new connection: whatever was asked before may have been lost; ask again."""
        self._requested.clear()
