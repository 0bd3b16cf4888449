"""What `campaign run` and `flopgap status` print: validity counted apart from "done", the
agents that share a device marked, and an older collector's document shown as before.

The status documents are built here in the shape the collector sends
(collector.server.handlers.status), so the rendering is checked on its own."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from collector import campaign_view
from collector.campaign_run import ProgressView, exit_status
from collector.campaign_view import EXIT_FAILED, EXIT_INVALID
from shared.verdicts import kinds_text
from tests.fleet_helpers import start_collector


def _campaign(done: int = 24, failed: int = 0, results: dict[str, Any] | None = None,
              state: str = "done", queued: int = 0) -> dict[str, Any]:  # fmt: skip
    camp: dict[str, Any] = {
        "campaign_id": "6f2886b8" + "0" * 24, "name": "demo", "state": state,
        "jobs": {"queued": queued, "running": 0, "done": done, "failed": failed},
        "per_agent": {"a": {"queued": queued, "running": 0, "done": done, "failed": failed}},
        "elapsed_s": 14.2, "eta_s": None,
    }  # fmt: skip
    if results is not None:
        camp["results"] = results
    return camp


def _results(valid: int, invalid: int, failed: int, **reasons: int) -> dict[str, Any]:
    named = {k.replace("_", " "): v for k, v in reasons.items()}
    return {"valid": valid, "invalid": invalid, "failed": failed, "invalid_reasons": named}


def _agent(name: str, sharing: list[str] | None = None) -> dict[str, Any]:
    agent: dict[str, Any] = {"name": name, "state": "online", "busy": None, "tags": {"site": "x"},
                             "last_seen_s": 0.4}  # fmt: skip
    if sharing is not None:
        agent["device_id"], agent["sharing"] = "dev-1", sharing
    return agent


def test_the_final_line_counts_valid_invalid_and_failed_with_the_commonest_reasons() -> None:
    camp = _campaign(results=_results(20, 4, 0, other_processes=3, frequency_changed=1))
    assert campaign_view.summary_line(camp) == (
        "campaign demo complete in 14 s: 24 results: 20 valid, 4 invalid "
        "(other processes 3, frequency changed 1), 0 failed"
    )
    assert exit_status(camp) == EXIT_INVALID


def test_a_campaign_of_valid_results_exits_0_and_a_failed_job_wins_over_invalid() -> None:
    assert exit_status(_campaign(results=_results(24, 0, 0))) == 0
    failed = _campaign(done=23, failed=1, results=_results(20, 3, 1, throttled=3))
    assert exit_status(failed) == EXIT_FAILED
    assert campaign_view.summary_line(failed).endswith(
        "24 results: 20 valid, 3 invalid (throttled 3), 1 failed"
    )


def test_an_older_collectors_document_prints_as_before() -> None:
    camp = _campaign(done=23, failed=1)
    assert campaign_view.summary_line(camp) == (
        "campaign demo complete in 14 s: 23 results, 1 failed jobs"
    )
    assert exit_status(camp) == EXIT_FAILED and exit_status(_campaign()) == 0
    assert campaign_view.progress_line(camp) == (
        "campaign demo: done 23  running 0  failed 1  waiting 0"
    )
    assert "shares" not in "\n".join(campaign_view.status_lines(_status(camp, _agent("a"))))


def test_many_reasons_name_the_commonest_and_count_the_rest() -> None:
    text = kinds_text({"a": 1, "b": 5, "c": 2, "d": 2})
    assert text == "b 5, c 2, d 2, 1 more reasons"


def test_the_log_line_carries_validity_and_changes_only_when_the_counts_do() -> None:
    out = io.StringIO()
    view = ProgressView(out)
    running = _campaign(done=3, state="running", queued=5,
                        results=_results(2, 1, 0, other_processes=1))  # fmt: skip
    view.draw(running, [_agent("a")])
    view.draw(running, [_agent("a")])
    assert out.getvalue() == (
        "campaign demo: done 3  running 0  failed 0  waiting 5  "
        "(valid 2  invalid 1: other processes 1)\n"
    )


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_view_shows_validity_and_an_agent_sharing_its_device() -> None:
    out = _Tty()
    view = ProgressView(out)
    camp = _campaign(done=3, state="running", queued=5, results=_results(3, 0, 0))
    view.draw(camp, [_agent("a", sharing=["b"])])
    text = out.getvalue()
    assert "3 results: 3 valid, 0 invalid, 0 failed" in text
    assert "(online, shares device dev-1 with b)" in text


def _status(camp: dict[str, Any], *agents: dict[str, Any]) -> dict[str, Any]:
    return {"agents": list(agents), "campaigns": [camp], "counters": {"result": 24}}


def test_status_has_valid_and_invalid_columns_the_id_and_marks_a_sharing_agent() -> None:
    camp = _campaign(results=_results(20, 4, 0, other_processes=3, frequency_changed=1))
    lines = campaign_view.status_lines(_status(camp, _agent("a", ["b"]), _agent("b", ["a"])))
    text = "\n".join(lines)
    assert "[shares device dev-1 with b]" in text and "[shares device dev-1 with a]" in text
    header = next(line for line in lines if line.startswith("campaign"))
    assert header.split() == ["campaign", "id", "state", "done", "run", "fail", "wait", "valid",
                              "invalid", "invalid", "reasons"]  # fmt: skip
    row = next(line for line in lines if line.startswith("demo"))
    assert row.split()[:4] == ["demo", "6f2886b8", "done", "24"]
    assert "20" in row.split() and "other processes 3, frequency changed 1" in row


def test_status_says_a_campaign_has_no_matching_agent_instead_of_waiting_0() -> None:
    camp = _campaign(done=0, state="running")
    camp["per_agent"] = {}
    text = "\n".join(campaign_view.status_lines(_status(camp)))
    assert "no matching agent has registered yet" in text


def test_a_log_line_carries_its_level_once_and_journald_gets_a_priority_instead_of_a_time() -> None:
    import logging

    from shared.log_lines import LineFormatter

    record = logging.LogRecord("flopgap.collector", logging.WARNING, __file__, 1, "lost %s",
                               ("it",), None)  # fmt: skip
    plain = LineFormatter("collector", journal=False).format(record)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d [\d:,]+ collector WARNING lost it", plain), plain
    assert LineFormatter("agent", journal=True).format(record) == "<4>agent WARNING lost it"


def test_the_collectors_log_lines_name_their_level_once(tmp_path: Path) -> None:
    """Through the collector's queue-and-thread logging, as `flopgap serve` writes them."""
    collector, _ = start_collector(tmp_path / "log.sqlite")
    assert collector.stop() == 0  # logs "signal 15: stopping" on its way out
    logged = [line for line in collector.lines if " collector " in line]
    assert any(line.endswith("collector INFO signal 15: stopping") for line in logged), logged
    assert all(line.count("INFO") <= 1 for line in logged), logged
    assert not [line for line in logged if "flopgap.collector:" in line], logged
