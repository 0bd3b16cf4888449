"""Agent tags (`--tag key=value`), parsed without loading the network stack: `enroll` and
`run` both take them, and enrolling a board should not import ZeroMQ."""

from __future__ import annotations

from shared.errors import UsageError


def parse_tags(items: list[str]) -> dict[str, str]:
    """`key=value` strings into a dict; UsageError on anything else."""
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"bad tag {item!r}", hint="write tags as key=value, e.g. board=pi5")
        tags[key] = value
    return tags
