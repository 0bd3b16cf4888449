"""The store's promises over jobs and results, as queries that find what breaks them.

Why queries and not only PRAGMA integrity_check: SQLite's check proves the file is sound,
not that a job ended with exactly one result; PostgreSQL has no such check at all. These rules
are what "nothing lost, nothing doubled" means in rows, written in SQL both backends run, so
the PostgreSQL store's integrity check, the failover bench and the tests read the same rules.
"""

from __future__ import annotations

from typing import Any, Protocol

RULES: dict[str, str] = {
    "a result whose job does not exist": (
        "SELECT r.result_id FROM results r LEFT JOIN jobs j ON j.job_id = r.job_id "
        "WHERE j.job_id IS NULL"
    ),
    "a job with more than one job result": (
        "SELECT job_id FROM results WHERE job_result = 1 GROUP BY job_id HAVING COUNT(*) > 1"
    ),
    "a done job without exactly one job result": (
        "SELECT j.job_id FROM jobs j WHERE j.state = 'done' AND (SELECT COUNT(*) FROM results r "
        "WHERE r.job_id = j.job_id AND r.job_result = 1) <> 1"
    ),
    "a queued or running job that already has its job result": (
        "SELECT j.job_id FROM jobs j WHERE j.state IN ('queued', 'running') AND EXISTS "
        "(SELECT 1 FROM results r WHERE r.job_id = j.job_id AND r.job_result = 1)"
    ),
    "an ok result without latencies": (
        "SELECT r.result_id FROM results r LEFT JOIN latencies l ON l.result_id = r.result_id "
        "WHERE r.status = 'ok' AND l.result_id IS NULL"
    ),
    "latencies of a result that is missing or not ok": (
        "SELECT l.result_id FROM latencies l LEFT JOIN results r ON r.result_id = l.result_id "
        "WHERE r.result_id IS NULL OR r.status <> 'ok'"
    ),
    "a job that is neither queued, running, done nor failed": (
        "SELECT job_id FROM jobs WHERE state NOT IN ('queued', 'running', 'done', 'failed')"
    ),
}

# Only once every campaign has ended (a bench or test that waited for it): a job still open.
UNFINISHED = "SELECT job_id FROM jobs WHERE state NOT IN ('done', 'failed')"


class _Executes(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


def problems(db: _Executes, finished: bool = False, shown: int = 5) -> list[str]:
    """One line per broken rule naming up to `shown` offending ids (empty: clean); with
    `finished`, a job left open is one too."""
    rules = dict(RULES)
    if finished:
        rules["a job not finished"] = UNFINISHED
    found = []
    for rule, sql in rules.items():
        rows = [str(row[0])[:40] for row in db.execute(f"{sql} LIMIT {int(shown)}").fetchall()]
        if rows:
            found.append(f"{rule}: {rows}")
    return found
