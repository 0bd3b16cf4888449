"""The store's tables, their version, and the one upgrade it knows (schema 2 to 3).

The DDL runs on every open (``IF NOT EXISTS``), so a new database and an old one converge on the
same tables and indexes; ``check_version`` then stamps a new file, upgrades a schema-2 file in
one transaction, or refuses any other version rather than guess at its layout.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from shared.errors import StoreError

# 3: latencies packed (base, width), 2's read as width 8; op_times.folded_flops (BN in convs)
STORE_SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, descriptor_json TEXT NOT NULL,
    tags_json TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, size_bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id TEXT PRIMARY KEY, name TEXT NOT NULL, spec_json TEXT NOT NULL,
    state TEXT NOT NULL, created REAL NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, agent_id TEXT NOT NULL,
    model_sha256 TEXT NOT NULL, model_name TEXT NOT NULL, settings_json TEXT NOT NULL,
    repeat INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL, timeout_s REAL NOT NULL, errors_json TEXT NOT NULL,
    created REAL NOT NULL, started REAL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    result_id TEXT PRIMARY KEY, job_id TEXT NOT NULL UNIQUE, campaign_id TEXT NOT NULL,
    agent_id TEXT NOT NULL, device_id TEXT NOT NULL, model_sha256 TEXT NOT NULL,
    status TEXT NOT NULL, error_kind TEXT, error TEXT, document_json TEXT,
    received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS latencies (
    result_id TEXT PRIMARY KEY REFERENCES results(result_id), n INTEGER NOT NULL,
    ns BLOB NOT NULL, base INTEGER NOT NULL DEFAULT 0, width INTEGER NOT NULL DEFAULT 8);
CREATE TABLE IF NOT EXISTS model_costs (
    sha256 TEXT NOT NULL, input_shapes TEXT NOT NULL, convention TEXT, cost_json TEXT,
    error TEXT, PRIMARY KEY (sha256, input_shapes));
CREATE TABLE IF NOT EXISTS op_times (
    result_id TEXT NOT NULL, node_name TEXT NOT NULL, op_type TEXT NOT NULL, provider TEXT,
    kernel_time_us REAL NOT NULL, flops INTEGER, macs INTEGER, bytes INTEGER, fused_from TEXT,
    depthwise INTEGER, folded_flops INTEGER, PRIMARY KEY (result_id, node_name));
CREATE TABLE IF NOT EXISTS calibrations (
    agent_id TEXT NOT NULL, threads INTEGER NOT NULL, peak_gflops REAL, bandwidth_gbs REAL,
    measured_at REAL NOT NULL, detail_json TEXT NOT NULL, PRIMARY KEY (agent_id, threads));
DROP INDEX IF EXISTS jobs_by_agent_state;
CREATE INDEX IF NOT EXISTS jobs_by_campaign ON jobs(campaign_id, state);
CREATE INDEX IF NOT EXISTS jobs_in_order ON jobs(agent_id, state, campaign_id, created, job_id);
-- jobs_in_order also serves every (agent_id, state) lookup; schema 2's narrower index goes
"""


def check_version(
    db: sqlite3.Connection,
    path: Path,
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]],
) -> None:
    """Stamp a new database, upgrade schema 2 in place, refuse any other version."""
    row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    if row is None:
        db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(STORE_SCHEMA_VERSION),))
    elif int(row[0]) == 2:  # add the packing columns; old rows are width 8, base 0
        with transaction() as tx:
            tx.execute("ALTER TABLE latencies ADD COLUMN base INTEGER NOT NULL DEFAULT 0")
            tx.execute("ALTER TABLE latencies ADD COLUMN width INTEGER NOT NULL DEFAULT 8")
            tx.execute("ALTER TABLE op_times ADD COLUMN folded_flops INTEGER")
            tx.execute("UPDATE meta SET value='3' WHERE key='schema'")
    elif int(row[0]) != STORE_SCHEMA_VERSION:
        raise StoreError(
            f"{path} has store schema {row[0]}, this flopgap reads {STORE_SCHEMA_VERSION}",
            hint="use the flopgap that wrote it, or start a new database",
        )
