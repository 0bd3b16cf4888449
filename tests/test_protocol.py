"""The wire protocol: round trips, committed golden samples, and refusal of anything malformed.

`decode` faces the network, so besides named malformed cases a hypothesis test feeds it random
and mutated frames and checks that it either returns a message or raises ProtocolError.
"""

from __future__ import annotations

import base64
import json
import math
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import protocol
from shared.errors import ProtocolError
from shared.protocol import (
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Ack,
    CampaignAccepted,
    Heartbeat,
    Job,
    JobFailed,
    Message,
    ModelData,
    ModelRequest,
    Progress,
    Register,
    Reject,
    Result,
    Status,
    StatusRequest,
    SubmitCampaign,
    VersionMismatch,
    Welcome,
    decode,
    encode,
)

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "wire" / f"v{PROTOCOL_VERSION}"
MODEL = b"\x08\x07flopgap-fake-onnx\x00\xff"
MODEL_SHA256 = "790e8c9d9723aea56ad5d379af66d5ecb551aad0b1bf94294b649a7c91a61933"

# The expected content of every golden sample; tests/data/wire/make_golden.py writes them.
GOLDEN: dict[str, Message] = {
    "register": Register(
        agent_name="pi5-lab-01",
        agent_version="0.1.0",
        device={"arch": "aarch64", "cpu_model": "Cortex-A76", "cores": 4, "npu": None},
        tags={"site": "Zürich", "rack": "b2"},
        running_job_id="",
    ),
    "welcome": Welcome(agent_id="agent-7f3a", heartbeat_interval_s=2.5),
    "heartbeat": Heartbeat(state="busy", job_id="job-0001"),
    "job": Job(
        job_id="job-0001",
        model_name="mobilenetv2-12",
        model_sha256=MODEL_SHA256,
        settings={"provider": "CPUExecutionProvider", "threads": 4, "warmup": 10},
        timeout_s=600.0,
    ),
    "model_request": ModelRequest(sha256=MODEL_SHA256),
    "model_data": ModelData(sha256=MODEL_SHA256, model=MODEL),
    "progress": Progress(
        job_id="job-0001",
        progress={"phase": "steady", "iterations": 812, "elapsed_s": 1.02, "median_ms": None},
    ),
    "result": Result(
        job_id="job-0001",
        result_id="res-0001",
        document={"schema_version": 1, "latency_ms": {"p50": 1.2}, "valid": True, "power": None},
        latencies_ns=np.array([1_200_345, 1_198_000, 0, 2**40], dtype=np.int64),
    ),
    "job_failed": JobFailed(
        job_id="job-0002", result_id="res-0002", kind="model_error", error="op NMS ✗ opset 11"
    ),
    "ack": Ack(result_id="res-0001"),
    "reject": Reject(
        reason="protocol 3 required", hint=protocol.UPGRADE_THIS_SIDE, peer_proto=2, code="version"
    ),
    "submit_campaign": SubmitCampaign(
        campaign={"name": "smoke", "models": {"mlp": MODEL_SHA256}, "matrix": {"threads": [1, 2]}}
    ),
    "campaign_accepted": CampaignAccepted(campaign_id="c-0001", jobs=8),
    "status_request": StatusRequest(campaign=""),
    "status": Status(status={"agents": [{"name": "pi5-lab-01", "state": "online"}]}),
}


