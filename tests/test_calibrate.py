"""agent.engine.calibrate: hand-written ONNX bytes that onnx accepts, and a short real calibration.

Only that the numbers are positive and finite is checked, never how fast this machine is.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from agent.engine import calibrate as cal
from shared.errors import UsageError
from shared.protobuf_bytes import varint

SHORT_BYTES = 1 << 20


def _short(threads: int) -> dict[str, Any]:
    """A calibration small enough for a test (0.2 s, a 64 x 64 MatMul, 1 MiB streamed)."""
    return cal.calibrate(threads, seconds=0.2, matmul_n=64, stream_bytes=SHORT_BYTES)


def test_varint_matches_the_protobuf_encoding() -> None:
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(1 << 35) == b"\x80\x80\x80\x80\x80\x01"


@pytest.mark.parametrize(
    ("model", "op", "inputs", "output"),
    [
        (cal.MATMUL_MODEL, "MatMul", {"a": ["m", "k"], "b": ["k", "n"]}, ("c", ["m", "n"])),
        (cal.ADD_MODEL, "Add", {"x": ["s"], "y": ["s"]}, ("z", ["s"])),
    ],
)
def test_hand_written_models_equal_what_onnx_helper_builds(
    model: bytes, op: str, inputs: dict[str, list[str]], output: tuple[str, list[str]]
) -> None:
    parsed = onnx.load_from_string(model)
    onnx.checker.check_model(parsed, full_check=True)
    expected = helper.make_model(
        helper.make_graph(
            [helper.make_node(op, list(inputs), [output[0]], name=op.lower())],
            f"calibrate_{op.lower()}",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in inputs.items()],
            [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
        ),
        opset_imports=[helper.make_opsetid("", 13)],
        ir_version=8,
    )
    assert parsed == expected


def test_bound_runner_writes_into_the_callers_buffer() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 7), dtype=np.float32)
    b = rng.standard_normal((7, 3), dtype=np.float32)
    c = np.full((5, 3), np.nan, dtype=np.float32)
    run = cal._bound_runner(cal.MATMUL_MODEL, 1, {"a": a, "b": b}, ("c", c))
    run()
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    x, y, z = np.arange(6, dtype=np.float32), np.ones(6, np.float32), np.zeros(6, np.float32)
    cal._bound_runner(cal.ADD_MODEL, 1, {"x": x, "y": y}, ("z", z))()
    np.testing.assert_array_equal(z, x + 1)


def test_short_calibration_returns_positive_finite_numbers() -> None:
    result = _short(1)
    assert set(result) >= {
        "peak_gflops",
        "bandwidth_gbs",
        "threads",
        "matmul_n",
        "stream_bytes",
        "onnxruntime",
        "method",
    }
    for key in ("peak_gflops", "bandwidth_gbs"):
        value = result[key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, key
    assert result["threads"] == 1 and result["matmul_n"] == 64
    assert result["stream_bytes"] <= SHORT_BYTES and result["stream_bytes"] % 12 == 0
    assert result["onnxruntime"] == ort.__version__
    assert result["matmul_runs"] >= 1 and result["stream_runs"] >= 1


def test_sizes_shrink_to_fit_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    available = 4 * 12 * 1000  # the calibration may use a quarter: 12,000 bytes
    monkeypatch.setattr(cal.psutil, "virtual_memory", lambda: SimpleNamespace(available=available))
    result = cal.calibrate(1, seconds=0.05, matmul_n=4096, stream_bytes=1 << 30)
    assert result["stream_bytes"] <= 12_000
    n = result["matmul_n"]
    assert isinstance(n, int) and 3 * n * n * 4 <= 12_000


@pytest.mark.parametrize(
    "kwargs",
    [{"seconds": 0}, {"matmul_n": 0}, {"stream_bytes": 4}, {"seconds": -1.0}],
)
def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        cal.calibrate(1, **kwargs)


def test_negative_threads_are_refused() -> None:
    with pytest.raises(UsageError):
        _short(-1)


def test_models_load_from_a_file_too(tmp_path: Path) -> None:
    path = tmp_path / "matmul.onnx"
    path.write_bytes(cal.MATMUL_MODEL)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [["m", "k"], ["k", "n"]]


def test_peak_is_the_best_of_several_sizes() -> None:
    result = cal.calibrate(1, seconds=0.1, matmul_n=300, stream_bytes=SHORT_BYTES)
    assert result["matmul_n"] in (256, 300)  # each size below the cap is tried, and the cap
    assert result["matmul_runs"] >= 2 and result["peak_gflops"] > 0
