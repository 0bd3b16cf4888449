"""`flopgap-agent service install|uninstall`: a systemd unit that keeps `run` going.

The unit runs this installation's own `flopgap-agent` (absolute path, so the virtualenv is
used) with `--config`, restarts it on failure (exit code 2 for a key the collector does not
know yet: SECURITY.md relies on a supervisor to come back once it is allowlisted), and runs
as an unprivileged user. A system unit names that user (User=, default the config file's
owner) and is sandboxed: the file system is read-only except the spool and the model cache.
A --user unit runs as its owner, and sandboxing options are left out there because they need
user namespaces that not every board kernel allows.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from pathlib import Path

from agent.board import config, device_lock
from shared.errors import UsageError

UNIT = "flopgap-agent.service"
SYSTEM_DIR = Path("/etc/systemd/system")
USER_DIR = Path.home() / ".config" / "systemd" / "user"
HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=read-only",
    "PrivateTmp=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    "RestrictSUIDSGID=yes",
    "RestrictNamespaces=yes",
    "LockPersonality=yes",
    "RestrictRealtime=yes",
    "SystemCallArchitectures=native",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
)


def agent_executable() -> Path:
    """This installation's flopgap-agent: beside sys.executable (a venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "flopgap-agent"
    if beside.is_file():
        return beside.absolute()
    found = shutil.which("flopgap-agent")
    if found is None:
        raise UsageError("cannot find the flopgap-agent program",
                         hint="pip install flopgap into a virtualenv, then run its "
                         "bin/flopgap-agent service install")  # fmt: skip
    return Path(found).absolute()


def _quote(arg: str) -> str:
    """Quote one ExecStart argument for systemd when it holds spaces or quotes."""
    if any(c in arg for c in " \t\"'\\"):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def render_unit(
    exe: Path, cfg: Path, user: str | None, writable: list[Path], user_unit: bool
) -> str:
    """The unit file text; `user` is None for a --user unit."""
    exec_start = " ".join(_quote(str(a)) for a in (exe, "run", "--config", cfg))
    lines = [
        "[Unit]",
        "Description=flopgap agent: benchmark jobs from a flopgap collector",
        "Documentation=https://github.com/flopgap/flopgap/blob/main/deploy/README.md",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        "RestartSec=10",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if not user_unit:
        lines += [f"User={user}", *HARDENING]
        lines += [f"ReadWritePaths={_quote(str(p))}" for p in writable]
        # The device lock (agent.board.device_lock) must be the one a hand-run bench sees:
        # /run/lock, not the unit's PrivateTmp; "-" lets the unit start on a board without it.
        lines.append(f"ReadWritePaths=-{device_lock.RUN_LOCK_DIR.parent}")
    else:
        lines.append("NoNewPrivileges=yes")
    target = "default.target" if user_unit else "multi-user.target"
    lines += ["", "[Install]", f"WantedBy={target}", ""]
    return "\n".join(lines)


def _unit_user(cfg: Path, run_as: str | None) -> str:
    """User= for a system unit: --run-as, else the config file's owner; never root."""
    name = run_as or pwd.getpwuid(cfg.stat().st_uid).pw_name
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        raise UsageError(f"no user {name!r} on this machine", hint="pass --run-as USER") from None
    if uid == 0:
        raise UsageError(
            "refusing a system unit that runs the agent as root",
            hint="enroll as the user the agent should run as, or pass --run-as USER",
        )
    return name


def install(
    cfg: Path, unit_dir: Path | None, user_unit: bool, run_as: str | None = None
) -> tuple[Path, bool]:
    """Write the unit for `cfg`; (unit path, whether it changed)."""
    cfg = cfg.absolute()
    if not cfg.is_file():
        raise UsageError(f"no agent config {cfg}", hint="flopgap-agent enroll BUNDLE first")
    settings = config.load(cfg)
    name = str(settings.get("name") or "agent")
    dirs = config.default_dirs(name)
    writable = [Path(settings.get(k) or dirs[k]) for k in ("spool", "cache")]
    if settings.get("device_lock"):
        writable.append(Path(settings["device_lock"]).parent)
    user = None if user_unit else _unit_user(cfg, run_as)
    text = render_unit(agent_executable(), cfg, user, writable, user_unit)
    folder = unit_dir or (USER_DIR if user_unit else SYSTEM_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / UNIT
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path, False
    tmp = path.with_name(UNIT + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path, True


def uninstall(unit_dir: Path | None, user_unit: bool) -> Path | None:
    """Remove the unit; its path, or None when there was none."""
    path = (unit_dir or (USER_DIR if user_unit else SYSTEM_DIR)) / UNIT
    if not path.exists():
        return None
    path.unlink()
    return path


def next_steps(path: Path, user_unit: bool, installed: bool) -> str:
    """The systemctl commands to run after install or uninstall."""
    ctl = "systemctl --user" if user_unit else "sudo systemctl"
    if not installed:
        return f"then: {ctl} disable --now {UNIT} ; {ctl} daemon-reload"
    text = f"enable and start it: {ctl} daemon-reload && {ctl} enable --now {UNIT}"
    if user_unit:
        text += "\nto start it at boot without a login: sudo loginctl enable-linger $USER"
    return text + f"\nlogs: journalctl {'--user ' if user_unit else ''}-u {UNIT} -f"
