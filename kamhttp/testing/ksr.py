"""The emulated ``KSR`` module: what app_python3 gives a script, backed by the testing kit.

:class:`Emulator` owns one ``KSR`` module object (installed as ``sys.modules["KSR"]`` by the
runner), the worker's state and the current message context.  Functions keep Kamailio's KEMI
behaviour where a script can observe it:

* arguments are checked as app_python3 5.6 does: a wrong type or count logs an error and
  raises SystemError (``KSR.sl.sl_send_reply("404", ...)`` aborts the route in Kamailio too);
* there is no ``KSR.x.exit()`` in app_python3 (only ``KSR.x.modf``): a route ends by
  returning, or with ``sys.exit()``, which app_python3 takes as the cfg ``exit``;
* a function or pseudo-variable the emulator does not know raises KsrEmulationError naming it,
  never a silent None.

Where Kamailio versions differ, Debian's 5.6.3 was observed and is followed (``KSR.pv.getw``
gives "<null>"; an assignment to a read-only PV returns True and changes nothing).

``KSR.tmx.t_suspend()`` and ``KSR.tmx.t_continue(index, label, method)`` work as tm/tmx do for
kamhttp's asynchronous functions: the route that suspends leaves its transaction in the run's
transaction store (:mod:`.transactions`), and t_continue — in kamhttp's HTTP process, which
the runner starts — runs ``handler.method(msg)`` on a context made from it.
"""
from __future__ import annotations

import os
import time
import traceback
import types
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..errors import PVError
from .errors import KsrEmulationError, SipParseError
from . import pvars
from .context import MessageContext, MessageState, Transaction, WorkerState, new_context
from .sipmsg import NameAddr, SipMessage, SipUri, canonical
from .transcript import Relay, Reply, Resumption

if TYPE_CHECKING:
    from .transactions import Store

_KINDS = {"s": "str", "i": "int"}
_C_INT = range(-2**31, 2**31)

METHOD_LETTERS = {"I": "INVITE", "A": "ACK", "B": "BYE", "C": "CANCEL", "R": "REGISTER",
                  "M": "MESSAGE", "O": "OPTIONS", "S": "SUBSCRIBE", "N": "NOTIFY",
                  "P": "PRACK", "U": "UPDATE", "F": "REFER", "E": "PUBLISH", "G": "INFO"}
"""KSR.is_method_in() letters (Kamailio core)."""

LEVELS = {"dbg": "DEBUG", "info": "INFO", "notice": "NOTICE", "warn": "WARNING",
          "err": "ERROR", "crit": "CRITICAL"}


MISSING_IN_KAMAILIO = {
    "KSR.x.exit": "app_python3 has no KSR.x.exit(); end the route with return, or with "
                  "sys.exit(), which app_python3 takes as the cfg exit",
    "KSR.x.drop": "app_python3 has no KSR.x.drop(); end the route with return (no reply and no "
                  "relay drops the request), or with sys.exit()",
    "KSR.drop": "app_python3 5.6 has no KSR.drop(); end the route with return or sys.exit()",
}
"""Names scripts reach for that app_python3 does not have: the error says what to use."""


def _unknown(path: str, emulated: Iterable[str]) -> KsrEmulationError:
    if path in MISSING_IN_KAMAILIO:
        return KsrEmulationError(f"{path}: {MISSING_IN_KAMAILIO[path]}")
    return KsrEmulationError(f"{path}() is not emulated by kamhttp.testing (emulated in "
                             f"{path.rsplit('.', 1)[0]}: {', '.join(sorted(emulated))})")


class Namespace:
    """A KSR sub-module: its functions as attributes; any other name raises, naming it."""

    def __init__(self, path: str, functions: dict[str, Callable[..., Any]]) -> None:
        self._path = path
        self.__dict__.update(functions)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise _unknown(f"{self._path}.{name}",
                       (k for k in self.__dict__ if not k.startswith("_")))

    def __repr__(self) -> str:
        return f"<emulated {self._path}>"


class KsrModule(types.ModuleType):
    """The emulated ``KSR`` module object: the core functions (``KSR.info``, ``KSR.setflag``...)
    are set on it by name, the sub-modules below are declared for the type checker.

    ``http_client`` is set only when the emulator plays the C http_client module; any name not
    set is answered by the module-level ``__getattr__`` (PEP 562) that raises, naming it.
    """

    pv: Namespace
    pvx: Namespace
    hdr: Namespace
    sl: Namespace
    tm: Namespace
    tmx: Namespace
    x: Namespace
    http_client: Any


