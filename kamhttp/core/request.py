"""The request rules of the C module (spec 5 and 6) on top of the transport.

:func:`connection_request` (a named connection: URL joining, GET/POST, Content-Type, one
failover hop) and :func:`direct_request` (the direct-URL functions) both go through
:func:`_perform`, the one attempt: return code and kept body (spec 5.1, 5.2), header capture,
$curlredirect and the connection's redirect URL and content type, then the hooks (counters,
observers).  Each takes the configuration snapshot and this process's state as arguments and
returns an :class:`~.attempt.Attempt`; a :class:`Route` prepared once per process and
configuration makes a request one look-up, one attempt and one transfer.

Nothing here raises into a routing script: every failure is a return code.
"""
from __future__ import annotations

import time
from typing import Callable

import pycurl

from ..config.connection import Connection
from ..config.params import ConnectionOptions, Settings
from ..config.registry import Configuration
from ..log import get_logger, printable
from . import guard
from .attempt import NO_CONNECTION, Attempt
from .state import DIRECT_H2_KEY, DIRECT_KEY, ProcessState, RouteKey
from .transport import Handle, Profile, completed, curl_failure, prepare, timings, transfer

log = get_logger("engine")

Hook = Callable[[ProcessState, Attempt], None]
"""Called after every attempt of this process, with its state and the attempt."""

_hooks: list[Hook] = []

_URLS_PER_ROUTE = 256
"""Joined URLs a route remembers (scripts use a few fixed paths; others are joined again)."""


def add_hook(hook: Hook) -> Callable[[], None]:
    """Call ``hook`` after every attempt; returns the function that removes it."""
    _hooks.append(hook)
    return lambda: _hooks.remove(hook)


class Route:
    """How this process requests one connection, or the direct URLs, under one configuration:
    its Profile built once, the handle it is applied to, its URLs joined once per path.

    Prepared on first use and kept in ``state.routes`` until the configuration changes; the
    handle is looked up again only when it was closed or lost its options
    (``handle.profile is not route.profile``)."""

    __slots__ = ("key", "name", "conn", "settings", "profile", "handle", "urls", "guard",
                 "guards")

    def __init__(self, key: RouteKey, settings: Settings, profile: Profile,
                 conn: Connection | None = None) -> None:
        self.key = key                       # of state.handles
        self.name = conn.name if conn is not None else None
        self.conn = conn
        self.settings = settings
        self.profile = profile
        self.handle: Handle | None = None
        self.urls: dict[str | None, str] = {}
        options = conn if conn is not None else settings
        on = guard.enabled(options)
        self.guard = _guard(upstream(conn.name, ""), conn, settings) \
            if on and conn is not None else None
        self.guards: dict[str, guard.Guard] | None = {} if on and conn is None else None
        """The direct URLs' guards by scheme://host:port (None: no guard)."""

    def guard_for(self, url: str) -> "guard.Guard | None":
        """The outage guard of this request's upstream, or None (the guard is off)."""
        guards = self.guards
        if guards is None:
            return self.guard
        name = guard.origin(url)
        found = guards.get(name)
        if found is None:
            if len(guards) >= _URLS_PER_ROUTE:
                guards.clear()
            found = guards[name] = _guard(name, self.settings, self.settings)
        return found

    def bind(self, state: ProcessState) -> int:
        """Attach this process's handle for the key and configure it: 0, or the curl code of
        an option libcurl refused (the next request tries again)."""
        handle = self.handle = state.handle(self.key)
        return handle.configure(self.profile)

    def join(self, path: str | None) -> str:
        """The request URL of ``path`` (Connection.join), remembered for the next call."""
        urls = self.urls
        if len(urls) >= _URLS_PER_ROUTE:
            urls.clear()
        assert self.conn is not None             # only connection routes join paths
        url = urls[path] = self.conn.join(path) if path else self.conn.base_url
        return url


def upstream(connection: str | None, url: str) -> str:
    """The outage guard's name of an upstream: a connection definition, or the
    scheme://host:port of a direct URL."""
    return f"connection {connection}" if connection is not None else guard.origin(url)


