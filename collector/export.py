"""CSV export: one row per result under stable, literal column headers.

Columns never change meaning; new ones are only appended. Units are in the header names.
Error results (a model that failed on a device) are rows too, with status "error", so a
comparison shows what could not run where.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

from collector.costs import cost_columns, shapes_key
from collector.flops import CONVENTION
from collector.store import Store
from collector.store.location import may_exist
from shared import session_specs
from shared.errors import UsageError
from shared.verdicts import summary, tally


def _lat(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["latency_ms"][key]


def _mem(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["memory"][key]


def _ci(i: int) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["latency_ms"]["median_ci95"][i] if d["latency_ms"]["median_ci95"] else None


def _freq(which: str) -> Callable[[dict[str, Any]], Any]:
    def get(d: dict[str, Any]) -> Any:
        freq = d["system"].get("cpu_freq_mhz")
        return (min if which == "min" else max)(freq[which].values()) if freq else None

    return get


def _providers(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The provider list a result ran with; results before provider lists name one provider."""
    return d["settings"].get("providers") or [{"name": d["settings"]["provider"], "options": {}}]


def _provider_options(d: dict[str, Any]) -> str:
    given = {p["name"]: p["options"] for p in _providers(d) if p["options"]}
    return session_specs.compact(given) if given else ""


def _section(d: dict[str, Any], key: str) -> dict[str, Any]:
    """An optional section (``throughput``, ``cold_starts``): absent from older results, and
    not in the declared schema (shared.result), so anything but an object reads as absent."""
    value = d.get(key)
    return value if isinstance(value, dict) else {}


def _cold(key: str, stat: str) -> Callable[[dict[str, Any]], Any]:
    def get(d: dict[str, Any]) -> Any:
        times = _section(d, "cold_starts").get(key)
        return times.get(stat) if isinstance(times, dict) else None

    return get


def _temp_max(d: dict[str, Any]) -> Any:
    temps = d["system"].get("temperatures_max_c")
    return max(temps.values()) if temps else None


# Columns taken from the result document, in order: header -> getter.
DOCUMENT_COLUMNS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "hostname": lambda d: d["device"]["hostname"],
    "board": lambda d: d["device"].get("board"),
    "cpu_model": lambda d: d["device"]["cpu_model"],
    "arch": lambda d: d["device"]["arch"],
    "logical_cores": lambda d: d["device"]["logical_cores"],
    "onnxruntime": lambda d: d["device"].get("onnxruntime"),
    "provider": lambda d: d["settings"]["provider"],
    "threads": lambda d: d["settings"]["threads"],
    "inter_threads": lambda d: d["settings"]["inter_threads"],
    "opt_level": lambda d: d["settings"]["opt_level"],
    "input_shapes": lambda d: json.dumps({k: v["shape"] for k, v in d["model"]["inputs"].items()}),
    "load_ms": lambda d: d["load_ms"],
    "first_inference_ms": lambda d: d["first_inference_ms"],
    "warmup_n": lambda d: d["warmup"]["n"],
    "warmup_ms": lambda d: d["warmup"]["ms"],
    "n": _lat("n"),
    "p50_ms": _lat("p50"),
    "p90_ms": _lat("p90"),
    "p95_ms": _lat("p95"),
    "p99_ms": _lat("p99"),
    "mean_ms": _lat("mean"),
    "std_ms": _lat("std"),
    "cv": _lat("cv"),
    "min_ms": _lat("min"),
    "max_ms": _lat("max"),
    "median_ci95_lo_ms": _ci(0),
    "median_ci95_hi_ms": _ci(1),
    "rss_before_mb": _mem("rss_before_mb"),
    "rss_after_load_mb": _mem("rss_after_load_mb"),
    "peak_rss_mb": _mem("peak_rss_mb"),
    "hwm_mb": _mem("hwm_mb"),
    "valid": lambda d: d["valid"],
    "invalid_reasons": lambda d: "; ".join(d["invalid_reasons"]),
    "cpu_freq_min_mhz": _freq("min"),
    "cpu_freq_max_mhz": _freq("max"),
    "governor": lambda d: ",".join(d["system"].get("governors") or []),
    "temp_max_c": _temp_max,
    "foreign_cpu_cores": lambda d: d["system"].get("foreign_cpu_cores"),
    "power_avg_w": lambda d: (d["power"] or {}).get("avg_w"),
    "started_at": lambda d: d.get("started_at"),
    "finished_at": lambda d: d.get("finished_at"),
    "schema_version": lambda d: d["schema_version"],
    "providers": lambda d: ",".join(p["name"] for p in _providers(d)),
    "provider_options": _provider_options,
    "session_config": lambda d: session_specs.pairs_text(d["settings"].get("session_config") or {}),
    "concurrency": lambda d: d["settings"].get("concurrency", 1),
    "sessions": lambda d: d["settings"].get("sessions", 1),
    "inferences_per_s": lambda d: _section(d, "throughput").get("inferences_per_s"),
    "cold_runs": lambda d: _section(d, "cold_starts").get("runs"),
    "cold_load_p50_ms": _cold("load_ms", "p50"),
    "cold_load_p90_ms": _cold("load_ms", "p90"),
    "cold_load_max_ms": _cold("load_ms", "max"),
    "cold_first_inference_p50_ms": _cold("first_inference_ms", "p50"),
    "cold_first_inference_p90_ms": _cold("first_inference_ms", "p90"),
    "cold_first_inference_max_ms": _cold("first_inference_ms", "max"),
    "page_cache": lambda d: _section(d, "cold_starts").get("page_cache"),
}


