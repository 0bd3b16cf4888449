"""Open the HTML report in headless Chromium: every image decodes, nothing logs an error, and
nothing is fetched (the report's Content-Security-Policy would block and log any fetch).

A probe script is injected into a copy of the report: it records console errors, load errors
and CSP violations, then on load writes them and each image's natural size into
<pre id="check">, which --dump-dom prints. Needs the Debian package `chromium`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from collector.report import build_report_from_frames, write_html
from tests.test_report_render import fleet_frames

TIMEOUT_S = 60
PROBE = """<script>
(function () {
  var errors = [];
  var original = console.error;
  console.error = function () {
    errors.push("console: " + Array.prototype.join.call(arguments, " "));
    original.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    errors.push("error: " + (e.message || (e.target && (e.target.src || e.target.tagName))));
  }, true);
  document.addEventListener("securitypolicyviolation", function (e) {
    errors.push("csp: " + e.blockedURI + " " + e.violatedDirective);
  });
  window.addEventListener("load", function () {
    var images = Array.prototype.map.call(document.images, function (i) {
      return {w: i.naturalWidth, h: i.naturalHeight, complete: i.complete};
    });
    var pre = document.createElement("pre");
    pre.id = "check";
    pre.textContent = JSON.stringify({images: images, errors: errors});
    document.body.appendChild(pre);
  });
})();
</script>"""


def chromium() -> str:
    """The Chromium binary, or skip: CI installs it with `apt-get install -y chromium`."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        pytest.skip("headless check needs Chromium: apt-get install -y chromium")
    return found


def with_probe(report_html: str) -> str:
    """The report with the probe first in <head>; the CSP's script-src gets the probe's hash
    beside the report's own (the report's sort script must keep working under it)."""
    assert "default-src 'none';" in report_html and "script-src 'sha256-" in report_html
    body = PROBE.removeprefix("<script>").removesuffix("</script>")
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    page = report_html.replace("script-src ", f"script-src 'sha256-{digest}' ", 1)
    return page.replace("<head>", "<head>" + PROBE, 1)


def open_in_chromium(page: Path, profile: Path) -> tuple[dict[str, Any], str]:
    """Load `page` headless; returns the probe's findings and Chromium's stderr."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # Chromium and the helpers it started
        proc.communicate()
        pytest.fail(f"Chromium did not finish loading {page.name} within {TIMEOUT_S} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    start, end = out.find('<pre id="check">'), out.find("</pre>")
    assert start >= 0, f"probe did not run (exit {proc.returncode}); stderr tail:\n{err[-2000:]}"
    return json.loads(html.unescape(out[start + len('<pre id="check">') : end])), err


def console_lines(stderr: str) -> list[str]:
    """Lines where Chromium logged a page console message (CSP blocks, script errors)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_opens_cleanly_in_chromium(tmp_path: Path) -> None:
    chromium()
    results, ops, calib = fleet_frames()
    report = write_html(build_report_from_frames(results, ops, calib), tmp_path / "report.html")
    page = tmp_path / "probed.html"
    page.write_text(with_probe(report.read_text()), encoding="utf-8")
    check, stderr = open_in_chromium(page, tmp_path / "profile")
    assert check["errors"] == []
    assert console_lines(stderr) == []
    assert len(check["images"]) == 6
    for image in check["images"]:
        assert image["complete"] and image["w"] > 0 and image["h"] > 0


def test_probe_catches_broken_and_external_images(tmp_path: Path) -> None:
    """The check itself works: a broken data URI and an external image are both reported."""
    chromium()
    report = write_html(build_report_from_frames(None), tmp_path / "empty.html")
    bad = report.read_text().replace(
        "<body>",
        '<body><img src="data:image/png;base64,AAAA"><img src="https://example.invalid/x.png">',
        1,
    )
    page = tmp_path / "bad.html"
    page.write_text(with_probe(bad), encoding="utf-8")
    check, stderr = open_in_chromium(page, tmp_path / "profile")
    assert [image["w"] for image in check["images"]] == [0, 0]
    assert any(e.startswith("csp: https://example.invalid") for e in check["errors"])
    assert any("data:image/png;base64,AAAA" in e for e in check["errors"])
    assert console_lines(stderr)
