"""The predictor as the report sees it: one read context per device key the store holds.

Why a module of its own: ``api.Context`` resolves a device from a name a user typed, which is
ambiguous when one agent ran several providers or opt levels; the report already knows each
key exactly, so it builds contexts from keys. And the report must stay fast on a store without
per-op profiles, so ``profiled_keys`` decides from the stored rows alone (no model is loaded,
no predictor trained) which keys can have a predictor at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from collector.predict import dataset
from collector.predict.api import Context, models_folder
from collector.predict.dataset import DeviceKey
from collector.store import Store
from collector.store.rows import ResultRow


class KeyContext(Context):
    """``api.Context`` for a device key known exactly, from rows already read."""

    def __init__(
        self, store: Store, db: Path, key: DeviceKey, rows: Sequence[ResultRow],
        progress: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        self.store, self.db = store, db
        self.models_dir = models_folder(db)
        self.key = key
        self.measured = dataset.measured(store, rows, key, self.models_dir)
        self.progress = progress
        self._predictor = None


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
