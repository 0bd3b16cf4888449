"""The enrolment bundle's format: written by the collector, read by the agent.

Why in shared/: `flopgap keys agent NAME --bundle FILE` (collector side) writes what
`flopgap-agent enroll FILE` (board side, agent.board.enroll) reads, so the format's name,
version and fields are one contract that neither side owns. The file is JSON, mode 0600, and
holds the agent's CURVE key pair, the collector's public key and the collector's address.
"""

from __future__ import annotations

import json

from shared import keys

BUNDLE_FORMAT = "flopgap-agent-bundle"
BUNDLE_VERSION = 1
FIELDS = ("format", "version", "name", "collector", "collector_public_key", "public_key",
          "secret_key")  # fmt: skip


def bundle_text(name: str, collector: str, collector_public: bytes, own: keys.KeyPair) -> str:
    """The JSON text of a bundle (what `flopgap keys agent --bundle` writes)."""
    doc = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "name": keys.check_name(name),
        "collector": collector,
        "collector_public_key": collector_public.decode("ascii"),
        "public_key": own.public.decode("ascii"),
        "secret_key": own.secret.decode("ascii"),
    }
    return json.dumps(doc, indent=2) + "\n"
