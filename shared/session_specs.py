"""Execution-provider lists and session config entries: their text, wire and CSV forms.

Why here: ``--provider NAME[:key=value,...]`` and ``--session-config key=value`` are flags of
the agent, tables of a campaign and keys of a job's settings, and the collector's CSV prints
them; every side must read and write them the same way without loading onnxruntime. The wire
form of a provider list is ``[{"name": ..., "options": {key: value}}, ...]`` in the order ORT
tries them (``InferenceSession(providers=[(name, options), ...])``); every option and config
value is a string, as ONNX Runtime takes them. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.errors import UsageError

Provider = dict[str, Any]
"""One provider of a list: ``{"name": str, "options": {str: str}}``."""

_PROVIDER_HINT = "write --provider NAME or NAME:key=value,key=value (e.g. CPUExecutionProvider)"
_CONFIG_HINT = "write key=value, e.g. --session-config session.intra_op.allow_spinning=0"


def option_text(value: Any) -> str:
    """A TOML or JSON scalar as the string ORT takes: booleans as 1/0, numbers as written."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | str):
        return str(value)
    raise UsageError(
        f"option value {value!r} is not a string, number or boolean",
        hint="give each provider option and session config entry one scalar value",
    )


def _pair(text: str, hint: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"{text!r} is not key=value", hint=hint)
    return key.strip(), value.strip()


def parse_provider_flag(text: str) -> Provider:
    """``NAME[:key=value,...]`` (one ``--provider``) as its wire form."""
    name, _, rest = text.partition(":")
    if not name.strip():
        raise UsageError(f"--provider {text!r} names no provider", hint=_PROVIDER_HINT)
    options = dict(_pair(item, _PROVIDER_HINT) for item in rest.split(",") if item.strip())
    return {"name": name.strip(), "options": options}


def parse_config_flag(text: str) -> tuple[str, str]:
    """``key=value`` (one ``--session-config``) as a pair."""
    return _pair(text, _CONFIG_HINT)


def providers_from_wire(raw: Any) -> list[Provider] | None:
    """A checked provider list from a job's settings or a campaign (None: not given)."""
    if raw is None:
        return None
    if not isinstance(raw, list | tuple) or not raw:
        raise UsageError(
            f"providers is {raw!r}, not a non-empty list",
            hint='write providers = [{name = "CPUExecutionProvider", options = {}}]',
        )
    out: list[Provider] = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise UsageError(f"provider {item!r} has no name", hint=_PROVIDER_HINT)
        unknown = sorted(set(item) - {"name", "options"})
        if unknown:
            raise UsageError(f"provider {item['name']!r}: unknown key(s) {', '.join(unknown)}",
                             hint="a provider has a name and options only")  # fmt: skip
        options = item.get("options") or {}
        if not isinstance(options, Mapping):
            raise UsageError(f"provider {item['name']!r}: options {options!r} is not a table",
                             hint=_PROVIDER_HINT)  # fmt: skip
        out.append({"name": item["name"], "options": config_from_wire(options)})
    names = [p["name"] for p in out]
    if len(set(names)) != len(names):
        raise UsageError(
            f"providers lists a provider twice: {', '.join(names)}",
            hint="list each execution provider once, in the order to try them",
        )
    return out


def config_from_wire(raw: Any) -> dict[str, str]:
    """A checked key -> string table (session config entries, or one provider's options)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise UsageError(f"{raw!r} is not a table of key = value", hint=_CONFIG_HINT)
    return {str(key): option_text(value) for key, value in raw.items()}


def simplest(provider: str, providers: list[Provider] | None) -> tuple[str, list[Provider] | None]:
    """(provider, providers) with one meaning per run: one provider without options is just
    ``provider`` (as results stored before provider lists say it), a list's first is
    ``provider``; a ``provider`` that disagrees with the list's first is refused."""
    if providers is None:
        return provider, None
    first = providers[0]["name"]
    if provider not in (first, "CPUExecutionProvider"):
        raise UsageError(
            f"provider {provider!r} and providers (first {first!r}) disagree",
            hint="set the providers list alone; its first entry is the provider",
        )
    if len(providers) == 1 and not providers[0]["options"]:
        return first, None
    return first, providers


def compact(value: Any) -> str:
    """Compact JSON with sorted keys: one cell of the CSV, equal for equal settings."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def pairs_text(table: Mapping[str, Any]) -> str:
    """``k=v;k=v`` in key order, the CSV form of session config entries ('' when none)."""
    return ";".join(f"{key}={table[key]}" for key in sorted(table))
