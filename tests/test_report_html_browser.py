"""Open the HTML report in headless Chromium: every image decodes, nothing logs an error, and
nothing is fetched (the report's Content-Security-Policy would block and log any fetch).

A probe script is injected into a copy of the report: it records console errors, load errors
and CSP violations, then on load writes them and each image's natural size into
<pre id="check">, which --dump-dom prints. Needs the Debian package `chromium`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from collector.report import build_report_from_frames, write_html
from tests.browser_helpers import allow_script, chromium, run_headless
from tests.test_report_render import fleet_frames

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


def with_probe(report_html: str) -> str:
    """The report with the probe first in <head>, allowed by its hash."""
    return allow_script(report_html, PROBE.removeprefix("<script>").removesuffix("</script>"))


def open_in_chromium(page: Path, profile: Path) -> tuple[dict[str, Any], str]:
    """Load `page` headless; returns the probe's findings and Chromium's stderr."""
    args = ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom"]
    out, err, code = run_headless([*args, page.as_uri()], profile, f"loading {page.name}")
    start, end = out.find('<pre id="check">'), out.find("</pre>")
    assert start >= 0, f"probe did not run (exit {code}); stderr tail:\n{err[-2000:]}"
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
