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
from .fault import FaultServer
from .https import HttpsServer
from .proxy import ProxyServer
from .tls import TlsFiles, make_tls_files


def start_http_server(host: str = "127.0.0.1") -> HttpServer:
    """Plain HTTP/1.1 with keep-alive, serving the App."""
    return HttpServer(host).start()


def start_h2c_server(host: str = "127.0.0.1") -> HttpServer:
    """The App over HTTP/2 with prior knowledge on cleartext (HTTP/1.1 clients still served)."""
    return HttpServer(host, h2c=True).start()


def start_https_server(files: TlsFiles | None = None, *, h2: bool = False) -> HttpsServer:
    """HTTPS at https://localhost:PORT with a certificate for localhost, 127.0.0.1 and ::1
    from files.ca_file; `.wrong_host_url` reaches a companion whose certificate names only
    "other.example". With h2, ALPN offers HTTP/2 first."""
    files = files or make_tls_files()
    server = HttpsServer(files, files.server_cert, files.server_key, h2=h2)
    server.wrong_host = HttpsServer(files, files.wrong_host_cert, files.wrong_host_key,
                                    url_name="127.0.0.1").start()
    return server.start()


def start_https_untrusted_server(files: TlsFiles | None = None) -> HttpsServer:
    """HTTPS whose certificate comes from files.untrusted_ca_file, not files.ca_file."""
    files = files or make_tls_files()
    return HttpsServer(files, files.untrusted_cert, files.untrusted_key).start()


def start_https_client_cert_server(files: TlsFiles | None = None) -> HttpsServer:
    """HTTPS that requires a client certificate signed by files.ca_file (files.client_cert);
    each Request records its client_cert_subject."""
    files = files or make_tls_files()
    return HttpsServer(files, files.server_cert, files.server_key,
                       require_client_cert=True).start()


def start_proxy_server(host: str = "127.0.0.1",
                       credentials: tuple[str, str] | None = None) -> ProxyServer:
    """A forward proxy (absolute-form and CONNECT) to loopback origins only."""
    return ProxyServer(host, credentials).start()


def start_fault_server(host: str = "127.0.0.1") -> FaultServer:
    """The misbehaving server of tests/servers/fault.py, with .refused_url."""
    return FaultServer(host).start()


__all__ = [
    "MAX_DELAY", "PASSWORD", "PATTERN", "REALM", "USER", "App", "HttpServer", "Request",
    "Response", "Server", "HttpsServer", "TlsFiles", "bytes_body", "make_tls_files",
    "start_h2c_server", "start_http_server", "start_https_client_cert_server",
    "start_https_server", "start_https_untrusted_server", "FaultServer", "ProxyServer",
    "start_fault_server", "start_proxy_server",
]
