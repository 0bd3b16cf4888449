"""Simulated agents for the fleet-load bench: thousands of DEALERs speaking the real protocol
from one process, cheap enough that the simulator is never the reason an agent goes missing.

Each thread multiplexes its share of sockets with one zmq.Poller and wakes every TICK_S (or
sooner on a message). Heartbeats are due on a fixed 1 Hz grid per agent (`due += interval`,
never `now + interval`), so a late simulator shows as lateness and a lower achieved rate, not
as a silently slower fleet. An idle beat's frames are encoded once: they are the same bytes
for every agent. Agents connect at a bounded rate (`ramp_per_s`), as a fleet that boots does,
so the registration storm is bounded too.

With `Workload.failover_after_s`, each agent follows a route of collectors as the real agent
does (agent.link.endpoints): a socket monitor tells it when its connection is up or down, and
once none has been up for longer than the timeout it moves to the next collector, registers
there with the job it runs and sends again every result not yet acknowledged (same ids).

Every thread keeps its own `SimCounts` (no lock): the main thread only reads them, and
CPython reads an int atomically, so a window's rate is the difference of two snapshots.
"""

from __future__ import annotations

import heapq
import resource
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
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
    failovers: int = 0  # moves to the next collector of a route
    resent: int = 0  # unacked results sent again to the collector moved to
    failover_s: list[float] = field(default_factory=list)  # connection lost -> Welcome elsewhere


@dataclass(frozen=True)
class Workload:
    """What each simulated agent sends: its result document and latencies, and how long it
    holds a job (agent index -> seconds) before answering with a Result."""

    document: dict[str, Any]
    latencies: np.ndarray
    hold_s: Callable[[int], float]
    heartbeat_s: float = 1.0
    ramp_per_s: float = 1000.0  # connections a second over all threads
    failover_after_s: float | None = None  # None: one collector, no connection monitors


Route = Callable[[int], Sequence[str]]
"""Agent index -> the collectors it may use, in the order it tries them."""


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


_MONITOR_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


