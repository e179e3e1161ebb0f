"""kamhttp's HTTP process under the testing kit: the evrexec process Kamailio would start.

With ``modparam("evrexec", "exec", "name=kamhttp_http_process;workers=1")`` Kamailio's main
process forks, after mod_init, a process that runs app_python3's ``child_init(PROC_RPC)`` and
then the KEMI event callback ``kamhttp_http_process(msg, "0")`` on a faked message: kamhttp's
real :class:`kamhttp.aio.resumer.HttpProcess` loop, which forks its real transfer process,
takes the jobs SIP workers queue, and continues each suspended transaction with
``KSR.tmx.t_continue(index, label, "kamhttp_resume")``.  The runner does exactly that
(:func:`start`, when the handler has ``kamhttp_http_process``), so the HTTP requests of an
asynchronous call are made by kamhttp's own code, in the processes it makes inside Kamailio.

How the outcome reaches the transcript: the emulated t_continue (:mod:`.ksr`) takes the
transaction from the run's store (:mod:`.transactions`, what tm keeps in shared memory), runs
the resume method in this process — with the transaction's AVPs/XAVPs, this process's $var,
as Kamailio does — and files a :class:`~.transcript.Resumption`; what this process and its
transfer process log or request outside a resume is appended to the store as it happens,
tagged with the transaction when kamhttp was handling one of its jobs then (the
:class:`kamhttp.aio.jobs.Job` found in a calling frame).  The runner (:class:`AsyncSide`)
reads both and merges them into the messages, waiting — bounded — until no message is left
suspended.

Before it calls ``kamhttp_http_process`` the kit marks the HTTP process alive on kamhttp's
board, as its loop does at once (a real Kamailio answers -3 to a request that arrives before
its HTTP process beat first); the runner waits for that before the first message.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping, NoReturn

from .context import FAKED_MESSAGE, MessageContext, WorkerState, new_context
from .errors import ScriptError
from .transactions import ProcessEntry, Store
from .transcript import HttpCall, LogLine, MessageResult, ProcessRecord, Resumption, Transcript

if TYPE_CHECKING:
    from .ksr import Emulator

PROC_RPC = -2
"""The rank app_python3's child_init gets in an evrexec process (Kamailio's PROC_RPC)."""
EVREXEC_INDEX = "0"
"""What evrexec passes the KEMI callback of its first (only) worker: its index as a string."""
ENTRY = "kamhttp_http_process"

_HEAD = struct.Struct("!cI")          # handshake: b"R" ready or b"F" failed, payload length


def find_job() -> Any:
    """The :class:`kamhttp.aio.jobs.Job` kamhttp is handling in this process right now (see
    ``kamhttp.aio.jobs.current``), else None."""
    jobs = sys.modules.get("kamhttp.aio.jobs")
    return None if jobs is None else jobs.current()


@dataclass
class StreamContext(MessageContext):
    """The HTTP process's context outside resumes (evrexec's faked message): every record goes
    to the store at once, from this process or from the transfer process it forked."""

    store: Store | None = None
    http_pid: int = 0

    def record(self, kind: list[Any], item: Any) -> None:
        if self.store is None:
            super().record(kind, item)
            return
        process = "HTTP process" if os.getpid() == self.http_pid else "transfer process"
        job = find_job()
        transaction = (job.index, job.label) if job is not None and job.index >= 0 else None
        self.store.append(process, transaction, item)


# ---------------------------------------------------------------------------------------------
# The runner's side

class HttpProcessChild:
    """The forked HTTP process, seen from the runner: its pid and the pipe whose end of file
    says that it (and the transfer process, which holds the pipe too) ended."""

    def __init__(self, pid: int, life_fd: int) -> None:
        self.pid = pid
        self.life_fd = life_fd
        self.alive = True
        self.ended = ""              # why it ended, when it did before the run's end
        self.buffer = b""
        self.stopped = False

    def read_life(self) -> None:
        """Read what the pipe holds; at its end the process is gone (reaped here)."""
        try:
            data = os.read(self.life_fd, 65536)
        except BlockingIOError:
            return
        if data:
            self.buffer += data
            return
        self.alive = False
        self.ended = f"kamhttp's HTTP process (pid {self.pid}) ended: {self._reap()}"

    def _reap(self) -> str:
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return "already reaped"
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.waitstatus_to_exitcode(status)}"

    def stop(self, timeout: float) -> None:
        """SIGKILL (by pid) and reap; then wait, bounded, for the transfer process to go (it
        gets SIGKILL as its parent dies: PR_SET_PDEATHSIG).  Once."""
        if self.stopped:
            return
        self.stopped = True
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._reap()
            self.alive = False
        deadline = time.monotonic() + timeout
        with contextlib.suppress(OSError):
            while (remaining := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([self.life_fd], [], [], remaining)
                if ready and not os.read(self.life_fd, 65536):
                    break
        with contextlib.suppress(OSError):
            os.close(self.life_fd)


def start(emulator: Emulator, handler: Any, store: Store, timeout: float,
          foreign_fds: Mapping[int, tuple[int, int]] | None = None
          ) -> tuple[HttpProcessChild | None, list[LogLine], str]:
    """Fork the HTTP process and wait (bounded) until it is ready: (the child, its
    child_init log lines, a problem if it did not start).  ScriptError when its
    child_init(-2) fails: Kamailio would not start.

    ``foreign_fds`` are the sockets that were open before the script loaded (fd -> (st_dev,
    st_ino)): the test's servers and their connections, no Kamailio process's — and a
    listening socket kept open here would make a server the test stopped still accept
    connections.  In the HTTP process those still open point to /dev/null (their numbers stay
    taken: the objects that own them may still close them)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _forget(foreign_fds or {})
        _child(emulator, handler, store, write_fd)
    os.close(write_fd)
    child = HttpProcessChild(pid, read_fd)
    deadline = time.monotonic() + timeout
    while child.alive and len(child.buffer) < _HEAD.size + _head_size(child.buffer):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([read_fd], [], [], remaining)[0]:
            child.stop(timeout)
            return None, [], f"kamhttp's HTTP process (pid {pid}) did not start within " \
                             f"{timeout} s; killed"
        child.read_life()
    if not child.alive and len(child.buffer) < _HEAD.size + _head_size(child.buffer):
        child.stop(timeout)
        return None, [], child.ended
    kind, size = _HEAD.unpack_from(child.buffer)
    payload = pickle.loads(child.buffer[_HEAD.size:_HEAD.size + size])
    child.buffer = child.buffer[_HEAD.size + size:]
    if kind == b"F":
        logs, problem = payload
        child.stop(timeout)
        raise ScriptError(f"{problem} (in kamhttp's HTTP process, the evrexec process)"
                          + "".join(f"\n{line}" for line in logs))
    return child, payload, ""


