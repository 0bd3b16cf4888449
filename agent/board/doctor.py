"""`flopgap-agent doctor`: is this board ready to measure, and if not, what to do.

Each check says ok, warning or fail, what it saw, and the command that fixes it. Everything is
read under a filesystem root (default "/"; a captured tree with --sysfs-root, whose commands
are replayed from `<root>/commands/` and never run). Only a fail makes the board not ready:
a warning (no power sensor, a governor other than `performance`, an unknown clock) still
gives valid latency results, with less in them.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import zmq
from zmq.utils.monitor import recv_monitor_message

from agent.board.facts.registry import FACTS, describe_facts
from agent.probes import cpufreq, thermal
from agent.probes.commands import Command, CommandRunner, runner_for
from agent.probes.pi_pmic import GET_THROTTLED, parse_throttled
from agent.probes.registry import detect
from agent.probes.sysfs import read_text, under
from shared import protocol
from shared.errors import FlopgapError
from shared.keys import PeerKeys
from shared.transport import configure_client, require_safe

OK, WARNING, FAIL = "ok", "warning", "fail"
MIN_FREE_DISK_MB = 500  # a few zoo-sized models plus the spool
MIN_FREE_MEMORY_MB = 256
TIMEDATECTL = Command("timedatectl_ntp", ("timedatectl", "show", "-p", "NTPSynchronized",
                                          "--value"))  # fmt: skip
CHRONYC = Command("chronyc_tracking", ("chronyc", "tracking"))
GOVERNOR_FIX = (
    "echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor "
    "(until reboot; or sudo cpupower frequency-set -g performance)"
)
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


@dataclass(frozen=True)
class Check:
    """One line of the report: its name, ok/warning/fail, what was seen, and what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""


def check_runtime() -> Check:
    """onnxruntime's version and execution providers."""
    import onnxruntime as ort

    providers = ", ".join(ort.get_available_providers())
    return Check("onnxruntime", OK, f"{ort.__version__}; providers: {providers}")


def check_power(root: Path, runner: CommandRunner) -> Check:
    """Power sources found, and the unreadable ones with the command that grants access."""
    found = detect(root, runner)
    unusable = "; ".join(f"{u.source}: {u.reason}" for u in found.unusable)
    if found.sources:
        names = ", ".join(s.name for s in found.sources)
        status = WARNING if found.unusable else OK
        return Check(
            "power", status, f"sources: {names}", f"unusable: {unusable}" if unusable else ""
        )
    if found.unusable:
        return Check("power", WARNING, "no usable power source; energy is not measured", unusable)
    return Check(
        "power",
        WARNING,
        "no power sensor on this machine; energy is not measured",
        "add a meter (POWER.md: an INA219/INA226 HAT on a Pi 4) if energy matters",
    )


def check_sensors(root: Path) -> Check:
    """Thermal zones and cpufreq frequencies (the validity verdict needs them)."""
    temps = thermal.temperatures_c(root)
    freqs = cpufreq.frequencies_mhz(cpufreq.cpu_dirs(root))
    seen = []
    if temps:
        seen.append("temperatures " + ", ".join(f"{k} {v:.1f} °C" for k, v in temps.items()))
    if freqs:
        seen.append(f"cpufreq on {len(freqs)} CPUs ({min(freqs.values()):.0f}-"
                    f"{max(freqs.values()):.0f} MHz)")  # fmt: skip
    if temps and freqs:
        return Check("sensors", OK, "; ".join(seen))
    missing = [n for n, v in (("thermal zones", temps), ("cpufreq", freqs)) if not v]
    return Check(
        "sensors",
        WARNING,
        "; ".join([*seen, "missing: " + ", ".join(missing)]),
        "results will say these were not monitored (a VM exposes neither)",
    )


def check_governor(root: Path) -> Check:
    """Every CPU on the `performance` governor, so frequency does not move under a timing."""
    found = cpufreq.governors(cpufreq.cpu_dirs(root))
    if found is None:
        return Check("governor", WARNING, "no cpufreq governor exposed", "none, on a VM")
    if found == ["performance"]:
        return Check("governor", OK, "performance")
    return Check("governor", WARNING, f"governor {', '.join(found)}, not performance", GOVERNOR_FIX)


