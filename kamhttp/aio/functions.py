"""The asynchronous functions a script calls: suspend the transaction, hand the request to an
HTTP process, return at once.

Return values: 0 when the transaction was suspended (the script returns from its route
without replying or relaying: the resume method answers); else nothing was suspended and the
script goes on: -1 a bad argument, an unknown connection or a result PV that does not survive
the move between processes; :data:`OVERLOADED` (-2) the hand-over queue is full;
:data:`NO_HTTP_PROCESS` (-3) no HTTP process is running (Kamailio's cfg has no kamhttp
evrexec line, or it has not started yet).  ``send``/``send_connect`` queue a request without
suspending anything: 1 when queued, -2/-3 as above (the drop is counted).
"""
from __future__ import annotations

import sys
import time
from typing import Any

from .. import config
from ..log import printable
from ..script.arguments import (BadArgument, content_type, expand, log, method, result_name,
                                script_function, text)
from . import board, resumer, shared
from .handover import encoded_size
from .jobs import NO_TRANSACTION, Job, Outcome

OVERLOADED = -2
NO_HTTP_PROCESS = -3

SURVIVING = ("$avp(", "$xavp(", "$xavu(", "$xavi(")
"""Result PVs that the transaction carries to the resuming process (tm restores them)."""

_MAX_INLINE_TEXT = 48 * 1024
"""URL plus header text of one job (they travel in the datagram)."""


def _dpv(value: Any) -> str:
    name = result_name(value)
    if not name.startswith(SURVIVING):
        raise BadArgument(f"result variable {printable(name)} does not survive the move to "
                          "the HTTP process that resumes the transaction (valid: $avp(name), "
                          "$xavp(name), $xavu(name), $xavi(name); $var is per process)")
    return name


def _resume(value: Any) -> str:
    name = text(value, "resume")
    if not name.isidentifier():
        raise BadArgument(f"resume {printable(repr(name))} is not a method name")
    return name


def _connection(value: Any) -> str:
    name = text(value, "connection")
    if name not in config.current().connections:
        raise BadArgument(f"No cURL connection found: {printable(name)}")
    return name


def _check_size(job: Job) -> None:
    if len(job.url) + len(job.hdrs or "") > _MAX_INLINE_TEXT:
        raise BadArgument(f"URL and headers longer than {_MAX_INLINE_TEXT} bytes")


_LOG_EVERY_S = 5.0
_quiet_until: dict[int, float] = {}
_quieted: dict[int, int] = {}


def _log_refusal(code: int, text: str) -> None:
    """A refusal logged at most once per 5 s and reason, with the count of those not logged:
    an overload must not flood the log."""
    now = time.monotonic()
    if now < _quiet_until.get(code, 0.0):
        _quieted[code] = _quieted.get(code, 0) + 1
        return
    more = _quieted.pop(code, 0)
    _quiet_until[code] = now + _LOG_EVERY_S
    log.error("%s%s", text, f" ({more} more refused in the last {_LOG_EVERY_S:g} s)"
              if more else "")


def _refused(runtime: shared.Runtime | None, job: Job, sending: bool) -> int:
    """0 when the job can go now, else the code that says why not (counted)."""
    if runtime is None or not runtime.board.ready():
        if runtime is not None:
            runtime.board.add(board.DROPPED_SENDS if sending else board.NO_PROCESS)
        _log_refusal(NO_HTTP_PROCESS, "no kamhttp HTTP process is running (kamailio.cfg: "
                     "modparam(\"evrexec\", \"exec\", \"name=kamhttp_http_process;workers=1\"))"
                     f": {printable(job.url)} not sent")
        return NO_HTTP_PROCESS
    if not runtime.handover.room(encoded_size(job)):
        runtime.board.add(board.DROPPED_SENDS if sending else board.OVERLOADED)
        _log_refusal(OVERLOADED, f"kamhttp's hand-over queue is full: {printable(job.url)} "
                     "not sent")
        return OVERLOADED
    return 0


def _runtime_for(job: Job, sending: bool = False) -> shared.Runtime | int:
    """The shared parts to queue ``job`` on, or the code that says why it cannot go."""
    _check_size(job)
    runtime = shared.get()
    refused = _refused(runtime, job, sending)
    if refused or runtime is None:
        return refused or NO_HTTP_PROCESS
    return runtime


