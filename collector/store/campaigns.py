"""Reads and writes of campaigns: created running, marked done once every job is terminal."""

from __future__ import annotations

import json
import time
from typing import Any

from collector.store.connection import Database
from collector.store.rows import CampaignRow, CampaignState, typed


class Campaigns(Database):
    """The ``campaigns`` table."""

    def add_campaign(self, campaign_id: str, name: str, spec: dict[str, Any]) -> CampaignRow:
        """Store a new running campaign; returns its row."""
        row = (campaign_id, name, json.dumps(spec), CampaignState.RUNNING.value, time.time(), None)
        with self.transaction() as db:
            db.execute("INSERT INTO campaigns VALUES (?, ?, ?, ?, ?, ?)", row)
        return CampaignRow(*row[:3], CampaignState.RUNNING, *row[4:])

    def campaigns(self, state: CampaignState | None = None) -> list[CampaignRow]:
        if state is None:
            cur = self.db.execute("SELECT * FROM campaigns ORDER BY created")
        else:
            cur = self.db.execute(
                "SELECT * FROM campaigns WHERE state=? ORDER BY created", (state.value,)
            )
        return [typed(CampaignRow, row) for row in cur]

    def campaign_by_name(self, name: str) -> CampaignRow | None:
        row = self.db.execute(
            "SELECT * FROM campaigns WHERE name=? OR campaign_id=? ORDER BY created DESC",
            (name, name),
        ).fetchone()
        return None if row is None else typed(CampaignRow, row)

    def finish_campaign_if_done(self, campaign_id: str) -> bool:
        """Mark a campaign done once every job is terminal; True when it just finished."""
        open_job = self.db.execute(  # an index seek: called once per result, so no COUNT(*)
            "SELECT 1 FROM jobs WHERE campaign_id=? AND state IN ('queued', 'running') LIMIT 1",
            (campaign_id,),
        ).fetchone()
        if open_job is not None:
            return False
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE campaigns SET state='done', finished=? WHERE campaign_id=? "
                "AND state='running'",
                (time.time(), campaign_id),
            )
        return cur.rowcount > 0
