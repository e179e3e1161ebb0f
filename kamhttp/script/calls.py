"""From checked script arguments to the request core and back: one request on this process's
state under the configuration in force, its body delivered into the result PV.

The script's return code is never 0 (spec 5.1: it would stop the script), and the result PV
gets the body decoded as UTF-8 (invalid bytes replaced by U+FFFD), ending at a NUL byte as a
Kamailio string does.
"""
from __future__ import annotations

from .. import config, pv
from ..core import request
from ..core.attempt import Attempt
from ..core.state import process_state


def deliver(result: str, attempt: Attempt) -> int:
    """The kept body into the result variable as text; the script's return code."""
    pv.sets(result, attempt.value.decode("utf-8", "replace"))
    return attempt.code or -1


def connect(connection: str, url: str, content_type: str | None, data: str | None,
            result: str) -> int:
    """A request on a named connection (GET, or POST when ``data`` is non-empty)."""
    return deliver(result, request.connection_request(
        config.current(), process_state(), connection, url, content_type,
        data.encode("utf-8", "surrogateescape") if data else None))


def direct(method: str | None, url: str, body: str | None, hdrs: str | None, result: str,
           http2: bool = False) -> int:
    """A request on a full URL with the module defaults."""
    return deliver(result, request.direct_request(
        config.current(), process_state(), url, method,
        body.encode("utf-8", "surrogateescape") if body else None, hdrs or None,
        http2_prior_knowledge=http2))
