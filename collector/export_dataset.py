"""Hive-partitioned Parquet (`key=value/` folders) that DuckDB and Spark read as they are.

Two tables, each its own dataset root so that one glob reads one schema (a glob over both
fails in DuckDB with "schema mismatch", and Spark refuses a root whose folders are not all
`key=value`): ``DIR/results/`` holds the long rows of collector.export.rows, ``DIR/latencies/``
one row per raw steady-state latency, keyed by result id. Partition values are percent-encoded
as Hive does, so a `/` or `=` in a campaign name never makes a folder. Each file is named from
a hash of its campaign id and partition values and is written to a temporary name then renamed:
re-exporting a campaign overwrites its files, exporting another one adds files beside them.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from collector.store import Store
from shared.errors import UsageError

PARTITION_KEYS = ("campaign", "device", "date")  # none is a CSV column: no clash on read
DEFAULT_PARTITION = PARTITION_KEYS

_INT = {"logical_cores", "threads", "inter_threads", "warmup_n", "n", "schema_version", "macs",
        "flops", "flops_2mac", "params", "bytes", "unique_bytes", "repeat", "attempt",
        "job_result", "power_mode_id", "dla", "concurrency", "sessions", "cold_runs"}  # fmt: skip
_STR = {"result_id", "job_id", "status", "error_kind", "error", "agent_id", "device_id",
        "model_name", "model_sha256", "hostname", "board", "cpu_model", "arch", "onnxruntime",
        "provider", "opt_level", "input_shapes", "invalid_reasons", "governor", "started_at",
        "finished_at", "flops_error", "campaign_id", "power_source", "power_mode", "l4t",
        "jetpack", "jetson_clocks", "gpu", "pi_firmware", "throttled", "isa", "power_supply",
        "policy_governors", "providers", "provider_options", "session_config",
        "page_cache"}  # fmt: skip


def _type(column: str) -> pa.DataType:
    if column in _INT:
        return pa.int64()
    if column in _STR:
        return pa.string()
    return pa.bool_() if column == "valid" else pa.float64()


def results_schema(columns: Sequence[str]) -> pa.Schema:
    """One schema for every file, whatever a partition's values are: a column all empty in one
    campaign (no power sensor) must not become a null-typed column that clashes on read."""
    return pa.schema([(c, _type(c)) for c in columns])


LATENCIES_SCHEMA = pa.schema(
    [("result_id", pa.string()), ("index", pa.int64()), ("latency_ms", pa.float64())]
)


class Written(NamedTuple):
    """What an export wrote: result rows, latency rows, and files."""

    results: int
    latencies: int
    files: int


def parse_partition(text: str) -> tuple[str, ...]:
    """`--partition campaign,device,date` as keys in folder order; UsageError for others."""
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in keys if k not in PARTITION_KEYS]
    if unknown or not keys or len(set(keys)) != len(keys):
        raise UsageError(
            f"--partition {text!r}: "
            + ("unknown key " + ", ".join(unknown) if unknown else "need distinct keys"),
            hint=f"use one or more of {', '.join(PARTITION_KEYS)}, comma-separated, each once",
        )
    return keys


def write_dataset(
    store: Store,
    folder: Path,
    records: Iterable[dict[str, Any]],
    columns: Sequence[str],
    campaign_id: str | None = None,
    partition: Sequence[str] = DEFAULT_PARTITION,
    latencies: bool = False,
) -> Written:
    """Write `records` (collector.export.rows of `campaign_id`, None: all, keyed by `columns`;
    passed in, as collector.export imports this module) and, with `latencies`, every raw
    latency under `folder`, one file per campaign and partition."""
    schema = results_schema(columns)
    names = {c.campaign_id: c.name or c.campaign_id for c in store.campaigns()}
    groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
    listed = list(records)  # read first: a live collector may store more meanwhile, and the
    # stored rows read next then hold every listed result (and maybe newer ones, left out)
    stored = {r.result_id: r for r in store.result_rows(campaign_id)}
    for row in listed:
        received = stored[row["result_id"]]
        known = {
            "campaign": names.get(received.campaign_id, received.campaign_id),
            "device": received.agent_id,
            "date": datetime.fromtimestamp(received.received_at, timezone.utc).strftime("%Y-%m-%d"),
        }  # the date a result was received, in UTC: the same folder whichever zone exports
        groups[(received.campaign_id, tuple(known[k] for k in partition))].append(row)
    written = Written(0, 0, 0)
    for (cid, values), group in sorted(groups.items()):
        name = hashlib.sha256("\0".join((cid, *values)).encode()).hexdigest()[:16]
        sub = Path(*(f"{k}={quote(v, safe='')}" for k, v in zip(partition, values, strict=True)))
        table = pa.Table.from_pylist(group, schema=schema)
        _write(table, folder / "results" / sub / f"results-{name}.parquet")
        n_lat = 0
        if latencies:
            table = _latencies_table(store, [r["result_id"] for r in group if r["n"] is not None])
            _write(table, folder / "latencies" / sub / f"latencies-{name}.parquet")
            n_lat = table.num_rows
        written = Written(written.results + len(group), written.latencies + n_lat,
                          written.files + 1 + int(latencies))  # fmt: skip
    return written


def _latencies_table(store: Store, result_ids: list[str]) -> pa.Table:
    """One row per latency, built from whole arrays: a campaign holds millions of them."""
    arrays = [store.latencies(rid) for rid in result_ids]
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    ids = pa.DictionaryArray.from_arrays(
        pa.array(np.repeat(np.arange(len(arrays), dtype=np.int32), sizes)),
        pa.array(result_ids, type=pa.string()),
    ).cast(pa.string())
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    index = np.arange(int(sizes.sum()), dtype=np.int64) - starts
    ns = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
    ms = ns.astype(np.float64) / 1e6
    return pa.Table.from_arrays([ids, pa.array(index), pa.array(ms)], schema=LATENCIES_SCHEMA)


def _write(table: pa.Table, path: Path) -> None:
    """Write then rename, so a reader (or a crash) never meets half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
