"""Campaign ``[inputs]`` values and files: checked at load, carried by every job, read back by
the agent's settings parser.

Why: a model whose ``If`` depends on a sample rate runs the wrong branch on every board if its
value is missing or wrong, so load refuses that once, naming the model, the input and the line
to write; what loads reaches the agent intact (a file's bytes included) through the job's
``input_values`` setting and through the stored campaign after a restart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from agent.engine.options import settings_from_dict
from collector.campaign import load_campaign
from collector.campaign.spec import CampaignSpec
from shared.errors import UsageError
from shared.input_values import MAX_FILE_BYTES
from shared.settings import parse_job_settings
from tests.conftest import save_model
from tests.control_flow_models import SR_THEN, if_on_sample_rate

TAIL = '\n[targets]\nagents = ["*"]\n'


def _campaign(tmp_path: Path, inputs: str, extra: str = "") -> Path:
    if_on_sample_rate(tmp_path / "vad.onnx")
    path = tmp_path / "campaign.toml"
    path.write_text(f'name = "vals"\nmodels = ["vad.onnx"]\n{extra}\n{inputs}{TAIL}')
    return path


def test_values_and_files_load_and_travel_with_every_job(tmp_path: Path) -> None:
    clip = np.linspace(-1, 1, 512, dtype=np.float32).reshape(1, 512)
    np.save(tmp_path / "clip.npy", clip)
    path = _campaign(
        tmp_path,
        '[inputs.vad]\nsr = { value = 16000 }\nx = { file = "clip.npy" }\n',
        "[matrix]\nthreads = [1, 2]\n",
    )
    spec = load_campaign(path)
    jobs = spec.jobs()
    assert len(jobs) == 2
    for job in jobs:
        wire = job.settings["input_values"]
        assert wire["sr"] == {"shape": [], "data": [SR_THEN]}
        assert wire["x"]["file"] == "clip.npy"
        assert "input_shapes" not in job.settings  # a value sets its input's shape
        json.dumps(job.settings)  # plain JSON, as the Job message carries it
        settings = settings_from_dict(job.settings)  # what the agent's job runner applies
        assert settings.input_values["sr"].to_array("sr", np.int64, []) == SR_THEN
        got = settings.input_values["x"].array
        assert got is not None and np.array_equal(got, clip)
        assert settings.as_dict()["input_values"] == wire
    restored = CampaignSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert [job.settings for job in restored.jobs()] == [job.settings for job in jobs]
    assert restored.models[0].inputs[1].dtype == "int64"


def test_wildcard_value_and_literal_tensor(tmp_path: Path) -> None:
    path = _campaign(tmp_path, '[inputs."*"]\nsr = { value = 8000 }\n'
                     '[inputs.vad]\nx = { value = "zeros[1,512]" }\n')  # fmt: skip
    settings = load_campaign(path).jobs()[0].settings["input_values"]
    assert settings == {"sr": {"shape": [], "data": [8000]}, "x": {"shape": [1, 512], "fill": 0}}


@pytest.mark.parametrize(
    ("inputs", "needles"),
    [
        ("sr = { value = 1.5 }", ["inputs.vad.sr", "'vad'", "int64", "whole number"]),
        ("sr = { value = [16000, 8000] }", ["inputs.vad.sr", "'vad'", "scalar", "single value"]),
        ('sr = 16000\nx = { value = "zeros[1,256]" }',
         ["inputs.vad.sr", "not a shape", "sr = { value = 16000 }"]),
        ('sr = { value = 16000 }\nx = { value = "zeros[1,256]" }',
         ["inputs.vad.x", "'vad'", "[1, 512]", "[1, 256]", "zeros[1,512]"]),
        ("sr = { value = 16000 }\nrate = { value = 8000 }",
         ["inputs.vad.rate", "no input of that name", "x, sr"]),
        ('sr = { value = 16000, file = "a.npy" }',
         ["inputs.vad.sr", "exactly one", "value = 16000"]),
        ('sr = { value = 16000 }\nx = { file = "short.npy" }',
         ["inputs.vad.x", "'vad'", "[1, 512]", "[1, 256]", ".npy array"]),
        ('sr = { value = 16000 }\nx = { file = "nope.npy" }', ["inputs.vad.x", "no such file"]),
    ],
)  # fmt: skip
def test_bad_values_fail_at_load_naming_model_input_and_fix(
    tmp_path: Path, inputs: str, needles: list[str]
) -> None:
    np.save(tmp_path / "short.npy", np.zeros((1, 256), np.float32))
    with pytest.raises(UsageError) as caught:
        load_campaign(_campaign(tmp_path, f"[inputs.vad]\n{inputs}\n"))
    text = str(caught.value)
    assert "\n" not in text and caught.value.hint
    for needle in needles:
        assert needle in text, text


def test_missing_scalar_value_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_campaign(_campaign(tmp_path, ""))
    err = caught.value
    assert "model 'vad'" in err.message and "'sr'" in err.message
    assert err.hint is not None and "[inputs.vad] sr = { value = ... }" in err.hint


def _vector_model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["v"], ["y"])], "vector",
        [helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])],
    )  # fmt: skip
    return save_model(graph, path)


def test_file_values_are_bounded_by_what_a_campaign_carries(tmp_path: Path) -> None:
    _vector_model(tmp_path / "vec.onnx")
    np.save(tmp_path / "big.npy", np.zeros(MAX_FILE_BYTES // 4 + 1, np.float32))
    np.save(tmp_path / "near.npy", np.zeros(MAX_FILE_BYTES // 4, np.float32))
    head = 'name = "big"\nmodels = ["vec.onnx"]\n'
    for npy, threads, needle in (("big", "[1]", "over the 163,840"), ("near", "[1, 2]", "copy")):
        path = tmp_path / "c.toml"
        body = f'[matrix]\nthreads = {threads}\n[inputs.vec]\nv = {{ file = "{npy}.npy" }}\n'
        path.write_text(head + body + TAIL)
        with pytest.raises(UsageError, match="inputs") as caught:
            load_campaign(path)
        assert needle in str(caught.value)
    path.write_text(head + '[inputs.vec]\nv = { file = "near.npy" }\n' + TAIL)
    assert load_campaign(path).jobs()[0].settings["input_values"]["v"]["file"] == "near.npy"


@pytest.mark.parametrize(
    "bad",
    [[1, 2], {"sr": {"shape": [2], "data": [1]}}, {"sr": {"npy_b64": "not base64!"}}],
)
def test_agent_and_scheduler_refuse_malformed_wire_values(bad: object) -> None:
    with pytest.raises(UsageError, match="input"):
        parse_job_settings({"input_values": bad})
