"""The script runner: loads a KEMI script the way app_python3 does and feeds it SIP messages.

app_python3 puts the script's folder first on sys.path, imports the file, calls ``mod_init()``
once in the main process and keeps what it returns as the handler; every worker then calls
``handler.child_init(rank)`` (an int >= 0 or Kamailio does not start) and, per message,
``handler.ksr_request_route(msg)`` or ``handler.ksr_reply_route(msg)``.

* :class:`Session` runs one worker in this process, message by message (tests can act between
  messages, e.g. stop a server).
* :func:`run_script` runs a list of messages, in-process for one worker, or in N forked
  worker processes (message *i* goes to worker ``i % N + 1``); results come back through
  pipes, every child is reaped, every wait is bounded by ``timeout``.

Asynchronous scripts: when the handler has ``kamhttp_http_process`` (``kamhttp.AsyncHandler``:
Kamailio's evrexec line for kamhttp), the runner forks kamhttp's HTTP process after mod_init
as Kamailio does (:mod:`.httpproc`); a route that suspends its transaction leaves it in the
run's store, the HTTP process continues it with the real request core, and the resumption
joins the message's result.  ``run_script`` and a closing ``Session`` wait — up to
``timeout`` — until no message is left suspended; ``Session.wait()`` waits in between.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import pathlib
import pickle
import selectors
import signal
import stat
import struct
import sys
import time
import traceback
from typing import Any, Iterable, Iterator, Mapping

from . import httpproc
from .errors import ScriptError
from .context import MessageContext, Transaction
from .ksr import AppPythonMsg, Emulator, plain, pv_snapshot
from .sipmsg import SipMessage, parse
from .transactions import Store
from .transcript import HttpCall, LogLine, MessageResult, Transcript

Message = SipMessage | str


class _Script:
    """One loaded script: the emulator, the handler, and how to undo the loading."""

    def __init__(self, path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None,
                 kamailio_cfg: str | os.PathLike[str] | None = None,
                 reply_route: str = "ksr_reply_route",
                 onsend_route: str = "ksr_onsend_route", http_process: bool = True,
                 timeout: float = 60.0) -> None:
        self.path = pathlib.Path(path).resolve()
        if not self.path.is_file():
            raise ScriptError(f"{path}: no such script file")
        self.env = dict(env or {})
        self.kamailio_cfg = kamailio_cfg
        self.reply_route = reply_route
        self.onsend_route = onsend_route
        self.http_process = http_process
        self.timeout = timeout
        self.emulator: Emulator | None = None
        self.handler: Any = None
        self.store: Store | None = None
        self.async_side: httpproc.AsyncSide | None = None
        self.problems: list[str] = []          # at start-up (the HTTP process)
        self.foreign_fds: dict[int, tuple[int, int]] = {}    # this process's sockets (not the
                                                             # script's Kamailio's): (dev, ino)
        self._undo = contextlib.ExitStack()

    def load(self) -> None:
        """Install the emulated KSR, import the script, run mod_init() (the main process)."""
        undo = self._undo
        undo.enter_context(_environment(self.env))
        _fresh_kamhttp()
        self.foreign_fds = _open_sockets()
        undo.callback(_drop_async_runtime)       # the run's Kamailio stops with it
        self.emulator = emulator = Emulator(native_http_client=self.kamailio_cfg is not None,
                                            onsend_route=self.onsend_route)
        self.store = emulator.store = Store(self.timeout)
        undo.callback(self.store.close)
        undo.enter_context(_sys_state(self.path, emulator))
        undo.enter_context(_trace_http(emulator))
        if self.kamailio_cfg is not None:
            import kamhttp
            kamhttp.load_kamailio_cfg(self.kamailio_cfg)
        name = self.path.stem
        try:
            spec = importlib.util.spec_from_file_location(name, self.path)
            if spec is None or spec.loader is None:     # not a file Python can import
                raise ImportError(f"no module loader for {self.path.name!r} (app_python3 "
                                  "loads a Python source file, e.g. script.py)")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except Exception:
            raise ScriptError(f"{self.path}: import failed:\n{traceback.format_exc()}") from None
        mod_init = getattr(module, "mod_init", None)
        if not callable(mod_init):
            raise ScriptError(f"{self.path}: no mod_init() function; app_python3 calls it and "
                              "keeps what it returns as the handler")
        try:
            self.handler = mod_init()
        except Exception:
            raise ScriptError(f"{self.path}: mod_init() raised:\n{traceback.format_exc()}") \
                from None
        if self.handler is None:
            raise ScriptError(f"{self.path}: mod_init() returned None; it must return the "
                              "handler object (e.g. 'return kamailio()')")
        emulator.handler = self.handler
        _tag(emulator.startup.logs, "mod_init")

    def start_async(self) -> None:
        """Fork kamhttp's HTTP process when the handler has one (the evrexec line for
        kamhttp_http_process); ScriptError when its child_init(-2) fails."""
        emulator = self.loaded_emulator()
        assert self.store is not None
        self.async_side = side = httpproc.AsyncSide(self.store, None)
        if not self.http_process or not callable(getattr(self.handler, httpproc.ENTRY, None)):
            return
        child, logs, problem = httpproc.start(emulator, self.handler, self.store, self.timeout,
                                              self.foreign_fds)
        emulator.startup.logs.extend(logs)
        if problem:
            self.problems.append(problem)
        if child is not None:
            side.child = child
            self._undo.callback(child.stop, self.timeout)

    def loaded_emulator(self) -> Emulator:
        """The emulator :meth:`load` installed; ScriptError before that."""
        if self.emulator is None:
            raise ScriptError(f"{self.path}: the script is not loaded (use Session as a context "
                              "manager: with Session(script) as session: ...)")
        return self.emulator

    def start_worker(self, rank: int) -> None:
        """child_init(rank) as app_python3 calls it in each worker; ScriptError if it fails."""
        emulator = self.loaded_emulator()
        emulator.worker.rank = rank
        emulator.worker.vars.clear()
        child_init = getattr(self.handler, "child_init", None)
        if not callable(child_init):
            raise ScriptError(f"{self.path}: the handler has no child_init(rank) method; "
                              "app_python3 calls it in every worker and does not start "
                              "without it")
        before = len(emulator.startup.logs)
        try:
            result = child_init(rank)
        except Exception:
            raise ScriptError(f"{self.path}: child_init({rank}) raised:\n"
                              f"{traceback.format_exc()}") from None
        finally:
            _tag(emulator.startup.logs[before:], f"child_init({rank})")
        if isinstance(result, bool) or not isinstance(result, int) or result < 0:
            raise ScriptError(f"{self.path}: child_init({rank}) returned {result!r}; "
                              "app_python3 needs an int >= 0 (return 0), else Kamailio "
                              "does not start (\"method 'child_init' ... should return "
                              "'int' type\", or init_child failed)")

    def serve(self, index: int, message: Message) -> MessageResult:
        """One message through its route, as app_python3 runs it."""
        if isinstance(message, str):
            message = parse(message)
        emulator = self.loaded_emulator()
        route = "ksr_request_route" if message.is_request else self.reply_route
        ctx = emulator.begin(message, index)
        msg = AppPythonMsg(emulator)
        outcome, returned, error = "returned", None, None
        try:
            function = getattr(self.handler, route, None) if route else None
            if function is None and route:
                ctx.log("ERROR", f"the handler has no {route}(msg) method")
            elif function is not None:
                returned = function(msg)
        except SystemExit:             # sys.exit(): app_python3's way to the cfg exit
            outcome = "exit"
        except Exception:
            outcome, error = "error", traceback.format_exc()
        finally:
            msg._invalidate()
            emulator.end()
        if ctx.suspended and emulator.store is not None:
            emulator.store.put(Transaction.of(ctx))     # the route ended: t_continue may run
        return MessageResult(
            index=index, rank=emulator.worker.rank, route=route or "(no reply route)",
            summary=_summary(message), outcome=outcome, returned=_plain(returned), error=error,
            replies=ctx.replies, relays=ctx.relays, logs=ctx.logs, http=ctx.http,
            events=ctx.events, timeline=ctx.timeline, pvs=_snapshot(ctx),
            transaction=None if ctx.tindex is None or ctx.tlabel is None
            else (ctx.tindex, ctx.tlabel), suspended=ctx.suspended)

    def close(self) -> None:
        self._undo.close()


class Session:
    """One in-process worker: load, child_init(1), then :meth:`send` messages one by one.

    Use it as a context manager; closing waits (up to ``timeout`` seconds) for the messages
    whose transaction is suspended, stops kamhttp's HTTP process, and restores sys.modules,
    sys.path and the environment.
    """

    def __init__(self, script: str | os.PathLike[str], *, timeout: float = 60.0,
                 **options: Any) -> None:
        self._script = _Script(script, timeout=timeout, **options)
        self.timeout = timeout
        self.transcript = Transcript(str(script), children=1)

    def __enter__(self) -> "Session":
        try:
            self._script.load()
            self._script.start_async()
            self._script.start_worker(1)
        except BaseException:
            self.transcript.startup = list(self._startup_logs())
            self._script.close()
            raise
        self.transcript.startup = self._startup_logs()
        self.transcript.problems += self._script.problems
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            side = self._script.async_side
            if side is not None and exc[0] is None:
                side.finish(self.transcript, self.timeout)
        finally:
            self._script.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no message is left suspended — every asynchronous request resumed, its
        records in its result — or ``timeout`` seconds (default: the session's) passed;
        False then (the run's end names what is still suspended)."""
        side = self._script.async_side
        if side is None:
            return True
        return side.wait(self.transcript, self.timeout if timeout is None else timeout)

    def _startup_logs(self) -> list[LogLine]:
        emulator = self._script.emulator
        return list(emulator.startup.logs) if emulator else []

    def send(self, message: Message) -> MessageResult:
        """Run one message through its route.  When the route suspended the transaction,
        the result gets the resumption later (see :meth:`wait`)."""
        result = self._script.serve(len(self.transcript.messages), message)
        self.transcript.messages.append(result)
        if self._script.async_side is not None:
            self._script.async_side.collect(self.transcript)
        return result

    @property
    def handler(self) -> Any:
        return self._script.handler


