"""How the agent, the fork server and a job child frame their messages: bytes only, never pickles.

Every message is a frame: a u64 little-endian length, then that many bytes. A JSON frame is a
UTF-8 JSON object. Two channels use it:

* **The control socket** (agent <-> fork server, a Unix stream socket pair). The agent sends a
  JSON job spec with the write end of a fresh pipe attached (SCM_RIGHTS); the server answers
  ``{"type": "ready", "threads", "device"}`` once at start-up, then per job ``{"pid"}`` and
  later ``{"pid", "exitcode"}`` (negative: killed by that signal).
* **The job pipe** (job child -> agent): ``{"type": "progress", "phase", "iterations",
  "elapsed_ns", "median_ms"}`` any number of times, then ``{"type": "result", "document",
  "measure_s", "late_imports"}`` followed by one raw frame of native int64 latencies, or
  ``{"type": "error", "kind", "message"}``.

Imports only the standard library, so both sides can share it.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

FRAME = struct.Struct("<Q")
MAX_CONTROL_BYTES = 16 << 20


def send_frame(sock: socket.socket, payload: bytes, fds: list[int] | None = None) -> None:
    """One length-prefixed message on a stream socket, with file descriptors attached."""
    data = FRAME.pack(len(payload)) + payload
    sent = socket.send_fds(sock, [data], fds) if fds else 0
    sock.sendall(data[sent:])


def recv_frame(sock: socket.socket) -> tuple[bytes, list[int]] | None:
    """One message and the file descriptors that came with it; None at end of stream."""
    head, fds = b"", []
    while len(head) < FRAME.size:
        chunk, got, _, _ = socket.recv_fds(sock, FRAME.size - len(head), 4)
        fds += got
        if not chunk:
            return None
        head += chunk
    (size,) = FRAME.unpack(head)
    if size > MAX_CONTROL_BYTES:
        raise ValueError(f"control message of {size} bytes")
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    return body, fds


def write_frame(fd: int, payload: bytes | memoryview) -> None:
    """One length-prefixed message on a blocking pipe, written in full."""
    body = memoryview(payload).cast("B")
    for part in (memoryview(FRAME.pack(body.nbytes)), body):
        while part:
            part = part[os.write(fd, part) :]


def split_frames(buf: bytearray) -> Iterator[bytes]:
    """Take each complete frame off the front of `buf`; a partial one stays for the next read."""
    head = FRAME.size
    while len(buf) >= head:
        (size,) = FRAME.unpack_from(buf)
        if len(buf) < head + size:
            return
        frame = bytes(buf[head : head + size])
        del buf[: head + size]
        yield frame


def dumps(obj: dict[str, Any]) -> bytes:
    """A JSON frame's bytes, compact."""
    return json.dumps(obj, separators=(",", ":")).encode()
