#!/usr/bin/env bash
# The agent on Python 3.10, the oldest it claims (pyproject's requires-python; JetPack 6 ships
# 3.10): this checkout's wheel installed WITHOUT extras into a 3.10 venv benchmarks a zoo model
# from outside the repo, then the agent's own tests run on 3.10.
#
# Why a script and not CI's Python: Debian bookworm ships 3.11 only, and uv's
# `uv python install 3.10` downloads python-build-standalone from GitHub, which a CI box may not
# reach. It takes the first 3.10 it finds: $PYTHON310, python3.10 on PATH, pyenv's versions.
#
# Usage: tools/python310_check.sh [OUT_DIR]      (default results/python310)
#   PYTHON: host Python with the collector installed (writes the zoo model); default python3
# Exit status: 0 passed; 1 a step failed; 2 no Python 3.10 on this machine (it says where it
# looked).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$REPO/results/python310}" && cd "${1:-$REPO/results/python310}" && pwd)
PYTHON=${PYTHON:-python3}
# The tests that import only the agent and shared (and onnx, to build their models): the ones a
# board's Python runs. Collector tests need pandas and friends, which the board never installs.
AGENT_TESTS=(test_agent_is_light test_agent_bench test_device_and_probes test_device_lock
  test_inputs test_input_values test_model_cache test_spool test_power_bench_e2e
  test_power_capture test_power_energy test_power_parsers test_power_rapl test_power_sampler
  test_power_sources test_protocol test_sampler_steady test_stats test_timing test_verdict
  test_verdicts test_worker test_worker_fork)
TEST_DEPS=(pytest pytest-timeout hypothesis onnx)

say() { printf '[py3.10 %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { say "FAILED: $1"; exit 1; }

find_python310() {
  local candidates=("${PYTHON310:-}" "$(command -v python3.10 || true)")
  local root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  candidates+=("$root"/versions/3.10.*/bin/python3.10)
  local c
  for c in "${candidates[@]}"; do
    [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' \
      2>/dev/null && { echo "$c"; return; }
  done
  say "no Python 3.10: looked at \$PYTHON310, python3.10 on PATH, $root/versions/3.10.*" >&2
  say "hint: pyenv install 3.10, or PYTHON310=/path/to/python3.10" >&2
  exit 2
}

PY310=$(find_python310)
say "using $PY310 ($("$PY310" -c 'import sys; print(sys.version.split()[0])'))"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/source"
cp -r "$REPO/agent" "$REPO/collector" "$REPO/shared" "$REPO/pyproject.toml" "$REPO/README.md" \
  "$TMP/source/"
find "$TMP/source" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

VENV=$OUT/venv310
rm -rf "$VENV"
"$PY310" -m venv "$VENV" || fail "venv"
say "pip install the agent wheel (no extras) into $VENV"
"$VENV/bin/pip" wheel --no-deps -q -w "$TMP/wheels" "$TMP/source" || fail "pip wheel"
"$VENV/bin/pip" install -q "$TMP"/wheels/flopgap-*.whl || fail "pip install the wheel"
"$VENV/bin/pip" list --format freeze >"$OUT/installed.txt"
grep -iq '^tomli==' "$OUT/installed.txt" \
  || fail "tomli (the agent's config reader on 3.10) is missing"

PYTHONPATH=$REPO "$PYTHON" -c 'import sys; from pathlib import Path
from collector.zoo import write_zoo
write_zoo(Path(sys.argv[1]), names=["mlp"])' "$TMP/zoo" || fail "write_zoo"
say "flopgap-agent bench from the installed wheel, outside the repo"
(cd "$TMP" && "$VENV/bin/flopgap-agent" bench zoo/mlp.onnx --json --min-seconds 0 \
  --min-iterations 20 --warmup 2 --warmup-seconds 0 >"$OUT/result.json") || fail "bench"
"$VENV/bin/python" -c 'import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["device"]["python"].startswith("3.10."), doc["device"]["python"]
print("bench document: python", doc["device"]["python"], "n", doc["latency_ms"]["n"])' \
  "$OUT/result.json" || fail "the bench document does not say Python 3.10"

say "the agent's tests on 3.10: ${AGENT_TESTS[*]}"
"$VENV/bin/pip" install -q "${TEST_DEPS[@]}" || fail "pip install ${TEST_DEPS[*]}"
files=()
for name in "${AGENT_TESTS[@]}"; do files+=("tests/$name.py"); done
(cd "$REPO" && PYTHONPATH=$REPO nice -n 19 "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  "${files[@]}") || fail "agent tests on Python 3.10"
say "python 3.10 check passed"
