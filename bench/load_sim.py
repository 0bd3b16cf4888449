"""Simulated agents for the fleet-load bench: thousands of DEALERs speaking the real protocol
from one process, cheap enough that the simulator is never the reason an agent goes missing.

Each thread multiplexes its share of sockets with one zmq.Poller and wakes every TICK_S (or
sooner on a message). Heartbeats are due on a fixed 1 Hz grid per agent (`due += interval`,
never `now + interval`), so a late simulator shows as lateness and a lower achieved rate, not
as a silently slower fleet. An idle beat's frames are encoded once: they are the same bytes
for every agent. Agents connect at a bounded rate (`ramp_per_s`), as a fleet that boots does,
so the registration storm is bounded too.

Every thread keeps its own `SimCounts` (no lock): the main thread only reads them, and
CPython reads an int atomically, so a window's rate is the difference of two snapshots.
"""

from __future__ import annotations

import heapq
import resource
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from shared import protocol

TICK_S = 0.01  # the poll loop's longest sleep: a beat is sent at most this late by design
SOCKET_HEADROOM = 64  # ZeroMQ sockets beyond the agents (clients, the context's own)
FDS_PER_AGENT = 3  # a DEALER's TCP connection, its mailbox, and the collector's end of it


@dataclass
class SimCounts:
    """What one thread's agents did so far; the main thread reads, the thread writes."""

    registered: int = 0  # Welcomes received
    sent: int = 0
    received: int = 0
    beats: int = 0
    results: int = 0
    acks: int = 0
    late_beats: int = 0  # beats sent more than a tick after they were due
    max_late_s: float = 0.0
    ack_rtt_s: list[float] = field(default_factory=list)  # Result sent -> its Ack received
    welcome_rtt_s: list[float] = field(default_factory=list)  # Register sent -> Welcome


@dataclass(frozen=True)
class Workload:
    """What each simulated agent sends: its result document and latencies, and how long it
    holds a job (agent index -> seconds) before answering with a Result."""

    document: dict[str, Any]
    latencies: np.ndarray
    hold_s: Callable[[int], float]
    heartbeat_s: float = 1.0
    ramp_per_s: float = 1000.0  # connections a second over all threads


def raise_fd_limit(agents: int) -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to what `agents` sockets need (both ends live
    here or in the collector child, which inherits it), up to the hard limit. Returns
    (before, after); a hard limit too low is left as is and shows as a ZMQError later."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = agents * FDS_PER_AGENT + 1024
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        return soft, new
    return soft, soft


