"""What the store hands out: one typed, immutable row per table (or join), and enums for
the states a job and a campaign go through.

Callers read attributes the type checker knows (`job.state is JobState.QUEUED`) instead of
indexing a database row by strings it cannot check. JSON columns stay as text in the row and
are parsed by a property on use: `flopgap status` lists every job of a campaign each second,
and most of those reads never look at a job's settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, NamedTuple, Protocol, TypeVar


class NamedRow(Protocol):
    """A row as either backend returns it: sqlite3.Row, or collector.store.postgres.Row."""

    def keys(self) -> Sequence[str]: ...

    def __getitem__(self, key: Any, /) -> Any: ...


class JobState(str, Enum):
    """A job's life: queued until dispatched, running on one agent, then done or failed for
    good; a failed attempt with attempts left goes back to queued."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED)

    def __str__(self) -> str:  # the word, in logs and JSON alike
        return self.value


class CampaignState(str, Enum):
    """A campaign runs until every one of its jobs is terminal; it fails when it cannot run
    at all (a stored campaign whose jobs cannot be queued or sent)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class ResultStatus(str, Enum):
    """A stored result is a measurement (ok) or a job's last failed attempt (error)."""

    OK = "ok"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


class AgentRow(NamedTuple):
    agent_id: str
    device_id: str
    descriptor_json: str
    tags_json: str
    first_seen: float
    last_seen: float

    @property
    def descriptor(self) -> dict[str, Any]:
        return dict(json.loads(self.descriptor_json))

    @property
    def tags(self) -> dict[str, str]:
        return dict(json.loads(self.tags_json))


class CalibrationRow(NamedTuple):
    agent_id: str
    threads: int
    peak_gflops: float | None
    bandwidth_gbs: float | None
    measured_at: float
    detail_json: str

    @property
    def detail(self) -> dict[str, Any]:
        return dict(json.loads(self.detail_json))


class ModelRow(NamedTuple):
    sha256: str
    name: str
    path: str
    size_bytes: int


class CostRow(NamedTuple):
    """A model's theoretical cost at one set of input shapes, or why it could not be counted."""

    sha256: str
    input_shapes: str
    convention: str | None
    cost_json: str | None
    error: str | None

    @property
    def cost(self) -> dict[str, Any] | None:
        return None if self.cost_json is None else dict(json.loads(self.cost_json))


class CampaignRow(NamedTuple):
    campaign_id: str
    name: str
    spec_json: str
    state: CampaignState
    created: float
    finished: float | None

    @property
    def spec(self) -> dict[str, Any]:
        return dict(json.loads(self.spec_json))


class JobRow(NamedTuple):
    job_id: str
    campaign_id: str
    agent_id: str
    model_sha256: str
    model_name: str
    settings_json: str
    repeat: int
    state: JobState
    attempts: int
    max_attempts: int
    timeout_s: float
    errors_json: str
    created: float
    started: float | None
    updated: float
    retry_invalid: int  # how many invalid results the job may replace by measuring again
    invalid_attempts: int

    @property
    def settings(self) -> dict[str, Any]:
        return dict(json.loads(self.settings_json))

    @property
    def errors(self) -> list[str]:
        """Each failed attempt's "kind: error", oldest first."""
        return list(json.loads(self.errors_json))


class ResultRow(NamedTuple):
    """A result joined with its job (settings, repeat, model name) and its agent's
    descriptor (None when the agent row is gone)."""

    result_id: str
    job_id: str
    campaign_id: str
    agent_id: str
    device_id: str
    model_sha256: str
    status: ResultStatus
    error_kind: str | None
    error: str | None
    document_json: str | None
    received_at: float
    attempt: int  # 1 for the job's first stored result
    job_result: int  # 1: the job's result; 0: an invalid attempt it measured again
    valid: int | None  # None for an error result
    invalid_reasons: str | None  # JSON list
    settings_json: str
    repeat: int
    model_name: str
    descriptor_json: str | None

    @property
    def document(self) -> dict[str, Any] | None:
        """The agent's result document; None for an error result."""
        return None if self.document_json is None else dict(json.loads(self.document_json))


class OpTimeRow(NamedTuple):
    result_id: str
    node_name: str
    op_type: str
    provider: str | None
    kernel_time_us: float
    flops: int | None
    macs: int | None
    bytes: int | None
    fused_from: str | None
    depthwise: int | None
    folded_flops: int | None


class PredictorRow(NamedTuple):
    """One trained predictor of a device key, versioned, with the hash of the data it learnt
    from; the JSON payload holds text LightGBM models (never a pickle)."""

    predictor_id: str
    device_key: str
    version: int  # 1, 2, ... per device_key
    data_hash: str
    samples: int  # kernel samples it was trained on
    models: int  # whole models its correction was fitted on
    trained_at: float  # unix seconds
    flopgap_version: str
    payload_json: str

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.payload_json))


_ENUMS: dict[tuple[str, str], type[Enum]] = {
    ("JobRow", "state"): JobState,
    ("CampaignRow", "state"): CampaignState,
    ("ResultRow", "status"): ResultStatus,
}

Row = TypeVar("Row", bound=tuple[Any, ...])
_Plan = Callable[[NamedRow], Any]
_PLANS: dict[tuple[type, tuple[str, ...]], _Plan] = {}


def typed(cls: type[Row], row: NamedRow) -> Row:
    """A typed row from a database row, by column name (so column order cannot swap fields),
    state columns made enums; a missing or extra column is a bug, and raises. The mapping is
    worked out once per row type and query shape: the server reads several rows per result."""
    key = (cls, tuple(row.keys()))
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _plan(cls, key[1])
    result: Row = plan(row)
    return result


def _plan(cls: type[Row], columns: tuple[str, ...]) -> _Plan:
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    if sorted(columns) != sorted(fields):
        raise TypeError(f"{cls.__name__} has {fields}, the query gave {columns}")
    order = [columns.index(name) for name in fields]
    enums = [(i, enum) for i, name in enumerate(fields)
             if (enum := _ENUMS.get((cls.__name__, name))) is not None]  # fmt: skip

    def build(row: NamedRow) -> Any:
        values = [row[i] for i in order]
        for i, enum in enums:
            values[i] = enum(values[i])
        return cls(*values)

    return build
