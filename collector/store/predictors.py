"""Trained kernel predictors, versioned per device key with the data they were trained on.

Why versioned and keyed by a data hash: a predictor is retrained when new measurements arrive,
and a prediction must say which predictor (and so which data) made it; the same data trains
the same predictor, so retraining on unchanged data stores nothing new. The payload is the
trained predictor as JSON (text LightGBM models inside), never a pickle.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Mapping
from typing import Any

from collector.store.connection import Database
from collector.store.rows import PredictorRow, typed
from shared.errors import StoreError
from shared.version import __version__


class Predictors(Database):
    """The ``predictors`` table."""

    def put_predictor(
        self, device_key: str, data_hash: str, samples: int, models: int, payload: Mapping[str, Any]
    ) -> PredictorRow:
        """Store a predictor as the next version of `device_key`, in one transaction; one
        already trained on `data_hash` for that key is returned instead of a duplicate."""
        try:
            text = json.dumps(dict(payload), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"predictor payload for {device_key!r} is not plain JSON: {exc}",
                hint="keep models as text and numbers finite; pickles are never stored",
            ) from exc
        with self.transaction() as db:
            found = db.execute(
                "SELECT * FROM predictors WHERE device_key=? AND data_hash=? ORDER BY version "
                "LIMIT 1",
                (device_key, data_hash),
            ).fetchone()
            if found is not None:
                return typed(PredictorRow, found)
            (latest,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM predictors WHERE device_key=?",
                (device_key,),
            ).fetchone()
            key = json.dumps([device_key, data_hash]).encode()
            row = PredictorRow(
                predictor_id="p-" + hashlib.sha256(key).hexdigest()[:20],
                device_key=device_key,
                version=int(latest) + 1,
                data_hash=data_hash,
                samples=int(samples),
                models=int(models),
                trained_at=time.time(),
                flopgap_version=__version__,
                payload_json=text,
            )
            db.execute(
                f"INSERT INTO predictors ({', '.join(row._fields)}) VALUES "
                f"({', '.join('?' for _ in row)})",
                tuple(row),
            )
        return row

    def predictor(self, device_key: str, data_hash: str | None = None) -> PredictorRow | None:
        """The latest version for `device_key`, or the one trained on exactly `data_hash`."""
        if data_hash is None:
            row = self.db.execute(
                "SELECT * FROM predictors WHERE device_key=? ORDER BY version DESC LIMIT 1",
                (device_key,),
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT * FROM predictors WHERE device_key=? AND data_hash=? "
                "ORDER BY version DESC LIMIT 1",
                (device_key, data_hash),
            ).fetchone()
        return None if row is None else typed(PredictorRow, row)

    def predictor_rows(self, device_key: str | None = None) -> list[PredictorRow]:
        """Every stored predictor (of one key, when given), oldest first."""
        if device_key is None:
            rows = self.db.execute("SELECT * FROM predictors ORDER BY trained_at, rowid")
        else:
            rows = self.db.execute(
                "SELECT * FROM predictors WHERE device_key=? ORDER BY version", (device_key,)
            )
        return [typed(PredictorRow, r) for r in rows]

    def drop_predictors(self, device_key: str, keep: Collection[str]) -> int:
        """Delete `device_key`'s predictors not trained on a data hash in `keep`; returns how
        many. Evaluation's fold predictors are replaced whenever data arrives, so only the
        current ones are worth their megabytes."""
        kept = list(keep)
        unless = f" AND data_hash NOT IN ({', '.join('?' for _ in kept)})" if kept else ""
        with self.transaction() as db:
            cur = db.execute(
                f"DELETE FROM predictors WHERE device_key=?{unless}", (device_key, *kept)
            )
        return int(cur.rowcount)
