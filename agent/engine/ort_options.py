"""Provider options and session config entries, handed to ONNX Runtime as it takes them.

Why a module of its own: ORT reports a bad option in its own words (a config value it cannot
parse, a provider option it does not know), often without the option's name near the start,
and some it ignores without a word. Users get one line naming the option and what to do; an
option ORT would silently ignore is refused, since a result that records an option that had no
effect would tell runs apart that were the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import onnxruntime as ort

from shared.errors import UsageError

ProviderArg = str | tuple[str, dict[str, str]]

FLAG_KEYS = (
    "session.intra_op.allow_spinning", "session.inter_op.allow_spinning",
    "session.set_denormal_as_zero", "session.disable_prepacking", "session.use_env_allocators",
    "session.disable_cpu_ep_fallback",
)  # fmt: skip
"""Config entries ORT reads as on when "1" and off otherwise, without checking the value: any
other value (``allow_spinning=yes``) would silently mean off, so it is refused here."""


def provider_list(
    provider: str, providers: Sequence[Mapping[str, Any]] | None
) -> list[ProviderArg]:
    """What ``InferenceSession(providers=...)`` takes: names, or (name, options) pairs."""
    if providers is None:
        return [provider]
    return [(p["name"], dict(p["options"])) if p["options"] else p["name"] for p in providers]


def add_config_entries(opts: ort.SessionOptions, config: Mapping[str, str]) -> None:
    """Each entry through ``add_session_config_entry``; ORT's refusal names the key."""
    for key, value in config.items():
        if key in FLAG_KEYS and value not in ("0", "1"):
            raise UsageError(
                f"session config entry {key}={value!r}: onnxruntime reads it as 1 (on) or "
                "anything else (off), without a word",
                hint=f"write {key}=0 or {key}=1",
            )
        try:
            opts.add_session_config_entry(key, value)
        except Exception as exc:  # ORT's pybind errors share no public base class
            raise UsageError(
                f"session config entry {key}={value!r} refused by onnxruntime "
                f"{ort.__version__}: {_first_line(exc)}",
                hint="check the key against onnxruntime_session_options_config_keys.h",
            ) from exc


def reword(
    exc: BaseException,
    providers: Sequence[Mapping[str, Any]] | None,
    config: Mapping[str, str],
) -> UsageError | None:
    """ORT's session-creation error as one naming the option it is about (None: not ours)."""
    text = _first_line(exc)
    for key, value in config.items():
        if key in text:
            return UsageError(
                f"session config entry {key}={value!r}: onnxruntime {ort.__version__} says: {text}",
                hint=f"fix or drop --session-config {key}",
            )
    for provider in providers or ():
        for key, value in provider["options"].items():
            if key in text:
                return UsageError(
                    f"{provider['name']} option {key}={value!r}: onnxruntime "
                    f"{ort.__version__} says: {text}",
                    hint=f"fix or drop {key} from --provider {provider['name']}:...",
                )
    return None


def config_error(key: str, value: str, exc: BaseException) -> UsageError:
    """ORT's refusal of a session built with config entry ``key``, naming it."""
    return UsageError(
        f"session config entry {key}={value!r}: onnxruntime {ort.__version__} says: "
        f"{_first_line(exc)}",
        hint=f"fix or drop --session-config {key}",
    )


def check_taken(
    session: ort.InferenceSession, providers: Sequence[Mapping[str, Any]] | None
) -> None:
    """Refuse a provider option the session does not report back. ORT's Python binding builds
    some providers without reading their options (CPUExecutionProvider takes none), so an
    option it ignored would otherwise be recorded as if it had shaped the run."""
    reported = session.get_provider_options()
    for provider in providers or ():
        taken = reported.get(provider["name"], {})
        ignored = sorted(key for key in provider["options"] if key not in taken)
        if ignored:
            known = ", ".join(sorted(taken)) or "none"
            raise UsageError(
                f"{provider['name']} option {ignored[0]}={provider['options'][ignored[0]]!r}: "
                f"onnxruntime {ort.__version__} does not know it and would ignore it "
                f"(options it reports for {provider['name']}: {known})",
                hint=f"drop {ignored[0]} from --provider {provider['name']}:...",
            )


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.split(" : ")[-1][:300] if " : " in text else text[:300]
