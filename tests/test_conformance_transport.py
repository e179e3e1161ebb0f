"""What reaches the wire from the transport, checked at real servers (issue 11, points 2, 4,
5, 6): the User-Agent of every function, one connection per request with
keep_connections=0, a kept connection surviving a maxdatasize cap, and curl 58 for half a
client certificate."""
from __future__ import annotations

import logging
import textwrap
from dataclasses import dataclass
from typing import Callable

import pycurl
import pytest

import kamhttp
from kamhttp import pv
from kamhttp.config.params import DEFAULT_USERAGENT
from kamhttp.core import state
from kamhttp.core.transport import DRAIN_LIMIT
from tests.servers import PASSWORD, USER, bytes_body


@pytest.fixture
def modparam():
    """A fresh configuration and fresh handles (no connection left from another test)."""
    kamhttp.reset()
    state.reset()
    yield kamhttp.modparam
    kamhttp.reset()
    state.reset()


def user_agents(server) -> list[str]:
    return server.requests[-1].header_values("User-Agent")


# --- (2) User-Agent: "" sends none, from every function ---------------------------------------

@dataclass(frozen=True)
class Function:
    name: str
    call: Callable[[str], int]          # the server's URL -> return code
    h2: bool = False                    # needs the h2c server


K = kamhttp.http_client
FUNCTIONS = [
    Function("http_connect", lambda url: kamhttp.http_connect("api", "/echo", "$var(r)")),
    Function("http_connect_post", lambda url: kamhttp.http_connect(
        "api", "/echo", "text/plain", "d", "$var(r)")),
    Function("http_connect_raw", lambda url: kamhttp.http_connect_raw(
        "api", "/echo", "text/plain", "d", "$var(r)")),
    Function("kemi_curl_connect", lambda url: K.curl_connect("api", "/echo", "$var(r)")),
    Function("kemi_curl_connect_post", lambda url: K.curl_connect_post(
        "api", "/echo", "text/plain", "d", "$var(r)")),
    Function("request_connection", lambda url: kamhttp.request(
        "GET", "/echo", connection="api").code),
    Function("http_client_query", lambda url: kamhttp.http_client_query(
        f"{url}/echo", "$var(r)")),
    Function("http_client_query_post", lambda url: kamhttp.http_client_query(
        f"{url}/echo", "a=1", "X-A: 1", "$var(r)")),
    Function("http_client_get", lambda url: kamhttp.http_client_get(
        f"{url}/echo", "", "", "$var(r)")),
    Function("http_client_request", lambda url: kamhttp.http_client_request(
        "PUT", f"{url}/echo", "b", "", "$var(r)")),
    Function("kemi_query", lambda url: K.query(f"{url}/echo", "$var(r)")),
    Function("kemi_query_post", lambda url: K.query_post(f"{url}/echo", "a=1", "$var(r)")),
    Function("kemi_query_post_hdrs", lambda url: K.query_post_hdrs(
        f"{url}/echo", "a=1", "X-A: 1", "$var(r)")),
    Function("kemi_get_hdrs", lambda url: K.get_hdrs(f"{url}/echo", "", "X-A: 1", "$var(r)")),
    Function("kemi_query_request", lambda url: K.query_request(
        "DELETE", f"{url}/echo", "", "", "$var(r)")),
    Function("request_direct", lambda url: kamhttp.request("GET", f"{url}/echo").code),
    Function("http_client_request_v2pk", lambda url: kamhttp.http_client_request_v2pk(
        "GET", f"{url}/echo", "", "", "$var(r)"), h2=True),
    Function("kemi_query_request_v2pk", lambda url: K.query_request_v2pk(
        "GET", f"{url}/echo", "", "", "$var(r)"), h2=True),
]


@pytest.mark.parametrize("useragent, sent", [("", []), ("custom agent/1.0", ["custom agent/1.0"]),
                                             (None, [DEFAULT_USERAGENT])],
                         ids=["empty", "custom", "default"])
@pytest.mark.parametrize("function", FUNCTIONS, ids=[f.name for f in FUNCTIONS])
def test_useragent_of_every_function(modparam, http_server, h2c_server, function, useragent,
                                     sent):
    """"" sends no User-Agent at all (C: spec 2.2 notes); never pycurl's own string, which
    pycurl sets on every new and every reset handle."""
    server = h2c_server if function.h2 else http_server
    if useragent is not None:
        modparam("useragent", useragent)
    modparam("httpcon", f"api=>{server.url}")
    assert function.call(server.url) == 200
    assert user_agents(server) == sent
    if function.h2:
        assert server.requests[-1].http_version == "2"