def run_script(script: str | os.PathLike[str], messages: Iterable[Message], *,
               children: int = 1, timeout: float = 60.0, **options: Any) -> Transcript:
    """Run ``messages`` through ``script`` and return the transcript.

    Options (also for :class:`Session`): ``env`` - environment variables for the run;
    ``kamailio_cfg`` - play the C http_client module loaded by that kamailio.cfg (its modparam
    lines): ``KSR.http_client`` and ``$curlerror``/``$httprhdr`` work as natively;
    ``reply_route`` and ``onsend_route`` - Kamailio's kemi.reply_route_callback and
    kemi.onsend_route_callback ("ksr_reply_route", "ksr_onsend_route"; "" for none);
    ``http_process`` - start kamhttp's HTTP process when the handler has
    ``kamhttp_http_process`` (default True; False plays a kamailio.cfg without the evrexec
    line: the asynchronous functions answer -3).  Messages whose route suspended the
    transaction are waited for, within ``timeout``.
    Raises ScriptError when the script cannot start (import, mod_init, child_init).
    """
    if children < 1:
        raise ValueError(f"children must be >= 1, not {children}")
    items = [parse(m) if isinstance(m, str) else m for m in messages]
    if children == 1:
        with Session(script, timeout=timeout, **options) as session:
            for message in items:
                session.send(message)
        return session.transcript
    start = time.monotonic()
    loaded = _Script(script, timeout=timeout, **options)
    try:
        loaded.load()
        loaded.start_async()
        transcript = Transcript(str(script), children=children,
                                startup=list(loaded.loaded_emulator().startup.logs),
                                problems=list(loaded.problems))
        _run_forked(loaded, items, children, timeout, transcript)
        if loaded.async_side is not None:
            loaded.async_side.finish(transcript, max(0.0, start + timeout - time.monotonic()))
    finally:
        loaded.close()
    return transcript