def _listed(values: Any) -> str | None:
    """A list field as one cell, comma-joined ("none" for an empty list: known to be empty);
    None (the board lacks the field) stays an empty cell."""
    if values is None:
        return None
    return ",".join(str(v) for v in values) or "none"


def _throttled(device: dict[str, Any]) -> str | None:
    """The raw flags and their names: "0x50005 now=under_voltage|throttled boot=..."."""
    raw = device.get("throttled")
    if raw is None:
        return None
    parts = [str(raw)]
    for label, key in (("now", "throttled_now"), ("boot", "throttled_since_boot")):
        if device.get(key):
            parts.append(f"{label}=" + "|".join(device[key]))
    return " ".join(parts)


# Columns of the device descriptor's system description (agent.board.facts): device -> value.
# They fill error rows too, from the agent's stored descriptor.
DESCRIPTOR_COLUMNS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "power_mode": lambda dev: dev.get("power_mode"),
    "power_mode_id": lambda dev: dev.get("power_mode_id"),
    "l4t": lambda dev: dev.get("l4t"),
    "jetpack": lambda dev: dev.get("jetpack"),
    "jetson_clocks": lambda dev: dev.get("jetson_clocks"),
    "gpu": lambda dev: dev.get("gpu"),
    "dla": lambda dev: dev.get("dla"),
    "pi_firmware": lambda dev: dev.get("pi_firmware"),
    "throttled": _throttled,
    "isa": lambda dev: _listed(dev.get("isa")),
    "power_supply": lambda dev: dev.get("power_supply"),
    "policy_governors": lambda dev: dev.get("governors"),
}


