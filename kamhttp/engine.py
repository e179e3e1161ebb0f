"""The request engine: one libcurl transfer per attempt, on reused per-process pycurl handles.

Two layers:

* Transport — :class:`Profile` (every option derived from a Connection or from the module
  Settings, applied once per handle and again only when that object changes) and
  :func:`transfer` (sets only what differs per call: URL, method/body, headers, sinks).
* Semantics of the C module (spec 5 and 6) — :func:`connection_request` (URL joining,
  GET/POST, Content-Type, failover) and :func:`direct_request` (the direct-URL functions),
  both through :func:`_perform`, the one attempt: return code and kept body (spec 5.1, 5.2),
  header capture, $curlredirect and per-connection redirect URL and content type, counters,
  observers.  Each goes through a :class:`Route` prepared once per process and configuration,
  so that a request is one look-up, one attempt and one transfer.

Nothing here raises into a routing script: every failure is a return code.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pycurl

from . import config, counters
from .connection import Connection
from .curlerror import curl_strerror
from .log import get_logger, printable
from .params import Settings
from .state import ProcessState, process_state

log = get_logger("engine")

MAX_REDIRECTS = 10
"""Redirect hops followed before libcurl gives up with curl 47 (C: unlimited, so a loop ran
until the timeout)."""

_HTTP_PROTOCOLS = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS
_AUTH_MASK = 1 | 2 | 4 | 8 | 16       # CURLAUTH_BASIC|DIGEST|GSSNEGOTIATE|NTLM|DIGEST_IE
_PEM = b"PEM"
_DIRECT_KEY = (None, False)            # state.handles keys of the direct-URL handles; a
_DIRECT_H2_KEY = (None, True)          # connection's key is its name (a str)


# ------------------------------------------------------------------------------------------
# Transport
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Profile:
    """The libcurl options that come from configuration, not from the call (spec 6.1)."""

    username: str | None = None
    password: str | None = None
    authmethod: int = 3
    client_cert: str | None = None      # set only when cert and key are both given
    client_key: str | None = None
    cacert: str | None = None
    tlsversion: int = 0
    cipher_suites: str | None = None
    proxy: str | None = None
    proxyport: int = 0
    verify_peer: int = 1
    verify_host: int = 2
    timeout_option: int | None = None   # pycurl.TIMEOUT or TIMEOUT_MS, None: no timeout
    timeout: int = 0
    follow: int = 1
    keep: int = 0
    netinterface: str | None = None
    useragent: str | None = None
    http2_prior_knowledge: bool = False
    maxdatasize: int = 0                # result cap in bytes, 0: unlimited

    @classmethod
    def for_connection(cls, conn: Connection, settings: Settings) -> "Profile":
        """A connection's own settings plus the global cacert/netinterface (spec 6.2)."""
        option, timeout = _timeout(settings, conn.timeout)
        both = conn.client_cert is not None and conn.client_key is not None
        return cls(username=conn.username, password=conn.password,
                   authmethod=conn.authmethod,
                   client_cert=conn.client_cert if both else None,
                   client_key=conn.client_key if both else None,
                   cacert=settings.cacert, tlsversion=conn.tlsversion,
                   cipher_suites=conn.cipher_suites,
                   proxy=conn.proxy, proxyport=conn.httpproxyport if conn.proxy else 0,
                   verify_peer=conn.verify_peer, verify_host=conn.verify_host,
                   timeout_option=option, timeout=timeout, follow=conn.httpredirect,
                   keep=conn.keep_connections, netinterface=settings.netinterface,
                   useragent=conn.useragent, maxdatasize=conn.maxdatasize)

    @classmethod
    def for_direct(cls, settings: Settings, http2_prior_knowledge: bool = False) -> "Profile":
        """The module defaults at call time, as the direct-URL functions use them (spec 5.7)."""
        option, timeout = _timeout(settings, settings.connection_timeout)
        both = bool(settings.client_cert) and bool(settings.client_key)
        return cls(client_cert=settings.client_cert if both else None,
                   client_key=settings.client_key if both else None,
                   cacert=settings.cacert, tlsversion=settings.tlsversion,
                   cipher_suites=settings.cipher_suites or None,
                   proxy=settings.httpproxy or None,
                   proxyport=settings.httpproxyport if settings.httpproxy else 0,
                   verify_peer=settings.verify_peer, verify_host=settings.verify_host,
                   timeout_option=option, timeout=timeout, follow=settings.httpredirect,
                   keep=settings.keep_connections, netinterface=settings.netinterface,
                   useragent=settings.useragent or None,
                   http2_prior_knowledge=http2_prior_knowledge,
                   maxdatasize=settings.query_maxdatasize)

    def apply(self, curl: pycurl.Curl) -> None:
        """Set every option of this profile on a freshly reset handle."""
        setopt = curl.setopt
        setopt(pycurl.PROTOCOLS, _HTTP_PROTOCOLS)
        setopt(pycurl.REDIR_PROTOCOLS, _HTTP_PROTOCOLS)
        setopt(pycurl.NOSIGNAL, 1)
        if self.http2_prior_knowledge:
            setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
        if self.username is not None:
            setopt(pycurl.USERNAME, _b(self.username))
            setopt(pycurl.HTTPAUTH, self.authmethod & _AUTH_MASK)
        if self.password is not None:
            setopt(pycurl.PASSWORD, _b(self.password))
        if self.client_cert is not None and self.client_key is not None:
            setopt(pycurl.SSLCERTTYPE, _PEM)
            setopt(pycurl.SSLCERT, _b(self.client_cert))
            setopt(pycurl.SSLKEYTYPE, _PEM)
            setopt(pycurl.SSLKEY, _b(self.client_key))
        if self.cacert is not None:
            setopt(pycurl.CAINFO, _b(self.cacert))
        if self.tlsversion:
            setopt(pycurl.SSLVERSION, self.tlsversion)
        if self.cipher_suites is not None:
            setopt(pycurl.SSL_CIPHER_LIST, _b(self.cipher_suites))
        if self.proxy is not None:
            setopt(pycurl.PROXY, _b(self.proxy))
            if self.proxyport > 0:
                setopt(pycurl.PROXYPORT, self.proxyport)
        setopt(pycurl.SSL_VERIFYPEER, 1 if self.verify_peer else 0)
        setopt(pycurl.SSL_VERIFYHOST, 2 if self.verify_host else 0)
        if self.timeout_option is not None:
            setopt(self.timeout_option, self.timeout)
        setopt(pycurl.FOLLOWLOCATION, 1 if self.follow else 0)
        setopt(pycurl.MAXREDIRS, MAX_REDIRECTS)
        if self.netinterface is not None:
            setopt(pycurl.INTERFACE, _b(self.netinterface))
        if self.useragent is not None:
            setopt(pycurl.USERAGENT, _b(self.useragent))
        if not self.keep:
            setopt(pycurl.FRESH_CONNECT, 1)
            setopt(pycurl.FORBID_REUSE, 1)