def _guard(upstream: str, options: ConnectionOptions, settings: Settings) -> guard.Guard:
    timeout = settings.effective_timeout(getattr(options, "timeout", 0) or
                                         settings.connection_timeout)
    seconds = timeout / 1000 if settings.timeout_mode == 2 else timeout
    return guard.Guard(guard.prepare(), upstream, options, seconds)


def _failed(attempt: Attempt) -> bool:
    """What the failover rule and the outage guard count as a failure."""
    return bool(attempt.curl_code) or attempt.status >= 500 or \
        attempt.code == guard.BREAKER_OPEN


def _connection_route(state: ProcessState, cfg: Configuration, name: str) -> Route | None:
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
    key = DIRECT_H2_KEY if http2 else DIRECT_KEY
    route = state.routes[key] = Route(key, settings, Profile.for_direct(settings, http2))
    return route


def first_line(body: bytes) -> bytes:
    """The body up to its first line end, without the line end ("\\r\\n" or "\\n")."""
    end = body.find(b"\n")
    if end < 0:
        return body
    return body[:end - 1] if end and body[end - 1] == 13 else body[:end]


def _with_content_type(content_type: str, headers: list[bytes] | None) -> list[bytes]:
    """The header list of a connection's POST: its Content-Type entry first (spec 5.4)."""
    entry = b"Content-Type: " + content_type.encode("utf-8", "surrogateescape")
    return [entry, *headers] if headers else [entry]


def connection_request(cfg: Configuration, state: ProcessState, name: str, path: str | None,
                       content_type: str | None = None, data: bytes | None = None, *,
                       method: str | None = None, headers: list[bytes] | None = None,
                       details: bool = False) -> Attempt:
    """A request on a named connection, with one failover hop (spec 5.3-5.5, 6.6)."""
    if state.generation != cfg.generation:
        state.for_generation(cfg.generation)
    route = state.routes.get(name) or _connection_route(state, cfg, name)
    if route is None:
        return NO_CONNECTION
    body = data or None
    if body is not None and content_type is not None:
        headers = _with_content_type(content_type, headers)
    attempt = _perform(state, route, route.urls.get(path) or route.join(path), method, body,
                       headers, details)
    failover = route.conn.failover if route.conn is not None else None
    if failover is not None and _failed(attempt):
        log.error("%s: Trying failover to curl con (%s)",
                  "FATAL FAILURE" if attempt.curl_code else "FAILURE", failover)
        route = state.routes.get(failover) or _connection_route(state, cfg, failover)
        if route is None:
            return NO_CONNECTION
        attempt = _perform(state, route, route.urls.get(path) or route.join(path), method,
                           body, headers, details)
    return attempt


def direct_request(cfg: Configuration, state: ProcessState, url: str, method: str | None,
                   body: bytes | None, hdrs: str | None, *, http2_prior_knowledge: bool = False,
                   extra: list[bytes] | None = None, details: bool = False,
                   whole_body: bool = False) -> Attempt:
    """A request on a full URL with the module defaults (spec 5.7-5.10).  Unless
    ``whole_body``, query_result=1 keeps only the first line (after query_maxdatasize).

    ``hdrs`` is passed whole as one header list entry, as the C module does, so a
    ``"A: 1\\r\\nB: 2"`` string sends two headers.
    """
    if state.generation != cfg.generation:
        state.for_generation(cfg.generation)
    route = state.routes.get(DIRECT_H2_KEY if http2_prior_knowledge else DIRECT_KEY) \
        or _direct_route(state, cfg.settings, http2_prior_knowledge)
    headers = [hdrs.encode("utf-8", "surrogateescape")] if hdrs else None
    if extra:
        headers = headers + extra if headers else extra
    attempt = _perform(state, route, url, method, body or None, headers, details)
    if cfg.settings.query_result and not whole_body:
        attempt.value = first_line(attempt.value)
    return attempt