class Emulator:
    """One emulated Kamailio process around a script: the KSR module, the worker, the message.

    ``native_http_client`` plays the C http_client module: ``KSR.http_client`` is kamhttp's,
    and ``KSR.pv`` answers ``$curlerror(n)`` and ``$httprhdr(name)`` (through kamhttp).
    ``onsend_route`` is kemi.onsend_route_callback: the handler method t_relay calls for the
    request it sends ("" for none); the runner sets ``handler``.
    """

    def __init__(self, native_http_client: bool = False,
                 onsend_route: str = "ksr_onsend_route") -> None:
        self.worker = WorkerState(rank=0)
        self.startup = new_context(None, self.worker)
        self.ctx: MessageContext = self.startup
        self.foreign: pvars.Foreign = {}
        self.handler: Any = None
        self.onsend_route = onsend_route
        self.store: Store | None = None      # the run's suspended transactions (runner)
        self.process = "worker"              # who runs here: "worker" or "HTTP process"
        self.module = self._build()
        if native_http_client:
            import kamhttp
            from kamhttp import pv as kamhttp_pv
            self.module.http_client = kamhttp.http_client
            self.foreign = {"curlerror": kamhttp_pv.get, "httprhdr": kamhttp_pv.get}

    # -- message lifecycle
    def begin(self, message: SipMessage, position: int | None = None) -> MessageContext:
        """A received message's context; ``position`` is its place in the run (its
        transaction's $T(id_index))."""
        self.ctx = new_context(message, self.worker, position)
        return self.ctx

    def end(self) -> MessageContext:
        ctx, self.ctx = self.ctx, self.startup
        return ctx

    def log(self, level: str, text: str) -> None:
        self.ctx.log(level, text)

    # -- building the module
    def _build(self) -> KsrModule:
        module = KsrModule("KSR", "Kamailio's KEMI module, emulated by kamhttp.testing")
        kemi = self._kemi
        core: dict[str, Callable[..., Any]] = {
            name: kemi(name, "s", self._logger(level)) for name, level in LEVELS.items()}
        core.update(
            log=kemi("log", "ss", lambda level, text: self._logger(
                LEVELS.get(level, level.upper()))(text)),
            setflag=kemi("setflag", "i", self._setflag),
            resetflag=kemi("resetflag", "i", self._resetflag),
            isflagset=kemi("isflagset", "i", lambda f: f in self.ctx.flags),
            is_method=kemi("is_method", "s", self._is_method),
            is_method_in=kemi("is_method_in", "s", self._is_method_in),
        )
        for method in METHOD_LETTERS.values():
            core[f"is_{method}"] = kemi(f"is_{method}", "", self._method_test(method))
        for name, func in core.items():
            setattr(module, name, func)
        module.pv = Namespace("KSR.pv", {
            "get": self._pv_get_mode(None), "getw": self._pv_get_mode("<null>"),
            "gete": self._pv_get_mode(""),
            "getvs": kemi("pv.getvs", "ss", self._pv_getv),
            "getvn": kemi("pv.getvn", "si", self._pv_getv),
            "sets": kemi("pv.sets", "ss", self._pv_set),
            "seti": kemi("pv.seti", "si", self._pv_set),
            "unset": kemi("pv.unset", "s", lambda name: self._pv_set(name, None)),
            "is_null": kemi("pv.is_null", "s", self._pv_is_null),
        })
        module.pvx = Namespace("KSR.pvx", {"evalx": kemi("pvx.evalx", "ss", self._evalx)})
        module.hdr = Namespace("KSR.hdr", {
            "append": kemi("hdr.append", "s", self._hdr_add(append=True)),
            "insert": kemi("hdr.insert", "s", self._hdr_add(append=False)),
            "append_to_reply": kemi("hdr.append_to_reply", "s", self._append_to_reply),
            "remove": kemi("hdr.remove", "s", self._hdr_remove),
            "is_present": kemi("hdr.is_present", "s", self._hdr_is_present),
            "get": kemi("hdr.get", "s", lambda name: self.ctx.message.header(name)),
        })
        module.sl = Namespace("KSR.sl", {
            "sl_send_reply": kemi("sl.sl_send_reply", "is", self._reply("sl")),
            "send_reply": kemi("sl.send_reply", "is", self._reply(None)),
        })
        module.tm = Namespace("KSR.tm", {
            "t_relay": kemi("tm.t_relay", "", self._relay),
            "t_newtran": kemi("tm.t_newtran", "", self._newtran),
            "t_reply": kemi("tm.t_reply", "is", self._reply("tm")),
            "t_check_trans": kemi("tm.t_check_trans", "",   # 0: its own new transaction
                                  lambda: 0 if self.ctx.transaction else -1),
            "t_on_failure": kemi("tm.t_on_failure", "s", self._event("t_on_failure")),
            "t_on_reply": kemi("tm.t_on_reply", "s", self._event("t_on_reply")),
            "t_on_branch": kemi("tm.t_on_branch", "s", self._event("t_on_branch")),
            "t_set_fr": kemi("tm.t_set_fr", "ii", self._event("t_set_fr")),
        })
        module.tmx = Namespace("KSR.tmx", {
            "t_suspend": kemi("tmx.t_suspend", "", self._t_suspend),
            "t_continue": kemi("tmx.t_continue", "iis", self._t_continue),
            # the kit runs request routes and resume methods of suspended requests only
            "t_is_reply_route": kemi("tmx.t_is_reply_route", "", lambda: -1),
        })
        module.x = Namespace("KSR.x", {"modf": self._modf})

        def unknown(name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            if f"KSR.{name}" in MISSING_IN_KAMAILIO:
                raise _unknown(f"KSR.{name}", ())
            emulated = ", ".join(sorted(k for k in vars(module) if not k.startswith("_")))
            hint = (" (load it: kamhttp.install(KSR) in mod_init, or run the script with "
                    "--kamailio-cfg to play the C module)") if name == "http_client" else ""
            raise KsrEmulationError(f"KSR.{name} is not emulated by kamhttp.testing{hint} "
                                    f"(emulated: {emulated})")
        # PEP 562: a module's __getattr__ is looked up in its namespace, not on its type, so
        # it goes into the module's __dict__ (what ``module.__getattr__ = unknown`` did).
        vars(module)["__getattr__"] = unknown
        return module

    def _kemi(self, path: str, sig: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """A KEMI export whose arguments are checked as app_python3 5.6 does: on a mismatch
        it logs an error and Python raises SystemError (from the TypeError)."""
        name = path.rsplit(".", 1)[-1]

        def export(*args: Any) -> Any:
            problem = _args_problem(sig, args)
            if problem:
                kinds = "-".join(_KINDS[c] for c in sig) or "no"
                self.log("ERROR", f"KSR.{path}: unable to retrieve {kinds} params "
                                  f"(called with {args!r})")
                raise SystemError(f"<built-in function {name}> returned a result with an "
                                  "exception set") from TypeError(f"KSR.{path}(): {problem}")
            return func(*args)
        export.__name__ = name
        export.__qualname__ = f"KSR.{path}"
        return export

    # -- core
    def _logger(self, level: str) -> Callable[[str], int]:
        def write(text: str) -> int:
            self.log(level, text)
            return 1
        return write

    def _setflag(self, flag: int) -> bool:
        self.ctx.flags.add(flag)
        return True

    def _resetflag(self, flag: int) -> bool:
        self.ctx.flags.discard(flag)
        return True

    def _is_method(self, method: str) -> bool:
        return self.ctx.message.method.upper() == method.upper()

    def _is_method_in(self, letters: str) -> bool:
        return self.ctx.message.method in {METHOD_LETTERS.get(c.upper()) for c in letters}

    def _method_test(self, method: str) -> Callable[[], bool]:
        return lambda: self.ctx.message.method == method

    def _modf(self, *args: Any) -> Any:
        """KSR.x.modf(name, ...): app_python3 runs it as msg.call_function(name, ...)."""
        return AppPythonMsg(self).call_function(*args)

    def _event(self, name: str) -> Callable[..., int]:
        def record(*args: Any) -> int:
            self.ctx.record(self.ctx.events, f"{name}({', '.join(repr(a) for a in args)})")
            return 1
        return record

    # -- pseudo-variables
    def _pv_get_mode(self, null: str | None) -> Callable[[str], Any]:
        path = {None: "pv.get", "": "pv.gete", "<null>": "pv.getw"}[null]

        def get(name: str) -> Any:
            try:
                value = pvars.get(self.ctx, name, self.foreign)
            except PVError as exc:
                self.log("ERROR", f"KSR.{path}: {exc}")
                return null
            return null if value is None else value
        return self._kemi(path, "s", get)

    def _pv_getv(self, name: str, default: Any) -> Any:
        try:
            value = pvars.get(self.ctx, name, self.foreign)
        except PVError as exc:
            self.log("ERROR", f"KSR.pv.getv: {exc}")
            return default
        return default if value is None else value

    def _pv_set(self, name: str, value: Any) -> bool:
        try:
            pvars.set_value(self.ctx, name, value)
        except pvars.ReadOnly:
            self.log("WARNING", f"kamhttp.testing: {name} is read-only; Kamailio ignores the "
                                "assignment and still returns True")
            return True
        except PVError as exc:
            self.log("ERROR", f"unable to set pv [{name}]: {exc}")
            return False
        return True

    def _pv_is_null(self, name: str) -> bool:
        try:
            return pvars.get(self.ctx, name, self.foreign) is None
        except PVError as exc:
            self.log("NOTICE", f"unable to get pv value for [{name}]: {exc}")
            return True

    def _evalx(self, dst: str, fmt: str) -> int:
        try:
            value = pvars.expand(self.ctx, fmt, self.foreign)
        except PVError as exc:
            self.log("ERROR", f"KSR.pvx.evalx: {exc}")
            return -1
        return 1 if self._pv_set(dst, value) else -1

    # -- headers
    def _hdr_add(self, append: bool) -> Callable[[str], int]:
        def add(text: str) -> int:
            if not text.endswith("\r\n"):
                self.log("WARNING", f"kamhttp.testing: header text {text!r} does not end with "
                                    "\\r\\n; Kamailio inserts it as is, gluing the next line "
                                    "to it")
            (self.ctx.added_headers if append else self.ctx.inserted_headers).append(text)
            return 1
        return add

    def _append_to_reply(self, text: str) -> int:
        if not text.endswith("\r\n"):
            self.log("WARNING", f"kamhttp.testing: reply header {text!r} does not end with "
                                "\\r\\n")
        self.ctx.reply_headers.append(text)
        return 1

    def _hdr_remove(self, name: str) -> int:
        """1 whether or not such a header exists (as Kamailio 5.6 answers)."""
        if self.ctx.message.header(name) is not None:
            self.ctx.removed_headers.add(canonical(name))
        return 1

    def _hdr_is_present(self, name: str) -> int:
        return 1 if self.ctx.message.header(name) is not None else -1

    # -- replies and relaying
    def _reply(self, via: str | None) -> Callable[[int, str], int]:
        def reply(code: int, reason: str) -> int:
            ctx = self.ctx
            if not ctx.message.is_request:
                self.log("ERROR", f"cannot send a reply ({code}) to a reply")
                return -1
            if not 100 <= code <= 699:
                self.log("ERROR", f"invalid reply code {code} (100..699)")
                return -1
            kind = via or ("tm" if ctx.transaction else "sl")
            if kind == "tm" and not ctx.transaction:
                self.log("ERROR", "cannot send a t_reply to a message for which no T-state "
                                  "has been established")
                return -1
            if ctx.message.method == "ACK":
                self.log("DEBUG", "ACKs are not replied")
                return 1
            headers = [h.rstrip("\r\n") for h in ctx.reply_headers]
            ctx.record(ctx.replies, Reply(code, reason, kind, headers, ctx.resume))
            return 1
        return reply

    def _newtran(self) -> int:
        if not self.ctx.message.is_request or self.ctx.message.method == "ACK":
            self.log("ERROR", "t_newtran: no transaction for a reply or an ACK")
            return -1
        self.ctx.ensure_transaction()
        return 1

    # -- tmx: suspending and continuing the transaction
    def _t_suspend(self) -> int:
        """tmx's t_suspend: the request's transaction (made if needed) is suspended; its
        changes so far are saved with it, its AVPs go with it when the route ends.  A second
        t_suspend answers 1 and changes nothing (tm: "transaction is already suspended", a
        debug line; observed on 5.6.3)."""
        ctx = self.ctx
        if ctx.position is None or not ctx.message.is_request or ctx.message.method == "ACK":
            self.log("ERROR", "t_suspend: cannot create the transaction (only a request in a "
                              "route has one)")
            return -1
        if ctx.suspended:
            self.log("DEBUG", "t_suspend: transaction is already suspended")
            return 1
        ctx.ensure_transaction()
        assert ctx.tindex is not None and ctx.tlabel is not None
        ctx.suspended = True
        ctx.saved = MessageState.of(ctx)
        ctx.suspended_ns = time.monotonic_ns()
        if self.store is not None:
            self.store.mark_pending(ctx.tindex, ctx.tlabel)
        ctx.record(ctx.events, f"t_suspend(): transaction {ctx.tindex}:{ctx.tlabel} suspended")
        return 1

    def _t_continue(self, index: int, label: int, method: str) -> int:
        """tmx's t_continue: ``handler.method(msg)`` on the suspended transaction — in a
        context made from it (its AVPs and XAVPs, this process's $var) — and its Resumption
        into the store; -1 (with tm's and tmx's warnings, as 5.6.3 logs them) when there is
        no such transaction or it is not suspended."""
        from .httpproc import find_job
        current = self.ctx
        found: Transaction | str
        nested = current.suspended and (current.tindex, current.tlabel) == (index, label)
        if nested:
            found = Transaction.of(current)      # its route runs still, here: tm allows it
            current.suspended = False
            if self.store is not None:
                self.store.discard_pending(index, label)
        elif self.store is None:
            from .transactions import NOT_FOUND
            found = NOT_FOUND
        else:
            found = self.store.take(index, label)
        if isinstance(found, str):
            self.log("WARNING", f"t_continue: {found}" + (
                f" [{index}:{label}]" if "not suspended" in found else ""))
            self.log("WARNING", f"t_continue: resuming the processing of transaction "
                                f"[{index}:{label}] failed")
            return -1
        job = find_job()
        if job is not None and (job.index, job.label) != (index, label):
            job = None
        resume = job.resume if job is not None else method
        ctx = found.context(self.worker, resume)
        if nested:
            ctx.avps, ctx.xavps = current.avps, current.xavps      # the same transaction
        waited = max(0, time.monotonic_ns() - found.suspended_ns) / 1e9
        outcome, returned, error = self._run_resume(ctx, method)
        if ctx.suspended and self.store is not None:
            self.store.put(Transaction.of(ctx))                   # a chained suspension
        result: Any = None
        if job is not None:
            import kamhttp
            result = kamhttp.async_result()
        for line in ctx.logs:
            line.origin = line.origin or resume
        for call in ctx.http:
            call.process = call.process or ("HTTP process" if self.process == "HTTP process"
                                            else "")
        resumption = Resumption(
            index=index, label=label, position=found.position, method=method, resume=resume,
            pid=os.getpid(), process=self.process if self.process != "worker"
            else f"worker {self.worker.rank}", waited=waited,
            code=result.code if result is not None else None,
            status=result.status if result is not None else 0,
            curl_code=result.curl_code if result is not None else 0,
            curl_error=result.curl_error if result is not None else "",
            outcome=outcome, returned=returned, error=error, suspended=ctx.suspended,
            replies=ctx.replies, relays=ctx.relays, logs=ctx.logs, http=ctx.http,
            events=ctx.events, timeline=ctx.timeline, pvs=pv_snapshot(ctx, with_vars=False),
            ns=time.monotonic_ns())
        if self.store is not None:
            self.store.put_resumption(resumption)
        return 1 if outcome != "error" else -1

    def _run_resume(self, ctx: MessageContext, method: str) -> tuple[str, Any, str | None]:
        """``handler.method(msg)`` with ``ctx`` current, as app_python3 runs a callback."""
        saved, self.ctx = self.ctx, ctx
        msg = AppPythonMsg(self)
        outcome, returned, error = "returned", None, None
        try:
            function = getattr(self.handler, method, None)
            if function is None:
                ctx.log("ERROR", f"t_continue: the handler has no {method}(msg) method")
                outcome, error = "error", f"the handler has no {method}(msg) method"
            else:
                returned = function(msg)
        except SystemExit:             # sys.exit(): the cfg exit
            outcome = "exit"
        except Exception:
            outcome, error = "error", traceback.format_exc()
        finally:
            msg._invalidate()
            self.ctx = saved
        return outcome, plain(returned), error

    def _relay(self) -> int:
        ctx = self.ctx
        if not ctx.message.is_request:
            self.log("ERROR", "t_relay: not a request")
            return -1
        ruri = ctx.ruri or ""
        for uri in filter(None, (ruri, ctx.dst_uri)):
            try:
                SipUri.parse(uri)
            except SipParseError:
                self.log("ERROR", f"t_relay: cannot forward with {uri!r}: not a SIP URI")
                return -1
        ctx.ensure_transaction()
        ctx.record(ctx.relays, Relay(ruri, ctx.dst_uri or ruri, forwarded_text(ctx), ctx.resume))
        self._onsend()
        return 1

    def _onsend(self) -> None:
        """kemi.onsend_route_callback for the request being sent.  app_python3 5.6 leaves a
        missing method or an exception in it pending, so t_relay() raises SystemError."""
        name, handler = self.onsend_route, self.handler
        if not name or handler is None:
            return
        self.ctx.record(self.ctx.events, name)
        try:
            method = getattr(handler, name)
            method(AppPythonMsg(self))
        except Exception as exc:
            self.log("ERROR", f"apy_exec: {name}: Unhandled exception in the Python code: "
                              f"{type(exc).__name__}: {exc}")
            raise SystemError("<built-in function t_relay> returned a result with an "
                              "exception set") from exc


def plain(value: Any) -> Any:
    """A value as the transcript keeps it: None, bool, int, float and str as they are, any
    other object as its repr (transcripts are pickled between processes)."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)


def pv_snapshot(ctx: MessageContext, with_vars: bool = True) -> dict[str, Any]:
    """$ru, $du and the script variables of a context ($var only for the worker's own)."""
    pvs: dict[str, Any] = {"$ru": ctx.ruri, "$du": ctx.dst_uri}
    if with_vars:
        pvs.update({f"$var({k})": plain(v) for k, v in ctx.worker.vars.items()})
    pvs.update({f"$avp({k})": plain(v[0]) for k, v in ctx.avps.items() if v})
    for root, items in ctx.xavps.items():
        for key, values in (items[0].items() if items else ()):
            if values:
                pvs[f"$xavp({root}=>{key})"] = plain(values[0])
    return pvs


def _args_problem(sig: str, args: tuple[Any, ...]) -> str | None:
    """What is wrong with ``args`` for a KEMI signature ("s" str, "i" int), or None."""
    if len(args) != len(sig):
        return f"takes exactly {len(sig)} arguments ({len(args)} given)"
    for position, (kind, arg) in enumerate(zip(sig, args), start=1):
        if kind == "s" and not isinstance(arg, str):
            return f"argument {position} must be str, not {type(arg).__name__}"
        if kind == "s" and "\x00" in arg:
            return f"argument {position}: embedded null character"
        if kind == "i" and not isinstance(arg, int):
            return f"argument {position}: {type(arg).__name__!r} object cannot be interpreted " \
                   "as an integer"
        if kind == "i" and arg not in _C_INT:
            return f"argument {position}: signed integer is greater than maximum"
    return None


def forwarded_text(ctx: MessageContext) -> str:
    """The request as t_relay would send it: new R-URI and the script's header changes."""
    message = ctx.message
    lines = [f"{message.method} {ctx.ruri} SIP/2.0"]
    lines += [row for text in ctx.inserted_headers for row in _rows(text)]
    for header in message.headers:
        if header.key in ctx.removed_headers:
            continue
        rewrite = ctx.header_rewrites.get(header.key)
        lines.append(f"{header.name}: {_rewrite(header.value, rewrite)}" if rewrite
                     else str(header))
    lines += [row for text in ctx.added_headers for row in _rows(text)]
    return "\r\n".join(lines) + "\r\n\r\n" + message.body


def _rows(text: str) -> list[str]:
    return text.rstrip("\r\n").split("\r\n")


def _rewrite(value: str, parts: dict[str, str | None]) -> str:
    addr = NameAddr.parse(value)
    uri = addr.uri
    if "uri" in parts and parts["uri"] is not None:
        uri = parts["uri"]
    try:
        parsed = SipUri.parse(uri)
        fields = {k: v for k, v in parts.items() if k in ("user", "host")}
        if fields:
            uri = str(parsed.with_parts(**fields))
    except SipParseError:
        pass
    display = parts.get("display", addr.display)
    return str(NameAddr(display, uri, addr.params))


class AppPythonMsg:
    """The ``msg`` object app_python3 passes to the route functions (its Router.msg type).

    It has the attributes Type, Method, Status, RURI, src_address, dst_address and the methods
    getHeader, rewrite_ruri, set_dst_uri and call_function; nothing else (no getMethod()).
    After the route returns it is invalidated, as in Kamailio.
    """

    _NATIVE_FUNCTIONS = ("sl_send_reply", "t_relay", "append_hf", "remove_hf",
                         "is_present_hf")
    _RENAMED = {"getMethod": "Method", "getRURI": "RURI", "getStatus": "Status",
                "getType": "Type"}

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._ctx: MessageContext | None = emulator.ctx

    def _context(self) -> MessageContext:
        if self._ctx is None:
            raise RuntimeError("self->msg is NULL")   # used after its route returned
        return self._ctx

    def _invalidate(self) -> None:
        self._ctx = None

    def copy(self) -> "AppPythonMsg":
        clone = AppPythonMsg(self._emulator)
        clone._ctx = self._context()
        return clone

    @property
    def Type(self) -> str:
        return "SIP_REQUEST" if self._context().message.is_request else "SIP_REPLY"

    @property
    def Method(self) -> str:
        message = self._context().message
        if not message.is_request:
            raise RuntimeError("Not a request message - no method available.\n")
        return message.method

    @property
    def Status(self) -> str:
        message = self._context().message
        if message.is_request:
            raise RuntimeError("Not a non-reply message - no status available.\n")
        return str(message.status)

    @property
    def RURI(self) -> str:
        ruri = self._context().message.ruri
        if ruri is None:                # None exactly when the message is not a request
            raise RuntimeError("Not a request message - RURI is not available.\n")
        return ruri

    @property
    def src_address(self) -> tuple[str, int]:
        message = self._context().message
        return message.src_ip, message.src_port

    @property
    def dst_address(self) -> tuple[str, int]:
        message = self._context().message
        return message.dst_ip, message.dst_port

    def getHeader(self, name: str) -> str | None:
        """The first header whose name as written equals ``name`` (case-insensitive); app_python3
        compares raw names, so "From" does not find a compact "f:" header."""
        for header in self._context().message.headers:
            if header.name.lower() == name.lower():
                return header.value
        return None

    def rewrite_ruri(self, uri: str) -> None:
        ctx = self._context()
        if not ctx.message.is_request:
            raise RuntimeError("Not a request message - rewrite is not possible.\n")
        ctx.new_uri = uri

    def set_dst_uri(self, uri: str) -> None:
        ctx = self._context()
        if not ctx.message.is_request:
            raise RuntimeError("Not a request message - set destination is not possible.\n")
        ctx.dst_uri = uri

    def call_function(self, name: str, *args: str) -> int:
        """A native cfg function by name (at most two string arguments); a few are emulated."""
        self._context()
        if len(args) > 2 or not all(isinstance(a, str) for a in (name, *args)):
            raise TypeError("call_function() takes a function name and at most two strings")
        ksr = self._emulator.module
        if name == "sl_send_reply" and len(args) == 2 and args[0].isdigit():
            return ksr.sl.sl_send_reply(int(args[0]), args[1])
        if name == "t_relay" and not args:
            return ksr.tm.t_relay()
        if name == "append_hf" and len(args) == 1:
            return ksr.hdr.append(args[0])
        if name == "remove_hf" and len(args) == 1:
            return ksr.hdr.remove(args[0])
        if name == "is_present_hf" and len(args) == 1:
            return ksr.hdr.is_present(args[0])
        raise KsrEmulationError(f"msg.call_function({name!r}) with {len(args)} argument(s) is "
                                f"not emulated by kamhttp.testing (emulated: "
                                f"{', '.join(self._NATIVE_FUNCTIONS)})")

    def __getattr__(self, name: str) -> Any:
        hint = f"; use msg.{self._RENAMED[name]}" if name in self._RENAMED else ""
        raise AttributeError(f"app_python3's msg object has no attribute {name!r}{hint}")
