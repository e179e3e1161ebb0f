"""Real test servers on loopback, for the tests, the benchmarks, the demo and Kamailio runs.

    from tests.servers import start_http_server
    server = start_http_server()          # already serving, in background threads
    ... server.url, server.requests ...
    server.stop()                         # or: with start_http_server() as server: ...

The endpoints are listed in tests/servers/app.py (HTTP, HTTPS, h2c) and fault.py.
"""
from __future__ import annotations

from .app import PATTERN, App, Response, bytes_body
from .auth import PASSWORD, REALM, USER
from .base import MAX_DELAY, Request, Server
from .http1 import HttpServer


def start_http_server(host: str = "127.0.0.1") -> HttpServer:
    """Plain HTTP/1.1 with keep-alive, serving the App."""
    return HttpServer(host).start()


__all__ = [
    "MAX_DELAY", "PASSWORD", "PATTERN", "REALM", "USER", "App", "HttpServer", "Request",
    "Response", "Server", "bytes_body", "start_http_server",
]