def submit(job: Job) -> int:
    """Suspend the transaction and queue ``job``: 0, or why nothing was suspended."""
    runtime = _runtime_for(job)
    if isinstance(runtime, int):
        return runtime
    ksr: Any = sys.modules.get("KSR")
    if ksr is None:
        log.error("t_suspend() failed: KSR is not loaded")
        return -1
    # tm runs the onreply route again for a retransmitted reply (an INVITE's 2xx) while the
    # first is suspended, and its t_suspend() suspends it again: refuse that here
    in_reply = ksr.tmx.t_is_reply_route() > 0
    if in_reply and ksr.pv.get(resumer.REPLY_SUSPENDED):
        log.warning("a reply of this transaction is suspended already (a retransmitted "
                    "reply): %s not sent", printable(job.url))
        return -1
    if ksr.tmx.t_suspend() != 1:
        log.error("t_suspend() failed: is tmx loaded, and is this a request, or a reply in a "
                  "tm onreply route (t_on_reply) of a transaction without a final reply?")
        return -1
    if in_reply:
        ksr.pv.sets(resumer.REPLY_SUSPENDED, "1")
    job.index = int(ksr.pv.get("$T(id_index)"))
    job.label = int(ksr.pv.get("$T(id_label)"))
    if not runtime.handover.put(job):
        # the queue filled between the check and the write: the transaction is suspended,
        # so it is continued here at once, with the overload as its result
        runtime.board.add(board.OVERLOADED)
        resumer.finish(job, Outcome(OVERLOADED))
    return 0


def send_job(job: Job) -> int:
    """Queue a fire-and-forget job: 1, or why not (counted)."""
    runtime = _runtime_for(job, sending=True)
    if isinstance(runtime, int):
        return runtime
    if not runtime.handover.put(job):
        runtime.board.add(board.DROPPED_SENDS)
        return OVERLOADED
    return 1


def _body(data: str) -> bytes | None:
    return data.encode("utf-8", "surrogateescape") if data else None


def _direct(kind: str | None, url: str, body: str | None, hdrs: str | None, dpv: str,
            resume: str, http2: bool = False) -> Job:
    if not url:
        raise BadArgument("URL has no value")
    return Job(NO_TRANSACTION, 0, resume, dpv, None, url, kind or None,
               None, _body(body or ""), hdrs or None, http2, True)


def _connect(con: str, url: str, ctype: str | None, data: str | None, dpv: str,
             resume: str) -> Job:
    return Job(NO_TRANSACTION, 0, resume, dpv, con, url, None, ctype, _body(data or ""),
               None, False, False)


# ------------------------------------------------------------------------------------------
# KEMI exports (on kamhttp.http_client): no PV expansion
# ------------------------------------------------------------------------------------------

@script_function
def async_query(url: str, dpv: str, resume: str) -> int:
    return submit(_direct(None, text(url, "url"), None, None, _dpv(dpv), _resume(resume)))


@script_function
def async_query_post(url: str, data: str, dpv: str, resume: str) -> int:
    return submit(_direct(None, text(url, "url"), text(data, "data"), None, _dpv(dpv),
                          _resume(resume)))


@script_function
def async_query_request(method_: str, url: str, body: str, hdrs: str, dpv: str,
                        resume: str) -> int:
    return submit(_direct(method(method_), text(url, "url"), text(body, "body"),
                          text(hdrs, "hdrs"), _dpv(dpv), _resume(resume)))


@script_function
def async_curl_connect(con: str, url: str, dpv: str, resume: str) -> int:
    return submit(_connect(_connection(con), text(url, "url"), None, None, _dpv(dpv),
                           _resume(resume)))


@script_function
def async_curl_connect_post(con: str, url: str, ctype: str, data: str, dpv: str,
                            resume: str) -> int:
    return submit(_connect(_connection(con), text(url, "url"), content_type(ctype),
                           text(data, "data"), _dpv(dpv), _resume(resume)))


