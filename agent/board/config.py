"""The agent's settings file: what `flopgap-agent run` reads besides its flags.

One file per board, written by `flopgap-agent enroll` and read by `run`, `doctor` and
`service install`. TOML (``*.toml``; tomllib on Python 3.11+, tomli on 3.10) or INI (any other
suffix, one ``[agent]`` section and an optional ``[tags]`` section)::

    collector = "tcp://collector.lan:5555"   # or a list: ["tcp://a:5555", "tcp://b:5555"]
    name = "pi5-a"
    keys = "pi5-a.key_secret"          # relative paths are relative to this file's folder
    collector_key = "collector.key"          # or one per collector, in the same order
    spool = "/home/pi/.local/state/flopgap/pi5-a/spool"
    cache = "/home/pi/.cache/flopgap/models"
    cache_max_mb = 2048
    memory_limit_mb = 1024
    device_lock = "/run/lock/flopgap/device.lock"   # optional: agent.board.device_lock
    [tags]
    board = "pi5"

A list of collectors (collectors sharing one store) is tried in order by `run`, moving on
when one is gone for the heartbeat timeout (agent.link.endpoints); in INI, separate them with
commas. Readers that take one collector (`doctor`, `enroll`) see the first: `collector` and
`collector_key` hold the first entry, `collectors` and `collector_keys` every one.

Flags given on the command line override the file. An unknown key is an error that names it,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import argparse
import configparser
import os
import socket
import sys
from pathlib import Path
from typing import Any

from shared.errors import UsageError

CONFIG_ENV = "FLOPGAP_AGENT_CONFIG"
DEFAULT_DIR = Path.home() / ".config" / "flopgap" / "agent"
CONFIG_NAME = "agent.toml"
STRINGS = ("collector", "name")
PATHS = ("keys", "collector_key", "spool", "cache", "device_lock")
INTS = ("cache_max_mb", "memory_limit_mb", "max_message_mb", "spool_max_mb")
BOOLS = ("insecure",)
LISTS = ("collector", "collector_key")  # one, or a list: several collectors sharing a store
KEYS = (*STRINGS, *PATHS, *INTS, *BOOLS, "tags")


def default_path() -> Path:
    """$FLOPGAP_AGENT_CONFIG, else ~/.config/flopgap/agent/agent.toml."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_DIR / CONFIG_NAME)


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        import tomllib as toml
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as toml
        except ModuleNotFoundError:
            raise UsageError(
                f"cannot read {path}: this Python ({sys.version.split()[0]}) has no TOML reader",
                hint="pip install tomli, or write the config as INI ([agent] section, .ini)",
            ) from None
    try:
        return toml.loads(text)
    except toml.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None


def _parse_ini(text: str, path: Path) -> dict[str, Any]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise UsageError(f"{path} is not valid INI: {exc}") from None
    extra = [s for s in parser.sections() if s not in ("agent", "tags")]
    if extra:
        raise UsageError(f"{path}: unknown section [{extra[0]}]", hint="use [agent] and [tags]")
    raw: dict[str, Any] = dict(parser["agent"]) if parser.has_section("agent") else {}
    if parser.has_section("tags"):
        raw["tags"] = dict(parser["tags"])
    for key in INTS:
        if key in raw:
            try:
                raw[key] = int(raw[key])
            except ValueError:
                raise UsageError(f"{path}: {key} must be an integer, not {raw[key]!r}") from None
    for key in BOOLS:
        if key in raw:
            raw[key] = parser.getboolean("agent", key)
    for key in LISTS:
        if key in raw and "," in raw[key]:
            raw[key] = [part.strip() for part in raw[key].split(",") if part.strip()]
    return raw


