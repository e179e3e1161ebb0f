"""kamhttp's HTTP process: an evrexec process of Kamailio that continues suspended
transactions, and the transfer process it keeps alive beside it.

Kamailio stops as a whole when one of its own processes dies, so the transfers do not run
in the evrexec process itself but in a child of it (:mod:`.transfers`): when that child is
killed, Kamailio goes on, and this process knows every job it had handed over.  It resumes
each suspended transaction exactly once — with its outcome; with curl code 28 when the job's
deadline (its connection's timeout, times two with a failover, plus a grace second) passed;
or with :data:`HTTP_PROCESS_LOST` when the transfer process died with it — and then starts
a new transfer process.

The resume goes through ``KSR.tmx.t_continue(index, label, "kamhttp_resume")``: Kamailio
runs the handler's ``kamhttp_resume`` method (from :class:`kamhttp.AsyncHandler`) here, with
the transaction's AVPs restored; it writes the result PV and calls the script's own resume
method.
"""
from __future__ import annotations

import ctypes
import heapq
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from .. import config, pv
from ..config.registry import Configuration
from ..core.curlerror import curl_strerror
from ..core.headers import final_fields
from ..log import get_logger, printable
from ..ops import counters
from ..script.api import Result
from . import board, shared
from .jobs import NO_TRANSACTION, Job, Outcome, handling
from . import transfers
from .transfers import FrameReader, FrameWriter

log = get_logger("async")

RESUME_METHOD = "kamhttp_resume"
REPLY_SUSPENDED = "$avp(kamhttp_reply_suspended)"
"""A transaction AVP, set while kamhttp holds a reply of the transaction suspended (an async
call in a tm onreply route), unset when it resumes."""
HTTP_PROCESS_LOST = -4
"""Result.code in a resume method when the transfer process died with the request."""
TIMEOUT = 28
_GRACE_S = 1.0
_BEAT_S = 0.5


@dataclass(slots=True)
class Pending:
    job: Job
    deadline: float | None       # monotonic seconds, None: no timeout (timeout_mode 0)


_resuming: tuple[Job, Outcome] | None = None
_last_result: Result | None = None


def async_result() -> Result | None:
    """The finished request of the resume method running now (the last one afterwards)."""
    return _last_result


def deadline_of(cfg: Configuration, job: Job, now: float) -> float | None:
    """When the job's transaction is resumed with 28 at the latest."""
    settings = cfg.settings
    attempts = 1
    timeout = settings.connection_timeout
    if job.connection is not None:
        conn = cfg.connections.get(job.connection)
        if conn is not None:
            timeout = conn.timeout
            attempts = 2 if conn.failover else 1
    value = settings.effective_timeout(timeout)
    if not value:
        return None
    seconds = value / 1000 if settings.timeout_mode == 2 else value
    return now + attempts * seconds + _GRACE_S