def _forget(fds: Mapping[int, tuple[int, int]]) -> None:
    try:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    for fd, identity in fds.items():
        with contextlib.suppress(OSError):
            info = os.fstat(fd)
            if fd != null and (info.st_dev, info.st_ino) == identity:    # not reused since
                os.dup2(null, fd, inheritable=False)
    os.close(null)


def _head_size(buffer: bytes) -> int:
    return _HEAD.unpack_from(buffer)[1] if len(buffer) >= _HEAD.size else 0


class AsyncSide:
    """The runner's side of the asynchronous path: the store, kamhttp's HTTP process, and the
    merging of what they hold into the transcript."""

    def __init__(self, store: Store, child: HttpProcessChild | None) -> None:
        self.store = store
        self.child = child

    def collect(self, transcript: Transcript) -> None:
        """Merge the resumptions and process records written so far.  Resumptions are read
        first: the records of their requests were appended before them."""
        resumptions = self.store.resumptions()
        entries = self.store.process_entries()
        if not resumptions and not entries:
            return
        messages = {m.index: m for m in transcript.messages}
        merged: list[tuple[int, Resumption | ProcessEntry]] = \
            [(r.ns, r) for r in resumptions] + [(e.ns, e) for e in entries]
        merged.sort(key=lambda pair: pair[0])
        for _, item in merged:
            if isinstance(item, Resumption):
                message = messages.get(item.position)
                if message is not None and message.transaction == (item.index, item.label):
                    message.add_resumption(item)
                else:
                    transcript.problems.append(
                        f"a resumption ({item.resume}) of transaction {item.index}:"
                        f"{item.label}, which no message of the run has")
                continue
            message = messages.get(item.transaction[0]) if item.transaction else None
            if message is not None and message.transaction == item.transaction:
                message.add_record(_tagged(item))
            else:
                transcript.http_process.append(ProcessRecord(item.process, item.pid, item.item))

    def wait(self, transcript: Transcript, timeout: float) -> bool:
        """Until no message is left suspended (True), the HTTP process is gone, or
        ``timeout`` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        while True:
            self.collect(transcript)
            if not any(m.awaiting for m in transcript.messages):
                return True
            child = self.child
            if child is None or not child.alive:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.store.res_recv.fileno(), child.life_fd], [], [],
                                        remaining)
            self.store.drain()
            if child.life_fd in ready:
                child.read_life()

    def finish(self, transcript: Transcript, timeout: float) -> None:
        """The end of the run: wait for the suspended messages, stop the HTTP process, merge
        what is left and name what never came back."""
        finished = self.wait(transcript, timeout)
        child = self.child
        if child is not None:
            child.stop(timeout)
            if child.ended:
                transcript.problems.append(child.ended)
        self.collect(transcript)
        if finished:
            return
        why = "no HTTP process runs" if child is None else \
            f"not resumed within {timeout:g} s" if not child.ended else "the HTTP process ended"
        for message in transcript.messages:
            if message.awaiting and message.transaction is not None:
                index, label = message.transaction
                transcript.problems.append(f"message #{message.index + 1}: its transaction "
                                           f"{index}:{label} is still suspended ({why})")


def _tagged(entry: ProcessEntry) -> Any:
    """A record of a kamhttp process, marked with the process, for a message's lists."""
    item = entry.item
    if isinstance(item, LogLine):
        return replace(item, origin=item.origin or entry.process)
    if isinstance(item, HttpCall):
        return replace(item, process=item.process or entry.process)
    return item


