"""The function table: what a routing script calls (spec 5 and 11, Developer Guide).

* Module-level cfg functions with the cfg names and parameter lists.  They PV-expand exactly
  the arguments the cfg expands (url, data, hdrs, method; never a connection name, a content
  type or http_connect_raw's data) and write the result into the PV named by their last
  argument.
* :data:`http_client` — the KEMI exports (``KSR.http_client.*``): no expansion at all.
* :data:`api` — the developer API of the documentation, returning the body instead of
  writing a PV, plus :func:`http_get_content_type`.
* :func:`request` — a Pythonic call for scripts written fresh, returning a :class:`Result`.

Return values follow spec 5.1: the HTTP status, a curl error code (1..99) or -1; a 0 becomes
-1 for script functions.  A bad argument (None or an int where a string is due, a result
name that is not a writable PV, a string that does not parse) is logged and gives -1: no
exception ever reaches the routing script.

The response body is bytes on the wire; the result PV gets it decoded as UTF-8 (invalid bytes
replaced by U+FFFD), ending at a NUL byte as a Kamailio string does.  The developer API and
:class:`Result` return the bytes.
"""
from __future__ import annotations

import functools
import json as _json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from . import config, engine, pv
from .curlerror import curl_strerror
from .errors import PVError
from .log import get_logger, printable
from .state import peek, process_state

log = get_logger("functions")


class _BadArgument(Exception):
    """An argument a script function cannot use; becomes a logged -1."""


def _script_function(func: Callable[..., int]) -> Callable[..., int]:
    """Make a script-facing function total: every failure is logged and gives -1."""
    @functools.wraps(func)
    def wrapper(*args: Any) -> int:
        try:
            return func(*args)
        except _BadArgument as exc:
            log.error("%s: %s", func.__name__, exc)
        except Exception:  # never into the routing script
            log.exception("%s: internal error", func.__name__)
        return -1
    return wrapper