class HttpProcess:
    """The loop of one evrexec HTTP process (never returns while Kamailio runs).

    One turn: wait on epoll (the shared job queue, the transfer process's pipe), hand new
    jobs to the transfer process and resume the transactions whose outcomes came back, then
    resume those whose deadline passed.  Deadlines sit in a heap (what was resumed already
    is skipped when it reaches the top), so a turn costs the same with 10 or 10,000 jobs in
    flight.
    """

    def __init__(self) -> None:
        runtime = shared.get()
        if runtime is None:
            raise RuntimeError("kamhttp's asynchronous path was not set up before Kamailio "
                               "forked: configure kamhttp in mod_init()")
        self.runtime = runtime
        self.pending: dict[int, Pending] = {}
        self.deadlines: list[tuple[float, int]] = []     # (deadline, job id), a heap
        self.next_id = 1
        self.poller = select.epoll()
        self.jobs_fd = runtime.handover.receiver.fileno()
        self.poller.register(self.jobs_fd, select.EPOLLIN)
        self.child_pid = 0
        self.child_fd = -1
        self.child_sock: socket.socket | None = None
        self.reader: FrameReader | None = None
        self.writer: FrameWriter | None = None
        self.taking = True
        self.waiting_to_write = False
        self.max_in_flight = config.current().settings.async_max_transfers

    def spawn(self) -> None:
        """Start a transfer process with a private stream socket pair to it."""
        pid, mine = transfers.start(_become_transfer_process)
        self.child_pid, self.child_sock, self.child_fd = pid, mine, mine.fileno()
        self.reader, self.writer = FrameReader(mine), FrameWriter(mine)
        self.waiting_to_write = False
        self.poller.register(self.child_fd, select.EPOLLIN)
        log.info("transfer process %d started", pid)

    def run(self) -> None:
        self.spawn()
        beat = 0.0
        gauge = self.runtime.board.claim()
        words = self.runtime.board.words
        poll, monotonic = self.poller.poll, time.monotonic
        while True:
            now = monotonic()
            words[gauge] = len(self.pending)
            if now >= beat:
                self.runtime.board.beat()
                beat = now + _BEAT_S
            self._pace()
            for fd, events in poll(self._timeout(now, beat)):
                if fd == self.jobs_fd:
                    self._take_jobs()
                elif fd == self.child_fd:
                    if events & select.EPOLLOUT and self.writer is not None:
                        self.writer.flush()
                    if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                        self._read_outcomes()
            self._expire(monotonic())

    def _timeout(self, now: float, beat: float) -> float:
        deadlines, pending = self.deadlines, self.pending
        while deadlines and deadlines[0][1] not in pending:   # resumed already
            heapq.heappop(deadlines)
        nearest = min(beat, deadlines[0][0]) if deadlines else beat
        return max(0.0, nearest - now)

    def _pace(self) -> None:
        """Send what was queued for the transfer process; stop taking jobs while this process
        has its limit in flight: the rest wait in the shared queue for another HTTP process
        (or for room here)."""
        want = len(self.pending) < self.max_in_flight
        if want != self.taking:
            self.taking = want
            if want:
                self.poller.register(self.jobs_fd, select.EPOLLIN)
            else:
                self.poller.unregister(self.jobs_fd)
        writer = self.writer
        if writer is not None:
            writer.flush()
            if bool(writer.pending) != self.waiting_to_write:   # the pipe is full: wait
                self.waiting_to_write = not self.waiting_to_write
                self.poller.modify(self.child_fd, select.EPOLLIN | (
                    select.EPOLLOUT if self.waiting_to_write else 0))

    def _take_jobs(self) -> None:
        cfg = config.current()
        now = time.monotonic()
        take, pending, writer = self.runtime.handover.take, self.pending, self.writer
        while len(pending) < self.max_in_flight:
            taken = take()
            if taken is None:
                return
            job, data = taken
            job_id, self.next_id = self.next_id, self.next_id + 1
            deadline = deadline_of(cfg, job, now)
            pending[job_id] = Pending(job, deadline)
            if deadline is not None:
                heapq.heappush(self.deadlines, (deadline, job_id))
            if writer is not None:
                writer.add(job_id, data)

    def _read_outcomes(self) -> None:
        assert self.reader is not None
        try:
            frames = self.reader.read()
        except (OSError, ValueError):
            frames = None
        if frames is None:
            self._child_died()
            return
        pending = self.pending
        for job_id, payload in frames:
            item = pending.pop(job_id, None)
            if item is not None:              # else resumed already at its deadline
                finish(item.job, Outcome.decode(payload))

    def _expire(self, now: float) -> None:
        deadlines, pending = self.deadlines, self.pending
        while deadlines and deadlines[0][0] <= now:
            item = pending.pop(heapq.heappop(deadlines)[1], None)
            if item is None:                  # resumed with its outcome already
                continue
            self.runtime.board.add(board.TIMED_OUT)
            log.error("request %s timed out in the HTTP process (deadline passed)",
                      printable(item.job.url))
            finish(item.job, Outcome(TIMEOUT, curl_code=TIMEOUT))

    def _child_died(self) -> None:
        """Resume every job the dead transfer process had, then start another."""
        assert self.child_sock is not None
        self.poller.unregister(self.child_fd)
        self.child_sock.close()
        try:
            _, status = os.waitpid(self.child_pid, 0)
        except ChildProcessError:
            status = 0
        lost = list(self.pending.items())
        self.pending.clear()
        self.deadlines.clear()
        log.error("transfer process %d ended (status %d) with %d requests in flight; "
                  "they are resumed with %d", self.child_pid, status, len(lost),
                  HTTP_PROCESS_LOST)
        if lost:
            self.runtime.board.add(board.LOST, len(lost))
        for _, item in lost:
            finish(item.job, Outcome(HTTP_PROCESS_LOST))
        self.spawn()


def finish(job: Job, outcome: Outcome) -> None:
    """Continue the job's suspended transaction with ``outcome`` (nothing for a send)."""
    global _resuming
    if outcome.attempts_ok or outcome.attempts_failed:
        counters.add_to_kamailio(outcome.attempts_ok, outcome.attempts_failed)
    if job.index == NO_TRANSACTION:
        return
    ksr: Any = sys.modules.get("KSR")
    _resuming = (job, outcome)
    try:
        with handling(job):
            if ksr.tmx.t_continue(job.index, job.label, RESUME_METHOD) < 0:
                log.error("t_continue(%d, %d) failed: the transaction is gone or not "
                          "suspended", job.index, job.label)
    except Exception:
        log.exception("t_continue(%d, %d)", job.index, job.label)
    finally:
        _resuming = None


def resume_script(handler: Any, msg: Any, args: tuple[Any, ...]) -> int:
    """The body of ``kamhttp_resume``: the result PV and async_result() set, then the
    script's resume method, as the sync call would have left them."""
    global _last_result
    if _resuming is None:
        log.error("%s called outside a kamhttp resumption", RESUME_METHOD)
        return -1
    job, outcome = _resuming
    _last_result = result_of(outcome)
    ksr: Any = sys.modules.get("KSR")
    if ksr.tmx.t_is_reply_route() > 0:
        ksr.pv.unset(REPLY_SUSPENDED)           # a chain may suspend the reply again
    try:
        pv.sets(job.dpv, outcome.value.decode("utf-8", "replace"))
    except Exception:
        log.exception("cannot set the result variable %s", printable(job.dpv))
    method = getattr(handler, job.resume, None)
    if method is None:
        log.error("the script has no resume method %s", printable(job.resume))
        return -1
    rc = method(msg, *args)
    return rc if isinstance(rc, int) else 1


def result_of(outcome: Outcome) -> Result:
    code = outcome.code
    curl_code = outcome.curl_code
    return Result(code=code, status=outcome.status, body=outcome.body,
                  headers=final_fields(outcome.header_lines),
                  effective_url=outcome.effective_url, curl_code=curl_code,
                  curl_error=curl_strerror(curl_code) if curl_code else
                  ("kamhttp: the HTTP process ended with the request" if code ==
                   HTTP_PROCESS_LOST else ""),
                  truncated=outcome.truncated, timings=outcome.timings)


def _become_transfer_process() -> None:
    """A transfer process is no Kamailio process: Kamailio's signal handlers go, and it
    ends with the HTTP process that started it."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGCHLD, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)                # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:                            # the HTTP process is gone already
        os._exit(0)
