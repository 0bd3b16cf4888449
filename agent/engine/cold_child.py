"""One cold start, in a fresh interpreter: load the model, run it once, print the two times.

Why a fresh process (``python -m agent.engine.cold_child``, never a fork of the warmed agent):
a fork inherits the parent's loaded onnxruntime, its allocator arenas and its touched pages,
which is exactly what a cold start lacks. The job arrives as one JSON object on stdin (the
model path and the job's settings on the wire); one JSON line goes to stdout, with the times
in ms, or the error's message and hint.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

_STARTED = time.perf_counter_ns()  # before onnxruntime is imported


def cold_start(model: Path, raw_settings: dict[str, Any]) -> dict[str, Any]:
    """Load `model` under the job's settings and time one inference (ms)."""
    from agent import inputs
    from agent.engine.measure import _runner
    from agent.engine.options import settings_from_dict
    from agent.engine.session import load_session
    from agent.engine.timing import time_once

    imported_ns = time.perf_counter_ns()
    settings = settings_from_dict(raw_settings)
    session, load_ns = load_session(model, settings.session)
    _, feeds = inputs.model_feeds(
        session.get_inputs(),
        session.get_outputs(),
        settings.input_shapes,
        settings.input_values,
        settings.seed,
    )
    run, outputs, feed_dict = _runner(session, feeds)
    first_ns = time_once(run, outputs, feed_dict)
    return {
        "pid": os.getpid(),
        "import_ms": (imported_ns - _STARTED) / 1e6,
        "load_ms": load_ns / 1e6,
        "first_inference_ms": first_ns / 1e6,
    }


def main() -> int:
    """Read the job from stdin, print one JSON line; the exit status is 0 either way."""
    from shared.errors import FlopgapError

    job = json.loads(sys.stdin.read())
    try:
        out: dict[str, Any] = cold_start(Path(job["model"]), job["settings"])
    except FlopgapError as exc:
        out = {"error": exc.message, "hint": exc.hint}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
