"""Writing a sweep to a folder: one ``<id>.onnx`` per sample and a ``manifest.json``.

Why a manifest: a predictor joins each measured model back to its family and parameters. The
manifest gives them per file with the file's sha256, which is how the store and the agents name
a model, so a result can be traced to its kernel without opening the model. Files are written to
a temporary name and renamed, so a reader never sees half a model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector.sweep.families import build_model
from collector.sweep.record import KernelSample, SweepSpec
from shared.errors import UsageError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as exc:
        raise UsageError(
            f"cannot write {path}: {exc.strerror or exc}",
            "pass an --out folder you can write to (not an existing file) with free space",
        ) from exc


def write_samples(out_dir: Path, samples: Sequence[KernelSample]) -> dict[str, tuple[Path, str]]:
    """Write each sample as ``<id>.onnx``; returns {id: (path, sha256)}."""
    written: dict[str, tuple[Path, str]] = {}
    for sample in samples:
        data = build_model(sample).SerializeToString()
        path = out_dir / f"{sample.id}.onnx"
        _write(path, data)
        written[sample.id] = (path, hashlib.sha256(data).hexdigest())
    return written


def write_sweep(out_dir: Path, spec: SweepSpec, samples: Sequence[KernelSample]) -> dict[str, Any]:
    """Write the models and ``manifest.json`` (format 1) into ``out_dir``; returns the manifest."""
    written = write_samples(out_dir, samples)
    manifest = {
        "format_version": FORMAT_VERSION,
        "sweep": spec.to_json(),
        "models": [
            {**s.to_json(), "file": written[s.id][0].name, "sha256": written[s.id][1]}
            for s in samples
        ],
    }
    _write(out_dir / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest
