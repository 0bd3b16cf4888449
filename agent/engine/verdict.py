"""The validity verdict of a measurement, in the spirit of MLPerf's result checks.

A result that fails a check is still reported, marked invalid, with every reason spelled out
so the user knows what to fix (too few runs, noisy timings, a frequency change, throttling,
another process competing for the CPU). Soft concerns become warnings instead.

The system checks (frequency, throttling, foreign CPU, steal) are shared with the device
calibration (`judge_system`), so a calibration taken while another process competed is judged
by the same rules, and with the same words, as a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.stats import runs_needed

# Each claimed percentile and the confidence at which the sample maximum must bound it.
CLAIM_CONFIDENCE = 0.99
HARD_CLAIMS = (0.50, 0.90)  # the headline figures: invalid without enough runs
SOFT_CLAIMS = (0.95, 0.99)  # reported anyway, with a warning when under-sampled
FREQ_TOLERANCE = 0.05  # a core whose frequency moved by more than 5 % of its max


@dataclass(frozen=True)
class Limits:
    """Thresholds a valid result must stay within."""

    max_cv: float = 0.10
    max_foreign_cpu_cores: float = 0.25


@dataclass(frozen=True, kw_only=True)
class SystemObservations:
    """What the system did during a window: frequencies, throttling and other processes."""

    freq_min_mhz: dict[int, float] = field(default_factory=dict)
    freq_max_mhz: dict[int, float] = field(default_factory=dict)
    freq_available: bool = False
    throttle_events: int | None = None
    foreign_cpu_cores: float | None = None
    steal_fraction: float | None = None
    board_throttle: list[str] = field(default_factory=list)
    own_threads: int = 1
    cores: int | None = None


@dataclass(frozen=True, kw_only=True)
class Observations(SystemObservations):
    """What was seen during the steady-state window, beyond the latencies themselves."""

    stats: dict[str, Any]
    capped_before_minimum: bool = False


def judge(obs: Observations, limits: Limits) -> tuple[bool, list[str], list[str]]:
    """(valid, invalid_reasons, warnings) for one measurement."""
    reasons: list[str] = []
    warnings: list[str] = []
    _check_sample_size(obs.stats, reasons, warnings)
    if obs.capped_before_minimum:
        reasons.append(
            f"stopped by the --max-seconds cap after {obs.stats['n']} runs, before the "
            "minimum iterations; raise --max-seconds"
        )
    _check_spread(obs.stats, limits, reasons, warnings)
    _check_system(obs, limits, reasons, warnings)
    return not reasons, reasons, warnings


def judge_system(obs: SystemObservations, limits: Limits) -> tuple[bool, list[str], list[str]]:
    """(valid, invalid_reasons, warnings) from the system checks alone (a calibration has no
    latency sample to judge, but the same ways to be contaminated)."""
    reasons: list[str] = []
    warnings: list[str] = []
    _check_system(obs, limits, reasons, warnings)
    return not reasons, reasons, warnings


def _check_system(
    obs: SystemObservations, limits: Limits, reasons: list[str], warnings: list[str]
) -> None:
    _check_frequency(obs, reasons, warnings)
    if obs.throttle_events:
        reasons.append(f"CPU throttled during the window ({obs.throttle_events} events)")
    if obs.board_throttle:
        reasons.append(
            f"the board reported throttling during the run ({', '.join(obs.board_throttle)}); "
            "check the power supply and cooling"
        )
    _check_foreign(obs, limits, reasons, warnings)
    if obs.steal_fraction is not None and obs.steal_fraction > 0.05:
        warnings.append(f"the hypervisor stole {obs.steal_fraction:.0%} of CPU time")


def _check_foreign(
    obs: SystemObservations, limits: Limits, reasons: list[str], warnings: list[str]
) -> None:
    """Other processes' CPU is busy time minus this process's, all its threads included: the
    --concurrency callers and every intra-op thread are ours (``own_threads``), never foreign.
    Our own threads beyond the cores are no contention either, but they queue for cores, which
    the per-request latencies then include: that earns a warning, not an invalid result."""
    if obs.foreign_cpu_cores is not None and obs.foreign_cpu_cores > limits.max_foreign_cpu_cores:
        reasons.append(
            f"other processes used {obs.foreign_cpu_cores:.2f} CPU cores during the window "
            f"(limit {limits.max_foreign_cpu_cores:.2f}; our own {obs.own_threads} "
            f"thread{'s' if obs.own_threads != 1 else ''} not counted); stop them and rerun"
        )
    if obs.cores is not None and obs.own_threads > obs.cores:
        warnings.append(
            f"our own {obs.own_threads} threads (concurrency x intra-op threads) are more than "
            f"the {obs.cores} cores: requests wait for each other's threads; lower --threads"
        )


def _check_sample_size(stats: dict[str, Any], reasons: list[str], warnings: list[str]) -> None:
    n = int(stats["n"])
    for quantile in HARD_CLAIMS + SOFT_CLAIMS:
        needed = runs_needed(quantile, CLAIM_CONFIDENCE)
        if n >= needed:
            continue
        text = (
            f"p{round(quantile * 100)} needs {needed} runs at {CLAIM_CONFIDENCE:.0%} "
            f"confidence, have {n}"
        )
        (reasons if quantile in HARD_CLAIMS else warnings).append(text)
    if stats.get("median_ci95") is None:
        reasons.append(f"{n} runs are too few for a 95 % confidence interval of the median")


def _check_spread(
    stats: dict[str, Any], limits: Limits, reasons: list[str], warnings: list[str]
) -> None:
    """The bulk of the runs must agree (robust CV); rare outliers only earn a warning.

    A few slow runs (a page fault, a timer interrupt) inflate std/mean without moving the
    median; they are visible in p99 and max, so they do not void the median.
    """
    robust, cv = stats.get("robust_cv"), stats.get("cv")
    if robust is not None and robust > limits.max_cv:
        reasons.append(
            f"timings too noisy: robust CV {robust:.1%} exceeds {limits.max_cv:.0%}; close "
            "other work, pin threads, or raise --max-cv"
        )
    elif cv is not None and cv > limits.max_cv:
        warnings.append(
            f"outliers: CV {cv:.1%} exceeds {limits.max_cv:.0%} while the bulk is stable "
            f"(robust CV {robust:.1%}); see p99 and max"
        )


def _check_frequency(obs: SystemObservations, reasons: list[str], warnings: list[str]) -> None:
    if not obs.freq_available:
        warnings.append("CPU frequency is not exposed here (no cpufreq); stability not checked")
        return
    moved = [
        f"cpu{cpu} {obs.freq_min_mhz[cpu]:.0f}-{hi:.0f} MHz"
        for cpu, hi in obs.freq_max_mhz.items()
        if hi > 0 and (hi - obs.freq_min_mhz[cpu]) / hi > FREQ_TOLERANCE
    ]
    if moved:
        shown = ", ".join(moved[:4]) + (" ..." if len(moved) > 4 else "")
        reasons.append(
            f"CPU frequency changed during the window ({shown}); set the governor to "
            "'performance' (cpupower frequency-set -g performance)"
        )