def load(path: Path) -> dict[str, Any]:
    """The checked settings in `path`: known keys only, typed, paths made absolute."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read agent config {path}: {exc.strerror or exc}") from None
    raw = _parse_toml(text, path) if path.suffix == ".toml" else _parse_ini(text, path)
    return check(raw, path)


def check(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """Refuse unknown keys and wrong types; resolve relative paths against `path`'s folder."""
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in KEYS:
            raise UsageError(
                f"{path}: unknown key {key!r}", hint=f"known keys: {', '.join(sorted(KEYS))}"
            )
        want: type | tuple[type, ...] = (
            str if key in STRINGS or key in PATHS else int if key in INTS else bool
        )
        if key in LISTS and isinstance(value, list):
            _check_list(settings, key, value, path)
        elif key == "tags":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise UsageError(f"{path}: tags must be a table of strings")
            settings[key] = dict(value)
        elif not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise UsageError(f"{path}: {key} must be {want.__name__}, not {value!r}")  # type: ignore[union-attr]
        elif key in PATHS:
            settings[key] = _path(value, path)
        else:
            settings[key] = value
        if key in LISTS and not isinstance(value, list):
            settings[f"{key}s"] = [settings[key]]
    return settings


def _path(value: object, config: Path) -> Path:
    """A path from the file, relative to the file's folder."""
    return (config.parent / Path(str(value)).expanduser()).absolute()


def _check_list(settings: dict[str, Any], key: str, value: list[Any], path: Path) -> None:
    """A list of collectors (or of their keys): the first under `key`, all under `key`s."""
    if not value or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{path}: {key} must be a string or a non-empty list of strings")
    items: list[Any] = [_path(v, path) for v in value] if key in PATHS else list(value)
    settings[key], settings[f"{key}s"] = items[0], items


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def dumps(settings: dict[str, Any]) -> str:
    """TOML text for `settings` (flat keys, then a [tags] table), keys in a stable order."""
    lines = ["# flopgap-agent settings: written by `flopgap-agent enroll`, read by `run`"]
    for key in KEYS:
        if key != "tags" and settings.get(key) is not None:
            lines.append(f"{key} = {_toml_value(settings[key])}")
    if settings.get("tags"):
        lines.append("\n[tags]")
        lines += [
            f"{_toml_value(k)} = {_toml_value(v)}" for k, v in sorted(settings["tags"].items())
        ]
    return "\n".join(lines) + "\n"


def save(path: Path, settings: dict[str, Any]) -> bool:
    """Write `settings` to `path` (0600) unless it already says that; True when written."""
    text = dumps(settings)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)
    return True


def default_dirs(name: str, home: Path | None = None) -> dict[str, Path]:
    """`run`'s default spool and cache folders for agent `name`."""
    home = home or Path.home()
    return {
        "spool": home / ".local" / "state" / "flopgap" / name / "spool",
        "cache": home / ".cache" / "flopgap" / "models",
    }


def merge_run_settings(args: argparse.Namespace) -> argparse.Namespace:
    """`run`'s flags over its config file (--config, else the default file if it exists).

    Sets every setting attribute `cmd_run` reads, plus `config_tags` (the file's tags, which
    --tag flags extend and override), and `collectors` / `collector_keys`: every collector
    and pinned key, in order (`collector` / `collector_key`: the first). A missing collector
    is an error that names both places.
    """
    path: Path | None = args.config
    if path is None and default_path().is_file():
        path = default_path()
    settings = load(path) if path is not None else {}
    for key in (*STRINGS, *PATHS, *INTS):
        if key not in LISTS and getattr(args, key, None) is None:
            setattr(args, key, settings.get(key))
    for key in LISTS:  # repeated flags replace the file's list; `key` is the first entry
        many = list(getattr(args, f"{key}s", None) or [])
        if not many and getattr(args, key, None) is not None:
            many = [getattr(args, key)]
        many = many or list(settings.get(f"{key}s") or [])
        setattr(args, f"{key}s", many)
        setattr(args, key, many[0] if many else None)
    args.insecure = bool(args.insecure or settings.get("insecure", False))
    args.config_tags = settings.get("tags", {})
    if args.collector is None:
        where = f" or in {path}" if path else f" or in a config file ({default_path()})"
        raise UsageError(
            f"no collector: pass --collector tcp://HOST:PORT{where}",
            hint="`flopgap-agent enroll BUNDLE` writes the config from the collector's bundle",
        )
    args.name = args.name or socket.gethostname()
    args.cache_max_mb = args.cache_max_mb or 2048
    return args
