"""Regenerate the committed profiler samples: python tests/data/profiles/make_samples.py

Writes convnet.onnx (tests.test_profile_ops.convnet_graph) and, per optimisation level, the
graph ORT ran (``<level>.optimized.onnx``) and its profile (``<level>.profile.json``): one
warm-up run and three measured runs, in ORT's one-event-per-line layout, trimmed of the bulky
``thread_scheduling_stats`` and memory-arena arguments. Level "all" on x86-64 gives NCHWc ops
and is saved as ``all-x86``; elsewhere it is skipped (it would equal "extended").
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from agent.profile_ops import profile_ops, read_events  # noqa: E402
from agent.session import SessionSettings  # noqa: E402

from tests.test_profile_ops import convnet_model  # noqa: E402

_DROP_ARGS = ("thread_scheduling_stats", "mem_")


def _trim(event: dict[str, object]) -> dict[str, object]:
    """The event without the arguments no parser reads and that make the file large."""
    args = event.get("args")
    if isinstance(args, dict):
        event = {**event, "args": {k: v for k, v in args.items() if not k.startswith(_DROP_ARGS)}}
    return event


def main() -> None:
    model = convnet_model(HERE / "convnet.onnx")
    levels = ["extended"] + (["all"] if platform.machine().lower() in ("x86_64", "amd64") else [])
    for level in levels:
        tag = "all-x86" if level == "all" else level
        with tempfile.TemporaryDirectory() as work:
            settings = SessionSettings(threads=1, opt_level=level)
            result = profile_ops(model, settings, {}, Path(work), runs=3, warmup_runs=1)
            events = [_trim(e) for e in read_events(result.profile_file)]
            shutil.copy(result.optimized_model, HERE / f"convnet.{tag}.optimized.onnx")
        lines = ",\n".join(json.dumps(e, separators=(",", ":")) for e in events)
        (HERE / f"convnet.{tag}.profile.json").write_text(f"[\n{lines}\n]\n")
        print(f"convnet.{tag}: {len(events)} events")


if __name__ == "__main__":
    main()
