"""Reads and writes of the fleet: each agent's descriptor and tags, and its calibrations."""

from __future__ import annotations

import json
import time
from typing import Any

from collector.store.connection import Database
from collector.store.rows import AgentRow, CalibrationRow, typed


class Agents(Database):
    """The ``agents`` and ``calibrations`` tables."""

    def upsert_agent(self, agent_id: str, descriptor: dict[str, Any], tags: dict[str, str]) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO agents VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET "
                "device_id=excluded.device_id, descriptor_json=excluded.descriptor_json, "
                "tags_json=excluded.tags_json, last_seen=excluded.last_seen",
                (agent_id, str(descriptor.get("device_id", "")), json.dumps(descriptor),
                 json.dumps(tags), now, now),
            )  # fmt: skip

    def agents(self) -> list[AgentRow]:
        return [
            typed(AgentRow, r) for r in self.db.execute("SELECT * FROM agents ORDER BY agent_id")
        ]

    def put_calibration(self, agent_id: str, calibration: dict[str, Any]) -> None:
        """The device's measured peak FLOP/s and bandwidth at a thread count (latest wins)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO calibrations VALUES (?, ?, ?, ?, ?, ?)",
                (agent_id, int(calibration["threads"]), calibration.get("peak_gflops"),
                 calibration.get("bandwidth_gbs"), time.time(), json.dumps(calibration)),
            )  # fmt: skip

    def calibration_rows(self) -> list[CalibrationRow]:
        return [typed(CalibrationRow, r) for r in self.db.execute("SELECT * FROM calibrations")]