def _of_device(getter: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    return lambda d: getter(d["device"])


DOCUMENT_COLUMNS.update({name: _of_device(get) for name, get in DESCRIPTOR_COLUMNS.items()})

# Columns copied from the stored result row (collector.store.results.result_rows).
STORE_COLUMNS = ("result_id", "job_id", "status", "error_kind", "error", "agent_id", "device_id",
                 "model_name", "model_sha256", "campaign_id", "repeat", "attempt",
                 "job_result")  # fmt: skip
POWER_COLUMNS = ("power_source", "energy_j_per_inference", "net_energy_j_per_inference",
                 "idle_w", "j_per_gflop")  # fmt: skip

# The CSV header, in file order. It only grows at its end: readers index columns by position
# as well as by name, so a column is never renamed, moved or inserted (tests/data/csv/columns.txt
# pins it). Each name is filled by exactly one of STORE_COLUMNS, DOCUMENT_COLUMNS,
# COST_COLUMNS (collector.costs) and POWER_COLUMNS.
COLUMNS: tuple[str, ...] = (
    # the stored row
    "result_id", "job_id", "status", "error_kind", "error", "agent_id", "device_id", "model_name",
    "model_sha256",
    # the result document
    "hostname", "board", "cpu_model", "arch", "logical_cores", "onnxruntime", "provider",
    "threads", "inter_threads", "opt_level", "input_shapes", "load_ms", "first_inference_ms",
    "warmup_n", "warmup_ms", "n", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms",
    "cv", "min_ms", "max_ms", "median_ci95_lo_ms", "median_ci95_hi_ms", "rss_before_mb",
    "rss_after_load_mb", "peak_rss_mb", "hwm_mb", "valid", "invalid_reasons", "cpu_freq_min_mhz",
    "cpu_freq_max_mhz", "governor", "temp_max_c", "foreign_cpu_cores", "power_avg_w", "started_at",
    "schema_version",
    # the FLOPs count (collector.costs)
    "macs", "flops", "flops_2mac", "params", "bytes", "intensity", "achieved_gflops",
    "flops_error",
    # the stored row, added with campaigns
    "campaign_id", "repeat",
    # energy (power_columns)
    "power_source", "energy_j_per_inference", "net_energy_j_per_inference", "idle_w",
    "j_per_gflop",
    # when the measurement ended; which attempt of its job a result is, and whether it is the
    # job's result (invalid attempts measured again are exported too)
    "finished_at", "attempt", "job_result",
    # bytes of distinct tensors (weights + activations): the working set the cache-aware
    # roofline judges a model by (collector.costs)
    "unique_bytes",
    # the system description (DESCRIPTOR_COLUMNS), from the agent's device descriptor
    "power_mode", "power_mode_id", "l4t", "jetpack", "jetson_clocks", "gpu", "dla",
    "pi_firmware", "throttled", "isa", "power_supply", "policy_governors",
    # how the session was built (provider list, their options as JSON, session config entries
    # as k=v;k=v), the throughput run and its rate, and the cold starts with their page cache
    "providers", "provider_options", "session_config", "concurrency", "sessions",
    "inferences_per_s", "cold_runs", "cold_load_p50_ms", "cold_load_p90_ms", "cold_load_max_ms",
    "cold_first_inference_p50_ms", "cold_first_inference_p90_ms", "cold_first_inference_max_ms",
    "page_cache",
    # new columns go here, and only here
)  # fmt: skip

# Units of the columns whose names do not carry them; written to the sidecar.
UNITS = {
    "macs": "multiply-accumulates per inference",
    "unique_bytes": "bytes of distinct tensors (weights + activations) per inference",
    "inferences_per_s": "requests completed per second over the steady window, all threads",
    "concurrency": "threads calling run at once (latency figures are per request)",
    "cold_runs": "fresh processes that each loaded the model and ran it once",
    "flops": "floating-point operations per inference (convention below)",
    "flops_2mac": "2 x macs (what Ultralytics reports as FLOPs)",
    "params": "elements of floating-point initializers",
    "bytes": "bytes read + written per inference, summed over nodes",
    "intensity": "flops / bytes (FLOP/byte)",
    "achieved_gflops": "flops / p50 latency, in 1e9 FLOP/s",
    "cv": "std / mean of steady-state latency",
    "energy_j_per_inference": "J per inference over the steady-state window, gross",
    "net_energy_j_per_inference": "J per inference, net of the idle baseline power",
    "idle_w": "W before the model loaded",
    "j_per_gflop": "energy_j_per_inference / (flops / 1e9)",
    "power_mode": "Jetson nvpmodel mode name (power_mode_id: its id)",
    "jetson_clocks": "on / off / partial: Jetson clocks pinned (min == max frequency)",
    "dla": "enabled DLA cores",
    "throttled": "vcgencmd get_throttled: raw value, flags now= and since boot= ('|'-joined)",
    "isa": "ISA extensions ORT dispatches on, comma-joined (none: the CPU has none of them)",
    "policy_governors": "cpufreq governor:CPUs per policy group, ';'-joined",
}


def _plain(value: Any) -> Any:
    """A state enum as its word, so every writer (CSV, Parquet) sees a plain str."""
    return value.value if isinstance(value, Enum) else value


def rows(store: Store, campaign_id: str | None = None) -> Iterable[dict[str, Any]]:
    """One flat dict per stored result, keyed by COLUMNS."""
    for r in store.result_rows(campaign_id):
        row: dict[str, Any] = {c: _plain(getattr(r, c)) for c in STORE_COLUMNS}
        doc = r.document
        for column, getter in DOCUMENT_COLUMNS.items():
            row[column] = getter(doc) if doc is not None else None
        if doc is not None:
            row.update(cost_columns(store, r.model_sha256, shapes_key(doc), row["p50_ms"]))
            row.update(power_columns(doc.get("power"), row.get("flops")))
        if doc is None and r.descriptor_json:
            device = json.loads(r.descriptor_json)
            row.update(
                hostname=device.get("hostname"),
                cpu_model=device.get("cpu_model"),
                arch=device.get("arch"),
                board=device.get("board"),
            )
            row.update({name: get(device) for name, get in DESCRIPTOR_COLUMNS.items()})
        yield row


def power_columns(power: dict[str, Any] | None, flops: int | None) -> dict[str, Any]:
    """Energy per inference (gross and net of idle) and per GFLOP; empty without a sensor."""
    if not power:
        return dict.fromkeys(POWER_COLUMNS)
    per_inference = power.get("energy_j_per_inference")
    return {
        "power_source": power.get("source"),
        "energy_j_per_inference": per_inference,
        "net_energy_j_per_inference": power.get("net_energy_j_per_inference"),
        "idle_w": power.get("idle_w"),
        "j_per_gflop": per_inference / (flops / 1e9) if per_inference and flops else None,
    }


def write_csv(store: Store, path: Path, campaign_id: str | None = None) -> int:
    """Write every result to `path`, and `path`.meta.json naming units and the FLOPs
    convention (a comment line inside the CSV would break readers); returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows(store, campaign_id):
            writer.writerow(row)
            count += 1
    meta = {"columns": list(COLUMNS), "units": UNITS, "flops_convention": CONVENTION, "rows": count}
    path.with_name(path.name + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return count


def export(
    db: Path,
    campaign: str | None,
    csv_path: Path | None,
    wide: bool,
    parquet: Path | None,
    dataset: DatasetOptions | None = None,
) -> int:
    """`flopgap export`: the long CSV, the wide matrices, Parquet, or a partitioned dataset."""
    if not may_exist(db):
        raise UsageError(f"no database at {db}", hint="pass the --db that `flopgap serve` used")
    if csv_path is None and parquet is None and dataset is None:
        raise UsageError(
            "nothing to write",
            hint="pass --csv FILE, --parquet FILE and/or --parquet-dataset DIR",
        )
    store = Store(db)
    try:
        campaign_id = _campaign_id(store, campaign)
        if csv_path is not None and not wide:
            count = write_csv(store, csv_path, campaign_id)
            print(f"wrote {count} results to {csv_path}: {validity(store, campaign_id, count)}")
        if csv_path is not None and wide:
            for path in write_wide(store, csv_path, campaign_id):
                if path.suffix == ".csv":
                    print(f"wrote {path} (units in {path.name}.meta.json)")
        if parquet is not None:
            frame = _frame(store, campaign_id)
            parquet.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(parquet, index=False)
            print(f"wrote {len(frame)} results to {parquet}")
        if dataset is not None:
            _write_dataset(store, dataset, campaign_id)
    finally:
        store.close()
    return 0


class DatasetOptions(NamedTuple):
    """`--parquet-dataset DIR`, `--partition` and `--latencies` (collector.export_dataset)."""

    folder: Path
    partition: tuple[str, ...]
    latencies: bool


def _write_dataset(store: Store, options: DatasetOptions, campaign_id: str | None) -> None:
    from collector.export_dataset import write_dataset

    done = write_dataset(store, options.folder, rows(store, campaign_id), COLUMNS, campaign_id,
                         options.partition, options.latencies)  # fmt: skip
    extra = f" and {done.latencies} latencies" if options.latencies else ""
    print(f"wrote {done.results} results{extra} in {done.files} files under {options.folder}")


def validity(store: Store, campaign_id: str | None, rows_written: int) -> str:
    """What the exported results say about themselves: each job's result counted as valid,
    invalid (with the commonest reasons) or failed, and the invalid attempts measured again."""
    t = tally(store.verdicts(campaign_id))
    line = summary(t["valid"], t["invalid"], t["failed"], t["invalid_reasons"])
    redone = rows_written - (t["valid"] + t["invalid"] + t["failed"])
    return line + (f"; {redone} invalid attempt(s) measured again" if redone > 0 else "")


def _campaign_id(store: Store, campaign: str | None) -> str | None:
    """The id of the campaign `campaign` names (name, id or unique id prefix), after checking
    that the export would select at least one result: an empty file that exits 0 reads as
    "nothing went wrong" when the name was wrong or nothing has run yet."""
    if campaign is None:
        if store.result_count() == 0:
            raise UsageError(
                "the database holds no results yet",
                hint="run a campaign first (`flopgap campaign run`), or pass the --db "
                "that `flopgap serve` used",
            )
        return None
    row = store.resolve_campaign(campaign)
    if store.result_count(row.campaign_id) == 0:
        jobs = Counter(job.state.value for job in store.jobs(campaign_id=row.campaign_id))
        what = ", ".join(f"{n} {state}" for state, n in sorted(jobs.items())) or "no jobs"
        raise UsageError(
            f"campaign {row.name} ({row.campaign_id[:8]}) has no results yet "
            f"({row.state.value}: {what})",
            hint="wait for its jobs (`flopgap status`) or check that an agent matches it",
        )
    return str(row.campaign_id)


def _frame(store: Store, campaign_id: str | None) -> Any:
    import pandas as pd

    return pd.DataFrame(list(rows(store, campaign_id)), columns=list(COLUMNS))


def write_wide(store: Store, path: Path, campaign_id: str | None) -> list[Path]:
    """Model (x settings) by device matrices of median p50 latency and achieved GFLOP/s, and
    the matrix of each cell's validity, each with a `.meta.json` (collector.export_wide)."""
    from collector.export_wide import write_matrices

    return write_matrices(_frame(store, campaign_id), path)
