"""Results the collector has not acknowledged yet: in the spool, or in memory when it is full.

The spool (agent.link.spool) keeps each result on disk until its Ack, across agent restarts. When it
cannot keep one (its --spool-max-mb cap, a full or failing disk) the result waits in memory
instead: it is still resent at every reconnection, but lost if the agent stops first.
"""

from __future__ import annotations

import logging

from agent.link.spool import Spool, SpoolError
from shared.log_safe import safe

log = logging.getLogger("flopgap.agent")


class Unacked:
    """The unacknowledged results, each as the frames that were sent."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._in_memory: dict[str, list[bytes]] = {}  # results the spool could not hold

    def put(self, result_id: str, frames: list[bytes]) -> None:
        try:
            self.spool.put(result_id, frames)
        except SpoolError as exc:
            log.error("spool cannot keep result %s (%s); holding it in memory", result_id[:8],
                      safe(exc))  # fmt: skip
            self._in_memory[result_id] = frames

    def ack(self, result_id: str) -> None:
        self.spool.ack(result_id)
        self._in_memory.pop(result_id, None)

    def ids(self) -> list[str]:
        """Every result id to resend: the spool's, oldest first, then memory's."""
        return [*self.spool.ids(), *self._in_memory]

    def frames(self, result_id: str) -> list[bytes] | None:
        """One unacked result's frames, None once it is acked (or unreadable)."""
        held = self._in_memory.get(result_id)
        return held if held is not None else self.spool.read(result_id)

    def pending(self) -> list[tuple[str, list[bytes]]]:
        """Every result to resend, as (result id, frames): the spool's, then memory's."""
        return [*self.spool.pending(), *self._in_memory.items()]