def load_golden(name: str) -> list[bytes]:
    """The committed frames of one golden sample."""
    data = json.loads((GOLDEN_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return [base64.b64decode(frame) for frame in data["frames_b64"]]


def with_header(frames: list[bytes], change: Callable[[dict[str, Any]], None]) -> list[bytes]:
    """The same frames with the JSON header edited by `change`."""
    header = json.loads(frames[0])
    change(header)
    return [json.dumps(header).encode(), *frames[1:]]


def rejected(frames: Any, *words: str) -> ProtocolError:
    """Assert decode refuses `frames` with a message naming `words` and a hint what to do."""
    with pytest.raises(ProtocolError) as info:
        decode(frames)
    for word in words:
        assert word in str(info.value)
    assert info.value.hint
    return info.value


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        *GOLDEN.values(),
        Register("ラズパイ-🥧", "1.0.0rc1", {}, {}, ""),
        Register("a", "b", {"nested": {"list": [1, -2.5, "x", None, True]}}, {"k": ""}, "j"),
        Welcome("", 5),
        Heartbeat("idle", ""),
        ModelData(protocol.hashlib.sha256(b"").hexdigest(), b""),
        Result("j", "r", {}, np.array([], dtype=np.int64)),
        Result("j", "r", {"n": 1_000_000}, np.arange(1_000_000, dtype=np.int64) * 997),
        JobFailed("j", "r", "timeout", "x" * protocol.MAX_TEXT_BYTES),
        Reject("", "", 0),
    ],
    ids=lambda msg: type(msg).__name__,
)
def test_round_trip(msg: Message) -> None:
    assert decode(encode(msg)) == msg


def test_decoded_latencies_are_read_only_int64_views() -> None:
    frames = encode(GOLDEN["result"])
    latencies = decode(frames).latencies_ns  # type: ignore[attr-defined]
    assert latencies.dtype == np.int64 and not latencies.flags.writeable
    assert np.shares_memory(latencies, np.frombuffer(frames[1], dtype=np.uint8))


def test_mutable_frames_are_copied_so_the_message_stays_frozen() -> None:
    frames = encode(GOLDEN["result"])
    buffer = bytearray(frames[1])
    msg = decode([frames[0], memoryview(buffer)])
    buffer[:8] = bytes(8)
    assert msg == GOLDEN["result"]


def test_welcome_interval_is_a_float_and_encodes_canonically() -> None:
    assert encode(Welcome("a", 5)) == encode(Welcome("a", 5.0))
    assert isinstance(decode(encode(Welcome("a", 5))).heartbeat_interval_s, float)  # type: ignore[attr-defined]


# --- golden samples -------------------------------------------------------------------------


def test_every_message_type_has_a_golden_sample() -> None:
    assert set(GOLDEN) == set(MESSAGE_TYPES)
    assert {path.stem for path in GOLDEN_DIR.glob("*.json")} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_sample_decodes_and_reencodes_byte_for_byte(name: str) -> None:
    frames = load_golden(name)
    assert decode(frames) == GOLDEN[name]
    assert encode(GOLDEN[name]) == frames


# --- decode refuses malformed frames --------------------------------------------------------

GOOD = encode(GOLDEN["result"])


