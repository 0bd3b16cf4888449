"""The user docs in docs/ keep up with the code: every op type with a formula, every wire
message type and every docs/ file the code cites is there."""

from __future__ import annotations

import re
from pathlib import Path

from collector.flops.registry import KNOWN_OP_TYPES
from shared import protocol

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_flops_doc_names_every_counted_op_type() -> None:
    text = (DOCS / "FLOPS.md").read_text(encoding="utf-8")
    missing = sorted(op for op in KNOWN_OP_TYPES if op.rsplit(".", 1)[-1] not in text)
    assert missing == []


def test_protocol_doc_names_every_message_type() -> None:
    text = (DOCS / "PROTOCOL.md").read_text(encoding="utf-8")
    assert sorted(name for name in protocol.MESSAGE_TYPES if f"`{name}`" not in text) == []


def test_every_cited_doc_exists() -> None:
    cited: set[str] = set()
    for package in ("agent", "collector", "shared", "tests"):
        for path in (ROOT / package).rglob("*.py"):
            cited |= set(re.findall(r"docs/[A-Z]+\.md", path.read_text(encoding="utf-8")))
    assert "docs/FLOPS.md" in cited
    assert sorted(c for c in cited if not (ROOT / c).is_file()) == []