def _timeout(settings: Settings, timeout: int) -> tuple[int | None, int]:
    """The timeout option and value: seconds (mode 1), milliseconds (mode 2), else none."""
    mode = settings.timeout_mode
    if mode == 1:
        return pycurl.TIMEOUT, settings.effective_timeout(timeout)
    if mode == 2:
        return pycurl.TIMEOUT_MS, settings.effective_timeout(timeout)
    return None, 0


def _error_code(exc: Exception) -> int:
    """The CURLcode of a pycurl error; 43 (bad argument) for pycurl's own refusals."""
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else pycurl.E_BAD_FUNCTION_ARGUMENT


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class _Sink:
    """The write callback's buffer: keeps at most ``cap`` bytes, then stops the transfer.

    Stopping (libcurl's write error 23) bounds memory and time; the caller knows from
    ``overflow`` that the transfer itself was fine and the status stands.  Without a cap
    libcurl writes straight into ``chunks.append`` (no Python frame per chunk).
    """

    __slots__ = ("chunks", "size", "cap", "overflow")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.cap = 0
        self.reset()

    def writer(self, cap: int) -> Callable[[bytes], int | None]:
        """The write callback for a handle whose results are capped at ``cap`` (0: none)."""
        self.cap = cap
        return self.write if cap else self.chunks.append

    def reset(self) -> None:
        self.size = 0
        self.overflow = False

    def write(self, data: bytes) -> int | None:
        size = self.size + len(data)
        if self.cap and size > self.cap:
            self.chunks.append(data[:self.cap - self.size])
            self.size = self.cap
            self.overflow = True
            return 0            # anything but len(data) aborts the transfer
        self.chunks.append(data)
        self.size = size
        return None