def test_config_file_null_useragent_takes_the_modparam(modparam, http_server, tmp_path):
    """config_file `useragent = ""` sets the key to null [B6]: the useragent modparam
    applies, as for a key not given; an empty modparam then sends none."""
    path = tmp_path / "http.cfg"
    path.write_text(textwrap.dedent(f"""\
        [quiet]
        url = {http_server.url}
        useragent = ""
        [own]
        url = {http_server.url}
        useragent = mine
        """))
    for useragent, sent in ((None, [DEFAULT_USERAGENT]), ("modparam/2", ["modparam/2"]),
                            ("", [])):
        kamhttp.reset()
        if useragent is not None:
            modparam("useragent", useragent)
        modparam("config_file", str(path))
        assert kamhttp.http_connect("quiet", "/echo", "$var(r)") == 200
        assert user_agents(http_server) == sent
        assert kamhttp.http_connect("own", "/echo", "$var(r)") == 200
        assert user_agents(http_server) == ["mine"]


def test_yaml_null_useragent_takes_the_modparam(modparam, http_server, tmp_path):
    path = tmp_path / "http.yaml"
    path.write_text(textwrap.dedent(f"""\
        modparams:
          - useragent: from-yaml
        connections:
          quiet: {{url: "{http_server.url}", useragent: null}}
        """))
    kamhttp.load_config(path)
    assert kamhttp.http_connect("quiet", "/echo", "$var(r)") == 200
    assert user_agents(http_server) == ["from-yaml"]


def test_empty_useragent_through_a_proxy(modparam, http_server, https_server, proxy_server):
    """Neither the CONNECT to the proxy nor the requests through it carry a User-Agent."""
    modparam("useragent", "")
    modparam("cacert", https_server.ca_file)
    modparam("httpproxy", proxy_server.url)
    modparam("httpproxyport", proxy_server.port)
    modparam("httpcon", f"tunnelled=>{https_server.url}")
    proxy_server.clear()
    assert kamhttp.http_client_query(f"{https_server.url}/echo", "$var(r)") == 200
    assert kamhttp.http_connect("tunnelled", "/echo", "$var(r)") == 200
    assert kamhttp.http_client_query(f"{http_server.url}/echo", "$var(r)") == 200
    assert [r.method for r in proxy_server.requests] == ["CONNECT", "CONNECT", "GET"]
    assert [r.header_values("User-Agent") for r in proxy_server.requests] == [[], [], []]
    assert user_agents(https_server) == [] and user_agents(http_server) == []


def test_a_header_from_the_script_still_sets_the_user_agent(modparam, http_server):
    modparam("useragent", "")
    assert kamhttp.http_client_query(f"{http_server.url}/echo", "", "User-Agent: script",
                                     "$var(r)") == 200
    assert user_agents(http_server) == ["script"]


# --- (4) keep_connections=0: one connection per request, shared by its hops -----------------

def client_state(client_port: int, server_port: int) -> str | None:
    """The TCP state of this process's side of the connection from ``client_port``."""
    names = {"01": "ESTABLISHED", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
             "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0B": "CLOSING"}
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            local, remote, st = line.split()[1:4]
            if int(local.split(":")[1], 16) == client_port \
                    and int(remote.split(":")[1], 16) == server_port:
                return names.get(st, st)
    return None


def one_connection_per_request(server, call: Callable[[], int], hops: int) -> None:
    """Two calls: each takes ``hops`` requests on one new connection, closed when it returns."""
    ports = []
    for _ in range(2):
        accepted, seen = server.accepted, len(server.requests)
        assert call() == 200
        assert server.accepted - accepted == 1
        assert len(server.requests) - seen == hops
        hop_ports = {r.client_port for r in server.requests[seen:]}
        assert len(hop_ports) == 1
        port = hop_ports.pop()
        assert client_state(port, server.port) != "ESTABLISHED"
        ports.append(port)
    assert ports[0] != ports[1]


@pytest.mark.parametrize("family", ["connection", "direct"])
def test_a_redirect_to_the_same_server_takes_one_connection(modparam, http_server, family):
    modparam("httpcon", f"api=>{http_server.url}")
    path = "/redirect/302?to=/code/200"
    call = (lambda: kamhttp.http_connect("api", path, "$var(r)")) if family == "connection" \
        else (lambda: kamhttp.http_client_query(f"{http_server.url}{path}", "$var(r)"))
    one_connection_per_request(http_server, call, hops=2)


