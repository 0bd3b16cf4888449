"""The predictor as the report sees it: one read context per device key the store holds.

The report already knows each device key exactly (a name a user types is ambiguous when one
agent ran several providers or opt levels), so it builds ``api.Context`` from keys; and it
must stay fast on a store without per-op profiles, so ``profiled_keys`` decides from the
stored rows alone (no model is loaded, no predictor trained) which keys can have a predictor
at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.predict import dataset
from collector.predict.dataset import DeviceKey
from collector.store.rows import ResultRow


def profiled_keys(rows: Sequence[ResultRow]) -> tuple[list[DeviceKey], list[DeviceKey]]:
    """(keys with at least one usable per-op profile, keys with none) over usable results."""
    profiled: set[DeviceKey] = set()
    every: set[DeviceKey] = set()
    for row in rows:
        if not dataset.usable(row) or (key := dataset.key_of(row)) is None:
            continue
        every.add(key)
        if (row.document or {}).get("op_profile"):
            profiled.add(key)
    return sorted(profiled), sorted(every - profiled)
