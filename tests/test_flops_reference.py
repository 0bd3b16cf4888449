"""The counter against the team kit's reference models and independent tools' counts.

The kit lives beside the repo (``../shared/reference-models``); without it these tests skip.
MACs of Conv/ConvTranspose/Gemm/MatMul are compared with PyTorch's FlopCounterMode (its
math-backend figure where attention is involved), as ``../shared/README.md`` says to.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from collector.flops import KNOWN_OP_TYPES, count_model
from collector.flops.report import CostReport

KIT = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference-models"
REFERENCE = KIT / "reference.json"
MODELS = sorted(json.loads(REFERENCE.read_text())["models"]) if REFERENCE.exists() else ["-"]

pytestmark = pytest.mark.reference

# Op types the architectures named in the brief export to (ResNet, MobileNet v2/v3,
# EfficientNet, ShuffleNet, SqueezeNet, ConvNeXt, ViT, BERT, YOLOv8/YOLO11).
ARCHITECTURE_OPS = """
Conv BatchNormalization Relu Clip HardSigmoid HardSwish Sigmoid Mul Add Sub Div Pow Sqrt Erf
Gelu Tanh MaxPool AveragePool GlobalAveragePool Gemm MatMul Flatten Reshape Transpose Concat
Split Slice Gather Shape Unsqueeze Squeeze Expand Constant ConstantOfShape Range Cast Resize
Softmax LayerNormalization ReduceMean Where Equal Identity Pad Dropout Einsum TopK ArgMax Neg
Exp Log Abs Min Max ConvTranspose Mod Less Greater Not And Or Tile ScatterND GatherElements
ReduceMax ReduceSum CumSum Sum Softplus LeakyRelu PRelu Reciprocal Floor Ceil Sin Cos
""".split()


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """reference.json, or a skip when the kit is not beside the repo."""
    if not REFERENCE.exists():
        pytest.skip(f"team kit not found at {KIT.resolve()} (clone shared/ beside the repo)")
    return json.loads(REFERENCE.read_text())["models"]


@pytest.fixture(scope="module")
def reports(
    reference: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, CostReport]:
    """Each reference model counted once, at the input shapes its reference counts used."""
    folder = tmp_path_factory.mktemp("reference-models")
    counted: dict[str, CostReport] = {}
    for key, entry in reference.items():
        path = folder / entry["file"].removesuffix(".gz")
        path.write_bytes(gzip.decompress((KIT / entry["file"]).read_bytes()))
        shapes = {name: spec["shape"] for name, spec in entry.get("run_inputs", {}).items()}
        counted[key] = count_model(path, shapes or None)
    return counted


def _torch_macs(entry: dict[str, Any]) -> int | None:
    """FlopCounterMode's MACs, with attention (math backend) when recorded."""
    torch = entry.get("reference_counts", {}).get("torch_flop_counter")
    if torch is None:
        return None
    return torch.get("total_with_sdpa_math_backend_in_MACs", torch["total_in_MACs"])


@pytest.mark.parametrize("key", MODELS)
def test_macs_within_half_a_percent_of_torch(
    key: str, reference: dict[str, Any], reports: dict[str, CostReport]
) -> None:
    expected = _torch_macs(reference[key])
    if expected is None:
        pytest.skip(f"{key}: no PyTorch FlopCounterMode count recorded")
    assert reports[key].total.macs == pytest.approx(expected, rel=0.005)


@pytest.mark.parametrize("key", MODELS)
def test_params_match_float_initializers(
    key: str, reference: dict[str, Any], reports: dict[str, CostReport]
) -> None:
    expected = reference[key].get("params", {}).get("onnx_float_initializer_elements")
    if expected is None:
        pytest.skip(f"{key}: no parameter count recorded")
    assert reports[key].total.params == expected


@pytest.mark.parametrize("key", MODELS)
def test_nothing_uncounted_and_every_op_known(
    key: str, reference: dict[str, Any], reports: dict[str, CostReport]
) -> None:
    entry = reference[key]
    histogram = entry.get("op_histogram") or entry.get("op_histogram_including_subgraphs", {})
    assert set(histogram) <= KNOWN_OP_TYPES
    assert reports[key].uncounted == {}
    counts = {op: row.count for op, row in reports[key].by_op_type.items()}
    assert counts == histogram


def test_architecture_op_coverage() -> None:
    assert sorted(set(ARCHITECTURE_OPS) - KNOWN_OP_TYPES) == []


def test_documented_headline_numbers(reports: dict[str, CostReport]) -> None:
    # torchvision's "GFLOPS" column (GMACs) and Ultralytics' "FLOPs (B)" (2 x GMACs)
    assert round(reports["resnet18"].total.macs / 1e9, 3) == 1.814
    assert round(reports["mobilenet_v2"].total.macs / 1e9, 3) == 0.301
    assert round(reports["yolov8n"].total.flops_2mac / 1e9, 1) == 8.7


def test_ppocr_conv_matches_onnx_tool_and_conv_transpose_does_not_overcount(
    reference: dict[str, Any], reports: dict[str, CostReport]
) -> None:
    tool = reference["ppocrv4_det"]["reference_counts"]["onnx_tool"]["by_op_type_MACs"]
    conv = reports["ppocrv4_det"].by_op_type["Conv"]
    bias_flops = conv.flops - 2 * conv.macs  # onnx-tool folds bias adds into its "MACs"
    assert conv.macs + bias_flops == tool["Conv"]
    # 2x2 stride-2 ConvTranspose: each input pixel meets the kernel once. onnx-tool counts
    # per output pixel and gets a multiple of the true count.
    deconv = reports["ppocrv4_det"].by_op_type["ConvTranspose"]
    assert deconv.macs < tool["ConvTranspose"] / 2


@pytest.mark.parametrize("key", MODELS)
def test_shapes_resolve_without_running_the_model(key: str, reports: dict[str, CostReport]) -> None:
    # torch's split/MHA exports hide shapes behind Div/Mod chains; folding must see through
    # them so that no whole-model onnxruntime run (slow, and an assumption) is needed.
    assert reports[key].assumptions == []