class Handle:
    """One reused pycurl handle and what was last applied to it."""

    __slots__ = ("key", "curl", "sink", "profile", "custom", "nobody", "with_headers",
                 "capturing", "posting", "closed_info")

    def __init__(self, key: Any, share: Any) -> None:
        self.key = key
        self.curl = pycurl.Curl()
        if share is not None:          # kept by curl_easy_reset, like live connections
            self.curl.setopt(pycurl.SHARE, share)
        self.sink = _Sink()
        self.profile: Profile | None = None       # None: to be configured (again)
        self.custom = False                       # state of the per-call options, so that
        self.nobody = False                       # only what was set gets unset
        self.with_headers = False
        self.capturing = False
        self.posting = False                      # the last request set POSTFIELDS
        self.closed_info: tuple[str, str] | None = None

    def effective_url(self) -> str:
        """The last transfer's effective URL, read only when asked (http_get_redirect,
        $curlredirect): the request path pays no getinfo for it."""
        if self.closed_info is not None:
            return self.closed_info[0]
        return self.curl.getinfo(pycurl.EFFECTIVE_URL) or ""

    def content_type(self) -> str:
        """The last transfer's response Content-Type, read only when asked."""
        if self.closed_info is not None:
            return self.closed_info[1]
        return self.curl.getinfo(pycurl.CONTENT_TYPE) or ""

    def close(self) -> None:
        """Close the curl handle, keeping what :meth:`effective_url` and
        :meth:`content_type` answer."""
        if self.closed_info is None:
            self.closed_info = (self.effective_url(), self.content_type())
            self.profile = None
            self.curl.close()

    def configure(self, profile: Profile) -> int:
        """Apply ``profile`` unless it is already in force (reset keeps live connections).

        Returns 0, or the curl code of an option libcurl refused (e.g. 43 for SSLv3): the
        request is then not performed, as in C, and the next call tries again.  Afterwards
        ``self.profile is profile``: the request path checks identity, not equality.
        """
        if profile == self.profile:
            self.profile = profile
            return 0
        curl = self.curl
        self.profile = None
        curl.reset()
        self.custom = self.nobody = self.with_headers = self.capturing = self.posting = False
        try:
            profile.apply(curl)
        except pycurl.error as exc:
            log.error("Could not set CURL options. Library error (%s)", exc.args[-1])
            return _error_code(exc)
        curl.setopt(pycurl.WRITEFUNCTION, self.sink.writer(profile.maxdatasize))
        self.profile = profile
        return 0


@dataclass(slots=True)
class Response:
    """What one transfer gave: ``code`` is the HTTP status, or the curl code when no status."""

    code: int
    status: int = 0
    curl_code: int = 0
    body: bytes = b""
    truncated: bool = False
    effective_url: str = ""
    content_type: str = ""
    header_lines: list[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)


_TIMING_INFO = (("namelookup", pycurl.NAMELOOKUP_TIME), ("connect", pycurl.CONNECT_TIME),
                ("appconnect", pycurl.APPCONNECT_TIME), ("pretransfer", pycurl.PRETRANSFER_TIME),
                ("starttransfer", pycurl.STARTTRANSFER_TIME), ("redirect", pycurl.REDIRECT_TIME),
                ("total", pycurl.TOTAL_TIME))


def handle_for(state: ProcessState, key: Any) -> Handle:
    """This process's handle for ``key``, created on first use."""
    handle = state.handles.get(key)
    if handle is None:
        if state.share is None:
            state.share = _new_share()
        handle = state.handles[key] = Handle(key, state.share)
    return handle


def _new_share() -> pycurl.CurlShare:
    """TLS sessions and DNS answers shared by every handle of this process."""
    share = pycurl.CurlShare()
    share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_SSL_SESSION)
    share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_DNS)
    return share


