"""The transfer process: many requests in flight on one pycurl CurlMulti, on the request core.

Forked by an HTTP process (:mod:`.resumer`) and driven through a private socket pair: jobs
come in, outcomes go out, one length-prefixed frame each.  Every transfer is an attempt of
the request core (``request.begin``/``request.conclude``: the same routes, profiles, TLS
set-up, caps, header capture, failover rule, counters and error texts as a SIP worker's
call), on a handle of its own taken from the route's pool, so the multi keeps the
connections of every connection definition alive between transfers.  libcurl's socket and
timer callbacks feed one epoll, which also watches the pipe to the HTTP process.
"""
from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import pycurl

from .. import config
from ..config.registry import Configuration
from ..core import request
from ..core.attempt import Attempt
from ..core.guard import BREAKER_OPEN
from ..core.state import ProcessState, RouteKey, process_state
from ..core.transport import Handle, closed_by_peer
from ..log import get_logger
from ..ops import counters
from .jobs import Job, Outcome, handling

log = get_logger("async")

_FRAME = struct.Struct("!IQ")        # payload length, job id
_MAX_FRAME = 64 << 20
_READ_SIZE = 256 << 10


@dataclass(slots=True)
class InFlight:
    """One job while its attempt runs: the core's exchange and the handle it runs on."""

    job_id: int
    job: Job
    exchange: request.Exchange
    handle: Handle | None            # while an attempt runs
    ok: int = 0                      # attempts with status 200, and the others
    failed: int = 0


class FrameReader:
    """Frames (job id, payload) out of a stream socket, however the bytes arrive."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.scratch = bytearray(_READ_SIZE)   # one buffer for every recv: no allocation
        self.view = memoryview(self.scratch)   # (and no mmap) of a large one per read

    def read(self) -> list[tuple[int, bytes]] | None:
        """The frames complete now; None when the peer closed the stream."""
        try:
            size = self.sock.recv_into(self.scratch)
        except BlockingIOError:
            return []
        if not size:
            return None
        buffer = self.buffer
        buffer += self.view[:size]
        frames = []
        start, have, head = 0, len(buffer), _FRAME.size
        while have - start >= head:
            size, job_id = _FRAME.unpack_from(buffer, start)
            if size > _MAX_FRAME:
                raise ValueError(f"frame of {size} bytes from the peer process")
            end = start + head + size
            if end > have:
                break
            frames.append((job_id, bytes(buffer[start + head:end])))
            start = end
        del buffer[:start]
        return frames


class FrameWriter:
    """Frames into a non-blocking stream socket; what does not fit now waits in a buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()

    def add(self, job_id: int, payload: bytes) -> None:
        """Queue a frame; :meth:`flush` sends what was queued (once per loop turn)."""
        self.pending += _FRAME.pack(len(payload), job_id)
        self.pending += payload

    def write(self, job_id: int, payload: bytes) -> None:
        self.add(job_id, payload)
        self.flush()

    def flush(self) -> None:
        while self.pending:
            try:
                sent = self.sock.send(self.pending)
            except BlockingIOError:
                return
            del self.pending[:sent]


_EPOLL_MASK = {pycurl.POLL_IN: select.EPOLLIN, pycurl.POLL_OUT: select.EPOLLOUT,
               pycurl.POLL_INOUT: select.EPOLLIN | select.EPOLLOUT, pycurl.POLL_REMOVE: 0}
_READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR


