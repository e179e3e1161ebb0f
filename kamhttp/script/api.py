"""For Python code: the developer API of the documentation (Chapter 2), returning the body
instead of writing a PV, and :func:`request`, a Pythonic call returning a :class:`Result`."""
from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .. import config
from ..core import headers as response_headers, request as core
from ..core.curlerror import curl_strerror
from ..core.state import peek, process_state
from ..log import printable
from .arguments import (BadArgument, body as body_, content_type as content_type_,
                        encode, header_lines, log, method as method_, text)

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
            connection = text(connection, "connection")
            url = None if url is None else text(url, "url")
            content_type = None if content_type is None else content_type_(content_type)
            body = body_(post, "post")
        except BadArgument as exc:
            log.error("api.http_connect: %s", exc)
            return -1, b""
        if body and content_type is None:
            content_type = "text/plain"
        attempt = core.connection_request(config.current(), process_state(), connection, url,
                                          content_type, body or None)
        return attempt.code, attempt.value

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
            url = text(url, "url")
            body = body_(post, "post")
            ctype = None if ctype is None else content_type_(ctype)
            hdrs = None if hdrs is None else text(hdrs, "hdrs")
        except BadArgument as exc:
            log.error("api.http_client_query: %s", exc)
            return -1, b""
        extra = [encode(f"Content-Type: {ctype}")] if body and ctype is not None else None
        attempt = core.direct_request(config.current(), process_state(), url, None,
                                      body or None, hdrs or None, extra=extra)
        return attempt.code, attempt.value

    http_connection_exists = staticmethod(config.http_connection_exists)
    http_get_content_type = staticmethod(http_get_content_type)


api = _Api()
"""The developer API (``httpc_load_api`` in C)."""


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
        return self.body.decode("utf-8", "replace")

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
        method, url = method_(method), text(url, "url")
        if connection is not None:
            text(connection, "connection")
        if body is not None and not isinstance(body, (bytes, str)):
            raise BadArgument(f"body must be bytes or str, not {printable(repr(body))}")
        extra = header_lines(headers)
    except BadArgument as exc:
        log.error("request: %s", exc)
        return Result(code=-1)
    payload = encode(body) if isinstance(body, str) else body
    verb = None if (method == "GET" and not payload) or (method == "POST" and payload) \
        else method
    cfg, state = config.current(), process_state()
    if connection is not None:
        attempt = core.connection_request(cfg, state, connection, url, None, payload or None,
                                          method=verb, headers=extra, details=True)
    else:
        attempt = core.direct_request(cfg, state, url, verb, payload or None, None,
                                      extra=extra, http2_prior_knowledge=http2_prior_knowledge,
                                      details=True, whole_body=True)
    return Result(code=attempt.code, status=attempt.status, body=attempt.body,
                  headers=response_headers.final_fields(attempt.header_lines or []),
                  effective_url=attempt.effective_url, curl_code=attempt.curl_code,
                  curl_error=curl_strerror(attempt.curl_code) if attempt.curl_code else "",
                  truncated=attempt.truncated, timings=attempt.timings)