# ---------------------------------------------------------------------------------------------
# Forked workers

_FRAME = struct.Struct("!I")


def _run_forked(loaded: _Script, items: list[SipMessage], children: int, timeout: float,
                transcript: Transcript) -> None:
    deadline = time.monotonic() + timeout
    workers: dict[int, tuple[int, int]] = {}           # read fd -> (pid, rank)
    for rank in range(1, children + 1):
        share = [(i, m) for i, m in enumerate(items) if i % children == rank - 1]
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:                                    # the worker
            os.close(read_fd)
            _worker(loaded, rank, share, write_fd)      # never returns
        os.close(write_fd)
        workers[read_fd] = (pid, rank)
    results: dict[int, MessageResult] = {}
    startup: dict[int, list[LogLine]] = {}
    fatal: list[str] = []
    try:
        for rank, kind, payload in _collect(workers, deadline, transcript.problems):
            if kind == "startup":
                startup[rank] = payload
            elif kind == "result":
                results[payload.index] = payload
            else:
                fatal.append(payload)
    finally:
        _reap({pid: rank for pid, rank in workers.values()}, deadline, transcript.problems)
    for rank in sorted(startup):
        transcript.startup.extend(startup[rank])
    transcript.messages = [results[i] for i in sorted(results)]
    missing = [i for i in range(len(items)) if i not in results]
    if missing:
        numbers = ", ".join(str(i + 1) for i in missing)
        transcript.problems.append(f"no result for message(s) {numbers}")
    if fatal:
        raise ScriptError("\n".join(fatal))