def _perform(state: ProcessState, route: Route, url: str, method: str | None,
             body: bytes | None, headers: list[bytes] | None, details: bool) -> Attempt:
    """One attempt on ``route``, performed here on the route's handle (unless the outage
    guard refuses it)."""
    start = time.perf_counter()
    watch = route.guard if route.guards is None else route.guard_for(url)
    if watch is not None and not watch.admit():
        return Attempt(guard.BREAKER_OPEN, connection=route.name, url=url, method=method,
                       sent=body)
    handle = route.handle
    setup_error = 0
    if handle is None or handle.profile is not route.profile:
        setup_error = route.bind(state)
        handle = route.handle
        assert handle is not None
    sink = _header_sink(state, route, details)
    if setup_error:
        curl_code = curl_failure(setup_error, url)
    else:
        curl_code = transfer(handle, url, method, body, headers, sink)
    attempt = _conclude(state, route, handle, curl_code, url, method, body, details, sink,
                        start)
    if watch is not None:
        watch.settle(_failed(attempt))
    return attempt


def _header_sink(state: ProcessState, route: Route, details: bool) -> list[bytes] | None:
    """Where this attempt's response header lines go: the process's $httprhdr lines when
    response_headers is on (the script's flag first), a list of the attempt's own for
    details, else nowhere."""
    flag = state.headers_flag
    if flag is None:
        flag = route.settings.response_headers
    if flag:
        sink = state.header_lines = []
        return sink
    return [] if details else None


def _conclude(state: ProcessState, route: Route, handle: Handle, curl_code: int, url: str,
              method: str | None, body: bytes | None, details: bool,
              sink: list[bytes] | None, start: float) -> Attempt:
    """The rules of every attempt, however it was performed: the return code and the kept
    body (spec 5.1, 5.2), the connection closed after the request when not kept,
    $curlredirect and the connection's redirect URL and content type, then the hooks."""
    curl = handle.curl
    if curl_code:
        # the curl code; libcurl 8 has codes from 100 up (100: a request head over 1 MB),
        # which a script would read as HTTP statuses: they give -1
        attempt = Attempt(curl_code if curl_code < 100 else -1, 0, curl_code, b"", b"",
                          route.name, url, method, body)
    else:
        status = curl.getinfo(pycurl.RESPONSE_CODE)
        chunks = handle.sink.chunks            # the body, releasing the buffer (one chunk
        content = b"".join(chunks)             # is taken without a copy)
        chunks.clear()
        attempt = Attempt(status, status, 0, content, content if 200 <= status < 500 else b"",
                          route.name, url, method, body)
        if details:
            attempt.truncated = handle.sink.overflow
            attempt.effective_url = handle.effective_url()
            attempt.content_type = handle.content_type()
            attempt.header_lines = sink
    if details:
        attempt.timings = timings(curl)
    if not route.profile.keep:      # its connection closes now, after all hops of the request
        if curl.getinfo(pycurl.APPCONNECT_TIME) or url[:6].lower() == "https:":
            state.retire(handle)    # TLS: with the handle (see there)
        else:
            handle.hang_up()
    state.timed = handle
    answered = state.last = None if curl_code else handle
    if route.name is not None:
        state.answered[route.name] = answered
    attempt.seconds = time.perf_counter() - start
    for hook in _hooks:
        hook(state, attempt)
    return attempt


# ------------------------------------------------------------------------------------------
# Requests driven from outside: many in flight on one multi (the asynchronous path)
# ------------------------------------------------------------------------------------------

class Exchange:
    """One request whose attempts run on handles its driver owns (a CurlMulti): the same
    routes, profiles and rules as :func:`connection_request` and :func:`direct_request`,
    with every detail kept for the script that resumes."""

    __slots__ = ("route", "path", "url", "method", "body", "headers", "first_line",
                 "failed_over", "sink", "start", "watch")

    def __init__(self, route: Route, path: str | None, url: str, method: str | None,
                 body: bytes | None, headers: list[bytes] | None, first_line: bool) -> None:
        self.route, self.path, self.url = route, path, url
        self.method, self.body, self.headers = method, body, headers
        self.first_line = first_line
        self.failed_over = False
        self.sink: list[bytes] | None = None
        self.start = 0.0
        self.watch: guard.Guard | None = None