@pytest.mark.parametrize(
    ("frames", "words"),
    [
        ([], ["empty message"]),
        (b"not a list", ["list of frames"]),
        ([b"\x93\x00\xff garbage"], ["not UTF-8 JSON"]),
        ([GOOD[0][:40]], ["not UTF-8 JSON"]),
        ([b"[1, 2]"], ["JSON list", "expected an object"]),
        ([b'"hello"'], ["JSON str"]),
        ([b"[" * 100_000], ["not UTF-8 JSON"]),
        ([b'{"proto": 1, "proto": 1}'], ["duplicate key"]),
        ([b'{"proto": NaN}'], ["NaN is not JSON"]),
        ([GOOD[0].replace(b'"p50":1.2', b'"p50":1e999'), GOOD[1]], ["overflows a float"]),
        (
            [GOOD[0].replace(b'"p50":1.2', b'"p50":' + b"9" * 400 + b".0"), GOOD[1]],
            ["overflows a float"],
        ),
        ([b" " * (protocol.MAX_HEADER_BYTES + 1)], ["over 1048576"]),
        (["text frame", b""], ["frame 0 is str"]),
        ([GOOD[0], 42], ["frame 1 is int"]),
        (GOOD[:1], ["declares 1 binary frames, got 0"]),
        ([*GOOD, b""], ["declares 1 binary frames, got 2"]),
        ([GOOD[0], GOOD[1][:-8]], ["is 24 bytes, header says 4 x 8"]),
        ([GOOD[0], GOOD[1] + b"\x00"], ["is 33 bytes"]),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_decode_refuses_malformed_frames(frames: Any, words: list[str]) -> None:
    rejected(frames, *words)


def edit(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    """A header edit that sets (or with ..., deletes) the value at `path`."""

    def change(header: dict[str, Any]) -> None:
        *parents, last = path
        for key in parents:
            header = header[key]
        if value is ...:
            del header[last]
        else:
            header[last] = value

    return change


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("proto",), ..., ["'proto' is None"]),
        (("proto",), "1", ["'proto' is '1'"]),
        (("proto",), True, ["'proto' is True"]),
        (("extra",), 1, ["unknown fields ['extra']"]),
        (("type",), "pong", ["unknown message type 'pong'", "register, welcome"]),
        (("type",), ["result"], ["unknown message type"]),
        (("body",), [], ["'body' must be a JSON object"]),
        (("body", "job_id"), ..., ["missing fields ['job_id']"]),
        (("body", "colour"), "red", ["unknown fields ['colour']"]),
        (("body", "job_id"), 7, ["'job_id' must be a string, got int"]),
        (("body", "document"), [1], ["'document' must be a JSON object"]),
        (("body", "job_id"), "é" * 2049, ["'job_id' is 4098 bytes", "4096"]),
        (("body", "job_id"), "\ud800", ["lone surrogate"]),
        (("frames",), {}, ["'frames' must be a list"]),
        (("frames",), [], ["frames are []", "['latencies_ns']"]),
        (("frames", 0, "field"), "model", ["frames are ['model']"]),
        (("frames", 0, "dtype"), "<i4", ["dtype '<i4', not <i8"]),
        (("frames", 0, "dtype"), ">i8", ["dtype '>i8'"]),
        (("frames", 0, "length"), 10**15, ["length 1000000000000000 not in 0..50000000"]),
        (("frames", 0, "length"), -1, ["length -1"]),
        (("frames", 0, "length"), 4.0, ["length 4.0"]),
        (("frames", 0, "length"), True, ["length True"]),
        (("frames", 0, "extra"), 1, ["frame 'latencies_ns'", "unknown fields ['extra']"]),
    ],
    ids=lambda value: repr(value)[:20],
)
def test_decode_refuses_bad_header(path: tuple[Any, ...], value: Any, words: list[str]) -> None:
    rejected(with_header(GOOD, edit(path, value)), *words)


@pytest.mark.parametrize(
    ("name", "path", "value", "words"),
    [
        ("reject", ("body", "peer_proto"), True, ["'peer_proto' must be an integer, got bool"]),
        ("reject", ("body", "peer_proto"), -1, ["peer_proto -1 is out of range"]),
        ("welcome", ("body", "heartbeat_interval_s"), False, ["must be a number, got bool"]),
        ("welcome", ("body", "heartbeat_interval_s"), 0, ["not > 0"]),
        ("welcome", ("body", "heartbeat_interval_s"), 10**400, ["not a finite number"]),
        ("heartbeat", ("body", "state"), "asleep", ["'asleep' is not one of"]),
        ("register", ("body", "tags"), {"k": 1}, ["'tags' must be a dict of str to str"]),
        ("job", ("body", "model_sha256"), "ABC", ["is not 64 lowercase hex digits"]),
        ("model_data", ("body", "sha256"), "0" * 64, ["model bytes hash to 790e8c9d"]),
        ("heartbeat", ("body", "job_id"), "", ["busy heartbeat names its job"]),
        ("reject", ("body", "code"), "whatever", ["reject code 'whatever' is not one of"]),
        ("job_failed", ("body", "error"), "e" * 65537, ["'error' is 65537 bytes"]),
    ],
)
def test_decode_refuses_bad_values(name: str, path: tuple[Any, ...], value: Any, words: list[str]):
    rejected(with_header(encode(GOLDEN[name]), edit(path, value)), *words)


def test_negative_latency_is_refused() -> None:
    rejected([GOOD[0], np.array([1, -5, 3, 4], dtype="<i8").tobytes()], "negative duration")


