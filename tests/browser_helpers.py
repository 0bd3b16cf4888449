"""Headless Chromium for the report's browser tests: find it, load a page, read what it says.

Why one module: every browser test starts Chromium with the same flags this machine's closed
network needs (no background networking, no component updates, a fresh profile), kills the
whole process group if it hangs, and allows a probe script by its hash in the page's CSP.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

TIMEOUT_S = 60
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)  # fmt: skip


def chromium() -> str:
    """The Chromium binary, or skip: CI installs it with `apt-get install -y chromium`."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        pytest.skip("headless check needs Chromium: apt-get install -y chromium")
    return found


def run_headless(args: list[str], profile: Path, what: str) -> tuple[str, str, int | None]:
    """(stdout, stderr, exit code) of one headless Chromium run with `args` after the common
    flags; fails the test, with Chromium and its helpers killed, when it takes too long."""
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # Chromium and the helpers it started
        proc.communicate()
        pytest.fail(f"Chromium did not finish {what} within {TIMEOUT_S} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return out, err, proc.returncode


def allow_script(report_html: str, body: str) -> str:
    """The page with ``<script>body</script>`` first in <head>, and the CSP's script-src given
    its hash beside the report's own (the report's sort script must keep working under it)."""
    assert "default-src 'none';" in report_html and "script-src 'sha256-" in report_html
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    page = report_html.replace("script-src ", f"script-src 'sha256-{digest}' ", 1)
    return page.replace("<head>", f"<head><script>{body}</script>", 1)
