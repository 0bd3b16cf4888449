"""Create an ONNX Runtime session from user settings, and turn ORT's failures into our errors.

ORT raises a family of pybind exceptions (InvalidProtobuf, NotImplemented, Fail, ...) whose
text is long and technical; users get one line saying what is wrong and what to do.

Thread counts are bounded by the board's logical cores: ORT would otherwise try to start the
threads asked for (10,000 held a board in "load" until the job's timeout; 2**40 overflowed
into an internal error), so a higher count is refused, with the cap named, by session_options,
which every session (timed, profiling, calibration) is built with. Not when settings are parsed:
a campaign is checked on the collector, whose cores are not the boards'.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import onnxruntime as ort
import psutil

from agent.engine import ort_options
from shared.errors import ModelError, ProviderError, UsageError
from shared.settings import OPT_LEVELS, ORT_LEVEL_NAMES

# shared.settings names each level and its enum member once, for the agent and the collector
_ORT_LEVELS: dict[str, ort.GraphOptimizationLevel] = {
    name: getattr(ort.GraphOptimizationLevel, member) for name, member in ORT_LEVEL_NAMES.items()
}


@dataclass(frozen=True)
class SessionSettings:
    """How a session is built. threads=0 means ORT's own default (one per physical core).

    ``providers`` is None for ``provider`` alone, without options; otherwise the ordered list
    ORT tries (``shared.session_specs``' wire form), whose first is ``provider``.
    ``session_config`` holds ``SessionOptions.add_session_config_entry`` entries.
    """

    provider: str = "CPUExecutionProvider"
    providers: tuple[dict[str, Any], ...] | None = None
    session_config: Mapping[str, str] = field(default_factory=dict)
    threads: int = 0
    inter_threads: int = 0
    opt_level: str = "all"

    def __post_init__(self) -> None:
        if isinstance(self.providers, list):  # the wire's list, kept immutable here
            object.__setattr__(self, "providers", tuple(self.providers))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ort.set_default_logger_severity(4)

_NODE = re.compile(r"running (\w+) node\. Name:'([^']*)'")
_SOURCE_LOCATION = re.compile(r"^\s*/\S+:\d+ .*?(?:was false\.|failed\.)\s*")


def describe_ort_error(exc: BaseException) -> str:
    """The useful part of an ORT error: which node failed and why, without C++ source paths."""
    text = " ".join(str(exc).split())
    node = _NODE.search(text)
    detail = _SOURCE_LOCATION.sub("", text.split("Status Message:")[-1]).strip()
    where = f"{node.group(1)} node {node.group(2)!r}: " if node else ""
    return (where + detail)[:300]


def check_provider(provider: str | SessionSettings) -> None:
    """Refuse a provider this onnxruntime build lacks (each of a settings' provider list),
    listing the ones it has."""
    available = ort.get_available_providers()
    if isinstance(provider, SessionSettings):
        names = [p["name"] for p in provider.providers or [{"name": provider.provider}]]
    else:
        names = [provider]
    for name in names:
        if name not in available:
            raise ProviderError(
                f"execution provider {name!r} is not available in onnxruntime {ort.__version__}",
                hint=f"choose one of: {', '.join(available)}",
            )


def session_options(settings: SessionSettings) -> ort.SessionOptions:
    """SessionOptions for `settings`; validated so a typo fails before any model loads."""
    if settings.opt_level not in OPT_LEVELS:
        raise UsageError(
            f"unknown optimisation level {settings.opt_level!r}",
            hint=f"use one of: {', '.join(OPT_LEVELS)}",
        )
    check_thread_counts(settings.threads, settings.inter_threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = settings.threads
    opts.inter_op_num_threads = settings.inter_threads
    opts.graph_optimization_level = _ORT_LEVELS[settings.opt_level]
    ort_options.add_config_entries(opts, settings.session_config)
    # Fatal only: ORT's errors arrive as exceptions, which we turn into one clear line.
    opts.log_severity_level = 4
    return opts


def logical_cores() -> int | None:
    """This board's logical cores (None when the OS does not say: then nothing is capped)."""
    count = psutil.cpu_count(logical=True)
    return int(count) if count else None


def check_thread_counts(threads: int, inter_threads: int, cores: int | None = None) -> None:
    """Refuse negative counts and counts above the board's logical cores, naming the cap."""
    if threads < 0 or inter_threads < 0:
        raise UsageError("thread counts must be >= 0 (0 = onnxruntime's default)")
    cap = logical_cores() if cores is None else cores
    if cap is None:
        return
    for name, value in (("threads", threads), ("inter_threads", inter_threads)):
        if value > cap:
            shown = f"{value}" if value < 10**6 else f"{value:.3g}"
            raise UsageError(
                f"{name} = {shown} is more than this board's {cap} logical cores",
                hint=f"use at most {name} = {cap} (0: onnxruntime's default)",
            )


def check_model_file(path: Path) -> None:
    """Fail early and plainly on a path that cannot be a model."""
    if not path.exists():
        raise UsageError(f"model file not found: {path}", hint="check the path")
    if not path.is_file():
        raise UsageError(f"not a file: {path}", hint="pass the path of an .onnx file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"cannot read {path}", hint="check the file's permissions")


def load_session(path: Path, settings: SessionSettings) -> tuple[ort.InferenceSession, int]:
    """Load `path` into a session; returns it with the load time in nanoseconds."""
    check_model_file(path)
    check_provider(settings)
    opts = session_options(settings)
    providers = ort_options.provider_list(settings.provider, settings.providers)
    t0 = time.perf_counter_ns()
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # ORT's pybind errors share no public base class
        option_error = ort_options.reword(exc, settings.providers, settings.session_config)
        option_error = option_error or _blame_config(path, settings, providers, exc)
        raise option_error or translate_ort_error(exc, path) from exc
    load_ns = time.perf_counter_ns() - t0
    ort_options.check_taken(session, settings.providers)
    return session, load_ns


def _blame_config(
    path: Path, settings: SessionSettings, providers: list[Any], exc: Exception
) -> UsageError | None:
    """The config entry a failed load is due to, found by loading with each entry alone
    (ORT's message rarely names it: session.load_model_format=ORT says "ORT model verification
    failed"). None when the model fails without any entry too. Only on the failure path."""
    if not settings.session_config:
        return None

    def loads(config: Mapping[str, str]) -> bool:
        opts = session_options(replace(settings, session_config=config))
        try:
            ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception:  # ORT's pybind errors share no public base class
            return False
        return True

    if not loads({}):
        return None
    for key, value in settings.session_config.items():
        if not loads({key: value}):
            return ort_options.config_error(key, value, exc)
    return None


def translate_ort_error(exc: Exception, path: Path) -> ModelError:
    """Map an ORT load failure to one line that says what is wrong and what to do."""
    kind = type(exc).__name__
    text = " ".join(str(exc).split())
    first = text.split(" : ")[-1] if " : " in text else text
    if kind == "InvalidProtobuf" or "Protobuf parsing failed" in text:
        return ModelError(
            f"{path} is not a valid ONNX model (truncated or not ONNX)",
            hint="re-export or re-download the model",
        )
    if kind == "NotImplemented" or "Could not find an implementation" in text:
        return ModelError(
            f"onnxruntime {ort.__version__} cannot run {path.name}: {first[:300]}",
            hint="the model uses an op or type this build lacks; try another provider, "
            "a newer onnxruntime, or re-export with a supported opset",
        )
    if "No Op registered" in text or "is not a registered function/op" in text:
        return ModelError(
            f"{path.name} uses an op unknown to onnxruntime {ort.__version__}: {first[:300]}",
            hint="re-export the model with standard ONNX ops",
        )
    return ModelError(
        f"onnxruntime could not load {path.name}: {first[:300]}",
        hint="check the model with onnx.checker, or rerun with --debug",
    )