def transfer(handle: Handle, url: str, method: str | None, body: bytes | None,
             headers: list[bytes] | None, header_sink: list[bytes] | None) -> int:
    """Perform one request on a configured handle; only per-call options are set here.

    Returns 0 when a response came (its status is on ``handle.curl``, its body in
    ``handle.sink``), else the curl code, logged."""
    curl = handle.curl
    setopt = curl.setopt
    if "\n" in url or "\r" in url:        # would end the request line: never sent
        return curl_failure(pycurl.E_URL_MALFORMAT, url)
    try:
        setopt(pycurl.URL, url.encode("utf-8", "surrogateescape"))
        if handle.nobody:
            setopt(pycurl.NOBODY, 0)
            handle.nobody = False
        if body is not None:
            setopt(pycurl.POSTFIELDS, body)
            handle.posting = True
        elif handle.posting or handle.custom:
            setopt(pycurl.HTTPGET, 1)
            handle.posting = False
        if method:
            setopt(pycurl.CUSTOMREQUEST, _b(method))
            handle.custom = True
            if method == "HEAD":       # libcurl would wait for a body that never comes
                setopt(pycurl.NOBODY, 1)
                handle.nobody = True
        elif handle.custom:
            curl.unsetopt(pycurl.CUSTOMREQUEST)
            handle.custom = False
        if headers:
            setopt(pycurl.HTTPHEADER, headers)
            handle.with_headers = True
        elif handle.with_headers:
            curl.unsetopt(pycurl.HTTPHEADER)
            handle.with_headers = False
        if header_sink is not None:
            setopt(pycurl.HEADERFUNCTION, header_sink.append)
            handle.capturing = True
        elif handle.capturing:
            curl.unsetopt(pycurl.HEADERFUNCTION)
            handle.capturing = False
    except (pycurl.error, ValueError) as exc:      # ValueError: a NUL byte in a string
        handle.profile = None                    # re-apply all next time
        return curl_failure(_error_code(exc), url)
    sink = handle.sink
    if sink.cap:
        sink.reset()
    try:
        curl.perform()
        return 0
    except pycurl.error as exc:
        code = _error_code(exc)
        if code == pycurl.E_WRITE_ERROR and sink.overflow:
            return 0                    # stopped on purpose at the size cap
    sink.chunks.clear()
    return curl_failure(code, url)