def test_oversized_json_field_is_refused() -> None:
    big = {"blob": "x" * protocol.MAX_JSON_FIELD_BYTES}
    rejected(with_header(GOOD, edit(("body", "document"), big)), "'document' is 262155 bytes")


def test_absurd_declared_length_allocates_nothing() -> None:
    frames = with_header(encode(GOLDEN["model_data"]), edit(("frames", 0, "length"), 2**62))
    tracemalloc.start()
    rejected(frames, "'model' length 4611686018427387904 not in 0..")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20


def test_model_limit_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "MAX_MODEL_BYTES", len(MODEL) - 1)
    size = len(MODEL)
    rejected(encode_unchecked(GOLDEN["model_data"]), f"'model' length {size} not in 0..{size - 1}")
    with pytest.raises(ProtocolError, match=f"over {size - 1}"):
        encode(GOLDEN["model_data"])


def encode_unchecked(msg: Message) -> list[bytes]:
    """Frames as a peer with other limits would send them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(protocol, "MAX_MODEL_BYTES", 1 << 30)
        return encode(msg)


# --- versions -------------------------------------------------------------------------------


def test_newer_peer_says_upgrade_this_side() -> None:
    newer = PROTOCOL_VERSION + 1
    err = rejected(
        with_header(GOOD, edit(("proto",), newer)), f"protocol {newer}", "upgrade this side"
    )
    assert isinstance(err, VersionMismatch) and err.peer_proto == newer
    assert "pip install -U flopgap" in str(err)


def test_older_peer_says_upgrade_the_peer() -> None:
    older = PROTOCOL_VERSION - 1
    err = rejected(
        with_header(GOOD, edit(("proto",), older)),
        f"peer speaks protocol {older}, this side speaks {PROTOCOL_VERSION}",
        "upgrade the peer",
    )
    assert isinstance(err, VersionMismatch) and err.peer_proto == older


OLD_GOLDEN = sorted((GOLDEN_DIR.parent).glob("v[0-9]*/*.json"))


@pytest.mark.parametrize(
    "path",
    [p for p in OLD_GOLDEN if p.parent != GOLDEN_DIR],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_samples_of_older_versions_get_an_upgrade_message(path: Path) -> None:
    """Committed samples of every older version, read through today's decoder."""
    frames = [base64.b64decode(f) for f in json.loads(path.read_text())["frames_b64"]]
    if path.stem == "reject":  # the frozen layout: readable by every version
        assert isinstance(decode(frames), Reject)
        return
    err = rejected(frames, "upgrade the peer")
    assert isinstance(err, VersionMismatch) and err.peer_proto < PROTOCOL_VERSION


def test_version_is_checked_before_the_layout_a_newer_peer_may_have_changed() -> None:
    err = rejected([b'{"proto": 7, "kind": "hello", "payload": []}'], "upgrade this side")
    assert isinstance(err, VersionMismatch)


def test_reject_from_any_version_decodes() -> None:
    def future(header: dict[str, Any]) -> None:
        header.update(proto=99, trace="abc")
        header["body"]["retry_after_s"] = 30

    frames = with_header(encode(GOLDEN["reject"]), future)
    assert decode(frames) == GOLDEN["reject"]


def test_foreign_reject_still_needs_its_frozen_fields() -> None:
    frames = with_header(encode(GOLDEN["reject"]), edit(("proto",), 99))
    rejected(with_header(frames, edit(("body", "reason"), ...)), "missing fields ['reason']")
    rejected(with_header(frames, edit(("body",), None)), "'body' must be a JSON object")


