"""A campaign is refused at submission when no matching agent has a provider its jobs ask
for, whether a job names one `provider` or an ordered provider list (issue 20)."""

from __future__ import annotations

from typing import Any

from collector.scheduler import unsatisfiable

CPU_ONLY = [("pi5-a", {}, ["CPUExecutionProvider"])]


def _payload(*settings: dict[str, Any]) -> dict[str, Any]:
    return {"targets": {"agents": ["*"]}, "jobs": [{"settings": s} for s in settings]}


def test_every_provider_of_a_list_must_be_on_a_matching_agent() -> None:
    listed = {"providers": [{"name": "CUDAExecutionProvider", "options": {}},
                            {"name": "CPUExecutionProvider", "options": {}}]}  # fmt: skip
    reason = unsatisfiable(_payload(listed), CPU_ONLY)
    assert reason is not None and "'CUDAExecutionProvider'" in reason and "pi5-a" in reason
    cpu = {"providers": [{"name": "CPUExecutionProvider", "options": {"x": "1"}}]}
    assert unsatisfiable(_payload(cpu), CPU_ONLY) is None


def test_a_single_provider_setting_is_checked_as_before() -> None:
    assert unsatisfiable(_payload({"provider": "CPUExecutionProvider"}), CPU_ONLY) is None
    assert unsatisfiable(_payload({}), CPU_ONLY) is None  # the default is the CPU provider
    assert unsatisfiable(_payload({"provider": "QNNExecutionProvider"}), CPU_ONLY) is not None
    assert unsatisfiable(_payload({"provider": "QNNExecutionProvider"}), []) is None  # no agent yet
