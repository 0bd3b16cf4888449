"""A campaign is found by its name, its full id or any unique id prefix; names are unique unless
`--replace`; a campaign no agent matches is refused or waited for with a bound; an export that
selects nothing exits non-zero. Real collector and agent processes on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from collector.procs import Child
from collector.store import Failure, Store
from tests.conftest import REPO, matmul_graph, save_model
from tests.fleet_helpers import campaign_status, start_agent, start_collector, write_campaign

pytestmark = pytest.mark.integration


def _flopgap(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)  # fmt: skip


def _accepted_id(stdout: str) -> str:
    found = re.search(r"accepted as ([0-9a-f]{8})", stdout)
    assert found, stdout
    return found.group(1)


def _store_with(tmp_path: Path, *ids: str) -> Path:
    """A database holding campaigns (named after their ids' first 4 characters) and, for the
    first, one error result."""
    db = tmp_path / "ids.sqlite"
    store = Store(db)
    try:
        for campaign_id in ids:
            store.add_campaign(campaign_id, f"c-{campaign_id[:4]}", {})
        store.add_jobs([("j1", ids[0], "a1", "f" * 64, "tiny", {"threads": 1}, 0, 1, 60.0)])
        store.start_job("j1")
        store.fail_attempt("j1", Failure("r1", "dev", "crash", "boom"))
    finally:
        store.close()
    return db


def test_a_campaign_resolves_by_name_id_or_unique_prefix_and_an_ambiguous_prefix_lists_them(
    tmp_path: Path,
) -> None:
    first, second = "abc1" + "0" * 28, "abc2" + "0" * 28
    store = Store(_store_with(tmp_path, first, second))
    try:
        assert store.resolve_campaign("c-abc1").campaign_id == first
        assert store.resolve_campaign(first).campaign_id == first
        assert store.resolve_campaign("abc2").campaign_id == second
        assert store.resolve_campaign("ABC1000").campaign_id == first
        with pytest.raises(Exception, match=r"'abc' is ambiguous.*c-abc2 \(abc20000\), c-abc1"):
            store.resolve_campaign("abc")
        with pytest.raises(Exception, match=r"no campaign 'zz'") as caught:
            store.resolve_campaign("zz")
        assert "c-abc1 (abc10000)" in str(caught.value)
    finally:
        store.close()


def test_export_takes_an_id_prefix_and_exits_non_zero_when_it_selects_nothing(
    tmp_path: Path,
) -> None:
    db = _store_with(tmp_path, "6f2886b8" + "1" * 24, "77" + "2" * 30)
    out = tmp_path / "out.csv"
    proc = _flopgap("export", "--db", db, "--csv", out, "--campaign", "6f2886b8")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 1 results" in proc.stdout and len(out.read_text().splitlines()) == 2
    proc = _flopgap("export", "--db", db, "--csv", tmp_path / "none.csv", "--campaign", "nope")
    assert proc.returncode == 2
    assert "no campaign 'nope'" in proc.stderr and "c-6f28 (6f2886b8)" in proc.stderr
    proc = _flopgap("export", "--db", db, "--csv", tmp_path / "empty.csv", "--campaign", "c-7722")
    assert proc.returncode == 2 and "has no results yet" in proc.stderr, proc.stderr
    assert not (tmp_path / "empty.csv").exists()
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_no_matching_agent_is_refused_or_waited_for_and_names_stay_unique(tmp_path: Path) -> None:
    save_model(matmul_graph(width=16), tmp_path / "m.onnx")
    config = write_campaign(tmp_path, ["m.onnx"], threads=[1], name="ident")
    collector, endpoint = start_collector(tmp_path / "c.sqlite")
    try:
        refused = _flopgap("campaign", "run", config, "--collector", endpoint)
        waited = _flopgap("campaign", "run", config, "--collector", endpoint, "--detach",
                          "--wait-for-agents", "0.5")  # fmt: skip
        taken = _flopgap("campaign", "run", config, "--collector", endpoint, "--detach",
                         "--wait-for-agents", "0.5")  # fmt: skip
        replaced = _flopgap("campaign", "run", config, "--collector", endpoint, "--detach",
                            "--wait-for-agents", "0.5", "--replace")  # fmt: skip
        old, new = _accepted_id(waited.stdout), _accepted_id(replaced.stdout)
        by_name = campaign_status(endpoint, "ident")["campaigns"]
        by_old_prefix = campaign_status(endpoint, old)["campaigns"]
        listing = _flopgap("status", "--collector", endpoint)
    finally:
        collector.stop()
    assert refused.returncode == 2, refused.stderr
    assert "no agent is registered" in refused.stderr and "--wait-for-agents" in refused.stderr
    assert waited.returncode == 8, waited.stderr
    assert "no agent matching campaign ident registered within 0.5 s" in waited.stderr
    assert f"stays queued as {old}" in waited.stderr
    assert taken.returncode == 2 and "named 'ident' exists already" in taken.stderr
    assert "--replace" in taken.stderr
    assert replaced.returncode == 8, replaced.stderr
    assert [c["campaign_id"][:8] for c in by_name] == [new]
    assert [c["name"] for c in by_old_prefix] == [f"ident@{old}"]
    assert "no matching agent has registered yet" in listing.stdout
    for proc in (refused, waited, taken, replaced):
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_waiting_campaign_runs_when_its_agent_registers_and_others_are_named(
    tmp_path: Path,
) -> None:
    save_model(matmul_graph(width=16), tmp_path / "m.onnx")
    config = write_campaign(tmp_path, ["m.onnx"], threads=[1], name="later", agents="[]",
                            extra='[targets.tags]\nsite = "lab"\n')  # fmt: skip
    elsewhere = write_campaign(tmp_path, ["m.onnx"], threads=[1], name="elsewhere",
                               agents="[]", extra='[targets.tags]\nsite = "moon"\n')  # fmt: skip
    db = tmp_path / "w.sqlite"
    collector, endpoint = start_collector(db)
    run = Child([sys.executable, "-m", "collector", "campaign", "run", str(config),
                 "--collector", endpoint, "--wait-for-agents", "120"], "run")  # fmt: skip
    agent = None
    try:
        run.expect(r"no registered agent matches yet; waiting up to 120 s", 60)
        agent = start_agent(endpoint, "labby", tmp_path, tags=("site=lab",))
        run.expect(r"campaign later complete in", 120)
        code = run.wait(30)
        refused = _flopgap("campaign", "run", elsewhere, "--collector", endpoint)
        short = _accepted_id("\n".join(run.lines))
        exported = _flopgap("export", "--db", db, "--csv", tmp_path / "l.csv", "--campaign", short)
        reported = _flopgap("report", "--db", db, "--campaign", short[:5], timeout=120)
    finally:
        run.stop()
        if agent is not None:
            agent.stop()
        collector.stop()
    assert code in (0, 7), run.tail(10)  # 7: valid or not, the job ran on the late agent
    assert refused.returncode == 2
    assert "no registered agent matches" in refused.stderr
    assert "labby (online, tags site=lab)" in refused.stderr
    assert exported.returncode == 0 and "wrote 1 results" in exported.stdout, exported.stderr
    assert reported.returncode == 0, reported.stderr