def test_auth_negotiation_takes_one_connection(modparam, http_server):
    """authmethod 3 (Basic|Digest) first asks without credentials: the 401 and the answer
    share one connection; the next request sends what it learnt, on a new one."""
    modparam("httpcon", f"auth=>http://{USER}:{PASSWORD}@{http_server.url[7:]}")
    accepted, seen = http_server.accepted, len(http_server.requests)
    assert kamhttp.http_connect("auth", "/auth/digest", "$var(r)") == 200
    assert http_server.accepted - accepted == 1
    first = http_server.requests[seen:]
    assert [r.header("Authorization") is None for r in first] == [True, False]
    assert first[0].client_port == first[1].client_port
    assert client_state(first[0].client_port, http_server.port) != "ESTABLISHED"
    one_connection_per_request(
        http_server, lambda: kamhttp.http_connect("auth", "/redirect/302?to=/auth/digest",
                                                  "$var(r)"), hops=2)


def test_tls_redirect_takes_one_connection(modparam, https_server):
    modparam("cacert", https_server.ca_file)
    modparam("httpcon", f"tls=>{https_server.url}")
    one_connection_per_request(
        https_server, lambda: kamhttp.http_connect("tls", "/redirect/307?to=/code/200",
                                                   "$var(r)"), hops=2)
    assert kamhttp.http_client_query(f"{https_server.url}/redirect/302?to=/code/200",
                                     "$var(r)") == 200


def test_http2_prior_knowledge_takes_one_connection(modparam, h2c_server):
    one_connection_per_request(
        h2c_server, lambda: kamhttp.http_client_request_v2pk(
            "GET", f"{h2c_server.url}/redirect/302?to=/code/200", "", "", "$var(r)"), hops=2)


def test_kept_connections_stay_open(modparam, http_server):
    modparam("keep_connections", 1)
    modparam("httpcon", f"api=>{http_server.url}")
    accepted = http_server.accepted
    for _ in range(2):
        assert kamhttp.http_connect("api", "/redirect/302?to=/code/200", "$var(r)") == 200
    assert http_server.accepted - accepted == 1
    port = http_server.requests[-1].client_port
    assert client_state(port, http_server.port) == "ESTABLISHED"


# --- (5) maxdatasize on a kept connection -----------------------------------------------------

CAP = 100


def capped(modparam, server, family: str) -> Callable[[str], int]:
    """A kept connection (or the direct functions) capped at CAP bytes: path -> return code."""
    modparam("keep_connections", 1)
    modparam("query_result", 0)
    modparam("query_maxdatasize", CAP)
    modparam("maxdatasize", CAP)
    modparam("httpcon", f"api=>{server.url}")
    if family == "connection":
        return lambda path: kamhttp.http_connect("api", path, "$var(r)")
    return lambda path: kamhttp.http_client_query(f"{server.url}{path}", "$var(r)")


def survives(server, call: Callable[[str], int], path: str) -> bool:
    """Whether the kept connection is still the one in use after a capped call of ``path``
    (whose result is cut at exactly CAP bytes)."""
    assert call("/code/200") == 200                     # the connection, open
    accepted = server.accepted
    assert call(path) == 200
    assert pv.get("$var(r)") == bytes_body(CAP).decode()
    assert call("/code/200") == 200
    return server.accepted == accepted


@pytest.mark.parametrize("family", ["connection", "direct"])
def test_two_capped_calls_use_one_connection(modparam, http_server, family):
    call = capped(modparam, http_server, family)
    accepted = http_server.accepted
    for _ in range(2):
        assert call("/bytes?n=5000") == 200
        assert pv.get("$var(r)") == bytes_body(CAP).decode()
    assert http_server.accepted - accepted == 1


@pytest.mark.parametrize("family", ["connection", "direct"])
@pytest.mark.parametrize("n", [CAP + 1, 5000, CAP + DRAIN_LIMIT])
def test_a_short_rest_is_dropped_and_the_connection_kept(modparam, http_server, family, n):
    """A rest of announced length up to DRAIN_LIMIT past the cap is read and dropped."""
    assert survives(http_server, capped(modparam, http_server, family), f"/bytes?n={n}")