def check_throttling(root: Path, runner: CommandRunner) -> Check:
    """Raspberry Pi throttle flags now (fail) and since boot (warning); elsewhere counters."""
    out = runner.run(GET_THROTTLED)
    if out.missing:
        count = cpufreq.throttle_count(cpufreq.cpu_dirs(root))
        seen = f"{count} thermal-throttle events since boot" if count else "no throttle flags"
        status = WARNING if count else OK
        return Check("throttling", status, seen, "check cooling" if count else "")
    flags = parse_throttled(out.text) if out.text else None
    if flags is None:
        return Check("throttling", WARNING, f"vcgencmd get_throttled: {out.error}",
                     "sudo usermod -aG video $USER, then log in again")  # fmt: skip
    fix = "use the official 27 W (Pi 5) / 15 W (Pi 4) supply and a cooler; then reboot"
    if flags["now"]:
        return Check("throttling", FAIL, f"throttled now ({flags['raw']}): "
                     f"{', '.join(flags['now'])}", fix)  # fmt: skip
    if flags["since_boot"]:
        return Check("throttling", WARNING, f"throttled since boot ({flags['raw']}): "
                     f"{', '.join(flags['since_boot'])}", fix)  # fmt: skip
    return Check("throttling", OK, f"none ({flags['raw']})")


