"""Fault injection: every misbehaving upstream, through every function family, gives the
script a return code — never an exception, a hung worker or a broken handle (issue 7).

For each fault and each family (direct query, named connection, named connection with a
failover that answers, named connection whose failover is dead too, and
http_client_request_v2pk) the test checks: the return code (spec 5.1: the HTTP status or the
curl code; the codes are those of the libcurl 8 that pycurl ships), the result variable ""
(spec 5.2), the connok/connfail counters (spec 7.2), the $curlerror(N) text, a log line, a
duration bounded by the timeout (timeout_mode 2, a few hundred ms) plus a margin, and that the
next call of the same family in this process works.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import socket
import sys
import time
from typing import Iterator

import pytest
import trustme

import kamhttp
from kamhttp import pv
from kamhttp.ops import counters
from tests import servers
from tests.servers.fault import FaultServer
from tests.servers.https import HttpsServer

TIMEOUT_MS = 300
MARGIN_S = 1.5
"""Slack on top of the promised bound (timeout per attempt) for a loaded CI machine."""
CAP = 1000
"""maxdatasize / query_maxdatasize for the 100 MB body."""

CURL_TEXT = {  # curl_easy_strerror() of the libcurl 8 bundled with pycurl
    1: "Unsupported protocol",
    35: "SSL connect error",
    7: "Could not connect to server",
    16: "Error in the HTTP2 framing layer",
    18: "Transferred a partial file",
    28: "Timeout was reached",
    47: "Number of redirects hit maximum amount",
    52: "Server returned nothing (no headers, no data)",
    55: "Failed sending data to the peer",
    56: "Failure when receiving data from the peer",
    60: "SSL peer certificate or SSH remote key was not OK",
}


# --- servers this file needs beyond tests/conftest.py -------------------------------------

class FixedFaultServer(FaultServer):
    """Applies one fault to every connection, whatever the client sent: what an HTTP/2
    prior-knowledge client (which sends no HTTP/1 request line) meets."""

    SLOW = {"slow-headers": {"interval": ["5"]}, "trickle": {"interval": ["5"]}}
    """Slow faults send their first bytes at once and the rest after the client's timeout,
    so that what the client has seen when it gives up does not depend on the machine."""

    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault = fault

    def handle(self, sock: socket.socket, client_port: int) -> None:
        sock.settimeout(5)
        try:
            sock.recv(65536)
        except OSError:
            return
        self.faults[self.fault](sock, self.SLOW.get(self.fault, {}))
        if self.fault != "reset":
            _close_gracefully(sock)


def _close_gracefully(sock: socket.socket) -> None:
    """FIN, then read what the client still sends until it closes: closing with unread data
    would send a RST, and the client would meet that instead of the fault."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(2)
        for _ in range(1000):              # bounded; ends at the client's close
            if not sock.recv(65536):
                return
    except OSError:
        return


@dataclasses.dataclass(frozen=True)
class TlsFaults:
    """HTTPS servers whose certificate is bad in one way each; `cacert` trusts the test CA
    and the CA of the expired certificate, so expiry is the only fault of that one."""

    cacert: str
    expired: HttpsServer
    self_signed: HttpsServer


