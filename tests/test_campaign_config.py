"""Campaign config: the TOML schema, its validation at load, and the expansion into jobs.

Every valid campaign's job settings go through ``agent.engine.options.settings_from_dict``, the
parser the agent itself uses, so a campaign that loads is one the agents accept. Every error case
asserts that the message names the file and the key path, which is what the user must fix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from agent.engine.options import SETTING_KEYS, settings_from_dict
from agent.inputs import resolve_shapes
from collector.campaign import CampaignSpec, JobSpec, Targets, load_campaign
from collector.campaign import spec as spec_module
from collector.campaign.loader import TOP_KEYS
from collector.campaign.matrix import MATRIX_KEYS
from collector.campaign.measure import MEASURE_KEYS
from collector.campaign.tables import read_toml
from collector.campaign.targets import TARGET_KEYS
from collector.zoo import ZOO
from shared.errors import ModelError, UsageError

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "campaigns"
EXAMPLE = REPO / "configs" / "campaign.example.toml"
SMOKE = REPO / "configs" / "smoke"


# --- stand-in models ---------------------------------------------------------------------------


def _save(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    weights: list[onnx.TensorProto],
    out_dims: list[int | str],
    path: Path,
) -> Path:
    """Save a graph with one float output ``y`` as opset 17."""
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_dims)
    graph = helper.make_graph(nodes, path.stem, inputs, [output])
    graph.initializer.extend(weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    rng = np.random.default_rng(0)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def conv_model(path: Path, batch: int | str = 1) -> Path:
    """Stand-in for squeezenet: Conv 3->4 (3x3), Relu, GlobalAveragePool on data [B,3,16,16]."""
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, 16, 16])
    nodes = [
        helper.make_node("Conv", ["data", "W"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["y"]),
    ]
    return _save(nodes, [data], [_weight("W", (4, 3, 3, 3))], [batch, 4, 1, 1], path)


def depthwise_model(path: Path, batch: int | str = 1) -> Path:
    """Stand-in for mobilenet: depthwise 3x3 then pointwise 1x1 Conv on data [B,3,16,16]."""
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, 16, 16])
    nodes = [
        helper.make_node("Conv", ["data", "D"], ["d"], group=3, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["d", "P"], ["y"]),
    ]
    weights = [_weight("D", (3, 1, 3, 3)), _weight("P", (8, 3, 1, 1))]
    return _save(nodes, [data], weights, [batch, 8, 16, 16], path)


def sequence_model(path: Path) -> Path:
    """Input tokens [N, T], both dims dynamic: needs [inputs] for T."""
    tokens = helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["N", "T"])
    return _save([helper.make_node("Relu", ["tokens"], ["y"])], [tokens], [], ["N", "T"], path)


def write_stand_ins(folder: Path) -> None:
    """The two models of the smallest config (also how configs/smoke/*.onnx were made)."""
    conv_model(folder / "squeezenet.onnx")
    depthwise_model(folder / "mobilenet.onnx")


def write(tmp_path: Path, text: str, name: str = "campaign.toml") -> Path:
    """A campaign file beside the smallest config's two models."""
    write_stand_ins(tmp_path)
    path = tmp_path / name
    path.write_text(text)
    return path


def fixture(tmp_path: Path, name: str) -> Path:
    """A committed fixture config copied beside freshly written stand-in models."""
    write_stand_ins(tmp_path)
    conv_model(tmp_path / "dynamic.onnx", batch="N")
    conv_model(tmp_path / "models" / "resnet.onnx", batch="N")
    sequence_model(tmp_path / "models" / "seq.onnx")
    return Path(shutil.copy(DATA / name, tmp_path / name))


SMALLEST = (DATA / "smallest.toml").read_text()
TAIL = '\n[targets]\nagents = ["*"]\n'


def assert_agent_accepts(spec: CampaignSpec) -> None:
    for settings in spec.settings_grid():
        settings_from_dict(settings)
    for job in spec.jobs():
        settings_from_dict(job.settings)


# --- the smallest config -----------------------------------------------------------------------


def test_smallest_config_expands_to_two_models_by_two_threads(tmp_path: Path) -> None:
    spec = load_campaign(fixture(tmp_path, "smallest.toml"))
    assert spec.name == "smoke"
    assert [m.name for m in spec.models] == ["squeezenet", "mobilenet"]
    assert spec.models[0].path == tmp_path / "squeezenet.onnx"
    jobs = spec.jobs()
    assert len(jobs) == 4
    assert [(j.model.name, j.settings["threads"], j.repeat) for j in jobs] == [
        ("squeezenet", 1, 0),
        ("squeezenet", 2, 0),
        ("mobilenet", 1, 0),
        ("mobilenet", 2, 0),
    ]
    assert jobs[0].settings == {"min_iterations": 64, "min_seconds": 0.5, "seed": 0, "threads": 1}
    assert all(isinstance(j, JobSpec) and j.batch_size is None for j in jobs)
    assert (spec.repeats, spec.timeout_s, spec.retries, spec.seed) == (1, 600.0, 2, 0)
    assert spec.targets.matches("anything", {})
    assert_agent_accepts(spec)


def test_committed_smoke_folder_loads() -> None:
    spec = load_campaign(SMOKE / "campaign.toml")
    assert len(spec.jobs()) == 4
    assert spec.materialize_models(SMOKE) == {
        "squeezenet": SMOKE / "squeezenet.onnx",
        "mobilenet": SMOKE / "mobilenet.onnx",
    }
    for path in SMOKE.glob("*.onnx"):
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def test_smoke_models_run_in_onnxruntime() -> None:
    for path in SMOKE.glob("*.onnx"):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = np.zeros((1, 3, 16, 16), dtype=np.float32)
        assert session.run(None, {"data": x})[0].shape[0] == 1


# --- every key ---------------------------------------------------------------------------------


def test_example_config_loads_and_uses_every_key() -> None:
    spec = load_campaign(EXAMPLE)
    assert_agent_accepts(spec)
    raw = read_toml(EXAMPLE)
    assert set(raw) == set(TOP_KEYS)
    assert set(raw["matrix"]) == set(MATRIX_KEYS)
    assert set(raw["targets"]) == set(TARGET_KEYS)
    assert set(raw["measure"]) == set(MEASURE_KEYS)
    text = EXAMPLE.read_text()
    for key in {*TOP_KEYS, *MATRIX_KEYS, *TARGET_KEYS, *MEASURE_KEYS}:
        line = next(
            n
            for n, row in enumerate(text.splitlines())
            if row.split("=")[0].strip() in (key, f"[{key}]", f'[{key}."*"]')
        )
        before = text.splitlines()[line - 1] + text.splitlines()[line]
        assert "#" in before, f"{key} is not documented by a comment"


def test_full_config_reads_every_key(tmp_path: Path) -> None:
    spec = load_campaign(fixture(tmp_path, "full.toml"))
    assert (spec.name, spec.description) == ("full-1.0_b", "every key")
    assert [m.name for m in spec.models] == ["dynamic", "resnet", "seq"]
    assert (spec.timeout_s, spec.retries, spec.seed, spec.repeats) == (120.0, 0, 7, 2)
    assert (spec.target_ci, spec.profile_ops) == (0.05, True)
    assert spec.measure == {
        "min_iterations": 10,
        "warmup_runs": 3,
        "min_seconds": 0.25,
        "max_seconds": 5.0,
        "warmup_seconds": 0.1,
        "max_cv": 0.2,
        "max_foreign_cpu_cores": 0.5,
        "sample_interval_ms": 20.0,
    }
    assert spec.input_shapes == {
        "dynamic": {"data": [1, 3, 16, 16]},
        "resnet": {"data": [1, 3, 16, 16]},
        "seq": {"tokens": [1, 32]},
    }
    assert spec.targets == Targets(("pi5-*", "jetson-orin"), {"site": "lab-2"})
    grid = spec.settings_grid()
    assert len(grid) == 2 * 2 * 2 * 1
    assert [(s["provider"], s["opt_level"], s["threads"]) for s in grid[:3]] == [
        ("CPUExecutionProvider", "disable", 1),
        ("CPUExecutionProvider", "disable", 2),
        ("CPUExecutionProvider", "all", 1),
    ]
    assert all(s["inter_threads"] == 1 and s["seed"] == 7 for s in grid)
    assert all(s["target_ci"] == 0.05 for s in grid)  # adaptive stopping on the agent
    assert len(spec.jobs()) == 3 * 8 * 2 * 2
    assert_agent_accepts(spec)


def test_target_ci_is_left_out_for_agents_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_campaign(fixture(tmp_path, "full.toml"))
    monkeypatch.setattr(spec_module, "SETTING_KEYS", SETTING_KEYS - {"target_ci"})
    assert all("target_ci" not in s for s in spec.settings_grid())


def test_without_matrix_or_measure_one_job_per_model_with_agent_defaults(tmp_path: Path) -> None:
    spec = load_campaign(write(tmp_path, 'name = "x"\nmodels = ["squeezenet.onnx"]' + TAIL))
    assert [j.settings for j in spec.jobs()] == [{"seed": 0}]


# --- errors ------------------------------------------------------------------------------------

MODELS = 'models = ["squeezenet.onnx"]\n'
BAD = [
    ("matrx = 1\n" + SMALLEST, "matrx", "did you mean 'matrix'"),
    (SMALLEST.replace("threads =", "thread ="), "matrix.thread", "threads"),
    (SMALLEST + "foo = 1\n", "measure.foo", "min_iterations"),
    (SMALLEST.replace('agents = ["*"]', 'agent = ["*"]'), "targets.agent", "agents"),
    (SMALLEST.replace("[1, 2]", '"2"'), "matrix.threads", "list"),
    (SMALLEST.replace("[1, 2]", '[1, "2"]'), "matrix.threads[1]", "an integer"),
    (SMALLEST.replace("[1, 2]", "[true]"), "matrix.threads[0]", "an integer"),
    (SMALLEST.replace("[1, 2]", "[1, 1]"), "matrix.threads", "twice"),
    (SMALLEST.replace("[1, 2]", "[]"), "matrix.threads", "empty"),
    (SMALLEST.replace("[1, 2]", "[-1]"), "matrix.threads[0]", ">= 0"),
    (SMALLEST.replace("threads = [1, 2]", "batch_sizes = [0]"), "matrix.batch_sizes[0]", ">= 1"),
    (SMALLEST.replace("threads = [1, 2]", 'opt_levels = ["ALL"]'), "matrix.opt_levels[0]", "all"),
    (SMALLEST.replace("0.5", '"0.5"'), "measure.min_seconds", "a number"),
    (SMALLEST.replace("0.5", "-1"), "measure.min_seconds", ">= 0"),
    (SMALLEST.replace("0.5", "nan"), "measure.min_seconds", "a number"),
    (SMALLEST.replace("= 64", "= 0"), "measure.min_iterations", ">= 1"),
    (SMALLEST.replace("repeats = 1", "repeats = 0"), "measure.repeats", ">= 1"),
    (SMALLEST + "max_seconds = 0.1\n", "measure.min_seconds", "max_seconds"),
    (SMALLEST + "target_ci = 1.0\n", "measure.target_ci", "below 1"),
    (SMALLEST + "target_ci = 0\n", "measure.target_ci", "> 0"),
    (SMALLEST + "profile_ops = 1\n", "measure.profile_ops", "true or false"),
    ("retries = -1\n" + SMALLEST, "retries", ">= 0"),
    ("timeout_s = 0\n" + SMALLEST, "timeout_s", "> 0"),
    ("seed = -3\n" + SMALLEST, "seed", ">= 0"),
    ("matrix = 3\n" + MODELS + 'name = "x"' + TAIL, "matrix", "a table"),
    (SMALLEST.replace('name = "smoke"', ""), "name", "missing"),
    (SMALLEST.replace('name = "smoke"', "name = 3"), "name", "a string"),
    (SMALLEST.replace('"smoke"', '"a b"'), "name", "not a campaign name"),
    (SMALLEST.replace('"smoke"', '"' + "x" * 65 + '"'), "name", "not a campaign name"),
    (SMALLEST.replace("models =", "model ="), "model", "models"),
    ('name = "x"\n' + TAIL, "models", "missing"),
    ('name = "x"\nmodels = []\n' + TAIL, "models", "empty"),
    ('name = "x"\nmodels = "squeezenet.onnx"\n' + TAIL, "models", "list"),
    ('name = "x"\n' + MODELS, "targets", "missing"),
    ('name = "x"\n' + MODELS + "[targets]\nagents = []\n", "targets", "selects no agent"),
    ('name = "x"\n' + MODELS + "[targets]\n", "targets", "selects no agent"),
    ('name = "x"\n' + MODELS + "[targets]\ntags = { ram = 8 }\n", "targets.tags.ram", "string"),
    ('name = "x"\nmodels = ["zoo:resnet"]' + TAIL, "models[0]", "mlp, convnet"),
    ('name = "x"\nmodels = ["squeezenet.onnx", "squeezenet.onnx"]' + TAIL, "models", "twice"),
    ('name = "x"\nmodels = ["squeezenet.onnx", "*/squeezenet.onnx"]' + TAIL, "models[1]", "glob"),
    (SMALLEST + '[inputs.nope]\ndata = "1x3x16x16"\n', "inputs.nope", "squeezenet, mobilenet"),
    (SMALLEST + '[inputs.squeezenet]\nimg = "1x3x16x16"\n', "inputs.squeezenet.img", "data"),
    (SMALLEST + '[inputs."*"]\nimg = "1x3x16x16"\n', 'inputs."*".img', "data"),
    (SMALLEST + '[inputs.squeezenet]\ndata = "1x3x?"\n', "inputs.squeezenet.data", "1x3x224"),
    (SMALLEST + "[inputs.squeezenet]\ndata = [1, 3, 16]\n", "inputs.squeezenet.data", "4 dims"),
    (SMALLEST + '[inputs.squeezenet]\ndata = "1x3x8x8"\n', "inputs.squeezenet.data", "dim 2"),
    (SMALLEST + '[inputs.squeezenet]\ndata = "2x3x16x16"\n', "inputs.squeezenet.data", "dim 0"),
    (SMALLEST + "[inputs]\nsqueezenet = 3\n", "inputs.squeezenet", "a table"),
]