def _meminfo_available_mb(root: Path) -> float | None:
    text = read_text(under(root, "/proc/meminfo"))
    for line in (text or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return None


def check_resources(root: Path, cache: Path) -> list[Check]:
    """Free memory (under the root's /proc/meminfo, else psutil) and free disk for the cache."""
    if Path(root).resolve() == Path("/"):
        memory_mb: float | None = psutil.virtual_memory().available / 2**20
    else:
        memory_mb = _meminfo_available_mb(root)
    if memory_mb is None:
        mem = Check("memory", WARNING, "available memory unknown")
    elif memory_mb < MIN_FREE_MEMORY_MB:
        mem = Check("memory", WARNING, f"{memory_mb:.0f} MB available",
                    "stop other programs; large models may not load")  # fmt: skip
    else:
        mem = Check("memory", OK, f"{memory_mb:.0f} MB available")
    where = cache
    while not where.exists() and where != where.parent:
        where = where.parent
    free_mb = shutil.disk_usage(where).free / 2**20
    if free_mb < MIN_FREE_DISK_MB:
        disk = Check("disk", FAIL, f"{free_mb:.0f} MB free for the model cache {cache}",
                     f"free at least {MIN_FREE_DISK_MB} MB or pass --cache elsewhere")  # fmt: skip
    else:
        disk = Check("disk", OK, f"{free_mb:.0f} MB free for the model cache {cache}")
    return [mem, disk]


def check_clock(root: Path, runner: CommandRunner) -> Check:
    """NTP sync: systemd-timesyncd's flag file, timedatectl, then chronyc; unknown is fine."""
    fix = "sudo timedatectl set-ntp true (or start chrony); result timestamps need a synced clock"
    if under(root, "/run/systemd/timesync/synchronized").exists():
        return Check("clock", OK, "synchronized (systemd-timesyncd)")
    out = runner.run(TIMEDATECTL)
    if out.text is not None and out.text.strip() in ("yes", "no"):
        if out.text.strip() == "yes":
            return Check("clock", OK, "synchronized (timedatectl)")
        return Check("clock", WARNING, "not synchronized (timedatectl)", fix)
    out = runner.run(CHRONYC)
    if out.text is not None and "Leap status" in out.text:
        if "Not synchronised" in out.text:
            return Check("clock", WARNING, "not synchronized (chronyc)", fix)
        return Check("clock", OK, "synchronized (chronyc)")
    return Check("clock", OK, "sync state unknown (no timesyncd, timedatectl or chronyc answer)")


def check_collector(endpoint: str, keys: PeerKeys | None, timeout_s: float) -> Check:
    """A real round trip: a Heartbeat, answered Reject("unregistered") by a live collector."""
    try:
        require_safe(endpoint, False, "connect to", keys=keys is not None)
    except FlopgapError as exc:
        return Check("collector", FAIL, exc.message, exc.hint or "")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    configure_client(sock, keys)
    monitor = sock.get_monitor_socket(_HANDSHAKE_FAILED)
    try:
        sock.connect(endpoint)
        sock.send_multipart(protocol.encode(protocol.Heartbeat("idle", "")))
        return _await_reply(sock, monitor, endpoint, keys is not None, timeout_s)
    finally:
        sock.disable_monitor()
        monitor.close(linger=0)
        sock.close(linger=0)


def _await_reply(
    sock: zmq.Socket[bytes], monitor: zmq.Socket[bytes], endpoint: str, keyed: bool, timeout: float
) -> Check:
    key_fix = ("on the collector: flopgap keys agent NAME --bundle FILE --collector ADDR, then "
               "flopgap-agent enroll FILE here")  # fmt: skip
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    deadline = time.monotonic() + timeout
    while (left_ms := int((deadline - time.monotonic()) * 1000)) > 0:
        ready = dict(poller.poll(left_ms))
        if monitor in ready:
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                return Check("collector", FAIL, f"{endpoint} refused this agent's key", key_fix)
            wants = "does not use keys" if keyed else "requires CURVE keys"
            return Check("collector", FAIL, f"{endpoint} {wants} (or the collector key is "
                         "wrong): keys refused", key_fix)  # fmt: skip
        if sock in ready:
            try:
                reply = protocol.decode(sock.recv_multipart())
            except FlopgapError as exc:
                return Check("collector", FAIL, f"bad reply from {endpoint}: {exc}", exc.hint or "")
            if isinstance(reply, protocol.Reject) and reply.code == "unregistered":
                return Check("collector", OK, f"{endpoint} reachable, keys accepted"
                             if keyed else f"{endpoint} reachable (no keys)")  # fmt: skip
            if isinstance(reply, protocol.Reject):
                return Check("collector", FAIL, f"{endpoint} refused: {reply.reason}", reply.hint)
            return Check("collector", WARNING, f"unexpected {type(reply).__name__} from {endpoint}")
    fix = "check that `flopgap serve` runs there, the address, and the firewall"
    return Check("collector", FAIL, f"no answer from {endpoint} within {timeout:g} s", fix)


def check_description(root: Path, runner: CommandRunner) -> list[Check]:
    """One line per descriptor probe (agent.board.facts): what it found, or that its fields
    are missing and what was looked for. Informational: a laptop has no nvpmodel, and that
    is no reason not to measure (throttling and the governor have checks of their own)."""
    facts = describe_facts(root, runner)
    checks = []
    for probe in FACTS:
        found = [f"{name} {_shown(facts.values[name])}" for name in probe.fields
                 if facts.values[name] is not None]  # fmt: skip
        absent = [name for name in probe.fields if name in facts.missing]
        if absent:
            found.append(f"missing {', '.join(absent)} (looked for {probe.looks_for})")
        checks.append(Check(probe.name, OK, "; ".join(found)))
    return checks


def _shown(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def run_checks(
    root: Path, cache: Path, collector: str | None, keys: PeerKeys | None, timeout_s: float
) -> list[Check]:
    """Every check, in report order."""
    runner = runner_for(root)
    checks = [check_runtime(), check_power(root, runner), check_sensors(root),
              check_governor(root), check_throttling(root, runner),
              *check_resources(root, cache), check_clock(root, runner),
              *check_description(root, runner)]  # fmt: skip
    if collector is None:
        checks.append(Check("collector", WARNING, "not checked (no --collector, no config)",
                            "pass --collector or enroll first"))  # fmt: skip
    else:
        checks.append(check_collector(collector, keys, timeout_s))
    return checks


def render(checks: list[Check]) -> str:
    """The report: one line per check, its fix indented below, then the verdict."""
    lines = []
    for check in checks:
        lines.append(f"[{check.status.upper():>7}] {check.name:<11} {check.detail}")
        if check.fix and check.status != OK:
            lines.append(f"{'':>22}-> {check.fix}")
    fails = sum(c.status == FAIL for c in checks)
    warns = sum(c.status == WARNING for c in checks)
    verdict = "NOT READY to measure" if fails else "ready to measure"
    lines.append(f"{verdict}: {fails} fail, {warns} warning")
    return "\n".join(lines)