class TransferProcess:
    """The CurlMulti loop of one transfer process.

    One turn of the loop: wait on epoll (libcurl's sockets and the pipe), hand each event to
    libcurl, run libcurl's timer when due, then collect the finished transfers and send their
    outcomes in one write.  The loop is the transfer process's whole CPU budget, so it uses
    epoll directly and keeps per-transfer Python work to the request core's rules.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = FrameReader(sock)
        self.writer = FrameWriter(sock)
        self.poller = select.epoll()
        self.watched: dict[int, int] = {}                   # libcurl's fd -> epoll mask
        self.idle: set[int] = set()                         # fds libcurl stopped watching
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._watch)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, self._timer)
        self.deadline: float | None = None
        self.in_flight: dict[pycurl.Curl, InFlight] = {}
        self.per_route: dict[RouteKey, int] = {}            # transfers in flight per route
        self.waiting: dict[RouteKey, deque[InFlight]] = {}  # beyond the per-route limit
        self.per_route_limit = config.current().settings.async_max_per_connection
        self.state: ProcessState = process_state()
        self.poller.register(sock.fileno(), select.EPOLLIN)

    # libcurl's callbacks: which sockets to watch, when to call back
    def _watch(self, what: int, fd: int, _multi: object, _data: object) -> None:
        mask = _EPOLL_MASK.get(what, 0)
        watched = self.watched
        try:
            if not mask:
                self.idle.add(fd)                   # kept in the pool, or closing
                if watched.pop(fd, None) is not None:
                    self.poller.unregister(fd)
            elif fd in watched:
                self.idle.discard(fd)
                if watched[fd] != mask:
                    self.poller.modify(fd, mask)
                    watched[fd] = mask
            else:
                self.idle.discard(fd)
                self.poller.register(fd, mask)
                watched[fd] = mask
        except OSError:                 # a socket closed before its removal: forget it
            watched.pop(fd, None)

    def _idle_closed(self) -> bool:
        """Whether the server closed one of the multi's idle connections: a request that
        must not be sent twice then takes a new one (libcurl, which checks only connections
        idle for a second, would send it on the closed one and then re-send it)."""
        closed, gone = closed_by_peer(self.idle)
        self.idle.difference_update(gone)          # libcurl dropped them (it prunes each
        return bool(closed)                        # second): the set does not grow

    def _timer(self, timeout_ms: int) -> None:
        self.deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

    def run(self) -> None:
        """Serve until the HTTP process closes the pipe (or dies)."""
        pipe = self.sock.fileno()
        poll, socket_action = self.poller.poll, self.multi.socket_action
        monotonic, writer = time.monotonic, self.writer
        waiting_to_write = False
        while True:
            deadline = self.deadline
            timeout = -1.0 if deadline is None else max(0.0, deadline - monotonic())
            for fd, events in poll(timeout):
                if fd == pipe:
                    if events & select.EPOLLOUT:
                        writer.flush()
                    if events & _READABLE and not self._receive():
                        return
                    continue
                mask = (pycurl.CSELECT_IN if events & _READABLE else 0) | \
                    (pycurl.CSELECT_OUT if events & select.EPOLLOUT else 0)
                try:
                    socket_action(fd, mask)
                except pycurl.error as exc:
                    log.error("curl multi: %s", exc)
            if self.deadline is not None and monotonic() >= self.deadline:
                self.deadline = None
                try:
                    socket_action(pycurl.SOCKET_TIMEOUT, 0)
                except pycurl.error as exc:
                    log.error("curl multi: %s", exc)
            self._collect()
            writer.flush()
            if bool(writer.pending) != waiting_to_write:     # the pipe is full: wait for it
                waiting_to_write = not waiting_to_write
                self.poller.modify(pipe, select.EPOLLIN | (
                    select.EPOLLOUT if waiting_to_write else 0))

    def _receive(self) -> bool:
        frames = self.reader.read()
        if frames is None:
            return False
        cfg = config.current()
        for job_id, payload in frames:
            self._start(cfg, job_id, Job.decode(payload))
        return True

    def _start(self, cfg: Configuration, job_id: int, job: Job) -> None:
        begun = request.begin_job(cfg, self.state, job.connection, job.url, job.method,
                                  job.content_type, job.body, job.hdrs, http2=job.http2,
                                  first_line=job.first_line)
        if isinstance(begun, Attempt):
            self.writer.add(job_id, Outcome.of(begun).encode())
            return
        with handling(job):
            self._launch(InFlight(job_id, job, begun, None))

    def _launch(self, flight: InFlight) -> None:
        """Start the flight's next attempt, or let it wait for its route's limit."""
        key = flight.exchange.route.key
        running = self.per_route.get(key, 0)
        if self.per_route_limit and running >= self.per_route_limit:
            self.waiting.setdefault(key, deque()).append(flight)
            return
        self.per_route[key] = running + 1
        flight.handle = self.state.loan(key)
        flight.handle.pool_closed = self._idle_closed
        attempt = request.start_attempt(self.state, flight.exchange, flight.handle)
        if attempt is not None:              # refused before any transfer (an option)
            self._finished(flight, attempt)
            return
        self.in_flight[flight.handle.curl] = flight
        self.multi.add_handle(flight.handle.curl)

    def _collect(self) -> None:
        """Conclude the transfers libcurl finished in this turn."""
        info_read = self.multi.info_read
        while True:
            queued, done, failed = info_read()
            for curl in done:
                self._complete(curl, 0)
            for curl, errno, _message in failed:
                self._complete(curl, errno)
            if not queued:
                return

    def _complete(self, curl: pycurl.Curl, errno: int) -> None:
        flight = self.in_flight.pop(curl, None)
        if flight is None:
            return
        self.multi.remove_handle(curl)
        assert flight.handle is not None
        with handling(flight.job):
            attempt = request.end_attempt(self.state, flight.exchange, flight.handle, errno)
            self._finished(flight, attempt)

    def _finished(self, flight: InFlight, attempt: Attempt) -> None:
        if attempt.status == 200:
            flight.ok += 1
        elif attempt.code != BREAKER_OPEN:           # a refused attempt sent nothing
            flight.failed += 1
        assert flight.handle is not None
        self.state.give_back(flight.handle)
        flight.handle = None
        key = flight.exchange.route.key
        self.per_route[key] -= 1
        self._next(flight, attempt)
        queue = self.waiting.get(key)
        if queue:
            self._launch(queue.popleft())

    def _next(self, flight: InFlight, attempt: Attempt) -> None:
        """The failover hop, or the outcome back to the HTTP process."""
        if request.failover(config.current(), self.state, flight.exchange, attempt):
            self._launch(flight)
        else:
            self.writer.add(flight.job_id, Outcome.of(
                request.result(flight.exchange, attempt), flight.ok, flight.failed).encode())


def start(setup: Callable[[], None] | None = None) -> tuple[int, socket.socket]:
    """Fork a transfer process (``setup`` runs first in the child): its pid, and this end of
    the stream socket pair to it, non-blocking."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:                                 # the transfer process
        mine.close()
        try:
            if setup is not None:
                setup()
            serve(theirs)
        finally:
            os._exit(0)
    theirs.close()
    mine.setblocking(False)
    return pid, mine


def serve(sock: socket.socket) -> None:
    """The body of a transfer process."""
    sock.setblocking(False)
    counters.not_in_kamailio()
    TransferProcess(sock).run()