@script_function
def send(method_: str, url: str, body: str, hdrs: str) -> int:
    """Fire and forget on a full URL: 1 when queued."""
    return send_job(_direct(method(method_), text(url, "url"), text(body, "body"),
                            text(hdrs, "hdrs"), "", ""))


@script_function
def send_connect(con: str, url: str, ctype: str, data: str) -> int:
    """Fire and forget on a connection: 1 when queued."""
    return send_job(_connect(_connection(con), text(url, "url"), content_type(ctype),
                             text(data, "data"), "", ""))


# ------------------------------------------------------------------------------------------
# cfg-style functions (module level): the cfg function's PV expansion
# ------------------------------------------------------------------------------------------

@script_function
def async_http_connect(connection: str, url: str, *rest: str) -> int:
    """``async_http_connect(con, url, result, resume)`` (GET) or
    ``async_http_connect(con, url, content_type, data, result, resume)``."""
    if len(rest) == 2:
        ctype, data, result, resume = None, None, rest[0], rest[1]
    elif len(rest) == 4:
        ctype, data, result, resume = content_type(rest[0]), text(rest[1], "data"), \
            rest[2], rest[3]
    else:
        raise BadArgument(f"takes 4 or 6 arguments, not {2 + len(rest)}")
    con, dpv = _connection(connection), _dpv(result)
    return submit(_connect(con, expand(url, "url"), ctype,
                           expand(data, "data") if data is not None else None, dpv,
                           _resume(resume)))


@script_function
def async_http_connect_raw(connection: str, url: str, ctype: str, data: str, result: str,
                           resume: str) -> int:
    """Like the 6-argument async_http_connect; data is sent as written."""
    return submit(_connect(_connection(connection), expand(url, "url"), content_type(ctype),
                           text(data, "data"), _dpv(result), _resume(resume)))


@script_function
def async_http_client_query(url: str, *rest: str) -> int:
    """``async_http_client_query(url, [data, [hdrs,]] result, resume)``."""
    if not 2 <= len(rest) <= 4:
        raise BadArgument(f"takes 3, 4 or 5 arguments, not {1 + len(rest)}")
    dpv, resume = _dpv(rest[-2]), _resume(rest[-1])
    data = expand(rest[0], "data") if len(rest) >= 3 else ""
    hdrs = expand(rest[1], "hdrs") if len(rest) == 4 else ""
    return submit(_direct(None, expand(url, "url"), data, hdrs, dpv, resume))


@script_function
def async_http_client_get(url: str, body: str, hdrs: str, result: str, resume: str) -> int:
    return submit(_direct("GET", expand(url, "url"), expand(body, "body"),
                          expand(hdrs, "hdrs"), _dpv(result), _resume(resume)))


@script_function
def async_http_client_request(method_: str, url: str, body: str, hdrs: str, result: str,
                              resume: str) -> int:
    verb = method(expand(method_, "method"))
    if not verb:
        raise BadArgument("METHOD has no value")
    return submit(_direct(verb, expand(url, "url"), expand(body, "body"),
                          expand(hdrs, "hdrs"), _dpv(result), _resume(resume)))


class AsyncHandler:
    """Mix into the script's handler class (``class kamailio(kamhttp.AsyncHandler)``): the
    evrexec entry of kamhttp's HTTP process, the method Kamailio runs to resume, and the
    xhttp event method of the operator paths."""

    def kamhttp_http_process(self, msg: Any, evname: Any = None) -> int:
        """evrexec: ``modparam("evrexec", "exec", "name=kamhttp_http_process;workers=N")``."""
        resumer.HttpProcess().run()
        return 1

    def kamhttp_resume(self, msg: Any, *args: Any) -> int:
        """Run by t_continue in the HTTP process, the transaction's AVPs restored."""
        return resumer.resume_script(self, msg, args)

    def ksr_xhttp_event(self, msg: Any, evname: Any = None) -> int:
        """xhttp (``event_callback``): kamhttp's operator paths (/kamhttp/listcon,
        /kamhttp/counters, /metrics); 404 for any other (override to serve your own)."""
        from ..ops.endpoint import serve
        if not serve(msg):
            ksr: Any = sys.modules.get("KSR")
            ksr.xhttp.xhttp_reply(404, "Not Found", "text/plain", "not a kamhttp path\n")
        return 1