def _str(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    raise _BadArgument(f"{what} must be a string, not {printable(repr(value))}")


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789"
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _method(value: Any) -> str:
    """A method must be an HTTP token: anything else would rewrite the request line."""
    value = _str(value, "method")
    if value and not _TOKEN.issuperset(value):
        raise _BadArgument(f"method {printable(repr(value))} is not an HTTP token "
                           "(valid: GET, POST, PUT, ... letters, digits and !#$%&'*+-.^_`|~)")
    return value


def _content_type(value: Any) -> str:
    """A content type becomes a header value: CR, LF or NUL would add header lines."""
    text = _str(value, "content_type")
    if "\r" in text or "\n" in text or "\x00" in text:
        raise _BadArgument(f"content_type {printable(repr(text))} contains CR, LF or NUL "
                           "(valid: a media type such as application/json)")
    return text


def _result_name(value: Any) -> str:
    if value.__class__ is str and pv.writable_checked.get(value, "") is None:
        return value                      # a name already found writable
    error = pv.writable_error(value)
    if error is not None:
        raise _BadArgument(f"result variable: {error}")
    return value


def _expand(value: Any, what: str) -> str:
    text = _str(value, what)
    try:
        return pv.expand(text)
    except PVError as exc:
        raise _BadArgument(f"cannot evaluate {what}: {exc}") from None


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _decode(body: bytes) -> str:
    return body.decode("utf-8", "replace")


def _deliver(result: str, outcome: engine.Outcome) -> int:
    """The body into the result variable as text; the script's return code, never 0 (spec
    5.1: it would stop the script).  Decoding inline keeps the request path a frame shorter."""
    code, body, _ = outcome
    pv.sets(result, body.decode("utf-8", "replace"))
    return code or -1


def _connect(connection: str, url: str, content_type: str | None, data: str | None,
             result: str) -> int:
    return _deliver(result, engine.connection_request(connection, url, content_type,
                                                      _encode(data) if data else None))


def _direct(method: str | None, url: str, body: str | None, hdrs: str | None, result: str,
            http2: bool = False) -> int:
    return _deliver(result, engine.direct_request(url, method, _encode(body) if body else None,
                                                  hdrs or None, http2_prior_knowledge=http2))


# ------------------------------------------------------------------------------------------
# cfg functions (spec 5.3-5.12)
# ------------------------------------------------------------------------------------------

@_script_function
def http_connect(connection: str, url: str, *rest: str) -> int:
    """``http_connect(connection, url, result)`` (GET) or
    ``http_connect(connection, url, content_type, data, result)`` (POST unless data is "")."""
    if len(rest) == 1:
        content_type, data, result = None, None, rest[0]
    elif len(rest) == 3:
        content_type, data, result = rest
        _content_type(content_type)
        _str(data, "data")
    else:
        raise _BadArgument(f"takes 3 or 5 arguments, not {2 + len(rest)}")
    connection = _str(connection, "connection")
    result = _result_name(result)
    url = _expand(url, "url")
    if data is not None:
        data = _expand(data, "data")
    return _connect(connection, url, content_type, data, result)


@_script_function
def http_connect_raw(connection: str, url: str, content_type: str, data: str,
                     result: str) -> int:
    """Like the 5-argument http_connect, but data is sent as written (never PV-expanded)."""
    connection = _str(connection, "connection")
    content_type = _content_type(content_type)
    data = _str(data, "data")
    result = _result_name(result)
    return _connect(connection, _expand(url, "url"), content_type, data, result)


@_script_function
def http_get_redirect(connection: str, result: str) -> int:
    """The last effective URL of ``connection`` in this process into ``result``: 1, or -1
    (result "") for an unknown connection."""
    connection = _str(connection, "connection")
    result = _result_name(result)
    cfg = config.current()
    if connection not in cfg.connections:
        log.error("No cURL connection found: %s", printable(connection))
        pv.sets(result, "")
        return -1
    state = peek()
    pv.sets(result, state.for_generation(cfg.generation).redirect_url(connection)
            if state else "")
    return 1


@_script_function
def http_client_query(url: str, *rest: str) -> int:
    """``http_client_query(url, [data, [hdrs,]] result)``: POST when data is non-empty."""
    if not 1 <= len(rest) <= 3:
        raise _BadArgument(f"takes 2, 3 or 4 arguments, not {1 + len(rest)}")
    result = _result_name(rest[-1])
    url = _expand(url, "url")
    data = _expand(rest[0], "data") if len(rest) >= 2 else ""
    hdrs = _expand(rest[1], "hdrs") if len(rest) == 3 else ""
    if not url:
        raise _BadArgument("URL has no value")
    return _direct(None, url, data, hdrs, result)


@_script_function
def http_client_get(url: str, body: str, hdrs: str, result: str) -> int:
    """A GET (with a body when ``body`` is non-empty) on a full URL."""
    result = _result_name(result)
    url, body, hdrs = _expand(url, "url"), _expand(body, "body"), _expand(hdrs, "hdrs")
    if not url:
        raise _BadArgument("URL has no value")
    return _direct("GET", url, body, hdrs, result)


def _request(method: str, url: str, body: str, hdrs: str, result: str, http2: bool) -> int:
    result = _result_name(result)
    method, url = _method(_expand(method, "method")), _expand(url, "url")
    body, hdrs = _expand(body, "body"), _expand(hdrs, "hdrs")
    if not method:
        raise _BadArgument("METHOD has no value")
    if not url:
        raise _BadArgument("URL has no value")
    return _direct(method, url, body, hdrs, result, http2)


@_script_function
def http_client_request(method: str, url: str, body: str, hdrs: str, result: str) -> int:
    """A request with the method given verbatim (spec 5.9)."""
    return _request(method, url, body, hdrs, result, False)


@_script_function
def http_client_request_v2pk(method: str, url: str, body: str, hdrs: str,
                             result: str) -> int:
    """http_client_request over HTTP/2 with prior knowledge (no Upgrade) (spec 5.10)."""
    return _request(method, url, body, hdrs, result, True)


@_script_function
def http_client_response_headers_set(mode: Any) -> int:
    """Capture response headers in this process (mode non-zero) or stop and clear (0).
    ``mode`` is an int, a numeric string or a PV holding one."""
    value = _int_mode(mode)
    state = process_state()
    if value:
        state.headers_flag = 1
    else:
        state.headers_flag = 0
        state.header_lines = []
    return 1


@_script_function
def http_client_response_headers_clear(_unused: Any = None) -> int:
    """Forget the captured response headers of this process.  Takes no argument as
    documented; one ignored argument is accepted, as the C module required one."""
    state = peek()
    if state is not None:
        state.header_lines = []
    return 1


def _int_mode(mode: Any) -> int:
    if isinstance(mode, str) and mode.startswith("$"):
        try:
            mode = pv.get(mode)
        except PVError as exc:
            raise _BadArgument(f"mode: {exc}") from None
    if isinstance(mode, bool):
        return int(mode)
    if isinstance(mode, int):
        return mode
    if isinstance(mode, str):
        try:
            return int(mode.strip())
        except ValueError:
            pass
    raise _BadArgument(f"mode must be an integer (0 or 1) or a PV holding one, not {mode!r}")


# ------------------------------------------------------------------------------------------
# KEMI exports (spec 11): KSR.http_client.*
# ------------------------------------------------------------------------------------------

class _Kemi:
    """``KSR.http_client``: the KEMI exports, with KEMI semantics (no PV expansion; the last
    argument names the result PV and is checked before any request)."""

    @staticmethod
    @_script_function
    def query(url: str, dpv: str) -> int:
        result = _result_name(dpv)
        return _direct(None, _str(url, "url"), None, None, result)

    @staticmethod
    @_script_function
    def query_post(url: str, post: str, dpv: str) -> int:
        result = _result_name(dpv)
        return _direct(None, _str(url, "url"), _str(post, "post"), None, result)

    @staticmethod
    @_script_function
    def query_post_hdrs(url: str, post: str, hdrs: str, dpv: str) -> int:
        result = _result_name(dpv)
        return _direct(None, _str(url, "url"), _str(post, "post"), _str(hdrs, "hdrs"), result)

    @staticmethod
    @_script_function
    def get_hdrs(url: str, body: str, hdrs: str, dpv: str) -> int:
        result = _result_name(dpv)
        return _direct("GET", _str(url, "url"), _str(body, "body"), _str(hdrs, "hdrs"),
                       result)

    @staticmethod
    @_script_function
    def query_request(method: str, url: str, body: str, hdrs: str, dpv: str) -> int:
        """method "" lets the body choose GET or POST (spec 11)."""
        result = _result_name(dpv)
        return _direct(_method(method) or None, _str(url, "url"), _str(body, "body"),
                       _str(hdrs, "hdrs"), result)

    @staticmethod
    @_script_function
    def query_request_v2pk(method: str, url: str, body: str, hdrs: str, dpv: str) -> int:
        result = _result_name(dpv)
        return _direct(_method(method) or None, _str(url, "url"), _str(body, "body"),
                       _str(hdrs, "hdrs"), result, True)

    @staticmethod
    @_script_function
    def curl_connect(con: str, url: str, dpv: str) -> int:
        result = _result_name(dpv)
        if con.__class__ is not str or url.__class__ is not str:
            _str(con, "connection")         # raises the clear error (the common case
            _str(url, "url")                # pays no call)
        return _deliver(result, engine.connection_request(con, url, None, None))

    @staticmethod
    @_script_function
    def curl_connect_post(con: str, url: str, ctype: str, data: str, dpv: str) -> int:
        result = _result_name(dpv)
        return _connect(_str(con, "connection"), _str(url, "url"),
                        _content_type(ctype), _str(data, "data"), result)

    get_redirect = staticmethod(http_get_redirect)
    response_headers_set = staticmethod(http_client_response_headers_set)
    response_headers_clear = staticmethod(http_client_response_headers_clear)


http_client = _Kemi()
"""The KEMI exports: ``kamhttp.install(KSR)`` makes this ``KSR.http_client``."""


def install(ksr: Any) -> None:
    """``KSR.http_client = kamhttp.http_client``: scripts written for the C module's KEMI
    exports run unchanged."""
    ksr.http_client = http_client


# ------------------------------------------------------------------------------------------
# Developer API (Developer Guide, spec 10)
# ------------------------------------------------------------------------------------------

def http_get_content_type(connection: str) -> str | None:
    """The Content-Type of the last response on ``connection`` in this process: "" before
    any request or after a failed one, None if the connection does not exist."""
    cfg = config.current()
    if connection not in cfg.connections:
        return None
    state = peek()
    return state.for_generation(cfg.generation).content_type(connection) if state else ""


class _Api:
    """The C module's API struct: calls that return ``(code, body bytes)``; 0 is not
    turned into -1 here, as in C.  A bad argument is logged and gives ``(-1, b"")``."""

    @staticmethod
    def http_connect(connection: str, url: str | None = None, content_type: str | None = None,
                     post: str | bytes | None = None) -> tuple[int, bytes]:
        """GET when post is None or empty, else POST with ``Content-Type: content_type``
        (text/plain when None)."""
        try:
            connection = _str(connection, "connection")
            url = None if url is None else _str(url, "url")
            content_type = None if content_type is None else _content_type(content_type)
            body = _body(post, "post")
        except _BadArgument as exc:
            log.error("api.http_connect: %s", exc)
            return -1, b""
        if body and content_type is None:
            content_type = "text/plain"
        code, body, _ = engine.connection_request(connection, url, content_type, body or None)
        return code, body

    @staticmethod
    def http_client_query(url: str, post: str | bytes | None = None,
                          hdrs: str | None = None) -> tuple[int, bytes]:
        """The cfg http_client_query: query_result and query_maxdatasize apply."""
        return _Api.http_client_query_c(url, post, None, hdrs)

    @staticmethod
    def http_client_query_c(url: str, post: str | bytes | None, ctype: str | None,
                            hdrs: str | None) -> tuple[int, bytes]:
        """As http_client_query, plus a ``Content-Type: ctype`` entry when post is given."""
        try:
            url = _str(url, "url")
            body = _body(post, "post")
            ctype = None if ctype is None else _content_type(ctype)
            hdrs = None if hdrs is None else _str(hdrs, "hdrs")
        except _BadArgument as exc:
            log.error("api.http_client_query: %s", exc)
            return -1, b""
        extra = [_encode(f"Content-Type: {ctype}")] if body and ctype is not None else None
        code, body, _ = engine.direct_request(url, None, body or None, hdrs or None,
                                              extra=extra)
        return code, body

    http_connection_exists = staticmethod(config.http_connection_exists)
    http_get_content_type = staticmethod(http_get_content_type)


api = _Api()
"""The developer API (``httpc_load_api`` in C)."""


def _body(post: Any, what: str) -> bytes | None:
    """A request body given as str (sent UTF-8) or bytes; None for no body."""
    if post is None or isinstance(post, bytes):
        return post
    if isinstance(post, str):
        return _encode(post)
    raise _BadArgument(f"{what} must be str or bytes, not {printable(repr(post))}")


# ------------------------------------------------------------------------------------------
# The Pythonic call
# ------------------------------------------------------------------------------------------

@dataclass
class Result:
    """One request's outcome for Python code: nothing to decode from a return code."""

    code: int
    """As the script functions count: the HTTP status, else the curl code, else -1."""
    status: int = 0
    """The HTTP status, 0 when no response came."""
    body: bytes = b""
    """The whole body (bounded by maxdatasize / query_maxdatasize), for any status."""
    headers: list[tuple[str, str]] = field(default_factory=list)
    """The final response's header fields, in order."""
    effective_url: str = ""
    curl_code: int = 0
    curl_error: str = ""
    truncated: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds from the start: namelookup, connect, appconnect, pretransfer,
    starttransfer, redirect, total (libcurl's timers)."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return _decode(self.body)

    def json(self) -> Any:
        return _json.loads(self.body)

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in reversed(self.headers):
            if key.lower() == wanted:
                return value
        return None


def request(method: str, url: str, *, connection: str | None = None,
            body: bytes | str | None = None,
            headers: Mapping[str, str] | Iterable[str] | None = None,
            http2_prior_knowledge: bool = False) -> Result:
    """Make a request and get a :class:`Result`.  With ``connection`` the URL is a path
    joined to that connection's base URL and the connection's settings (credentials,
    timeout, failover...) apply; without, the module defaults apply.  Never raises for a
    failed request: look at ``status``/``curl_code``; a bad argument is logged and gives
    ``code`` -1 without a request."""
    try:
        method, url = _method(method), _str(url, "url")
        if connection is not None:
            _str(connection, "connection")
        if body is not None and not isinstance(body, (bytes, str)):
            raise _BadArgument(f"body must be bytes or str, not {printable(repr(body))}")
        extra = _header_lines(headers)
    except _BadArgument as exc:
        log.error("request: %s", exc)
        return Result(code=-1)
    payload = _encode(body) if isinstance(body, str) else body
    verb = None if (method == "GET" and not payload) or (method == "POST" and payload) \
        else method
    if connection is not None:
        code, _, response = engine.connection_request(connection, url, None, payload or None,
                                                      method=verb, headers=extra, details=True)
    else:
        code, _, response = engine.direct_request(url, verb, payload or None, None, extra=extra,
                                                  http2_prior_knowledge=http2_prior_knowledge,
                                                  details=True, whole_body=True)
    if response is None:
        return Result(code=code)          # no such connection (logged)
    return Result(code=code, status=response.status, body=response.body,
                  headers=_final_headers(response.header_lines or []),
                  effective_url=response.effective_url, curl_code=response.curl_code,
                  curl_error=curl_strerror(response.curl_code) if response.curl_code else "",
                  truncated=response.truncated, timings=response.timings)


def _header_lines(headers: Mapping[str, str] | Iterable[str] | None) -> list[bytes] | None:
    """Header list entries: a mapping gives one checked field each; raw lines are passed
    whole, like the hdrs argument (a CRLF inside one sends two headers)."""
    if not headers:
        return None
    if isinstance(headers, Mapping):
        lines = []
        for name, value in headers.items():
            if not isinstance(name, str) or not name or not _TOKEN.issuperset(name):
                raise _BadArgument(f"header name {printable(repr(name))} is not a token")
            value = _str(value, f"header {name}")
            if "\r" in value or "\n" in value or "\x00" in value:
                raise _BadArgument(f"header {name} value {printable(repr(value))} contains "
                                   "CR, LF or NUL")
            lines.append(_encode(f"{name}: {value}"))
        return lines
    if isinstance(headers, (str, bytes)):
        raise _BadArgument("headers must be a mapping or a list of lines, not one string")
    return [_encode(_str(line, "header line")) for line in headers]


def _final_headers(lines: list[bytes]) -> list[tuple[str, str]]:
    """The fields of the last header block (after redirects and 401 retries)."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line.startswith(b"HTTP/"):
            fields = []
            continue
        colon = line.find(b":")
        if colon > 0 and line[0] not in b" \t":
            fields.append((line[:colon].decode("latin-1").strip(),
                           line[colon + 1:].strip().decode("utf-8", "replace")))
    return fields
