"""The wire protocol between agents and the collector: one versioned module, nothing else.

A message is a ZeroMQ multipart list of frames. Frame 0 is a canonical UTF-8 JSON header
``{"proto", "type", "body", "frames"}``; frames 1..k carry the bulk fields (model bytes, raw
latencies) listed in ``header["frames"]``, so large data is never JSON-escaped or copied twice.
`decode` trusts nothing: it checks every key, type, size and length before it allocates or
returns, and raises only `ProtocolError`, whose hint says what to do. `encode` runs the same
checks, so a peer never receives a message that it would refuse.

Changing a field means bumping PROTOCOL_VERSION and committing new golden samples under
``tests/data/wire/vN/``. The one exception is `Reject`: its v1 layout (header keys, and body
``reason``, ``hint``, ``peer_proto``) is frozen forever, so that any version can read why a
peer refused it. Later versions add keys to it (v2: ``code``); a foreign reject's extra keys
are ignored and a missing ``code`` reads as "".

Version history: v1 carried model bytes inside Job. v2 (fleet) makes models content-addressed
(Job names a sha256; ModelRequest/ModelData move the bytes once per agent), adds the running
job to Register and Heartbeat so a restarted collector knows what is in flight, adds Progress,
the campaign client's messages, and Reject.code so a peer can act on a refusal.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeGuard, get_origin, get_type_hints

import numpy as np
import numpy.typing as npt

from shared import schema
from shared.errors import ProtocolError

PROTOCOL_VERSION: int = 2

MAX_HEADER_BYTES = 1 << 20  # frame 0, the whole JSON header
MAX_NAME_BYTES = 4 << 10  # UTF-8 bytes of a name, id or version string
MAX_TEXT_BYTES = 64 << 10  # UTF-8 bytes of a free-text field (error, reason, hint)
MAX_JSON_FIELD_BYTES = 256 << 10  # canonical JSON of one device/settings/document/tags dict
MAX_MODEL_BYTES = 2 << 30  # a bytes frame; read at call time, so a deployment may lower it
MAX_LATENCY_SAMPLES = 50_000_000  # int64 values in one latency frame (400 MB)
HEARTBEAT_STATES = ("idle", "busy")
# Reject codes a peer acts on: "version" is fatal, "unregistered" means register again.
REJECT_CODES = ("version", "unregistered", "malformed", "refused", "unknown_job", "busy", "")
_FROZEN_REJECT_FIELDS = frozenset({"reason", "hint", "peer_proto"})
UPGRADE_THIS_SIDE = "upgrade this side: pip install -U flopgap"
UPGRADE_PEER = "upgrade the peer: run pip install -U flopgap on it"

_LONG_TEXT_FIELDS = frozenset({"error", "reason", "hint"})
_HEADER_KEYS = frozenset({"proto", "type", "body", "frames"})
_FRAME_KEYS = frozenset({"field", "dtype", "length"})
# The wire dtype of each bulk field kind: numpy's own spelling, always little-endian.
_BULK_DTYPES: dict[str, np.dtype[Any]] = {"bytes": np.dtype("|u1"), "int64": np.dtype("<i8")}
# A Register's device descriptor (shared.schema): strings short enough for a log line or a
# status row, providers a short list of names; keys the collector does not read may be any
# scalar or a short list of scalars.
DEVICE = schema.Obj(
    {"device_id": schema.Text(max_len=256), "providers": schema.ListOf(schema.Text(max_len=64),
                                                                       max_len=32),
     "logical_cores": schema.Num(low=0, high=1 << 20, integer=True, nullable=True),
     "physical_cores": schema.Num(low=0, high=1 << 20, integer=True, nullable=True),
     "ram_mb": schema.Num(low=0, nullable=True)},
    values=schema.Scalar(max_len=256, list_len=64), max_keys=64,
)  # fmt: skip
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DECODE_HINT = "the message was dropped; check that the peer runs flopgap of the same version"
_ENCODE_HINT = "fix the value before sending: the peer would reject this message"
_JSON_HINT = "use only dict/list/str/int/float/bool/None with str keys; None for a missing number"


class VersionMismatch(ProtocolError):
    """The peer speaks another protocol version; the hint says which side to upgrade."""

    def __init__(self, peer_proto: int) -> None:
        hint = UPGRADE_THIS_SIDE if peer_proto > PROTOCOL_VERSION else UPGRADE_PEER
        super().__init__(
            f"peer speaks protocol {peer_proto}, this side speaks {PROTOCOL_VERSION}", hint
        )
        self.peer_proto = peer_proto


class Message:
    """Base of every wire message; the subclasses are frozen dataclasses in MESSAGE_TYPES."""

    __slots__ = ()

    def _check(self) -> None:
        """Rules across fields or on values, run after every field has the right type."""


@dataclass(frozen=True, slots=True)
class Register(Message):
    """Agent -> collector, first message: who I am and what board I run on."""

    agent_name: str
    agent_version: str
    device: dict[str, Any]
    tags: dict[str, str]
    running_job_id: str  # "" when idle; lets a restarted collector see what is in flight

    def _check(self) -> None:
        schema.check(DEVICE, self.device, "device")


@dataclass(frozen=True, slots=True)
class Welcome(Message):
    """Collector -> agent: the id the collector knows this agent by, and how often to beat."""

    agent_id: str
    heartbeat_interval_s: float

    def _check(self) -> None:
        if not self.heartbeat_interval_s > 0:
            raise ProtocolError(f"heartbeat_interval_s is {self.heartbeat_interval_s}, not > 0")


@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    """Agent -> collector: still alive, and whether a job is running."""

    state: str
    job_id: str  # "" when idle

    def _check(self) -> None:
        if self.state not in HEARTBEAT_STATES:
            raise ProtocolError(f"heartbeat state {self.state!r} is not one of {HEARTBEAT_STATES}")
        if (self.state == "busy") != bool(self.job_id):
            raise ProtocolError("a busy heartbeat names its job, an idle one names none")


def _check_sha256(value: str) -> None:
    if not _SHA256.fullmatch(value):
        raise ProtocolError(f"sha256 {_short(value)} is not 64 lowercase hex digits")


@dataclass(frozen=True, slots=True)
class Job(Message):
    """Collector -> agent: run the model with this content hash, with these settings.

    The model travels separately (ModelRequest/ModelData) and only when the agent's cache
    lacks it, so a model is sent to each agent once.
    """

    job_id: str
    model_name: str
    model_sha256: str
    settings: dict[str, Any]
    timeout_s: float

    def _check(self) -> None:
        _check_sha256(self.model_sha256)
        if not self.timeout_s > 0:
            raise ProtocolError(f"timeout_s is {self.timeout_s}, not > 0")


@dataclass(frozen=True, slots=True)
class ModelRequest(Message):
    """Agent -> collector (or collector -> campaign client): send me the model with this hash."""

    sha256: str

    def _check(self) -> None:
        _check_sha256(self.sha256)


@dataclass(frozen=True, slots=True)
class ModelData(Message):
    """The bytes of a model, in a binary frame.

    Decode checks sha256(model) == sha256 (about 1 s per 150 MB on a Pi 4, once per model,
    outside any measurement), so nobody benchmarks a corrupted model under the right name.
    """

    sha256: str
    model: bytes

    def _check(self) -> None:
        _check_sha256(self.sha256)
        actual = hashlib.sha256(self.model).hexdigest()
        if actual != self.sha256:
            raise ProtocolError(
                f"model bytes hash to {actual}, but sha256 says {self.sha256}",
                hint="the model was corrupted in transit or in the sender's store; send it again",
            )


@dataclass(frozen=True, slots=True)
class Progress(Message):
    """Agent -> collector, about once a second during a job: phase, iterations, running median.

    Sent from outside the timed loop; `progress` holds phase, iterations, elapsed_s, median_ms.
    """

    job_id: str
    progress: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SubmitCampaign(Message):
    """Campaign client -> collector: a validated campaign (its models sent before as ModelData)."""

    campaign: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CampaignAccepted(Message):
    """Collector -> campaign client: the campaign's id and how many jobs it queued."""

    campaign_id: str
    jobs: int


