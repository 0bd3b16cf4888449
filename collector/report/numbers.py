"""One reading of a report number, shared by the roofline modules: missing stays missing."""

from __future__ import annotations

import math
from typing import Any


def number(value: Any) -> float | None:
    """A finite float, or None for None/NaN/inf/non-numbers (missing stays missing)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