_CURL_MESSAGES = {
    1: "URL Schema not supported by curl", 3: "Malformed URL used in http client",
    6: "Couldn't resolve host", 7: "failed to connect() to host",
    28: "Curl library timed out on request", 35: "TLS error in curl connection",
    47: "Too many redirects", 58: "TLS local certificate error",
    60: "TLS verification error", 77: "TLS server certificate validation error (No valid CA cert)",
}


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):[^/?#@]*@")


def _masked(url: str) -> str:
    """The URL for a log line, a password in it replaced by ********."""
    return _USERINFO.sub(r"\1:********@", url, count=1)


def curl_failure(code: int, url: str) -> int:
    """Log a curl error the way the C module words it; returns ``code``."""
    message = _CURL_MESSAGES.get(code, "failed to perform curl")
    log.log(30 if code == 28 else 40, "%s (%d: %s) (url: %s)", message, code,
            curl_strerror(code) if code < 100 else "libcurl error", printable(_masked(url)))
    return code


def _response(handle: Handle, code: int, status: int, curl_code: int, body: bytes,
              header_lines: list[bytes] | None, timings: bool) -> Response:
    """The full description of an attempt, for request() and observers only."""
    if curl_code:
        response = Response(code=code, curl_code=curl_code)
    else:
        response = Response(code=code, status=status, body=body,
                            truncated=handle.sink.overflow,
                            effective_url=handle.effective_url(),
                            content_type=handle.content_type(), header_lines=header_lines)
    if timings:
        response.timings = {name: handle.curl.getinfo(info) for name, info in _TIMING_INFO}
    return response


# ------------------------------------------------------------------------------------------
# Semantics of the C module (spec 5 and 6)
# ------------------------------------------------------------------------------------------

Outcome = tuple[int, bytes, "Response | None"]
"""A function's result before the script conventions: (code, body, response).  ``code`` is
the HTTP status, the curl code or -1; ``body`` what the result variable gets (b"" outside
200..499); ``response`` only when asked for details."""

NO_CONNECTION: Outcome = (-1, b"", None)

_URLS_PER_ROUTE = 256
"""Joined URLs a route remembers (scripts use a few fixed paths; others are joined again)."""


class Route:
    """How this process requests one connection, or the direct URLs, under one configuration:
    its Profile built once, the handle it is applied to, its URLs joined once per path.

    Prepared on first use and kept in ``state.routes`` until the configuration changes, so
    that a request is one look-up; the handle is looked up again only when it was closed or
    lost its options (``handle.profile is not route.profile``)."""

    __slots__ = ("key", "name", "conn", "settings", "profile", "handle", "urls")

    def __init__(self, key: Any, settings: Settings, profile: Profile,
                 conn: Connection | None = None) -> None:
        self.key = key                       # of state.handles
        self.name = conn.name if conn is not None else None
        self.conn = conn
        self.settings = settings
        self.profile = profile
        self.handle: Handle | None = None
        self.urls: dict[str | None, str] = {}

    def bind(self, state: ProcessState) -> int:
        """Attach this process's handle for the key and configure it: 0, or the curl code of
        an option libcurl refused (the next request tries again)."""
        handle = self.handle = state.handles.get(self.key) or handle_for(state, self.key)
        return handle.configure(self.profile)

    def join(self, path: str | None) -> str:
        """The request URL of ``path`` (Connection.join), remembered for the next call."""
        urls = self.urls
        if len(urls) >= _URLS_PER_ROUTE:
            urls.clear()
        url = urls[path] = self.conn.join(path) if path else self.conn.base_url
        return url


def _connection_route(state: ProcessState, cfg: config.Configuration, name: str
                      ) -> Route | None:
    """The route of connection ``name``, prepared now; None (logged) when there is none."""
    conn = cfg.connections.get(name)
    if conn is None:
        log.error("No cURL connection found: %s", printable(name))
        return None
    route = state.routes[name] = Route(
        name, cfg.settings, Profile.for_connection(conn, cfg.settings), conn)
    return route


def _direct_route(state: ProcessState, settings: Settings, http2: bool) -> Route:
    """The route of the direct-URL functions (one per HTTP/2 prior knowledge or not)."""
    key = _DIRECT_H2_KEY if http2 else _DIRECT_KEY
    route = state.routes[key] = Route(key, settings, Profile.for_direct(settings, http2))
    return route


def first_line(body: bytes) -> bytes:
    """The body up to its first line end, without the line end ("\\r\\n" or "\\n")."""
    end = body.find(b"\n")
    if end < 0:
        return body
    return body[:end - 1] if end and body[end - 1] == 13 else body[:end]


def connection_request(name: str, path: str | None, content_type: str | None,
                       data: bytes | None, *, method: str | None = None,
                       headers: list[bytes] | None = None, details: bool = False) -> Outcome:
    """A request on a named connection, with one failover hop (spec 5.3-5.5, 6.6)."""
    cfg = config.current()
    state = process_state()
    if state.generation != cfg.generation:
        state.for_generation(cfg.generation)
    route = state.routes.get(name) or _connection_route(state, cfg, name)
    if route is None:
        return NO_CONNECTION
    body = data or None
    if body is not None and content_type is not None:
        content_header = b"Content-Type: " + _b(content_type)
        headers = [content_header, *headers] if headers else [content_header]
    code, status, curl_code, content, response = _perform(
        state, route, route.urls.get(path) or route.join(path), method, body, headers, details)
    failover = route.conn.failover
    if failover is not None and (curl_code or status >= 500):
        log.error("%s: Trying failover to curl con (%s)",
                  "FATAL FAILURE" if curl_code else "FAILURE", failover)
        route = state.routes.get(failover) or _connection_route(state, cfg, failover)
        if route is None:
            return NO_CONNECTION
        code, status, curl_code, content, response = _perform(
            state, route, route.urls.get(path) or route.join(path), method, body, headers,
            details)
    return code, content, response


def direct_request(url: str, method: str | None, body: bytes | None, hdrs: str | None, *,
                   http2_prior_knowledge: bool = False, extra: list[bytes] | None = None,
                   details: bool = False, whole_body: bool = False) -> Outcome:
    """A request on a full URL with the module defaults (spec 5.7-5.10).  Unless
    ``whole_body``, query_result=1 keeps only the first line (after query_maxdatasize).

    ``hdrs`` is passed whole as one header list entry, as the C module does, so a
    ``"A: 1\\r\\nB: 2"`` string sends two headers.
    """
    cfg = config.current()
    state = process_state()
    if state.generation != cfg.generation:
        state.for_generation(cfg.generation)
    route = state.routes.get(_DIRECT_H2_KEY if http2_prior_knowledge else _DIRECT_KEY) \
        or _direct_route(state, cfg.settings, http2_prior_knowledge)
    headers = [_b(hdrs)] if hdrs else None
    if extra:
        headers = headers + extra if headers else extra
    code, _, _, content, response = _perform(state, route, url, method, body or None,
                                             headers, details)
    if cfg.settings.query_result and not whole_body:
        content = first_line(content)
    return code, content, response


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request attempt as an observer sees it (the testing kit's transcript)."""

    url: str
    method: str | None
    body: bytes | None
    connection: str | None
    response: Response
    seconds: float


_observers: list[Callable[[Attempt], None]] = []


def observe(callback: Callable[[Attempt], None]) -> Callable[[], None]:
    """Call ``callback`` after every attempt of this process; returns the function that
    stops it.  With no observer the request path pays one list test."""
    _observers.append(callback)
    return lambda: _observers.remove(callback)


def _perform(state: ProcessState, route: Route, url: str, method: str | None,
             body: bytes | None, headers: list[bytes] | None, details: bool
             ) -> tuple[int, int, int, bytes, Response | None]:
    """One attempt on ``route``: (code, HTTP status or 0, curl code or 0, kept body, Response
    for details or observers).  The rules of every attempt live here: the return code and
    the kept body (spec 5.1, 5.2), header capture per the response_headers flag,
    $curlredirect and the connection's redirect URL and content type, the counters, the
    observers."""
    observers = _observers
    if observers:
        start = time.perf_counter()
    handle = route.handle
    setup_error = 0
    if handle is None or handle.profile is not route.profile:
        setup_error = route.bind(state)
        handle = route.handle
    flag = state.headers_flag
    if flag is None:
        flag = route.settings.response_headers
    sink: list[bytes] | None = None
    if flag:
        sink = state.header_lines = []
    elif details:
        sink = []
    if setup_error:
        curl_code = curl_failure(setup_error, url)
    else:
        curl_code = transfer(handle, url, method, body, headers, sink)
    if curl_code:
        # the curl code; libcurl 8 has codes from 100 up (100: a request head over 1 MB),
        # which a script would read as HTTP statuses: they give -1
        status, content, code = 0, b"", curl_code if curl_code < 100 else -1
    else:
        status = code = handle.curl.getinfo(pycurl.RESPONSE_CODE)
        chunks = handle.sink.chunks            # the body, releasing the buffer (one chunk
        content = b"".join(chunks)             # is taken without a copy)
        chunks.clear()
    response = _response(handle, code, status, curl_code, content, sink, details) \
        if details or observers else None
    profile = handle.profile
    if profile is not None and not profile.keep and handle.curl.getinfo(pycurl.APPCONNECT_TIME):
        _retire(state, handle)
    answered = state.last = None if curl_code else handle
    if route.name is not None:
        state.answered[route.name] = answered
    counters.add(state.pid, status == 200)
    if observers:
        attempt = Attempt(url, method, body, route.name, response,
                          time.perf_counter() - start)
        for callback in tuple(observers):
            callback(attempt)
    return code, status, curl_code, content if 200 <= status < 500 else b"", response


def _retire(state: ProcessState, handle: Handle) -> None:
    """Close a handle after a TLS connection it must not keep.

    libcurl >= 8.9 shuts a closed TLS connection down gracefully: it sends close_notify and
    parks the socket on the handle until the peer answers or 2 s pass, and only drives that
    list when the handle is used again.  With keep_connections=0 that would leave up to
    2 s x request rate sockets open; closing the handle (as the C module does after every
    request) closes them at once.  TLS sessions stay in the process's share.
    """
    if state.handles.get(handle.key) is handle:
        del state.handles[handle.key]
    handle.close()