def sim_context(agents: int, io_threads: int = 2) -> zmq.Context[zmq.Socket[bytes]]:
    """A context for `agents` DEALERs: ZeroMQ's default cap is 1,023 sockets a context, and
    one I/O thread carries all their TCP traffic unless told otherwise."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context(io_threads=io_threads)
    ctx.set(zmq.MAX_SOCKETS, agents + SOCKET_HEADROOM)
    return ctx


class _Agents:
    """One thread's agents: their sockets, heartbeat grid, held jobs and counts."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str,
                 names: list[tuple[int, str]], work: Workload,
                 counts: SimCounts) -> None:  # fmt: skip
        self.ctx, self.endpoint, self.work, self.counts = ctx, endpoint, work, counts
        self.pending = deque(names)  # (index, name) not yet connected
        self.poller = zmq.Poller()
        self.socks: dict[zmq.Socket[bytes], int] = {}  # socket -> agent index
        self.beats: deque[tuple[float, zmq.Socket[bytes]]] = deque()  # in due order
        self.due: list[tuple[float, int, zmq.Socket[bytes], str]] = []  # job answers
        self.running: dict[zmq.Socket[bytes], str] = {}
        self.sent_at: dict[str, float] = {}  # result id or agent name -> send time
        self.idle_beat = protocol.encode(protocol.Heartbeat("idle", ""))
        self.busy_beat: dict[str, list[bytes]] = {}

    def connect_some(self, now: float, started: float, share: float) -> None:
        """Connect and register the agents the ramp allows by `now`."""
        allowed = int((now - started) * share) + 1 - len(self.socks)
        for _ in range(min(allowed, len(self.pending))):
            index, name = self.pending.popleft()
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.endpoint)
            device = {"device_id": name, "providers": ["CPUExecutionProvider"]}
            sock.send_multipart(protocol.encode(protocol.Register(name, "sim", device, {}, "")))
            self.sent_at[name] = now
            self.counts.sent += 1
            self.poller.register(sock, zmq.POLLIN)
            self.socks[sock] = index
            self.beats.append((now + self.work.heartbeat_s, sock))

    def receive(self, sock: zmq.Socket[bytes]) -> None:
        msg = protocol.decode(sock.recv_multipart())
        now, counts = time.monotonic(), self.counts
        counts.received += 1
        if isinstance(msg, protocol.Job) and self.running.get(sock) != msg.job_id:
            self.running[sock] = msg.job_id
            hold = self.work.hold_s(self.socks[sock])
            heapq.heappush(self.due, (now + hold, id(msg), sock, msg.job_id))
        elif isinstance(msg, protocol.Ack):
            counts.acks += 1
            sent = self.sent_at.pop(msg.result_id, None)
            if sent is not None:
                counts.ack_rtt_s.append(now - sent)
        elif isinstance(msg, protocol.Welcome):
            counts.registered += 1
            sent = self.sent_at.pop(msg.agent_id, None)
            if sent is not None:
                counts.welcome_rtt_s.append(now - sent)

    def answer_jobs(self, now: float) -> None:
        while self.due and self.due[0][0] <= now:
            _, _, sock, job_id = heapq.heappop(self.due)
            result_id = uuid.uuid4().hex
            result = protocol.Result(job_id, result_id, self.work.document, self.work.latencies)
            sock.send_multipart(protocol.encode(result))
            self.sent_at[result_id] = time.monotonic()
            self.running.pop(sock, None)
            self.busy_beat.pop(job_id, None)
            self.counts.sent += 1
            self.counts.results += 1

    def beat(self, now: float) -> None:
        """Send every beat due by `now`, each rescheduled on its own 1 Hz grid."""
        counts, interval = self.counts, self.work.heartbeat_s
        while self.beats and self.beats[0][0] <= now:
            due, sock = self.beats.popleft()
            job = self.running.get(sock, "")
            frames = self.idle_beat
            if job:
                frames = self.busy_beat.get(job) or self.busy_beat.setdefault(
                    job, protocol.encode(protocol.Heartbeat("busy", job)))  # fmt: skip
            sock.send_multipart(frames)
            late = now - due
            if late > TICK_S:
                counts.late_beats += 1
                counts.max_late_s = max(counts.max_late_s, late)
            counts.beats += 1
            counts.sent += 1
            self.beats.append((due + interval, sock))

    def next_wake(self, now: float) -> float:
        """Seconds to poll: until the next beat or answer, at least 1 ms, at most a tick."""
        nxt = now + TICK_S
        if self.beats:
            nxt = min(nxt, self.beats[0][0])
        if self.due:
            nxt = min(nxt, self.due[0][0])
        return max(0.001, nxt - now)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def run_agents(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, names: list[tuple[int, str]],
               work: Workload, share: float, stop: threading.Event,
               counts: SimCounts) -> None:  # fmt: skip
    """One thread: connect `names` at `share` connections a second, then beat and answer
    jobs until `stop` is set."""
    agents = _Agents(ctx, endpoint, names, work, counts)
    started = time.monotonic()
    try:
        while not stop.is_set():
            now = time.monotonic()
            if agents.pending:
                agents.connect_some(now, started, share)
            for sock, _ in agents.poller.poll(int(agents.next_wake(now) * 1000)):
                agents.receive(sock)
            now = time.monotonic()
            agents.answer_jobs(now)
            agents.beat(now)
    finally:
        agents.close()


def start_fleet(endpoint: str, names: list[str], work: Workload, threads: int,
                stop: threading.Event) -> tuple[list[threading.Thread], list[SimCounts],
                                                zmq.Context[zmq.Socket[bytes]]]:  # fmt: skip
    """Start `threads` threads running `names` (agent index = position in `names`)."""
    ctx = sim_context(len(names))
    indexed = list(enumerate(names))
    counts = [SimCounts() for _ in range(threads)]
    share = work.ramp_per_s / threads
    pool = [threading.Thread(target=run_agents, name=f"sim-{i}", daemon=True,
                             args=(ctx, endpoint, indexed[i::threads], work, share, stop,
                                   counts[i]))
            for i in range(threads)]  # fmt: skip
    for t in pool:
        t.start()
    return pool, counts, ctx


def total(counts: list[SimCounts]) -> SimCounts:
    """The fleet's counts: sums, the worst lateness, all round trips."""
    out = SimCounts()
    for c in counts:
        for name in ("registered", "sent", "received", "beats", "results", "acks", "late_beats"):
            setattr(out, name, getattr(out, name) + getattr(c, name))
        out.max_late_s = max(out.max_late_s, c.max_late_s)
        out.ack_rtt_s.extend(c.ack_rtt_s)
        out.welcome_rtt_s.extend(c.welcome_rtt_s)
    return out
