"""Session-wide real servers on 127.0.0.1 (see tests/servers). Each fixture yields a server with
.url (no trailing slash), .host, .port, .requests (tests.servers.Request records) and .clear()."""
from __future__ import annotations

from typing import Iterator

import pytest

from kamhttp import config
from tests import servers


@pytest.fixture
def fresh_config() -> Iterator[None]:
    """kamhttp's configuration back to the defaults before and after the test (the
    configuration tests use it for every test: pytestmark)."""
    config.reset()
    yield
    config.reset()


@pytest.fixture(scope="session")
def http_server() -> Iterator[servers.HttpServer]:
    """Plain HTTP/1.1, keep-alive, the endpoints of tests/servers/app.py."""
    with servers.start_http_server() as server:
        yield server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> servers.TlsFiles:
    """The test CA and the certificates it issued, as PEM files (see tests/servers/tls.py)."""
    return servers.make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def https_server(tls_files: servers.TlsFiles) -> Iterator[servers.HttpsServer]:
    """HTTPS at https://localhost:PORT; .ca_file verifies it; .wrong_host_url fails host
    verification (certificate only for "other.example")."""
    with servers.start_https_server(tls_files) as server:
        yield server


@pytest.fixture(scope="session")
def https_untrusted_server(tls_files: servers.TlsFiles) -> Iterator[servers.HttpsServer]:
    """HTTPS with a certificate that .ca_file does not verify (curl error 60)."""
    with servers.start_https_untrusted_server(tls_files) as server:
        yield server


@pytest.fixture(scope="session")
def https_client_cert_server(tls_files: servers.TlsFiles) -> Iterator[servers.HttpsServer]:
    """HTTPS requiring a client certificate (.client_cert/.client_key); records its subject."""
    with servers.start_https_client_cert_server(tls_files) as server:
        yield server


@pytest.fixture(scope="session")
def h2c_server() -> Iterator[servers.HttpServer]:
    """The same endpoints over HTTP/2 with prior knowledge, cleartext (http_version "2")."""
    with servers.start_h2c_server() as server:
        yield server


@pytest.fixture(scope="session")
def proxy_server() -> Iterator[servers.ProxyServer]:
    """A forward HTTP proxy (absolute-form and CONNECT) to 127.0.0.1/localhost/::1 only;
    .requests holds what reached it (path = absolute URL, or host:port for CONNECT)."""
    with servers.start_proxy_server() as server:
        yield server


@pytest.fixture(scope="session")
def fault_server() -> Iterator[servers.FaultServer]:
    """Faults by path (/fault/silent, /fault/reset, ...; see tests/servers/fault.py) and
    .refused_url, a port that refuses connections."""
    with servers.start_fault_server() as server:
        yield server