def _worker(loaded: _Script, rank: int, share: list[tuple[int, SipMessage]],
            write_fd: int) -> None:
    """The body of a forked worker: child_init, its messages, then _exit (never returns)."""
    status = 0
    try:
        with os.fdopen(write_fd, "wb") as out:
            emulator = loaded.loaded_emulator()
            emulator.startup.logs.clear()
            try:
                loaded.start_worker(rank)
            except ScriptError as exc:
                _send(out, rank, "fatal", str(exc))
                return
            finally:
                _send(out, rank, "startup", list(emulator.startup.logs))
            for index, message in share:
                _send(out, rank, "result", loaded.serve(index, message))
    except BaseException:
        status = 1
        with contextlib.suppress(Exception):
            sys.stderr.write(traceback.format_exc())
    finally:
        os._exit(status)


def _send(out: Any, rank: int, kind: str, payload: Any) -> None:
    data = pickle.dumps((rank, kind, payload))
    out.write(_FRAME.pack(len(data)) + data)
    out.flush()


def _collect(workers: dict[int, tuple[int, int]], deadline: float,
             problems: list[str]) -> Iterator[tuple[int, str, Any]]:
    """Frames from every worker pipe until all are closed or the deadline passes."""
    buffers = {fd: b"" for fd in workers}
    with selectors.DefaultSelector() as selector:
        for fd in workers:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while buffers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    for fd in buffers:
                        problems.append(f"worker {workers[fd][1]} (pid {workers[fd][0]}) did "
                                        "not finish before the timeout; killed")
                    return
                for key, _ in selector.select(remaining):
                    fd = key.fd
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        selector.unregister(fd)
                        if buffers.pop(fd):
                            problems.append(f"worker {workers[fd][1]} sent a cut frame")
                        continue
                    buffers[fd] += chunk
                    while len(buffers[fd]) >= _FRAME.size:
                        (size,) = _FRAME.unpack_from(buffers[fd])
                        if len(buffers[fd]) < _FRAME.size + size:
                            break
                        frame = buffers[fd][_FRAME.size:_FRAME.size + size]
                        buffers[fd] = buffers[fd][_FRAME.size + size:]
                        yield pickle.loads(frame)
        finally:
            for fd in workers:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _reap(pids: dict[int, int], deadline: float, problems: list[str]) -> None:
    """Wait for every worker; kill (SIGKILL, by pid) those still running at the deadline."""
    pending = dict(pids)
    while pending:
        for pid in list(pending):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rank = pending.pop(pid)
                if os.waitstatus_to_exitcode(status) != 0:
                    problems.append(f"worker {rank} (pid {pid}) exited with status "
                                    f"{os.waitstatus_to_exitcode(status)}")
        if pending and time.monotonic() >= deadline:
            for pid in pending:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in pending:
                os.waitpid(pid, 0)          # SIGKILL cannot be ignored: returns promptly
            return
        if pending:
            time.sleep(0.005)


