"""The device descriptor: what board this is, so results from a fleet can be told apart.

The device id is stable across reboots and agent restarts: a hash of /etc/machine-id when
the OS has one (systemd, Raspberry Pi OS, JetPack), else of the DMI product UUID, else of the
MAC address and hostname. It is hashed so the raw machine-id never leaves the board.

onnxruntime and psutil are imported inside `describe`, not here: the agent's network loop
never imports onnxruntime (it takes its descriptor from the fork server, agent.jobs.fork_server),
and
importing this module must not cost it ~17 MiB.
"""

from __future__ import annotations

import hashlib
import platform
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

from agent import __version__
from agent.board.facts.registry import describe_facts
from agent.probes.commands import CommandRunner, runner_for
from agent.probes.sysfs import read_text, under


def _cpu_model(root: Path | str) -> str:
    text = read_text(under(root, "/proc/cpuinfo")) or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    # x86 says "model name"; many ARM kernels say "Model" or "Hardware" instead.
    for key in ("model name", "model", "hardware", "cpu model", "processor"):
        if key in fields and not fields[key].isdigit():
            return fields[key]
    return platform.processor() or platform.machine() or "unknown"


def board_model(root: Path | str = "/") -> str | None:
    """Device-tree model (Pi, Jetson), Tegra release, or DMI product name; None if none."""
    model = read_text(under(root, "/proc/device-tree/model"))
    if model:
        return model
    tegra = read_text(under(root, "/etc/nv_tegra_release"))
    if tegra:
        return "NVIDIA Jetson (" + tegra.splitlines()[0].lstrip("# ").strip() + ")"
    vendor = read_text(under(root, "/sys/class/dmi/id/sys_vendor"))
    product = read_text(under(root, "/sys/class/dmi/id/product_name"))
    if product:
        return f"{vendor} {product}".strip() if vendor else product
    return None


def device_id(root: Path | str = "/") -> str:
    """A stable, anonymised id for this machine (16 hex characters)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id", "/sys/class/dmi/id/product_uuid"):
        value = read_text(under(root, path))
        if value:
            return hashlib.sha256(f"flopgap:{value}".encode()).hexdigest()[:16]
    fallback = f"flopgap:{uuid.getnode():012x}:{socket.gethostname()}"
    return hashlib.sha256(fallback.encode()).hexdigest()[:16]


def describe(root: Path | str = "/", runner: CommandRunner | None = None) -> dict[str, Any]:
    """Everything the collector needs to identify and compare this device: the system
    description of agent.board.facts included (None where the board lacks a field).

    Commands (nvpmodel, vcgencmd) run through `runner`, by default `runner_for(root)`: real on
    "/", replayed from `<root>/commands/` for a captured tree.
    """
    import onnxruntime as ort
    import psutil

    facts = describe_facts(root, runner if runner is not None else runner_for(root))

    uname = platform.uname()
    return {
        "device_id": device_id(root),
        "hostname": socket.gethostname(),
        "os": _os_name(),
        "kernel": uname.release,
        "arch": uname.machine,
        "cpu_model": _cpu_model(root),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "ram_mb": round(psutil.virtual_memory().total / 1024 / 1024),
        "python": sys.version.split()[0],
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "board": board_model(root),
        "agent_version": __version__,
        **facts.values,  # power mode, L4T, ISA, caches, ...: flat scalars or short lists,
        # because the wire's descriptor schema carries no more (shared.protocol.DEVICE)
    }


def _os_name() -> str:
    """Distribution name where the OS says it (os-release), else the kernel's system name."""
    try:
        pretty = platform.freedesktop_os_release().get("PRETTY_NAME")
    except (OSError, AttributeError):
        pretty = None
    return pretty or platform.system()
