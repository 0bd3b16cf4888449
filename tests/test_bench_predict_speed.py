"""The predictor's speed benchmark runs end to end at tiny sizes: real sweep kernels profiled
by the agent's pass, cached as JSON and reused, a predictor trained on them, and a chain model
predicted once cold and then from its cached graph. No speed is asserted (speed is bench/'s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import predict_speed

pytestmark = pytest.mark.integration


def test_the_bench_runs_and_reuses_its_cached_samples(tmp_path: Path) -> None:
    predicting, training = predict_speed.run(samples=40, blocks=3, calls=2, cache=tmp_path)
    assert predicting.name.startswith("predict a 2,000-node model") and predicting.ratio > 0
    assert "15 nodes in the model" in predicting.detail
    assert training.target == 30.0 and "40 samples" in training.detail
    assert "profiled now" in training.detail
    [cached] = tmp_path.glob("rows-*.json")
    again = predict_speed.run(samples=40, blocks=3, calls=1, cache=tmp_path)[1]
    assert "all cached" in again.detail and cached.is_file()


def test_the_chain_keeps_its_blocks_distinct() -> None:
    model = predict_speed.chain_model(6)
    assert len(model.graph.node) == 30
    widths = {tuple(i.dims) for i in model.graph.initializer if len(i.dims) == 2}
    assert len(widths) >= 5