# ---------------------------------------------------------------------------------------------
# Helpers

@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update({key: str(value) for key, value in env.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _sys_state(path: pathlib.Path, emulator: Emulator) -> Iterator[None]:
    """KSR installed, the script folder first on sys.path; afterwards both undone and the
    modules imported from the script's folder forgotten (they hold this run's KSR)."""
    folder = str(path.parent)
    previous_ksr = sys.modules.get("KSR")
    before = set(sys.modules)
    sys.modules["KSR"] = emulator.module
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if file.startswith(folder + os.sep):
                del sys.modules[name]
        if previous_ksr is None:
            sys.modules.pop("KSR", None)
        else:
            sys.modules["KSR"] = previous_ksr


def _fresh_kamhttp() -> None:
    """A new Kamailio start: kamhttp's configuration and this process's state reset."""
    if "kamhttp.config" not in sys.modules:
        return
    from kamhttp import config
    from kamhttp.core import state
    config.reset()
    state.reset()
    _drop_async_runtime()


def _open_sockets() -> dict[int, tuple[int, int]]:
    """The sockets open in this process (Linux: /proc/self/fd), with their identity."""
    found = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return {}
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            info = os.fstat(int(name))
            if stat.S_ISSOCK(info.st_mode):
                found[int(name)] = (info.st_dev, info.st_ino)
    return found


def _drop_async_runtime() -> None:
    """kamhttp's hand-over queue and board belong to one Kamailio start: the next run makes
    its own in its mod_init, sized by its configuration, with no job or heartbeat of an
    earlier run in them."""
    if "kamhttp.aio.shared" in sys.modules:
        from kamhttp.aio import shared
        shared.reset()


@contextlib.contextmanager
def _trace_http(emulator: Emulator) -> Iterator[None]:
    """Record every attempt kamhttp's request core performs into the current message
    context."""
    from kamhttp.core import request

    def record(_state: Any, attempt: Any) -> None:
        ctx = emulator.ctx
        ctx.record(ctx.http, HttpCall(
            method=attempt.method or ("POST" if attempt.sent else "GET"), url=attempt.url,
            status=None if attempt.curl_code else attempt.status,
            curl_code=attempt.curl_code, seconds=attempt.seconds,
            connection=attempt.connection))

    stop = request.add_hook(record)
    try:
        yield
    finally:
        stop()


def _tag(lines: list[LogLine], origin: str) -> None:
    for line in lines:
        line.origin = line.origin or origin


def _summary(message: SipMessage) -> str:
    if message.is_request:
        return f"{message.first_line.rsplit(' ', 1)[0]} (From {message.from_.uri})"
    return f"{message.first_line.split(' ', 1)[1]} ({message.cseq[1]} reply)"


def _plain(value: Any) -> Any:
    return plain(value)


def _snapshot(ctx: MessageContext) -> dict[str, Any]:
    """$ru, $du and the script variables as they were when the route ended."""
    return pv_snapshot(ctx)