class _Agents:
    """One thread's agents: their sockets, heartbeat grid, held jobs and counts. Everything
    is keyed by agent index, not socket: an agent that fails over gets a new socket."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], route: Route,
                 names: list[tuple[int, str]], work: Workload,
                 counts: SimCounts) -> None:  # fmt: skip
        self.ctx, self.route, self.work, self.counts = ctx, route, work, counts
        self.pending = deque(names)  # (index, name) not yet connected
        self.names = dict(names)
        self.poller = zmq.Poller()
        self.socks: dict[zmq.Socket[bytes], int] = {}  # socket -> agent index
        self.sock_of: dict[int, zmq.Socket[bytes]] = {}
        self.monitors: dict[zmq.Socket[bytes], int] = {}  # monitor socket -> agent index
        self.at: dict[int, int] = {}  # agent index -> position in its route
        self.down_since: dict[int, float] = {}  # no connection up since (failover only)
        self.moved_at: dict[int, float] = {}  # connection first lost, until welcomed again
        self.beats: deque[tuple[float, int]] = deque()  # (due, agent index) in due order
        self.due: list[tuple[float, int, str]] = []  # job answers: (due, index, job id)
        self.running: dict[int, str] = {}
        self.unacked: dict[int, dict[str, list[bytes]]] = {}  # index -> result id -> frames
        self.owner: dict[str, int] = {}  # unacked result id -> agent index
        self.sent_at: dict[str, float] = {}  # result id or agent name -> send time
        self.idle_beat = protocol.encode(protocol.Heartbeat("idle", ""))
        self.busy_beat: dict[str, list[bytes]] = {}

    def connect_some(self, now: float, started: float, share: float) -> None:
        """Connect and register the agents the ramp allows by `now`."""
        allowed = int((now - started) * share) + 1 - len(self.sock_of)
        for _ in range(min(allowed, len(self.pending))):
            index, _name = self.pending.popleft()
            self.at[index] = 0
            self._connect(index, now)
            self.beats.append((now + self.work.heartbeat_s, index))

    def _connect(self, index: int, now: float) -> None:
        """A socket to the agent's current collector, and its Register (with the job it runs:
        what a real agent says when it reaches a collector)."""
        name = self.names[index]
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.work.failover_after_s is not None:
            monitor = sock.get_monitor_socket(_MONITOR_EVENTS)
            self.poller.register(monitor, zmq.POLLIN)
            self.monitors[monitor] = index
            self.down_since[index] = now
        sock.connect(self.route(index)[self.at[index]])
        device = {"device_id": name, "providers": ["CPUExecutionProvider"]}
        running = self.running.get(index, "")
        sock.send_multipart(protocol.encode(protocol.Register(name, "sim", device, {}, running)))
        self.sent_at[name] = now
        self.counts.sent += 1
        self.poller.register(sock, zmq.POLLIN)
        self.socks[sock] = index
        self.sock_of[index] = sock

    def receive(self, sock: zmq.Socket[bytes]) -> None:
        if sock in self.monitors:
            self._monitor_event(sock)
            return
        msg = protocol.decode(sock.recv_multipart())
        now, counts, index = time.monotonic(), self.counts, self.socks[sock]
        counts.received += 1
        if isinstance(msg, protocol.Job) and self.running.get(index) != msg.job_id:
            self.running[index] = msg.job_id
            heapq.heappush(self.due, (now + self.work.hold_s(index), index, msg.job_id))
        elif isinstance(msg, protocol.Ack):
            counts.acks += 1
            owner = self.owner.pop(msg.result_id, None)
            if owner is not None:
                self.unacked[owner].pop(msg.result_id, None)
            sent = self.sent_at.pop(msg.result_id, None)
            if sent is not None:
                counts.ack_rtt_s.append(now - sent)
        elif isinstance(msg, protocol.Welcome):
            counts.registered += 1
            sent = self.sent_at.pop(msg.agent_id, None)
            if sent is not None:
                counts.welcome_rtt_s.append(now - sent)
            lost = self.moved_at.pop(index, None)
            if lost is not None and self.at[index] > 0:
                counts.failover_s.append(now - lost)

    def _monitor_event(self, monitor: zmq.Socket[bytes]) -> None:
        """A connection up or down: the failover clock, as agent.link.endpoints keeps it."""
        index = self.monitors[monitor]
        event = int(struct.unpack_from("=H", monitor.recv_multipart()[0])[0])
        now = time.monotonic()
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.down_since.pop(index, None)
        elif event == zmq.EVENT_DISCONNECTED:
            self.down_since.setdefault(index, now)
            self.moved_at.setdefault(index, now)

    def fail_over(self, now: float) -> None:
        """Move each agent whose collector has had no connection up for longer than the
        timeout to the next collector of its route, with its running job and its unacked
        results (same result ids: delivery stays idempotent across collectors)."""
        after = self.work.failover_after_s
        if after is None or not self.down_since:
            return
        for index, since in list(self.down_since.items()):
            if now - since <= after or len(self.route(index)) < 2:
                continue
            old = self.sock_of.pop(index)
            for monitor, owner in list(self.monitors.items()):
                if owner == index:
                    self.poller.unregister(monitor)
                    del self.monitors[monitor]
                    old.disable_monitor()
                    monitor.close()
            self.poller.unregister(old)
            del self.socks[old]
            old.close()
            self.at[index] = (self.at[index] + 1) % len(self.route(index))
            self.counts.failovers += 1
            self._connect(index, now)
            sock = self.sock_of[index]
            for result_id, frames in self.unacked.get(index, {}).items():
                sock.send_multipart(frames)
                self.counts.sent += 1
                self.counts.resent += 1
                self.sent_at[result_id] = now

    def answer_jobs(self, now: float) -> None:
        while self.due and self.due[0][0] <= now:
            _, index, job_id = heapq.heappop(self.due)
            if self.running.get(index) != job_id:
                continue  # superseded
            result_id = uuid.uuid4().hex
            result = protocol.Result(job_id, result_id, self.work.document, self.work.latencies)
            frames = protocol.encode(result)
            self.sock_of[index].send_multipart(frames)
            if self.work.failover_after_s is not None:
                self.unacked.setdefault(index, {})[result_id] = frames
                self.owner[result_id] = index
            self.sent_at[result_id] = time.monotonic()
            del self.running[index]
            self.busy_beat.pop(job_id, None)
            self.counts.sent += 1
            self.counts.results += 1

    def beat(self, now: float) -> None:
        """Send every beat due by `now`, each rescheduled on its own 1 Hz grid."""
        counts, interval = self.counts, self.work.heartbeat_s
        while self.beats and self.beats[0][0] <= now:
            due, index = self.beats.popleft()
            job = self.running.get(index, "")
            frames = self.idle_beat
            if job:
                frames = self.busy_beat.get(job) or self.busy_beat.setdefault(
                    job, protocol.encode(protocol.Heartbeat("busy", job)))  # fmt: skip
            self.sock_of[index].send_multipart(frames)
            late = now - due
            if late > TICK_S:
                counts.late_beats += 1
                counts.max_late_s = max(counts.max_late_s, late)
            counts.beats += 1
            counts.sent += 1
            self.beats.append((due + interval, index))

    def next_wake(self, now: float) -> float:
        """Seconds to poll: until the next beat or answer, at least 1 ms, at most a tick."""
        nxt = now + TICK_S
        if self.beats:
            nxt = min(nxt, self.beats[0][0])
        if self.due:
            nxt = min(nxt, self.due[0][0])
        return max(0.001, nxt - now)

    def close(self) -> None:
        for monitor in self.monitors:
            monitor.close()
        for sock in self.socks:
            sock.close()


def run_agents(ctx: zmq.Context[zmq.Socket[bytes]], route: Route, names: list[tuple[int, str]],
               work: Workload, share: float, stop: threading.Event,
               counts: SimCounts) -> None:  # fmt: skip
    """One thread: connect `names` at `share` connections a second, then beat and answer
    jobs (and fail over) until `stop` is set."""
    agents = _Agents(ctx, route, names, work, counts)
    started = time.monotonic()
    try:
        while not stop.is_set():
            now = time.monotonic()
            if agents.pending:
                agents.connect_some(now, started, share)
            for sock, _ in agents.poller.poll(int(agents.next_wake(now) * 1000)):
                agents.receive(sock)
            now = time.monotonic()
            agents.fail_over(now)
            agents.answer_jobs(now)
            agents.beat(now)
    finally:
        agents.close()


def start_fleet(endpoint: str | Route, names: list[str], work: Workload, threads: int,
                stop: threading.Event) -> tuple[list[threading.Thread], list[SimCounts],
                                                zmq.Context[zmq.Socket[bytes]]]:  # fmt: skip
    """Start `threads` threads running `names` (agent index = position in `names`);
    `endpoint` is one collector for all, or each agent's route of collectors."""
    route: Route = endpoint if callable(endpoint) else (lambda _index: (endpoint,))
    monitors = len(names) if work.failover_after_s is not None else 0
    ctx = sim_context(len(names) + monitors)
    indexed = list(enumerate(names))
    counts = [SimCounts() for _ in range(threads)]
    share = work.ramp_per_s / threads
    pool = [threading.Thread(target=run_agents, name=f"sim-{i}", daemon=True,
                             args=(ctx, route, indexed[i::threads], work, share, stop,
                                   counts[i]))
            for i in range(threads)]  # fmt: skip
    for t in pool:
        t.start()
    return pool, counts, ctx


def total(counts: list[SimCounts]) -> SimCounts:
    """The fleet's counts: sums, the worst lateness, all round trips."""
    out = SimCounts()
    for c in counts:
        for name in ("registered", "sent", "received", "beats", "results", "acks", "late_beats",
                     "failovers", "resent"):  # fmt: skip
            setattr(out, name, getattr(out, name) + getattr(c, name))
        out.failover_s.extend(c.failover_s)
        out.max_late_s = max(out.max_late_s, c.max_late_s)
        out.ack_rtt_s.extend(c.ack_rtt_s)
        out.welcome_rtt_s.extend(c.welcome_rtt_s)
    return out