def begin_job(cfg: Configuration, state: ProcessState, connection: str | None, url: str,
              method: str | None, content_type: str | None, body: bytes | None,
              hdrs: str | None, *, http2: bool = False, first_line: bool = True
              ) -> Exchange | Attempt:
    """The exchange of a request on ``connection`` (``url`` its path) or, without one, on a
    full URL with the module defaults; an Attempt when there is no such connection."""
    if state.generation != cfg.generation:
        state.for_generation(cfg.generation)
    if connection is None:
        route = state.routes.get(DIRECT_H2_KEY if http2 else DIRECT_KEY) \
            or _direct_route(state, cfg.settings, http2)
        headers = [hdrs.encode("utf-8", "surrogateescape")] if hdrs else None
        return Exchange(route, None, url, method, body or None, headers,
                        first_line and bool(cfg.settings.query_result))
    found = state.routes.get(connection) or _connection_route(state, cfg, connection)
    if found is None:
        return NO_CONNECTION
    body = body or None
    headers = _with_content_type(content_type, None) \
        if body is not None and content_type is not None else None
    return Exchange(found, url, found.urls.get(url) or found.join(url), method, body, headers,
                    False)


def start_attempt(state: ProcessState, exchange: Exchange, handle: Handle) -> Attempt | None:
    """Set up the exchange's next attempt on ``handle`` (configured for its route when
    needed): None when the handle is ready to run, else the Attempt of what was refused."""
    exchange.start = time.perf_counter()
    route = exchange.route
    watch = exchange.watch = route.guard_for(exchange.url)
    if watch is not None and not watch.admit():
        exchange.watch = None
        return Attempt(guard.BREAKER_OPEN, connection=route.name, url=exchange.url,
                       method=exchange.method, sent=exchange.body)
    setup_error = handle.configure(route.profile) if handle.profile is not route.profile else 0
    sink = exchange.sink = _header_sink(state, route, True)
    code = curl_failure(setup_error, exchange.url) if setup_error else prepare(
        handle, exchange.url, exchange.method, exchange.body, exchange.headers, sink)
    if code:
        attempt = _conclude(state, route, handle, code, exchange.url, exchange.method,
                            exchange.body, True, sink, exchange.start)
        if watch is not None:
            watch.settle(True)
            exchange.watch = None
        return attempt
    return None


def end_attempt(state: ProcessState, exchange: Exchange, handle: Handle, code: int
                ) -> Attempt:
    """The Attempt of a transfer the driver ran on ``handle`` and libcurl ended with
    ``code``."""
    code = completed(handle, code, exchange.url)
    attempt = _conclude(state, exchange.route, handle, code, exchange.url, exchange.method,
                        exchange.body, True, exchange.sink, exchange.start)
    if exchange.watch is not None:
        exchange.watch.settle(_failed(attempt))
        exchange.watch = None
    return attempt


def failover(cfg: Configuration, state: ProcessState, exchange: Exchange, attempt: Attempt
             ) -> Exchange | None:
    """The exchange moved to its connection's failover when ``attempt`` calls for it (the
    rule of :func:`connection_request`: one hop, on a curl error or a status >= 500)."""
    conn = exchange.route.conn
    if exchange.failed_over or conn is None or conn.failover is None or not _failed(attempt):
        return None
    log.error("%s: Trying failover to curl con (%s)",
              "FATAL FAILURE" if attempt.curl_code else "FAILURE", conn.failover)
    route = state.routes.get(conn.failover) or _connection_route(state, cfg, conn.failover)
    if route is None:
        return None
    exchange.route, exchange.failed_over = route, True
    exchange.url = route.urls.get(exchange.path) or route.join(exchange.path)
    return exchange


def result(exchange: Exchange, attempt: Attempt) -> Attempt:
    """The request's last attempt as the script reads it (query_result=1: the first line)."""
    if exchange.first_line:
        attempt.value = first_line(attempt.value)
    return attempt