# ---------------------------------------------------------------------------------------------
# The HTTP process itself

def _child(emulator: Emulator, handler: Any, store: Store, life_fd: int) -> NoReturn:
    """The body of the HTTP process (never returns): child_init(PROC_RPC), then
    kamhttp_http_process(msg, "0") on the faked message until the runner kills it."""
    status = 0
    runtime: Any = None
    try:
        from .ksr import AppPythonMsg
        worker = WorkerState(rank=PROC_RPC)
        emulator.worker = worker
        emulator.process = "HTTP process"
        emulator.store = store
        init_ctx = new_context(None, worker)
        emulator.startup = emulator.ctx = init_ctx
        problem = _child_init(handler)
        for line in init_ctx.logs:
            line.origin = line.origin or f"child_init({PROC_RPC})"
        if problem:
            _handshake(life_fd, b"F", (init_ctx.logs, problem))
            _exit(1, runtime)
        stream = StreamContext(FAKED_MESSAGE, worker, store=store, http_pid=os.getpid())
        emulator.startup = emulator.ctx = stream
        shared = sys.modules.get("kamhttp.aio.shared")
        runtime = shared.get() if shared is not None else None
        if runtime is not None:
            runtime.board.beat()
        _handshake(life_fd, b"R", init_ctx.logs)
        try:
            getattr(handler, ENTRY)(AppPythonMsg(emulator), EVREXEC_INDEX)
            stream.log("ERROR", f"{ENTRY} returned: kamhttp's HTTP process loop ended")
        except SystemExit:
            stream.log("ERROR", f"{ENTRY} ended with sys.exit()")
        except Exception:
            stream.log("ERROR", f"{ENTRY} raised:\n{traceback.format_exc().rstrip()}")
            status = 1
    except BaseException:
        status = 1
        with contextlib.suppress(Exception):
            sys.stderr.write(traceback.format_exc())
    _exit(status, runtime)


def _exit(status: int, runtime: Any) -> NoReturn:
    if runtime is not None:                 # no HTTP process any more: SIP workers get -3
        from kamhttp.aio import board
        runtime.board.words[board.READY_UNTIL] = 0
    os._exit(status)


def _child_init(handler: Any) -> str:
    """app_python3's child_init(PROC_RPC) in an evrexec process: "" or what went wrong."""
    child_init = getattr(handler, "child_init", None)
    if not callable(child_init):
        return "the handler has no child_init(rank) method"
    try:
        result = child_init(PROC_RPC)
    except Exception:
        return f"child_init({PROC_RPC}) raised:\n{traceback.format_exc()}"
    if isinstance(result, bool) or not isinstance(result, int) or result < 0:
        return f"child_init({PROC_RPC}) returned {result!r}; app_python3 needs an int >= 0"
    return ""


def _handshake(fd: int, kind: bytes, payload: Any) -> None:
    data = pickle.dumps(payload)
    view = memoryview(_HEAD.pack(kind, len(data)) + data)
    while view:
        view = view[os.write(fd, view):]