# --- encode refuses what decode would refuse ------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "words"),
    [
        (Result("j", "r", {"x": math.nan}, GOLDEN["result"].latencies_ns), ["not plain JSON"]),  # type: ignore[attr-defined]
        (Result("j", "r", {"x": (1, 2)}, np.zeros(1, np.int64)), ["changes through JSON"]),
        (Result("j", "r", {1: "a"}, np.zeros(1, np.int64)), ["changes through JSON"]),  # type: ignore[dict-item]
        (Result("j", "r", {"x": np.int64(1)}, np.zeros(1, np.int64)), ["not plain JSON"]),
        (Result("j", "r", {}, np.zeros(1, np.float64)), ["numpy int64 array"]),
        (Result("j", "r", {}, np.zeros(1, np.int32)), ["numpy int64 array"]),
        (Result("j", "r", {}, [1, 2]), ["numpy int64 array, got list"]),  # type: ignore[arg-type]
        (Result("j", "r", {}, np.zeros((2, 2), np.int64)), ["expected 1-D"]),
        (Result("j", "r", {}, np.array([-1], np.int64)), ["negative duration"]),
        (Welcome("a", True), ["got bool"]),
        (Welcome("a", math.inf), ["not a finite number"]),
        (Register("n" * 4097, "v", {}, {}, ""), ["'agent_name' is 4097 bytes"]),
        (ModelData(MODEL_SHA256, bytearray(MODEL)), ["'model' must be bytes"]),  # type: ignore[arg-type]
        (ModelData(MODEL_SHA256, b"other"), ["model bytes hash to"]),
        (Job("j", "m", MODEL_SHA256, {}, 0.0), ["timeout_s is 0.0, not > 0"]),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_encode_refuses_what_decode_would_refuse(msg: Message, words: list[str]) -> None:
    with pytest.raises(ProtocolError) as info:
        encode(msg)
    for word in words:
        assert word in str(info.value)
    assert info.value.hint


def test_encode_refuses_a_non_message() -> None:
    with pytest.raises(ProtocolError, match="dict is not a wire message"):
        encode({"type": "ack"})  # type: ignore[arg-type]


def test_too_many_samples_are_refused_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "MAX_LATENCY_SAMPLES", 3)
    with pytest.raises(ProtocolError, match="4 values, over 3"):
        encode(GOLDEN["result"])
    rejected(GOOD, "length 4 not in 0..3")


# --- properties -----------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def decodes_or_refuses(frames: Any) -> None:
    """The contract towards the network: a message, or ProtocolError, never anything else."""
    try:
        assert isinstance(decode(frames), Message)
    except ProtocolError as err:
        assert err.hint


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_arbitrary_frames_decode_or_refuse(frames: list[bytes]) -> None:
    decodes_or_refuses(frames)


@FUZZ
@given(st.sampled_from(sorted(GOLDEN)), st.data())
def test_mutated_frames_decode_or_refuse(name: str, data: st.DataObject) -> None:
    frames = encode(GOLDEN[name])
    index = data.draw(st.integers(0, len(frames) - 1))
    frame = bytearray(frames[index])
    action = data.draw(st.sampled_from(["flip", "truncate", "append"]))
    if action == "flip" and frame:
        at = data.draw(st.integers(0, len(frame) - 1))
        frame[at] ^= data.draw(st.integers(1, 255))
    elif action == "truncate":
        frame = frame[: data.draw(st.integers(0, len(frame)))]
    else:
        frame += data.draw(st.binary(min_size=1, max_size=16))
    frames[index] = bytes(frame)
    decodes_or_refuses(frames)


@FUZZ
@given(st.sampled_from(sorted(GOLDEN)), st.data(), JSON_VALUES)
def test_header_values_swapped_for_any_json_decode_or_refuse(
    name: str, data: st.DataObject, value: Any
) -> None:
    frames = encode(GOLDEN[name])
    header = json.loads(frames[0])
    paths: list[tuple[Any, ...]] = [(k,) for k in header] + [("body", k) for k in header["body"]]
    paths += [("frames", i, k) for i, entry in enumerate(header["frames"]) for k in entry]
    path = data.draw(st.sampled_from(paths))
    decodes_or_refuses(with_header(frames, edit(path, value)))


@FUZZ
@given(
    st.text(max_size=20),
    st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=4),
    st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=4),
)
def test_whatever_encode_accepts_decodes_to_the_same_message(
    name: str, device: Any, tags: dict[str, str]
) -> None:
    msg = Register(name, "0.1.0", device, tags, "")
    try:
        frames = encode(msg)
    except ProtocolError:
        return
    assert decode(frames) == msg