def _self_signed_pem(directory: str) -> str:
    """A certificate for localhost/127.0.0.1 signed by its own key (no CA at all)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    path = os.path.join(directory, "self-signed.pem")
    with open(path, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def tls_faults(tls_files: servers.TlsFiles) -> Iterator[TlsFaults]:
    directory = tls_files.directory
    other_ca = trustme.CA()
    long_ago = datetime.datetime(2020, 1, 1)
    expired = other_ca.issue_cert("localhost", "127.0.0.1", not_before=long_ago,
                                  not_after=long_ago + datetime.timedelta(days=30))
    expired_pem = os.path.join(directory, "expired.pem")
    expired.private_key_and_cert_chain_pem.write_to_path(expired_pem)
    cacert = os.path.join(directory, "ca-and-expired-ca.pem")
    with open(tls_files.ca_file, "rb") as ca, open(cacert, "wb") as out:
        out.write(ca.read() + other_ca.cert_pem.bytes())
    self_signed_pem = _self_signed_pem(directory)
    with HttpsServer(tls_files, expired_pem, expired_pem).start() as expired_server, \
            HttpsServer(tls_files, self_signed_pem, self_signed_pem).start() as self_signed:
        yield TlsFaults(cacert, expired_server, self_signed)


V2PK_WIRE_FAULTS = {  # what an HTTP/2 prior-knowledge client gets from an HTTP/1 fault
    "silent": 28, "slow-headers": 28, "trickle": 28, "1xx": 28,  # no complete frame yet:
    #                                                 it waits until the timeout
    "reset": (16, 55, 56),                           # the RST may beat the HTTP/1 bytes
    "close": 16, "garbage": 16, "bad-chunked": 16,
    "huge-headers": 16, "wrong-length": 16,          # not HTTP/2: framing error at once
}


@pytest.fixture(scope="module")
def fixed_faults() -> Iterator[dict[str, FixedFaultServer]]:
    started: dict[str, FixedFaultServer] = {}
    try:
        for name in V2PK_WIRE_FAULTS:
            started[name] = FixedFaultServer(name).start()
        yield started
    finally:
        for server in started.values():
            server.stop()


# --- the fault table ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Fault:
    """How to meet one fault: a base URL and a path for HTTP/1.1 clients (the connection
    families use the base as the connection URL), a full URL for the v2pk family, and the
    codes each gives."""

    base: str
    path: str
    code: int | tuple[int, ...]
    v2pk_url: str
    v2pk_code: int | tuple[int, ...]
    body: bytes = b""
    """The result of a fault that is an answer (status 200..499)."""

    @property
    def url(self) -> str:
        return self.base + self.path


@pytest.fixture(scope="module")
def faults(fault_server, http_server, h2c_server, https_server, https_untrusted_server,
           https_client_cert_server, tls_faults, fixed_faults) -> dict[str, Fault]:
    f, h, h2 = fault_server.url, http_server.url, h2c_server.url
    refused = fault_server.refused_url
    tls_client_cert = (35, 55, 56)  # the server's "certificate required" alert is met by the
    #                                 handshake, a send or a receive, whichever comes first
    wire = {name: Fault(f, f"/fault/{name}", code, fixed_faults[name].url + "/x",
                        V2PK_WIRE_FAULTS[name])
            for name, code in (("silent", 28), ("reset", 56), ("close", 52), ("garbage", 1),
                               ("bad-chunked", 56), ("huge-headers", 56), ("1xx", 28),
                               ("wrong-length", 18))}
    return wire | {
        "refused": Fault(refused, "/x", 7, refused + "/x", 7),
        "slow-headers": Fault(f, "/fault/slow-headers?interval=0.1", 28,
                              fixed_faults["slow-headers"].url + "/x", 28),
        "trickle": Fault(f, "/fault/trickle?interval=0.1", 28,
                         fixed_faults["trickle"].url + "/x", 28),
        "slow-answer": Fault(h, "/slow?delay=5", 28, h2 + "/slow?delay=5", 28),
        "redirect-loop": Fault(h, "/loop", 47, h2 + "/loop", 47),
        "redirect-ftp": Fault(f, "/fault/redirect-ftp", 1,
                              h2 + "/redirect/302?to=ftp://127.0.0.1:"
                              f"{fault_server.refused_port}/x", 1),
        "redirect-file": Fault(f, "/fault/redirect-file", 1,
                               h2 + "/redirect/302?to=file:///etc/passwd", 1),
        "1xx": Fault(f, "/fault/1xx", 28, fixed_faults["1xx"].url + "/x", 28),
        "wrong-length": Fault(f, "/fault/wrong-length", 18, fixed_faults["close"].url + "/x",
                              16),
        "status-500": Fault(h, "/code/500?body=secret-error-page", 500,
                            h2 + "/code/500?body=secret-error-page", 500),
        "status-503": Fault(h, "/code/503?body=busy", 503, h2 + "/code/503?body=busy", 503),
        "tls-untrusted-ca": Fault(https_untrusted_server.url, "/code/200?body=x", 60,
                                  https_untrusted_server.url + "/code/200?body=x", 60),
        "tls-self-signed": Fault(tls_faults.self_signed.url, "/code/200?body=x", 60,
                                 tls_faults.self_signed.url + "/code/200?body=x", 60),
        "tls-expired": Fault(tls_faults.expired.url, "/code/200?body=x", 60,
                             tls_faults.expired.url + "/code/200?body=x", 60),
        "tls-wrong-host": Fault(https_server.wrong_host_url, "/code/200?body=x", 60,
                                https_server.wrong_host_url + "/code/200?body=x", 60),
        "tls-client-cert-missing": Fault(https_client_cert_server.url, "/code/200?body=x",
                                         tls_client_cert,
                                         https_client_cert_server.url + "/code/200?body=x",
                                         tls_client_cert),
    }


FAULTS = ["refused", "silent", "slow-headers", "trickle", "slow-answer", "reset", "close",
          "garbage", "bad-chunked", "huge-headers", "redirect-loop", "redirect-ftp",
          "redirect-file", "1xx", "wrong-length", "status-500", "status-503", "tls-untrusted-ca",
          "tls-self-signed", "tls-expired", "tls-wrong-host", "tls-client-cert-missing"]
FAMILIES = ["direct", "connection", "failover", "failover-dead", "v2pk"]


# --- helpers ---------------------------------------------------------------------------------

@pytest.fixture
def configured(tls_faults, http_server, fault_server, monkeypatch, caplog):
    """Timeouts of TIMEOUT_MS (timeout_mode 2), the test CAs trusted, logs captured in
    Python logging (no KSR module, so the bridge hands records to the root logger)."""
    monkeypatch.delitem(sys.modules, "KSR", raising=False)
    caplog.set_level(logging.DEBUG, logger="kamhttp")
    kamhttp.reset()
    pv.clear_fallback()
    kamhttp.modparam("timeout_mode", 2)
    kamhttp.modparam("connection_timeout", TIMEOUT_MS)
    kamhttp.modparam("cacert", tls_faults.cacert)
    kamhttp.modparam("httpcon", f"good=>{http_server.url}/code")
    kamhttp.modparam("httpcon", f"backup=>{http_server.url}/echo")
    kamhttp.modparam("httpcon", f"dead=>{fault_server.refused_url}")
    yield kamhttp.modparam
    kamhttp.reset()


def codes(expected: int | tuple[int, ...]) -> tuple[int, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def call(family: str, fault: Fault) -> tuple[int, float]:
    """One call of the family against the fault: (return code, seconds)."""
    start = time.monotonic()
    if family == "direct":
        rc = kamhttp.http_client_query(fault.url, "$var(r)")
    elif family in ("connection", "failover", "failover-dead"):
        rc = kamhttp.http_connect("f", fault.path, "$var(r)")
    else:
        rc = kamhttp.http_client_request_v2pk("GET", fault.v2pk_url, "", "", "$var(r)")
    return rc, time.monotonic() - start


def define_connection(modparam, family: str, fault: Fault) -> None:
    failover = {"failover": ";failover=backup", "failover-dead": ";failover=dead"}
    modparam("httpcon", f"f=>{fault.base}{failover.get(family, '')}")


def delta(before: dict[str, int]) -> tuple[int, int]:
    after = counters.totals()
    return after["connok"] - before["connok"], after["connfail"] - before["connfail"]


def assert_next_call_works(family: str, http_server, h2c_server) -> None:
    """The same family, same process, same handles: a healthy server answers 200."""
    pv.clear_fallback()
    if family == "direct":
        assert kamhttp.http_client_query(f"{http_server.url}/code/200?body=fine",
                                         "$var(n)") == 200
    elif family == "v2pk":
        assert kamhttp.http_client_request_v2pk("GET", f"{h2c_server.url}/code/200?body=fine",
                                                "", "", "$var(n)") == 200
    else:
        assert kamhttp.http_connect("good", "200?body=fine", "$var(n)") == 200
    assert pv.get("$var(n)") == "fine"


# --- the matrix --------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", FAULTS)
def test_fault(name, family, faults, configured, caplog, http_server, h2c_server):
    fault = faults[name]
    define_connection(configured, family, fault)
    before = counters.totals()
    pv.sets("$var(r)", "stale")

    rc, seconds = call(family, fault)

    expected = codes(fault.v2pk_code if family == "v2pk" else fault.code)
    if family == "failover-dead":
        expected = (7,)     # spec 6.6: the last attempt's code (the failover is refused)
    attempts = 2 if family.startswith("failover") else 1
    assert seconds < attempts * TIMEOUT_MS / 1000 + MARGIN_S
    if family == "failover":
        # spec 6.6: a curl error or a status >= 500 sends the same path to the failover
        assert rc == 200
        document = json.loads(pv.get("$var(r)"))
        assert document["path"] == "/echo" + fault.path.partition("?")[0]
        assert delta(before) == (1, 1)
        assert any("Trying failover to curl con (backup)" in r.getMessage()
                   for r in caplog.records)
    else:
        assert rc in expected
        assert pv.get("$var(r)") == ""                  # spec 5.2: nothing of a failure
        assert delta(before) == (0, attempts)           # spec 7.2: every attempt counted
        if rc < 100:
            assert pv.get(f"$curlerror({rc})") == CURL_TEXT[rc]
            logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert any(CURL_TEXT[rc] in r.getMessage() for r in logged), logged
        else:
            assert pv.get(f"$curlerror({rc})") == "HTTP result code"
    assert_next_call_works(family, http_server, h2c_server)


def test_failover_hop_is_bounded_to_one(configured, faults, http_server):
    """A failover whose own failover is dead too: two attempts, then the code (spec 6.6)."""
    configured("httpcon", f"second=>{faults['status-500'].base};failover=dead")
    configured("httpcon", f"first=>{faults['refused'].base};failover=second")
    before = counters.totals()
    rc = kamhttp.http_connect("first", "/code/500", "$var(r)")
    assert rc == 500
    assert pv.get("$var(r)") == ""
    assert delta(before) == (0, 2)


# --- the huge body: memory and time bounded by maxdatasize ----------------------------------

@pytest.mark.parametrize("family", ["direct", "connection", "v2pk"])
def test_huge_body_is_cut_at_the_cap(family, configured, fault_server, h2c_server):
    """100 MiB answered; the result holds exactly CAP bytes and the transfer stops there
    (interface: maxdatasize bounds memory) instead of downloading the rest."""
    configured("query_maxdatasize", CAP)
    configured("query_result", 0)
    configured("httpcon", f"huge=>{fault_server.url};maxdatasize={CAP}")
    before = counters.totals()
    start = time.monotonic()
    if family == "direct":
        rc = kamhttp.http_client_query(f"{fault_server.url}/fault/huge?mb=100", "$var(r)")
    elif family == "connection":
        rc = kamhttp.http_connect("huge", "/fault/huge?mb=100", "$var(r)")
    else:
        rc = kamhttp.http_client_request_v2pk("GET", f"{h2c_server.url}/bytes?n={100 << 20}",
                                              "", "", "$var(r)")
    assert time.monotonic() - start < TIMEOUT_MS / 1000 + MARGIN_S
    assert rc == 200
    assert pv.get("$var(r)") == servers.bytes_body(CAP).decode()
    assert delta(before) == (1, 0)


# --- a worker keeps working after a long series of mixed faults ------------------------------

def test_many_faults_in_a_row_leave_no_open_sockets(configured, faults, http_server,
                                                     fault_server, https_untrusted_server):
    """Faults must not leak sockets: after ~200 mixed failing calls this process holds no
    more client sockets to the servers than before (keep_connections 0: nothing is kept)."""
    names = ["refused", "reset", "close", "garbage", "bad-chunked", "wrong-length",
             "redirect-ftp", "status-500", "tls-untrusted-ca"]
    for name in names:
        configured("httpcon", f"c_{name.replace('-', '_')}=>{faults[name].base}")
    ports = {fault_server.port, http_server.port, https_untrusted_server.port}
    assert kamhttp.http_client_query(f"{http_server.url}/code/200?body=warm", "$var(r)") == 200
    start = client_sockets(ports)
    for _ in range(200 // (2 * len(names)) + 1):
        for name in names:
            rc = kamhttp.http_connect(f"c_{name.replace('-', '_')}", faults[name].path,
                                      "$var(r)")
            assert rc in codes(faults[name].code)
            rc = kamhttp.http_client_query(faults[name].url, "$var(r)")
            assert rc in codes(faults[name].code)
    assert client_sockets(ports) <= start
    assert kamhttp.http_client_query(f"{http_server.url}/code/200?body=ok", "$var(r)") == 200
    assert pv.get("$var(r)") == "ok"


def client_sockets(remote_ports: set[int]) -> int:
    """Open TCP sockets of this process connected to one of `remote_ports` (the client ends;
    the in-process servers' own ends have those as their local port)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if fields[9] in inodes and remote_port in remote_ports:
                    count += 1
    return count


@pytest.mark.parametrize("kind", ["http", "https", "h2c"])
def test_keep_connections_0_leaves_no_connection_open(kind, configured, http_server,
                                                      https_server, h2c_server):
    """keep_connections 0 "closes connections after request" (documentation 3.16): after 50
    requests this process holds no connection to the server (libcurl >= 8.9 parks a closed
    TLS or HTTP/2 connection on a shutdown list until its handle is driven again)."""
    configured("keep_connections", 0)
    server = {"http": http_server, "https": https_server, "h2c": h2c_server}[kind]
    configured("httpcon", f"c=>{server.url}")
    for _ in range(50):
        if kind == "h2c":
            rc = kamhttp.http_client_request_v2pk("GET", f"{server.url}/code/200?body=x", "",
                                                  "", "$var(r)")
        else:
            rc = kamhttp.http_connect("c", "/code/200?body=x", "$var(r)")
        assert rc == 200
    assert client_sockets({server.port}) <= 1
