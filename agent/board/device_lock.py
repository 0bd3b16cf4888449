"""The device lock: one measurement at a time on this board, whoever starts it.

The collector gives a device one job at a time, but it cannot see an agent serving another
collector, nor a hand-run `flopgap-agent bench`. So every measurement on the board (each job
the agent runs, calibrations included, and `bench`) holds an exclusive `flock` on one file for
its whole duration; a second one waits, bounded, and says once who it waits for.

**Where the lock lives.** Per device, not per agent: ``$FLOPGAP_DEVICE_LOCK`` when set (the
agent's `--device-lock` flag and `device_lock` config key set it too), else
``/run/lock/flopgap/device.lock`` when ``/run/lock`` can hold it (a tmpfs every user can write
on systemd systems, and outside the service's PrivateTmp), else ``/tmp/flopgap-device.lock``.
The folder is made mode 1777 and the file 0666, so agents and benches of different users share
it. Every flopgap process on a board must resolve the same path, or they do not exclude each
other: set ``FLOPGAP_DEVICE_LOCK`` the same way everywhere if you move it.

**Why flock.** The kernel drops it when the holder's descriptor closes, so a crashed or killed
holder never leaves the device locked; there is no stale lock to clean up. The file's content
is only a note: the holder writes its pid, what it runs and since when (UTC, ISO 8601) after
acquiring it, and clears it on release, so a waiter can name it.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from shared.errors import FlopgapError, UsageError

LOCK_ENV = "FLOPGAP_DEVICE_LOCK"
RUN_LOCK_DIR = Path("/run/lock/flopgap")
FALLBACK_PATH = Path("/tmp/flopgap-device.lock")  # not $TMPDIR: it must be the same for all
_NAME_WAIT_S = 1.0  # a waiter names the holder once it has written its note, or after this
_POLL_MAX_S = 0.25  # a waiter tries again at most this long after the last try


class DeviceBusyError(FlopgapError):
    """The device stayed locked by another measurement for the whole bounded wait."""

    exit_code = 7


class LockWaitCancelled(FlopgapError):
    """The caller cancelled the wait for the device (the agent is stopping)."""


def default_path() -> Path:
    """$FLOPGAP_DEVICE_LOCK, else /run/lock/flopgap/device.lock if usable, else /tmp's."""
    env = os.environ.get(LOCK_ENV)
    if env:
        return Path(env).expanduser()
    if RUN_LOCK_DIR.is_dir() or os.access(RUN_LOCK_DIR.parent, os.W_OK | os.X_OK):
        return RUN_LOCK_DIR / "device.lock"
    return FALLBACK_PATH


def holder_text(note: dict[str, object] | None) -> str:
    """Who holds the lock, from its note: "flopgap-agent bench (pid 12) has been measuring
    since 12:01:03", or a plain "another process" when the note is missing."""
    if not note:
        return "another process holds the device"
    since = str(note.get("since", ""))
    try:
        at = dt.datetime.fromisoformat(since).astimezone()
        fmt = "%H:%M:%S" if at.date() == dt.date.today() else "%Y-%m-%d %H:%M:%S"
        since = at.strftime(fmt)
    except ValueError:
        pass
    who = f"{note.get('command', '?')} (pid {note.get('pid', '?')})"
    return f"{who} has been measuring since {since}"


class DeviceLock:
    """The device's lock file, held by `what` (e.g. "flopgap-agent bench") while acquired."""

    def __init__(self, what: str, path: Path | None = None) -> None:
        self.what = what
        self.path = path or default_path()
        self._fd: int | None = None
        self._writable = False

    def acquire(
        self,
        timeout_s: float,
        on_wait: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> float:
        """Take the lock within `timeout_s`; the seconds waited. `on_wait` gets one line if
        it has to wait. Raises DeviceBusyError on timeout, LockWaitCancelled when `cancel`
        is set, UsageError when the lock file cannot be opened."""
        fd = self._open()
        start = time.monotonic()
        told, delay = on_wait is None, 0.005
        waiter = cancel or threading.Event()  # a bounded pause, cut short by `cancel`
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            now = time.monotonic()
            if now - start >= timeout_s:
                os.close(fd)
                raise DeviceBusyError(
                    f"the device is still busy after {timeout_s:g} s: "
                    f"{holder_text(_read_note_at(self.path))} (lock {self.path})",
                    hint="wait for that measurement to end, or allow a longer wait",
                )
            if not told and on_wait is not None:
                note = _read_note(fd)
                if note or now - start >= _NAME_WAIT_S:
                    told = True
                    on_wait(
                        f"waiting for the device: {holder_text(note)}; up to {timeout_s:g} s "
                        f"(lock {self.path})"
                    )
            pause = min(delay, start + timeout_s - now)
            delay = min(delay * 2, _POLL_MAX_S)
            if waiter.wait(pause) and cancel is not None:
                os.close(fd)
                raise LockWaitCancelled("cancelled while waiting for the device")
        self._fd = fd
        self._write_note()
        return time.monotonic() - start

    def check(self) -> None:
        """Raise UsageError now if the lock file cannot be opened (it is not taken)."""
        os.close(self._open())

    def release(self) -> None:
        """Clear the note and drop the lock (closing the descriptor would drop it too)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._writable:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
        os.close(fd)

    def __enter__(self) -> DeviceLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _open(self) -> int:
        """The lock file's descriptor, creating the file (0666) and folder (1777) if need be.

        It opens an existing file without O_CREAT first: with fs.protected_regular (the
        default on systemd systems), O_CREAT on another user's file in a sticky folder fails.
        """
        try:
            return _open_shared(self.path, self._mark_writable)
        except OSError as exc:
            raise UsageError(
                f"cannot open the device lock {self.path}: {exc.strerror or exc}",
                hint=f"set {LOCK_ENV} to a file every flopgap process on this board can open",
            ) from None

    def _mark_writable(self, writable: bool) -> None:
        self._writable = writable

    def _write_note(self) -> None:
        if not self._writable or self._fd is None:
            return
        note = {
            "pid": os.getpid(),
            "command": self.what,
            "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        data = json.dumps(note).encode()
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
        except OSError:
            pass  # the note only names the holder; the lock is what matters


def _open_shared(path: Path, writable: Callable[[bool], None]) -> int:
    if path.parent == RUN_LOCK_DIR and not path.parent.is_dir():
        _make_shared_dir(path.parent)
    for _ in range(3):
        for flags, can_write in ((os.O_RDWR, True), (os.O_RDONLY, False)):
            try:
                fd = os.open(path, flags | os.O_CLOEXEC)
            except FileNotFoundError:
                break
            except PermissionError:
                continue
            writable(can_write)
            return fd
        else:
            raise PermissionError(errno.EACCES, "permission denied", str(path))
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue  # another process made it in between: open theirs
        os.fchmod(fd, 0o666)  # past the umask, so other users' agents can share it
        writable(True)
        return fd
    raise OSError(errno.EAGAIN, "it keeps appearing and disappearing", str(path))


def _make_shared_dir(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o755)
        os.chmod(folder, 0o1777)  # sticky and shared, like /tmp
    except FileExistsError:
        pass


def _read_note(fd: int) -> dict[str, object] | None:
    try:
        note = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def _read_note_at(path: Path) -> dict[str, object] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _read_note(fd)
    finally:
        os.close(fd)
