"""The store's tables, their version, and the upgrades it knows (schema 2 to 3 to 4).

The DDL runs on every open (``IF NOT EXISTS``), so a new database and an old one converge on the
same tables and indexes; ``check_version`` then stamps a new file, upgrades a schema-2 or -3 file
in one transaction each, or refuses any other version rather than guess at its layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import StoreError

if TYPE_CHECKING:
    from collector.store.backend import Connection, Transaction

# 3: latencies packed (base, width), 2's read as width 8; op_times.folded_flops (BN in convs)
# 4: a job may keep several results (invalid attempts retried): results.job_id is no longer
#    unique, results gain attempt, job_result, valid, invalid_reasons; jobs gain retry_invalid
#    and invalid_attempts
# predictors (trained kernel predictors, issue 18) is a new table, not a change to an old one:
# CREATE TABLE IF NOT EXISTS adds it to any file on open, so the version stays 4
STORE_SCHEMA_VERSION = 4

RESULTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    result_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, campaign_id TEXT NOT NULL,
    agent_id TEXT NOT NULL, device_id TEXT NOT NULL, model_sha256 TEXT NOT NULL,
    status TEXT NOT NULL, error_kind TEXT, error TEXT, document_json TEXT,
    received_at REAL NOT NULL, attempt INTEGER NOT NULL DEFAULT 1,
    job_result INTEGER NOT NULL DEFAULT 1, valid INTEGER, invalid_reasons TEXT);
"""

SCHEMA = (
    """
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
    created REAL NOT NULL, started REAL, updated REAL NOT NULL,
    retry_invalid INTEGER NOT NULL DEFAULT 0, invalid_attempts INTEGER NOT NULL DEFAULT 0);
"""
    + RESULTS_TABLE.format(name="results")
    + """
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
CREATE TABLE IF NOT EXISTS predictors (
    predictor_id TEXT PRIMARY KEY, device_key TEXT NOT NULL, version INTEGER NOT NULL,
    data_hash TEXT NOT NULL, samples INTEGER NOT NULL, models INTEGER NOT NULL,
    trained_at REAL NOT NULL, flopgap_version TEXT NOT NULL, payload_json TEXT NOT NULL,
    UNIQUE (device_key, version));
CREATE TABLE IF NOT EXISTS calibrations (
    agent_id TEXT NOT NULL, threads INTEGER NOT NULL, peak_gflops REAL, bandwidth_gbs REAL,
    measured_at REAL NOT NULL, detail_json TEXT NOT NULL, PRIMARY KEY (agent_id, threads));
DROP INDEX IF EXISTS jobs_by_agent_state;
CREATE INDEX IF NOT EXISTS jobs_by_campaign ON jobs(campaign_id, state);
CREATE INDEX IF NOT EXISTS jobs_in_order ON jobs(agent_id, state, campaign_id, created, job_id);
-- jobs_in_order also serves every (agent_id, state) lookup; schema 2's narrower index goes
"""
    + """
-- collectors sharing one store (collector.store.leases): new tables, so the version stays 4
CREATE TABLE IF NOT EXISTS collector_leases (
    collector_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
    endpoint TEXT NOT NULL, beat INTEGER NOT NULL, started REAL NOT NULL, renewed REAL NOT NULL);
CREATE TABLE IF NOT EXISTS agent_holders (
    agent_id TEXT PRIMARY KEY, collector_id TEXT NOT NULL, seen REAL NOT NULL);
CREATE INDEX IF NOT EXISTS agent_holders_by_collector ON agent_holders(collector_id);
"""
)

# Indexes on columns an older schema lacks: made once the file is at the current version.
CURRENT_INDEXES = """
CREATE INDEX IF NOT EXISTS results_by_campaign ON results(campaign_id, job_result);
CREATE INDEX IF NOT EXISTS results_by_job ON results(job_id);
"""


def check_version(db: Connection, path: str, transaction: Transaction) -> None:
    """Stamp a new database, upgrade schema 2 or 3 in place, refuse any other version (a
    PostgreSQL store starts at 4, so only SQLite files ever take the upgrade path)."""
    row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    if row is None:
        db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(STORE_SCHEMA_VERSION),))
        db.executescript(CURRENT_INDEXES)
        return
    version = int(row[0])
    if version == 2:  # add the packing columns; old rows are width 8, base 0
        with transaction() as tx:
            tx.execute("ALTER TABLE latencies ADD COLUMN base INTEGER NOT NULL DEFAULT 0")
            tx.execute("ALTER TABLE latencies ADD COLUMN width INTEGER NOT NULL DEFAULT 8")
            tx.execute("ALTER TABLE op_times ADD COLUMN folded_flops INTEGER")
            tx.execute("UPDATE meta SET value='3' WHERE key='schema'")
        version = 3
    if version == 3:
        db.execute("PRAGMA foreign_keys=OFF")  # results is rebuilt under latencies' reference
        try:
            with transaction() as tx:
                _upgrade_3_to_4(tx)
                if tx.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise StoreError(
                        f"{path}: upgrading to store schema 4 broke a reference",
                        hint="keep the file and report this; nothing was changed",
                    )
        finally:
            db.execute("PRAGMA foreign_keys=ON")
        version = 4
    if version != STORE_SCHEMA_VERSION:
        raise _other_version(path, row[0])
    db.executescript(CURRENT_INDEXES)


def require_current(db: Connection, path: str) -> None:
    """Refuse a store not at the current version, changing nothing: for a role that may use
    the tables but not alter them (a PostgreSQL database made by its owner)."""
    row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    if row is None or int(row[0]) != STORE_SCHEMA_VERSION:
        raise _other_version(path, "none" if row is None else row[0])


def _other_version(path: str, found: object) -> StoreError:
    return StoreError(
        f"{path} has store schema {found}, this flopgap reads {STORE_SCHEMA_VERSION}",
        hint="use the flopgap that wrote it, or start a new database",
    )


def _upgrade_3_to_4(tx: Connection) -> None:
    """Rebuild results without the UNIQUE job_id (SQLite cannot drop a constraint), each old
    result its job's only attempt, its verdict copied out of its document; add the jobs'
    invalid-retry columns (old jobs retry nothing)."""
    tx.execute(RESULTS_TABLE.format(name="results_v4"))
    tx.execute(
        "INSERT INTO results_v4 SELECT result_id, job_id, campaign_id, agent_id, device_id, "
        "model_sha256, status, error_kind, error, document_json, received_at, 1, 1, "
        "CASE WHEN document_json IS NULL THEN NULL "
        "ELSE json_extract(document_json, '$.valid') END, "
        "CASE WHEN document_json IS NULL THEN NULL "
        "ELSE json_extract(document_json, '$.invalid_reasons') END FROM results"
    )
    tx.execute("DROP TABLE results")
    tx.execute("ALTER TABLE results_v4 RENAME TO results")
    have = {row[1] for row in tx.execute("PRAGMA table_info(jobs)")}
    for column in ("retry_invalid", "invalid_attempts"):
        if column not in have:
            tx.execute(f"ALTER TABLE jobs ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
    tx.execute("UPDATE meta SET value='4' WHERE key='schema'")
