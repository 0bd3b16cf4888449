"""Real collector and agent processes for fleet tests, and a bounded wait on campaign state."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from collector.client import Client
from collector.procs import Child
from shared import protocol

_POLL = threading.Event()  # never set: wait(t) is a bounded polling period


def start_collector(
    db: Path,
    bind: str = "tcp://127.0.0.1:0",
    heartbeat: float = 0.5,
    calibrate: bool = False,
    extra: tuple[str, ...] = (),
) -> tuple[Child, str]:
    """A real collector; agent calibration (seconds per agent) only where a test needs it."""
    argv = [sys.executable, "-m", "collector", "serve", "--bind", bind, "--db", str(db),
            "--heartbeat", str(heartbeat), *extra]  # fmt: skip
    if not calibrate:
        argv.append("--no-calibrate")
    child = Child(argv, "collector")
    return child, child.expect(r"listening on (tcp://\S+)", 30).group(1)


def start_agent(
    endpoint: str,
    name: str,
    root: Path,
    env: dict[str, str] | None = None,
    tags: tuple[str, ...] = (),
) -> Child:
    argv = [
        sys.executable,
        "-m",
        "agent",
        "run",
        "--collector",
        endpoint,
        "--name",
        name,
        "--spool",
        str(root / name / "spool"),
        "--cache",
        str(root / name / "cache"),
    ]
    for tag in tags:
        argv += ["--tag", tag]
    return Child(argv, name, env=env)


def write_campaign(
    folder: Path,
    models: list[str],
    threads: list[int],
    name: str = "fleet",
    agents: str = '["*"]',
    extra: str = "",
    retry_invalid: int = 0,
) -> Path:
    """A small campaign. Invalid results are not measured again by default: on a loaded test
    machine many are invalid, and most fleet tests count one result per job."""
    config = folder / f"{name}.toml"
    config.write_text(
        f'name = "{name}"\nmodels = {models!r}\nretry_invalid = {retry_invalid}\n'.replace("'", '"')
        + f"[matrix]\nthreads = {threads}\n[targets]\nagents = {agents}\n"
        "[measure]\nmin_iterations = 64\nmin_seconds = 0.2\nwarmup_seconds = 0.05\n"
        "warmup_runs = 2\nrepeats = 1\n" + extra
    )
    return config


def campaign_status(endpoint: str, campaign: str) -> dict[str, Any]:
    with Client(endpoint, timeout_s=10) as client:
        reply = client.request(protocol.StatusRequest(campaign), protocol.Status)
    assert isinstance(reply, protocol.Status)
    return reply.status


def wait_for_campaign(endpoint: str, campaign: str, timeout: float) -> dict[str, Any]:
    """Poll (bounded) until the campaign is done; returns its status entry."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = campaign_status(endpoint, campaign)
        if status["campaigns"]:
            last = status["campaigns"][0]
            if last["state"] == "done":
                return last
        _POLL.wait(0.25)  # a polling period under a deadline, not a synchronisation sleep
    raise AssertionError(f"campaign {campaign} not done within {timeout} s: {last}")


def run_campaign_on_one_agent(
    root: Path,
    config: Path,
    agent_name: str,
    cli: Any,
    calibrate: bool = False,
    timeout: float = 120,
) -> Path:
    """A real collector and one real agent run `config` to the end; returns the database.

    `cli` is the tests' collector CLI runner; exit 7 (some results invalid) is accepted, since
    a loaded test machine voids some measurements."""
    db = root / "results.sqlite"
    collector, endpoint = start_collector(db, calibrate=calibrate)
    agent = start_agent(endpoint, agent_name, root)
    try:
        collector.expect(rf"agent {agent_name} registered", 30)
        proc = cli("campaign", "run", config, "--collector", endpoint, timeout=timeout)
        assert proc.returncode in (0, 7), proc.stdout + proc.stderr
    finally:
        assert agent.stop() == 0, agent.tail(20)
        collector.stop()
    return db
