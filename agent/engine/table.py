"""The human-readable form of a result document (what `bench` prints without --json)."""

from __future__ import annotations

from typing import Any


def _f(value: float | None, fmt: str = ".3f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def _throughput(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """Inferences/s, with how many threads and sessions made it (latencies are per request)."""
    tp = doc.get("throughput")
    if not tp:
        return []
    return [("throughput", f"{_f(tp['inferences_per_s'], '.1f')} inferences/s | concurrency "
             f"{tp['concurrency']} on {tp['sessions']} session(s), {tp['max_in_flight']} in "
             "flight at most")]  # fmt: skip


def _cold(doc: dict[str, Any]) -> list[tuple[str, str]]:
    cold = doc.get("cold_starts")
    if not cold:
        return []
    load, first = cold["load_ms"], cold["first_inference_ms"]
    note = f" ({cold['page_cache_note']})" if cold["page_cache_note"] else ""
    return [
        ("cold starts", f"{cold['runs']} fresh processes, page cache {cold['page_cache']}{note}"),
        ("  load (ms)", f"p50 {load['p50']:.2f}  p90 {load['p90']:.2f}  max {load['max']:.2f}"),
        ("  first (ms)", f"p50 {first['p50']:.3f}  p90 {first['p90']:.3f}  max {first['max']:.3f}"),
    ]


def render(doc: dict[str, Any]) -> str:
    """A compact two-column table of one result."""
    m, dev, s, lat, mem, sysinfo = (
        doc["model"],
        doc["device"],
        doc["settings"],
        doc["latency_ms"],
        doc["memory"],
        doc["system"],
    )
    ci = lat["median_ci95"]
    ci_text = f" [95% CI {ci[0]:.3f}, {ci[1]:.3f}]" if ci else " [CI n/a]"
    freq = sysinfo["cpu_freq_mhz"]
    freq_text = (
        f"{min(freq['min'].values()):.0f}-{max(freq['max'].values()):.0f} MHz" if freq else "n/a"
    )
    temps = sysinfo["temperatures_max_c"]
    rows = [
        ("model", f"{m['name']}  sha256 {m['sha256'][:12]}  {m['size_bytes'] / 1e6:.2f} MB"),
        (
            "device",
            f"{dev['hostname']} | {dev['cpu_model']} | {dev['arch']} | "
            f"{dev['logical_cores']} cpus | onnxruntime {dev['onnxruntime']}",
        ),
        (
            "settings",
            f"{s['provider']} | threads {s['threads']} | inter {s['inter_threads']} "
            f"| opt {s['opt_level']}",
        ),
        ("load", f"{doc['load_ms']:.2f} ms"),
        ("first inference", f"{doc['first_inference_ms']:.3f} ms"),
        ("warm-up", f"{doc['warmup']['n']} runs in {doc['warmup']['ms']:.1f} ms"),
        ("steady state", f"{lat['n']} runs in {doc['steady_seconds']:.2f} s"),
        *_throughput(doc),
        ("latency (ms)", f"p50 {lat['p50']:.3f}{ci_text}"),
        ("", f"p90 {lat['p90']:.3f}  p95 {lat['p95']:.3f}  p99 {lat['p99']:.3f}"),
        (
            "",
            f"mean {lat['mean']:.3f}  std {_f(lat['std'])}  cv {_f(lat['cv'], '.1%')}  "
            f"min {lat['min']:.3f}  max {lat['max']:.3f}",
        ),
        (
            "memory (MiB)",
            f"before {mem['rss_before_mb']:.1f} | after load "
            f"{mem['rss_after_load_mb']:.1f} | peak {mem['peak_rss_mb']:.1f} | "
            f"hwm {_f(mem['hwm_mb'], '.1f')}",
        ),
        (
            "cpu",
            f"freq {freq_text} | governor {', '.join(sysinfo['governors'] or ['n/a'])} | "
            f"other processes {_f(sysinfo['foreign_cpu_cores'], '.2f')} cores",
        ),
        ("temperature", ", ".join(f"{k} {v:.0f}C" for k, v in temps.items()) if temps else "n/a"),
        (
            "power",
            "n/a: " + doc["power_unavailable_reason"]
            if doc["power"] is None
            else f"{doc['power'].get('avg_w', 'n/a')} W",
        ),
        *_cold(doc),
        ("verdict", "VALID" if doc["valid"] else "INVALID"),
    ]
    rows += [("  reason", r) for r in doc["invalid_reasons"]]
    rows += [("  warning", w) for w in doc["warnings"]]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
