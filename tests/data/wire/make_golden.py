"""Regenerate the golden wire samples from the expected messages in tests/test_protocol.py.

Committed samples are the contract old peers rely on, so run this only when PROTOCOL_VERSION
changes: it writes ``v{PROTOCOL_VERSION}/<wire name>.json`` (frames in base64) and leaves the
folders of older versions alone. Run from anywhere:

    .venv/bin/python tests/data/wire/make_golden.py
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root

from shared.protocol import PROTOCOL_VERSION, encode
from tests.test_protocol import GOLDEN


def main() -> None:
    """Write one sample file per message type and list what was written."""
    out = Path(__file__).resolve().parent / f"v{PROTOCOL_VERSION}"
    out.mkdir(exist_ok=True)
    for name, msg in GOLDEN.items():
        frames = [base64.b64encode(frame).decode("ascii") for frame in encode(msg)]
        path = out / f"{name}.json"
        path.write_text(json.dumps({"frames_b64": frames}, indent=1) + "\n", encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
