"""What the aarch64 run's result document must say, checked on the host after the emulated run
(tools/aarch64_check.sh).

Emulated timings mean nothing, so this checks that each timing field is there and positive
(the measurement ran), never its value, and writes a summary that holds no timing at all: a
number from qemu in a report would be read as a board's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ARCH = "aarch64"
MIN_SAMPLES = 5  # tools/aarch64_check.sh asks bench for --min-iterations 5
TIMING_FIELDS = ("load_ms", "first_inference_ms", "latency_ms.p50", "latency_ms.p99")


def field(document: dict[str, Any], dotted: str) -> Any:
    """The value at ``a.b`` in the document, or None when any part is absent."""
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def problems(document: dict[str, Any], doctor_rc: int) -> list[str]:
    """Everything wrong with the run, in words; empty when it proves the agent on aarch64."""
    found = []
    arch = field(document, "device.arch")
    if arch != ARCH:
        found.append(f"device.arch is {arch!r}, not {ARCH!r}: the run was not emulated")
    samples = field(document, "latency_ms.n")
    if not isinstance(samples, int) or samples < MIN_SAMPLES:
        found.append(f"latency_ms.n is {samples!r}, fewer than {MIN_SAMPLES} timed runs")
    for name in TIMING_FIELDS:
        value = field(document, name)
        if not isinstance(value, int | float) or value <= 0:
            found.append(f"{name} is {value!r}, not a positive time")
    if doctor_rc != 0:
        found.append(f"flopgap-agent doctor exited {doctor_rc}: a check failed")
    return found


def summary(document: dict[str, Any], doctor_rc: int) -> dict[str, Any]:
    """The run without its timings: what ran, where, and how many times."""
    return {
        "arch": field(document, "device.arch"),
        "python": field(document, "device.python"),
        "onnxruntime": field(document, "device.onnxruntime"),
        "model": field(document, "model.name"),
        "samples": field(document, "latency_ms.n"),
        "timing_fields_present": [n for n in TIMING_FIELDS if field(document, n) is not None],
        "doctor_exit": doctor_rc,
    }


def main(argv: list[str]) -> int:
    """``python -m tools.aarch64_document RESULT.json DOCTOR.rc SUMMARY.json``: exit 1 on a
    problem (each on stderr), after writing the summary either way."""
    result, rc_file, out = (Path(a) for a in argv)
    document = json.loads(result.read_text())
    doctor_rc = int(rc_file.read_text().strip())
    out.write_text(json.dumps(summary(document, doctor_rc), indent=2) + "\n")
    found = problems(document, doctor_rc)
    for line in found:
        print(f"aarch64 check: {line}", file=sys.stderr)
    if not found:
        print(f"aarch64 check: document ok ({json.dumps(summary(document, doctor_rc))})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
