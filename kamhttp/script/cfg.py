"""The cfg-style functions: the cfg names and parameter lists (spec 5.3-5.12).

They PV-expand exactly the arguments the cfg expands (url, data, hdrs, method; never a
connection name, a content type or http_connect_raw's data) and write the result into the PV
named by their last argument.  Return values follow spec 5.1: the HTTP status, a curl error
code (1..99) or -1.
"""
from __future__ import annotations

from typing import Any

from .. import config, pv
from ..core.state import peek, process_state
from ..log import printable
from .arguments import (BadArgument, content_type as content_type_, expand, int_mode,
                        log, method as method_, result_name, script_function, text)
from .calls import connect, direct

@script_function
def http_connect(connection: str, url: str, *rest: str) -> int:
    """``http_connect(connection, url, result)`` (GET) or
    ``http_connect(connection, url, content_type, data, result)`` (POST unless data is "")."""
    if len(rest) == 1:
        content_type, data, result = None, None, rest[0]
    elif len(rest) == 3:
        content_type, data, result = rest
        content_type_(content_type)
        text(data, "data")
    else:
        raise BadArgument(f"takes 3 or 5 arguments, not {2 + len(rest)}")
    connection = text(connection, "connection")
    result = result_name(result)
    url = expand(url, "url")
    if data is not None:
        data = expand(data, "data")
    return connect(connection, url, content_type, data, result)


@script_function
def http_connect_raw(connection: str, url: str, content_type: str, data: str,
                     result: str) -> int:
    """Like the 5-argument http_connect, but data is sent as written (never PV-expanded)."""
    connection = text(connection, "connection")
    content_type = content_type_(content_type)
    data = text(data, "data")
    result = result_name(result)
    return connect(connection, expand(url, "url"), content_type, data, result)


@script_function
def http_get_redirect(connection: str, result: str) -> int:
    """The last effective URL of ``connection`` in this process into ``result``: 1, or -1
    (result "") for an unknown connection."""
    connection = text(connection, "connection")
    result = result_name(result)
    cfg = config.current()
    if connection not in cfg.connections:
        log.error("No cURL connection found: %s", printable(connection))
        pv.sets(result, "")
        return -1
    state = peek()
    pv.sets(result, state.for_generation(cfg.generation).redirect_url(connection)
            if state else "")
    return 1


@script_function
def http_client_query(url: str, *rest: str) -> int:
    """``http_client_query(url, [data, [hdrs,]] result)``: POST when data is non-empty."""
    if not 1 <= len(rest) <= 3:
        raise BadArgument(f"takes 2, 3 or 4 arguments, not {1 + len(rest)}")
    result = result_name(rest[-1])
    url = expand(url, "url")
    data = expand(rest[0], "data") if len(rest) >= 2 else ""
    hdrs = expand(rest[1], "hdrs") if len(rest) == 3 else ""
    if not url:
        raise BadArgument("URL has no value")
    return direct(None, url, data, hdrs, result)


@script_function
def http_client_get(url: str, body: str, hdrs: str, result: str) -> int:
    """A GET (with a body when ``body`` is non-empty) on a full URL."""
    result = result_name(result)
    url, body, hdrs = expand(url, "url"), expand(body, "body"), expand(hdrs, "hdrs")
    if not url:
        raise BadArgument("URL has no value")
    return direct("GET", url, body, hdrs, result)


def _request(method: str, url: str, body: str, hdrs: str, result: str, http2: bool) -> int:
    result = result_name(result)
    method, url = method_(expand(method, "method")), expand(url, "url")
    body, hdrs = expand(body, "body"), expand(hdrs, "hdrs")
    if not method:
        raise BadArgument("METHOD has no value")
    if not url:
        raise BadArgument("URL has no value")
    return direct(method, url, body, hdrs, result, http2)


@script_function
def http_client_request(method: str, url: str, body: str, hdrs: str, result: str) -> int:
    """A request with the method given verbatim (spec 5.9)."""
    return _request(method, url, body, hdrs, result, False)


@script_function
def http_client_request_v2pk(method: str, url: str, body: str, hdrs: str,
                             result: str) -> int:
    """http_client_request over HTTP/2 with prior knowledge (no Upgrade) (spec 5.10)."""
    return _request(method, url, body, hdrs, result, True)


@script_function
def http_client_response_headers_set(mode: Any) -> int:
    """Capture response headers in this process (mode non-zero) or stop and clear (0).
    ``mode`` is an int, a numeric string or a PV holding one."""
    value = int_mode(mode)
    state = process_state()
    if value:
        state.headers_flag = 1
    else:
        state.headers_flag = 0
        state.header_lines = []
    return 1


@script_function
def http_client_response_headers_clear(_unused: Any = None) -> int:
    """Forget the captured response headers of this process.  Takes no argument as
    documented; one ignored argument is accepted, as the C module required one."""
    state = peek()
    if state is not None:
        state.header_lines = []
    return 1