@pytest.mark.parametrize("path", [f"/bytes?n={CAP + DRAIN_LIMIT + 1}", "/bytes?n=20000000",
                                  "/bytes?n=5000&chunked=1"])
def test_a_long_or_unbounded_rest_stops_the_transfer(modparam, http_server, path):
    """Stopping closes the kept connection: the next call needs a new one."""
    assert not survives(http_server, capped(modparam, http_server, "connection"), path)


def test_a_stopped_transfer_reads_little_of_a_huge_body(modparam, http_server):
    call = capped(modparam, http_server, "connection")
    assert call("/bytes?n=20000000") == 200
    handle = state.process_state().last
    assert handle is not None
    assert handle.curl.getinfo(pycurl.SIZE_DOWNLOAD_T) < 2_000_000
    assert kamhttp.request("GET", "/bytes?n=20000000", connection="api").truncated


def test_the_rest_after_a_redirect_is_measured_on_the_final_response(modparam, http_server):
    call = capped(modparam, http_server, "connection")
    assert survives(http_server, call, "/redirect/302?to=/bytes%3Fn%3D5000")
    assert not survives(http_server, call, "/redirect/302?to=/bytes%3Fn%3D500000")


@pytest.mark.parametrize("keep", [0, 1])
def test_header_capture_on_a_capped_handle(modparam, http_server, keep):
    modparam("keep_connections", keep)
    modparam("maxdatasize", 4)
    modparam("response_headers", 1)
    modparam("httpcon", f"api=>{http_server.url}")
    assert kamhttp.http_connect("api", "/code/200?body=0123456789&hdr=X-Cap:%20on",
                                "$var(r)") == 200
    assert (pv.get("$var(r)"), pv.get("$httprhdr(X-Cap)")) == ("0123", "on")
    result = kamhttp.request("GET", "/code/200?body=abcdef&hdr=X-Cap:%20again",
                             connection="api")
    assert (result.body, result.header("X-Cap"), result.truncated) == (b"abcd", "again", True)


# --- (6) half a client certificate: curl 58, nothing sent -------------------------------------

def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("cert, key, empty", [("cert", "", "client_key"),
                                              ("", "key", "client_cert")])
def test_half_a_client_certificate_is_curl_58(modparam, https_server, caplog, cert, key,
                                              empty):
    files = https_server.tls_files
    modparam("cacert", https_server.ca_file)
    modparam("client_cert", files.client_cert if cert else "")
    modparam("client_key", files.client_key if key else "")
    modparam("httpcon", f"half=>{https_server.url}")
    accepted, seen = https_server.accepted, len(https_server.requests)
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        for _ in range(2):
            assert kamhttp.http_connect("half", "/echo", "$var(r)") == 58
            assert pv.get("$curlerror(58)") == "Problem with the local SSL certificate"
    assert (https_server.accepted, len(https_server.requests)) == (accepted, seen)
    named = [line for line in error_lines(caplog)
             if "client_cert" in line and "client_key" in line]
    assert len(named) == 2 and all(f"{empty} is empty" in line for line in named)


def test_half_a_client_certificate_over_plain_http_is_ignored(modparam, http_server,
                                                              https_server):
    """libcurl uses the certificate options only for TLS (C: 58 only on https)."""
    modparam("client_cert", https_server.tls_files.client_cert)
    modparam("client_key", "")
    modparam("httpcon", f"plain=>{http_server.url}")
    assert kamhttp.http_connect("plain", "/code/200", "$var(r)") == 200


def test_direct_functions_ignore_an_empty_certificate_key(modparam, https_server):
    """The direct-URL functions take client_cert/client_key only when not empty (C: len > 0),
    so half a certificate is no certificate there."""
    modparam("cacert", https_server.ca_file)
    modparam("client_cert", https_server.tls_files.client_cert)
    modparam("client_key", "")
    https_server.clear()
    assert kamhttp.http_client_query(f"{https_server.url}/code/200", "$var(r)") == 200
    assert https_server.requests[-1].client_cert_subject is None


def test_the_whole_certificate_still_works(modparam, https_client_cert_server):
    server = https_client_cert_server
    modparam("cacert", server.ca_file)
    modparam("client_cert", server.client_cert)
    modparam("client_key", server.client_key)
    modparam("httpcon", f"whole=>{server.url}")
    assert kamhttp.http_connect("whole", "/echo", "$var(r)") == 200
    assert server.requests[-1].client_cert_subject == server.tls_files.client_subject
