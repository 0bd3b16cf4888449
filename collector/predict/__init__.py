"""Predict an unmeasured model's latency on a board from the kernel costs the fleet measured.

``predict(model, device, store=...)`` and ``evaluate(store, device)`` are the Python API (what
`flopgap predict` runs); see docs/PREDICT.md. Modules, one job each:

- ``optimize``   the graph ORT will run, made on the collector at the device's opt level, sized
- ``features``   one feature row per fused node of an optimized graph (shapes, FLOPs, bytes, attrs)
- ``dataset``    training samples from the store: valid profiled results of one device key
- ``families``   a whole model's family (what leave-one-family-out holds out)
- ``kernels``    one regressor per kernel family as ORT executes it (LightGBM, text models)
- ``correction`` summed kernel predictions to unprofiled p50, learned per device
- ``model``      a trained predictor: kernels + correction, to and from JSON, versioned
- ``whole``      a whole model's prediction: per-kernel breakdown, interval, FLOPs-only beside it
- ``evaluate``   leave-one-model-family-out scoring against the FLOPs-only fit
- ``report_view`` which device keys of a store can have a predictor (the report's)
- ``context``    the read context every caller shares, and ``predict_in``
- ``api``        the Python API
- ``cli``        `flopgap predict`

Imports nothing heavy at package import, so `flopgap --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["evaluate", "predict", "sweep_errors"]

_HOMES = {"predict": "api", "evaluate": "api", "sweep_errors": "api"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"collector.predict.{home}"), name)
