"""Reads and writes of models by content hash, and of their theoretical costs.

A cost is kept per (sha256, canonical-JSON input shapes), so collector/costs.py counts each
model once per resolution; a model that could not be counted keeps the reason instead.
"""

from __future__ import annotations

import json
from typing import Any

from collector.store.connection import Database
from collector.store.rows import CostRow, ModelRow, typed


class Models(Database):
    """The ``models`` and ``model_costs`` tables."""

    def add_model(self, sha256: str, name: str, path: str, size_bytes: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?)", (sha256, name, path, size_bytes)
            )

    def model(self, sha256: str) -> ModelRow | None:
        row = self.db.execute("SELECT * FROM models WHERE sha256=?", (sha256,)).fetchone()
        return None if row is None else typed(ModelRow, row)

    def cost(self, sha256: str, input_shapes: str) -> CostRow | None:
        """The stored cost of a model at canonical-JSON input shapes, if counted."""
        row = self.db.execute(
            "SELECT * FROM model_costs WHERE sha256=? AND input_shapes=?", (sha256, input_shapes)
        ).fetchone()
        return None if row is None else typed(CostRow, row)

    def put_cost(
        self,
        sha256: str,
        input_shapes: str,
        convention: str | None,
        cost: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        """Store a model's counts (or why it could not be counted) once."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO model_costs VALUES (?, ?, ?, ?, ?)",
                (sha256, input_shapes, convention, None if cost is None else json.dumps(cost),
                 error),
            )  # fmt: skip
