"""Reads and writes of campaigns: created running, marked done once every job is terminal.

A campaign is named by the user and identified by a 32-hex id; every command that takes a
campaign goes through `resolve_campaign`, so its name, its full id and any unique prefix of the
id (the 8 characters `campaign run` prints) all work, and an ambiguous text is an error that
lists the candidates instead of a silent pick.
"""

from __future__ import annotations

import json
import time
from typing import Any

from collector.store.connection import Database
from collector.store.rows import CampaignRow, CampaignState, typed
from shared.errors import UsageError


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

    def resolve_campaign(self, text: str) -> CampaignRow:
        """The campaign `text` names: its full id, else its name, else a unique id prefix.

        A name shared by several campaigns (only a database from before names were unique
        holds one) or a prefix of several ids is an error listing them; nothing found is an
        error listing the campaigns there are."""
        text = text.strip()
        if not text:
            raise UsageError("an empty campaign name", hint="pass a campaign's name or id")
        by_id = self.db.execute("SELECT * FROM campaigns WHERE campaign_id=?", (text,)).fetchone()
        if by_id is not None:
            return typed(CampaignRow, by_id)
        named = self._campaigns_where("name=?", text)
        if len(named) == 1:
            return named[0]
        prefixed = self._campaigns_where("substr(campaign_id, 1, ?)=?", len(text), text.lower())
        found = named or prefixed
        if len(found) == 1:
            return found[0]
        if found:
            raise UsageError(
                f"campaign {text!r} is ambiguous: it names {len(found)} campaigns "
                f"({describe(found)})",
                hint="pass more characters of the id",
            )
        known = describe(self.campaigns()) or "none"
        raise UsageError(f"no campaign {text!r} in the database", hint=f"campaigns there: {known}")

    def campaigns_named(self, name: str) -> list[CampaignRow]:
        """Campaigns under exactly this name (at most one, unless the database predates
        unique names)."""
        return self._campaigns_where("name=?", name)

    def _campaigns_where(self, where: str, *args: object) -> list[CampaignRow]:
        cur = self.db.execute(f"SELECT * FROM campaigns WHERE {where} ORDER BY created", args)
        return [typed(CampaignRow, row) for row in cur]

    def result_count(self, campaign_id: str | None = None) -> int:
        """Results stored for one campaign (or all): what an export would write."""
        if campaign_id is None:
            return int(self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        cur = self.db.execute("SELECT COUNT(*) FROM results WHERE campaign_id=?", (campaign_id,))
        return int(cur.fetchone()[0])

    def rename_campaign(self, campaign_id: str, name: str) -> None:
        """Give a campaign another name (a replaced one keeps its id and its results)."""
        with self.transaction() as db:
            db.execute("UPDATE campaigns SET name=? WHERE campaign_id=?", (name, campaign_id))

    def fail_campaign(self, campaign_id: str, reason: str) -> None:
        """Mark a running campaign failed for good, and its queued jobs with it (the reason
        in each job's errors): it is neither expanded nor dispatched again."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE campaigns SET state='failed', finished=? WHERE campaign_id=? "
                "AND state='running'",
                (now, campaign_id),
            )
            db.execute(
                "UPDATE jobs SET state='failed', errors_json=?, updated=? "
                "WHERE campaign_id=? AND state='queued'",
                (json.dumps([f"campaign_failed: {reason[:500]}"]), now, campaign_id),
            )

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


def describe(rows: list[CampaignRow], most: int = 10) -> str:
    """Campaigns as `name (id8)`, the newest first, for a message that lists candidates."""
    shown = [f"{r.name} ({r.campaign_id[:8]})" for r in reversed(rows)][:most]
    more = f", and {len(rows) - most} more" if len(rows) > most else ""
    return ", ".join(shown) + more