@pytest.mark.parametrize(("text", "key", "hint"), BAD)
def test_error_names_file_and_key(tmp_path: Path, text: str, key: str, hint: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        load_campaign(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert caught.value.hint, "every error says what to do"
    assert hint in message, message


def test_provider_names_are_left_to_the_agents(tmp_path: Path) -> None:
    text = SMALLEST.replace("threads = [1, 2]", 'providers = ["NoSuchExecutionProvider"]')
    assert load_campaign(write(tmp_path, text)).jobs()[0].settings["provider"] == (
        "NoSuchExecutionProvider"
    )


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\nmodels = [\n[matrix]\n')
    with pytest.raises(UsageError, match=r"malformed TOML: .*line 3") as caught:
        load_campaign(path)
    assert str(path) in str(caught.value)


def test_missing_campaign_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.toml"):
        load_campaign(tmp_path / "nope.toml")


def test_missing_model_names_the_resolved_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub", 'name = "x"\nmodels = ["../gone.onnx"]' + TAIL)
    with pytest.raises(UsageError) as caught:
        load_campaign(path)
    assert f"{path}: models[0]: " in str(caught.value)
    assert f"resolves to {(tmp_path / 'gone.onnx').resolve()}," in str(caught.value)


def test_duplicate_stems_name_both_entries(tmp_path: Path) -> None:
    conv_model(tmp_path / "a" / "net.onnx")
    conv_model(tmp_path / "b" / "net.onnx")
    path = write(tmp_path, 'name = "x"\nmodels = ["a/net.onnx", "b/*.onnx"]' + TAIL)
    with pytest.raises(UsageError) as caught:
        load_campaign(path)
    assert str(caught.value).startswith(f"{path}: models: two models are named 'net' ")
    assert "'a/net.onnx'" in str(caught.value) and "'b/*.onnx'" in str(caught.value)


def test_a_directory_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(UsageError, match="is not a file"):
        load_campaign(write(tmp_path, 'name = "x"\nmodels = ["dir.onnx"]' + TAIL))


def test_a_file_that_is_not_onnx_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"\xff not a model")
    with pytest.raises(ModelError, match=r"junk\.onnx"):
        load_campaign(write(tmp_path, 'name = "x"\nmodels = ["junk.onnx"]' + TAIL))


# --- models: globs and the zoo -----------------------------------------------------------------


def test_globs_are_relative_sorted_and_recursive(tmp_path: Path) -> None:
    for name in ("b", "a", "deep/c"):
        conv_model(tmp_path / "models" / f"{name}.onnx")
    (tmp_path / "models" / "notes.txt").write_text("not a model")
    flat = load_campaign(write(tmp_path, 'name = "x"\nmodels = ["models/*.onnx"]' + TAIL))
    assert [m.name for m in flat.models] == ["a", "b"]
    deep = load_campaign(write(tmp_path, 'name = "x"\nmodels = ["models/**/*.onnx"]' + TAIL))
    assert [m.name for m in deep.models] == ["a", "b", "c"]


def test_zoo_names_and_materialize(tmp_path: Path) -> None:
    text = 'name = "x"\nmodels = ["zoo:mlp", "squeezenet.onnx"]' + TAIL
    spec = load_campaign(write(tmp_path, text))
    mlp = spec.models[0]
    assert (mlp.name, mlp.zoo, mlp.path) == ("mlp", "mlp", None)
    assert spec.models[0].inputs[0].dims == (64, 512)
    paths = spec.materialize_models(tmp_path / "out")
    assert paths == {"mlp": tmp_path / "out" / "mlp.onnx", "squeezenet": spec.models[1].path}
    assert paths["mlp"].is_file()


def test_zoo_star_is_every_zoo_model(tmp_path: Path) -> None:
    spec = load_campaign(write(tmp_path, 'name = "x"\nmodels = ["zoo:*"]' + TAIL))
    assert [m.name for m in spec.models] == list(ZOO)
    assert_agent_accepts(spec)


# --- input shapes and batch sizes --------------------------------------------------------------


def test_batch_sizes_set_dynamic_dim_0(tmp_path: Path) -> None:
    conv_model(tmp_path / "dyn.onnx", batch="N")
    text = 'name = "x"\nmodels = ["dyn.onnx"]\n[matrix]\nbatch_sizes = [1, 4]' + TAIL
    spec = load_campaign(write(tmp_path, text))
    jobs = spec.jobs()
    assert [(j.batch_size, j.settings["input_shapes"]) for j in jobs] == [
        (1, {"data": [1, 3, 16, 16]}),
        (4, {"data": [4, 3, 16, 16]}),
    ]
    session = ort.InferenceSession(str(tmp_path / "dyn.onnx"), providers=["CPUExecutionProvider"])
    for job in jobs:  # the shapes are ones the agent resolves against the real model
        settings = settings_from_dict(job.settings)
        shapes = resolve_shapes(session.get_inputs(), settings.input_shapes)
        assert shapes == {"data": (job.batch_size, 3, 16, 16)}


def test_batch_sizes_replace_dim_0_of_given_shapes(tmp_path: Path) -> None:
    sequence_model(tmp_path / "seq.onnx")
    text = (
        'name = "x"\nmodels = ["seq.onnx"]\n[matrix]\nbatch_sizes = [2, 8]\n'
        "[inputs.seq]\ntokens = [1, 16]" + TAIL
    )
    spec = load_campaign(write(tmp_path, text))
    assert spec.input_shapes == {"seq": {"tokens": [1, 16]}}
    assert [j.settings["input_shapes"] for j in spec.jobs()] == [
        {"tokens": [2, 16]},
        {"tokens": [8, 16]},
    ]


def test_batch_size_against_a_fixed_dim_0_names_the_model(tmp_path: Path) -> None:
    path = write(tmp_path, SMALLEST.replace("threads = [1, 2]", "batch_sizes = [1, 2]"))
    with pytest.raises(UsageError) as caught:
        load_campaign(path)
    assert str(caught.value).startswith(f"{path}: matrix.batch_sizes: model 'squeezenet' ")
    assert "batch size 2" in str(caught.value)


def test_batch_size_equal_to_the_fixed_dim_0_is_fine(tmp_path: Path) -> None:
    spec = load_campaign(write(tmp_path, SMALLEST.replace("threads = [1, 2]", "batch_sizes = [1]")))
    assert [j.settings.get("input_shapes") for j in spec.jobs()] == [None, None]


def test_dynamic_dim_without_a_shape_says_what_to_add(tmp_path: Path) -> None:
    sequence_model(tmp_path / "seq.onnx")
    path = write(tmp_path, 'name = "x"\nmodels = ["seq.onnx"]\n[matrix]\nbatch_sizes = [1]' + TAIL)
    with pytest.raises(UsageError) as caught:
        load_campaign(path)
    assert str(caught.value).startswith(f"{path}: inputs: model 'seq': input 'tokens'")
    assert caught.value.hint is not None and '[inputs.seq] tokens = "?x?"' in caught.value.hint


def test_dynamic_dim_0_without_batch_sizes_needs_a_shape(tmp_path: Path) -> None:
    conv_model(tmp_path / "dyn.onnx", batch="N")
    with pytest.raises(UsageError, match=r"inputs: model 'dyn'.*positions \[0\]"):
        load_campaign(write(tmp_path, 'name = "x"\nmodels = ["dyn.onnx"]' + TAIL))
    text = 'name = "x"\nmodels = ["dyn.onnx"]\n[inputs."*"]\ndata = "3x3x16x16"' + TAIL
    spec = load_campaign(write(tmp_path, text))
    assert spec.jobs()[0].settings["input_shapes"] == {"data": [3, 3, 16, 16]}


def test_model_table_overrides_star(tmp_path: Path) -> None:
    conv_model(tmp_path / "dyn.onnx", batch="N")
    text = (
        'name = "x"\nmodels = ["dyn.onnx", "squeezenet.onnx"]\n'
        '[inputs."*"]\ndata = "1x3x16x16"\n[inputs.dyn]\ndata = "5x3x16x16"' + TAIL
    )
    spec = load_campaign(write(tmp_path, text))
    assert spec.input_shapes == {
        "dyn": {"data": [5, 3, 16, 16]},
        "squeezenet": {"data": [1, 3, 16, 16]},
    }


# --- repeats and targets -----------------------------------------------------------------------


def test_repeats_expand_outermost(tmp_path: Path) -> None:
    spec = load_campaign(write(tmp_path, SMALLEST.replace("repeats = 1", "repeats = 3")))
    jobs = spec.jobs()
    assert len(jobs) == 12
    assert [j.repeat for j in jobs] == [0] * 4 + [1] * 4 + [2] * 4
    assert jobs[0].settings == jobs[4].settings and jobs[0].model == jobs[4].model


def test_targets_match_by_name_glob() -> None:
    targets = Targets(agents=("pi5-*", "jetson-orin"))
    assert targets.matches("pi5-lab2", {})
    assert targets.matches("jetson-orin", {"board": "jetson"})
    assert not targets.matches("jetson-nano", {})
    assert not targets.matches("PI5-lab2", {}), "globs are case-sensitive"


def test_targets_match_by_tags_all_required() -> None:
    targets = Targets(tags={"board": "pi5", "site": "lab-2"})
    assert targets.matches("any", {"board": "pi5", "site": "lab-2", "os": "debian"})
    assert not targets.matches("any", {"board": "pi5"})
    assert not targets.matches("any", {"board": "pi5", "site": "lab-3"})


def test_targets_with_names_and_tags_need_both(tmp_path: Path) -> None:
    spec = load_campaign(fixture(tmp_path, "full.toml"))
    assert spec.targets.matches("pi5-a", {"site": "lab-2"})
    assert not spec.targets.matches("pi5-a", {"site": "lab-1"})
    assert not spec.targets.matches("rock5", {"site": "lab-2"})


def test_tags_only_selector_loads(tmp_path: Path) -> None:
    spec = load_campaign(fixture(tmp_path, "tags_only.toml"))
    assert spec.targets == Targets(tags={"board": "pi5", "site": "lab-2"})
    assert spec.targets.matches("whatever", {"board": "pi5", "site": "lab-2"})


def test_an_empty_selector_cannot_be_built() -> None:
    with pytest.raises(UsageError, match="select no agent"):
        Targets()


# --- storing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["smallest.toml", "full.toml", "tags_only.toml"])
def test_round_trip_through_json(tmp_path: Path, name: str) -> None:
    spec = load_campaign(fixture(tmp_path, name))
    stored = json.loads(json.dumps(spec.to_dict()))
    restored = CampaignSpec.from_dict(stored)
    assert restored == spec
    assert restored.jobs() == spec.jobs()


def test_round_trip_of_the_example() -> None:
    spec = load_campaign(EXAMPLE)
    assert CampaignSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_from_dict_refuses_another_format(tmp_path: Path) -> None:
    stored = load_campaign(fixture(tmp_path, "smallest.toml")).to_dict()
    with pytest.raises(UsageError, match="format 99"):
        CampaignSpec.from_dict({**stored, "format_version": 99})
    del stored["models"]
    with pytest.raises(UsageError, match="malformed"):
        CampaignSpec.from_dict(stored)