@dataclass(frozen=True, slots=True)
class StatusRequest(Message):
    """Client -> collector: agents and campaigns; `campaign` names one, or "" for all."""

    campaign: str


@dataclass(frozen=True, slots=True)
class Status(Message):
    """Collector -> client: the answer to StatusRequest (agents, campaigns, counters)."""

    status: dict[str, Any]


@dataclass(frozen=True, slots=True, eq=False)
class Result(Message):
    """Agent -> collector: one measurement; every raw latency travels as a binary int64 frame.

    A decoded `latencies_ns` is a read-only view of the received frame: no copy of up to
    400 MB, and the frozen message stays immutable.
    """

    job_id: str
    result_id: str
    document: dict[str, Any]
    latencies_ns: npt.NDArray[np.int64]

    def _check(self) -> None:
        """The frame holds as many values as the document's `latency_ms.n` says (when it says
        one): a document cannot pass off 50 million values as 100."""
        stats = self.document.get("latency_ms")
        n = stats.get("n") if isinstance(stats, dict) else None
        if n is not None and n != self.latencies_ns.size:
            raise ProtocolError(
                f"latency frame holds {self.latencies_ns.size} values, latency_ms.n says "
                f"{_short(n)}",
                hint="send every steady-state latency the statistics were computed from",
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        same = (self.job_id, self.result_id, self.document)
        return same == (other.job_id, other.result_id, other.document) and np.array_equal(
            self.latencies_ns, other.latencies_ns
        )


@dataclass(frozen=True, slots=True)
class JobFailed(Message):
    """Agent -> collector: the job produced no result; kind is e.g. model_error, crash, timeout."""

    job_id: str
    result_id: str
    kind: str
    error: str


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """Collector -> agent: the result is durably stored, the agent may drop its copy."""

    result_id: str


@dataclass(frozen=True, slots=True)
class Reject(Message):
    """Either way: I refuse you. Layout frozen for all versions; peer_proto echoes yours."""

    reason: str
    hint: str
    peer_proto: int
    code: str = ""

    def _check(self) -> None:
        if not 0 <= self.peer_proto < 1 << 31:
            raise ProtocolError(f"peer_proto {self.peer_proto} is out of range")
        if self.code not in REJECT_CODES:
            raise ProtocolError(f"reject code {_short(self.code)} is not one of {REJECT_CODES}")


MESSAGE_TYPES: dict[str, type[Message]] = {
    "register": Register,
    "welcome": Welcome,
    "heartbeat": Heartbeat,
    "job": Job,
    "model_request": ModelRequest,
    "model_data": ModelData,
    "progress": Progress,
    "result": Result,
    "job_failed": JobFailed,
    "ack": Ack,
    "reject": Reject,
    "submit_campaign": SubmitCampaign,
    "campaign_accepted": CampaignAccepted,
    "status_request": StatusRequest,
    "status": Status,
}
_WIRE_NAMES = {cls: name for name, cls in MESSAGE_TYPES.items()}


def _kind(hint: Any) -> str:
    """Name the checker of a field from its type hint, so the dataclass is the only schema."""
    if hint == dict[str, str]:
        return "tags"
    if hint == dict[str, Any]:
        return "json"
    if get_origin(hint) is np.ndarray:
        return "int64"
    return {str: "str", int: "int", float: "float", bytes: "bytes"}[hint]


_SCHEMA = {
    cls: tuple((f.name, _kind(get_type_hints(cls)[f.name])) for f in fields(cls))  # type: ignore[arg-type]
    for cls in MESSAGE_TYPES.values()
}
_FIELDS = {cls: frozenset(f for f, _ in schema) for cls, schema in _SCHEMA.items()}


def _short(value: object) -> str:
    """A repr short enough for an error message, whatever the peer sent."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _wrong_type(name: str, expected: str, value: object) -> ProtocolError:
    return ProtocolError(f"field {name!r} must be {expected}, got {type(value).__name__}")


def _dumps(value: object) -> str:
    """Canonical JSON: the same message always gives the same bytes (golden samples rely on it)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(name, "a string", value)
    limit = MAX_TEXT_BYTES if name in _LONG_TEXT_FIELDS else MAX_NAME_BYTES
    try:  # len() first: a huge string fails without being encoded
        size = len(value) if len(value) > limit else len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ProtocolError(f"field {name!r} is not valid Unicode (lone surrogate)") from None
    if size > limit:
        raise ProtocolError(f"field {name!r} is {size} bytes, over the limit of {limit}")
    return value


def _check_float(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _wrong_type(name, "a number", value)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ProtocolError(f"field {name!r} is {_short(value)}, not a finite number")
    return number


def _check_json(name: str, value: object) -> dict[str, Any]:
    """A dict that survives canonical JSON unchanged (str keys, no tuples/NaN/numpy scalars)."""
    if not isinstance(value, dict):
        raise _wrong_type(name, "a JSON object (dict)", value)
    try:
        text = _dumps(value)
        same = len(text) <= MAX_JSON_FIELD_BYTES and json.loads(text) == value
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"field {name!r} is not plain JSON: {exc}", _JSON_HINT) from None
    if len(text) > MAX_JSON_FIELD_BYTES:
        raise ProtocolError(
            f"field {name!r} is {len(text)} bytes of JSON, over the limit of "
            f"{MAX_JSON_FIELD_BYTES}",
            hint="send bulk data as a binary frame, not inside a JSON field",
        )
    if not same:
        raise ProtocolError(f"field {name!r} changes through JSON (non-str key?)", _JSON_HINT)
    return value


def _check_tags(name: str, value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _wrong_type(name, "a dict of str to str", value)
    return _check_json(name, value)


def _check_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise _wrong_type(name, "bytes", value)
    if len(value) > MAX_MODEL_BYTES:
        raise ProtocolError(f"field {name!r} is {len(value)} bytes, over {MAX_MODEL_BYTES}")
    return value


def _check_int64(name: str, value: object) -> npt.NDArray[np.int64]:
    if not isinstance(value, np.ndarray) or value.dtype.kind != "i" or value.itemsize != 8:
        raise _wrong_type(name, "a numpy int64 array", value)
    if value.ndim != 1:
        raise ProtocolError(f"field {name!r} has shape {value.shape}, expected 1-D")
    if value.size > MAX_LATENCY_SAMPLES:
        raise ProtocolError(f"field {name!r} has {value.size} values, over {MAX_LATENCY_SAMPLES}")
    if value.size and value.min() < 0:
        raise ProtocolError(f"field {name!r} holds a negative duration", "check the clock used")
    return value


def _check_int(name: str, value: object) -> int:
    if not _is_int(value):
        raise _wrong_type(name, "an integer", value)
    return value


def _is_dict(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(name, "a JSON object (dict)", value)
    return value


_CHECKERS: dict[str, Any] = {
    "str": _check_str,
    "int": _check_int,
    "float": _check_float,
    "json": _check_json,
    "tags": _check_tags,
    "bytes": _check_bytes,
    "int64": _check_int64,
}
_DECODED_CHECKERS: dict[str, Any] = {**_CHECKERS, "json": _is_dict}
# Canonical ASCII JSON spends at most 6 bytes ("\u0001") on one byte of received UTF-8.
_SMALL_HEADER_BYTES = MAX_JSON_FIELD_BYTES // 6


def _build(cls: type[Message], values: dict[str, Any], from_small_json: bool = False) -> Message:
    """Check every field, then build the message and check its cross-field rules.

    The one validation path, shared by encode and decode. `from_small_json`: the JSON fields
    were just parsed from a header too small for any of them to canonicalise over the field
    limit, so the JSON round trip would prove nothing (a dict json.loads made survives
    json.dumps unchanged); it is skipped, which is most of decoding a Result.
    """
    checkers = _DECODED_CHECKERS if from_small_json else _CHECKERS
    checked = {name: checkers[kind](name, values[name]) for name, kind in _SCHEMA[cls]}
    msg = cls(**checked)
    msg._check()
    return msg


def encode(msg: Message) -> list[bytes]:
    """Turn a message into ZeroMQ frames, refusing anything `decode` would refuse."""
    try:
        return _encode(msg)
    except ProtocolError as err:
        err.hint = err.hint or _ENCODE_HINT
        raise


def _encode(msg: Message) -> list[bytes]:
    name = _WIRE_NAMES.get(type(msg))
    if name is None:
        raise ProtocolError(f"{type(msg).__name__} is not a wire message")
    cls = type(msg)
    checked = _build(cls, {f: getattr(msg, f) for f, _ in _SCHEMA[cls]})
    body: dict[str, Any] = {}
    declared: list[dict[str, Any]] = []
    bulk: list[bytes] = []
    for field, kind in _SCHEMA[cls]:
        value = getattr(checked, field)
        if kind in _BULK_DTYPES:
            dtype = _BULK_DTYPES[kind]
            data = value if kind == "bytes" else value.astype(dtype, copy=False).tobytes()
            declared.append({"field": field, "dtype": dtype.str, "length": len(value)})
            bulk.append(data)
        else:
            body[field] = value
    header = {"proto": PROTOCOL_VERSION, "type": name, "body": body, "frames": declared}
    text = _dumps(header).encode("ascii")
    if len(text) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header is {len(text)} bytes, over {MAX_HEADER_BYTES}")
    return [text, *bulk]


def decode(frames: Sequence[bytes | bytearray | memoryview]) -> Message:
    """Turn received ZeroMQ frames into a checked message, or raise ProtocolError.

    Frames may be bytes, bytearray or memoryview. Nothing is allocated from a declared length
    before that length has been checked against the limits and the frame's real size.
    """
    try:
        return _decode(frames)
    except ProtocolError as err:
        err.hint = err.hint or _DECODE_HINT
        raise


def _decode(frames: Sequence[bytes | bytearray | memoryview]) -> Message:
    parts = _frame_list(frames)
    header = _parse_header(parts[0])
    proto, name = header.get("proto"), header.get("type")
    if not _is_int(proto) or proto < 1:
        raise ProtocolError(f"header 'proto' is {_short(proto)}, not a version number")
    if name == "reject" and proto != PROTOCOL_VERSION:
        body = header.get("body")  # frozen layout: read the reason, ignore later additions
        if not isinstance(body, dict):
            raise _wrong_type("body", "a JSON object", body)
        frozen = body.keys() & _FROZEN_REJECT_FIELDS
        _exact_keys("reject body", frozen, _FROZEN_REJECT_FIELDS)
        code = body.get("code")
        values = {k: body[k] for k in _FROZEN_REJECT_FIELDS}
        return _build(Reject, {**values, "code": code if code in REJECT_CODES else ""})
    if proto != PROTOCOL_VERSION:
        raise VersionMismatch(proto)
    _exact_keys("header", header.keys(), _HEADER_KEYS)
    cls = MESSAGE_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError(
            f"unknown message type {_short(name)}; known types: {', '.join(MESSAGE_TYPES)}"
        )
    body, declared = header["body"], header["frames"]
    if not isinstance(body, dict):
        raise _wrong_type("body", "a JSON object", body)
    bulk = [(f, k) for f, k in _SCHEMA[cls] if k in _BULK_DTYPES]
    _exact_keys(f"{cls.__name__} body", body.keys(), _FIELDS[cls] - {f for f, _ in bulk})
    values = {**body, **_read_bulk(cls.__name__, bulk, declared, parts[1:])}
    return _build(cls, values, from_small_json=len(parts[0]) <= _SMALL_HEADER_BYTES)


def _frame_list(frames: object) -> list[bytes | memoryview]:
    """Byte frames as bytes or flat byte memoryviews, so len() is always a size in bytes."""
    if not isinstance(frames, Sequence) or isinstance(frames, (str, bytes, bytearray)):
        raise ProtocolError(f"expected a list of frames, got {type(frames).__name__}")
    if not frames:
        raise ProtocolError("empty message: no header frame")
    parts: list[bytes | memoryview] = []
    for index, frame in enumerate(frames):
        if isinstance(frame, bytes):
            parts.append(frame)
            continue
        try:
            parts.append(memoryview(frame).cast("B"))
        except (TypeError, ValueError):
            raise ProtocolError(f"frame {index} is {type(frame).__name__}, not bytes") from None
    return parts


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return result


def _reject_constant(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):  # 1e999 parses to inf, which JSON cannot carry back
        raise ValueError(f"{token[:40]} overflows a float")
    return value


def _parse_header(frame: bytes | memoryview) -> dict[str, Any]:
    """Frame 0 as a JSON object: bounded size, strict UTF-8, no NaN, no duplicate keys."""
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header frame is {len(frame)} bytes, over {MAX_HEADER_BYTES}")
    try:
        header = json.loads(
            bytes(frame).decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"header frame is not UTF-8 JSON: {_short(str(exc))}") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header is a JSON {type(header).__name__}, expected an object")
    return header


def _exact_keys(what: str, keys: Any, expected: frozenset[str]) -> None:
    missing, unknown = sorted(expected - keys), sorted(keys - expected)
    if missing or unknown:
        raise ProtocolError(f"{what}: missing fields {missing}, unknown fields {unknown}")


def _read_bulk(
    name: str, bulk: list[tuple[str, str]], declared: object, frames: list[bytes | memoryview]
) -> dict[str, Any]:
    """The binary frames as field values, after checking them against the header's table."""
    if not isinstance(declared, list) or not all(isinstance(d, dict) for d in declared):
        raise _wrong_type("frames", "a list of JSON objects", declared)
    listed = [d.get("field") for d in declared]
    if listed != [f for f, _ in bulk]:
        raise ProtocolError(f"{name} frames are {_short(listed)}, expected {[f for f, _ in bulk]}")
    if len(frames) != len(bulk):
        raise ProtocolError(f"{name} declares {len(bulk)} binary frames, got {len(frames)}")
    values: dict[str, Any] = {}
    for (field, kind), entry, frame in zip(bulk, declared, frames, strict=True):
        _exact_keys(f"frame {field!r}", entry.keys(), _FRAME_KEYS)
        dtype, length = _BULK_DTYPES[kind], entry["length"]
        if entry["dtype"] != dtype.str:
            raise ProtocolError(f"frame {field!r} dtype {_short(entry['dtype'])}, not {dtype.str}")
        limit = MAX_MODEL_BYTES if kind == "bytes" else MAX_LATENCY_SAMPLES
        if not _is_int(length) or not 0 <= length <= limit:
            raise ProtocolError(f"frame {field!r} length {_short(length)} not in 0..{limit}")
        if len(frame) != length * dtype.itemsize:
            raise ProtocolError(
                f"frame {field!r} is {len(frame)} bytes, header says {length} x {dtype.itemsize}"
            )
        values[field] = _frame_value(kind, frame)
    return values


def _frame_value(kind: str, frame: bytes | memoryview) -> Any:
    """Bytes as they came; int64 as a read-only zero-copy view (a copy if the buffer is mutable)."""
    if kind == "bytes":
        return frame if isinstance(frame, bytes) else bytes(frame)
    array = np.frombuffer(frame, dtype="<i8").astype(np.int64, copy=False)
    if array.flags.writeable:
        array = array.copy()
        array.flags.writeable = False
    return array
