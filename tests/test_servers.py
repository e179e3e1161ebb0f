"""The test servers answer as promised (tests/servers): every other test relies on them."""
from __future__ import annotations

import dataclasses
import io
import json
import pathlib
import subprocess
import sys

import pycurl
import pytest

from tests import servers
from tests.servers import MAX_DELAY, bytes_body


@dataclasses.dataclass
class Fetched:
    status: int
    body: bytes
    headers: list[tuple[str, str]]
    http_version: int
    local_port: int


def fetch(url: str, curl: pycurl.Curl | None = None, **options: object) -> Fetched:
    """One transfer with pycurl; options by pycurl constant name, e.g. POSTFIELDS="x"."""
    handle = curl or pycurl.Curl()
    body, headers = io.BytesIO(), []

    def on_header(line: bytes) -> None:
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            headers.append((name, value.strip()))

    handle.setopt(pycurl.URL, url)
    handle.setopt(pycurl.WRITEDATA, body)
    handle.setopt(pycurl.HEADERFUNCTION, on_header)
    handle.setopt(pycurl.TIMEOUT, 10)
    for name, value in options.items():
        handle.setopt(getattr(pycurl, name), value)
    handle.perform()
    return Fetched(handle.getinfo(pycurl.RESPONSE_CODE), body.getvalue(), headers,
                   handle.getinfo(pycurl.INFO_HTTP_VERSION), handle.getinfo(pycurl.LOCAL_PORT))


def curl_error(url: str, **options: object) -> int:
    """The curl error code a transfer ends with (fails the test if it succeeds)."""
    with pytest.raises(pycurl.error) as caught:
        fetch(url, **options)
    return caught.value.args[0]


# --- plain HTTP -----------------------------------------------------------------------------

def test_code_sets_status_body_content_type_and_ordered_repeated_headers(http_server):
    got = fetch(http_server.url + "/code/418?body=short%20and%20stout&ctype=text/x-tea"
                "&hdr=X-Twice:%20one&hdr=X-Other:%202&hdr=X-Twice:%20three")
    assert got.status == 418
    assert got.body == b"short and stout"
    assert ("Content-Type", "text/x-tea") in got.headers
    custom = [pair for pair in got.headers if pair[0].startswith("X-")]
    assert custom == [("X-Twice", "one"), ("X-Other", "2"), ("X-Twice", "three")]


def test_code_without_body_is_empty(http_server):
    got = fetch(http_server.url + "/code/404")
    assert (got.status, got.body) == (404, b"")


def test_bad_parameter_is_400_naming_it(http_server):
    got = fetch(http_server.url + "/bytes?n=lots")
    assert got.status == 400
    assert b"n='lots'" in got.body


def test_echo_reports_the_request_in_wire_order_and_it_is_recorded(http_server):
    http_server.clear()
    got = fetch(http_server.url + "/echo/sub?a=1&b=2", POSTFIELDS="k=v\xe9".encode("latin-1"),
                HTTPHEADER=["X-First: 1", "X-Second: 2", "X-First: 3"])
    echoed = json.loads(got.body)
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/echo/sub"
    assert echoed["query"] == "a=1&b=2"
    assert echoed["body"] == "k=v\xe9"
    assert echoed["http_version"] == "1.1"
    assert echoed["client_port"] == got.local_port
    names = [name for name, _ in echoed["headers"]]
    assert names.index("X-First") < names.index("X-Second")
    assert [v for n, v in echoed["headers"] if n == "X-First"] == ["1", "3"]
    [recorded] = http_server.requests
    assert (recorded.method, recorded.path) == ("POST", "/echo/sub?a=1&b=2")
    assert recorded.body == "k=v\xe9".encode("latin-1")
    assert recorded.header("x-second") == "2"
    assert recorded.client_port == got.local_port


def test_keep_alive_reuses_one_connection_and_fresh_connects_do_not(http_server):
    http_server.clear()
    curl = pycurl.Curl()
    for _ in range(5):
        assert fetch(http_server.url + "/code/200", curl).status == 200
    curl.setopt(pycurl.FRESH_CONNECT, 1)
    curl.setopt(pycurl.FORBID_REUSE, 1)
    for _ in range(3):
        assert fetch(http_server.url + "/code/200", curl).status == 200
    ports = [request.client_port for request in http_server.requests]
    assert len(set(ports[:5])) == 1
    assert len(set(ports[5:])) == 3 and ports[0] not in ports[5:]


def test_redirect_sends_location_and_loop_loops(http_server):
    got = fetch(http_server.url + "/redirect/307?to=/code/200%3Fbody%3Dthere")
    assert got.status == 307
    assert ("Location", "/code/200?body=there") in got.headers
    assert fetch(http_server.url + "/redirect/302?to=/code/200%3Fbody%3Dthere",
                 FOLLOWLOCATION=1).body == b"there"
    assert curl_error(http_server.url + "/loop", FOLLOWLOCATION=1, MAXREDIRS=5) == 47


def test_slow_waits_then_answers_and_times_out_a_short_timeout(http_server):
    assert fetch(http_server.url + "/slow?delay=0.2&body=late").body == b"late"
    assert curl_error(http_server.url + "/slow?delay=5", TIMEOUT_MS=200) == 28
    assert fetch(http_server.url + f"/slow?delay={MAX_DELAY + 1}").status == 400


@pytest.mark.parametrize("query", ["n=100000", "n=100000&chunked=1&chunk=777",
                                   "n=5000&line=hello&eol=crlf", "n=0"])
def test_bytes_sends_exactly_the_pattern(http_server, query):
    got = fetch(http_server.url + "/bytes?" + query)
    params = dict(part.split("=") for part in query.split("&"))
    assert got.body == bytes_body(int(params["n"]), params.get("line"), params.get("eol", "lf"))
    names = {name.lower() for name, _ in got.headers}
    assert ("transfer-encoding" in names) == ("chunked=1" in query)
    assert ("content-length" in names) == ("chunked=1" not in query)


def test_bytes_line_repeats_the_line():
    assert bytes_body(14, "ab", "crlf") == b"ab\r\nab\r\nab\r\nab"


@pytest.mark.parametrize("scheme, method", [("basic", pycurl.HTTPAUTH_BASIC),
                                            ("digest", pycurl.HTTPAUTH_DIGEST),
                                            ("any", pycurl.HTTPAUTH_ANY)])
def test_auth_accepts_right_and_refuses_wrong_credentials(http_server, scheme, method):
    url = f"{http_server.url}/auth/{scheme}"
    assert fetch(url).status == 401
    good = fetch(url, HTTPAUTH=method, USERPWD="alice:s3cret")
    assert (good.status, good.body) == (200, b"authenticated alice")
    assert fetch(url, HTTPAUTH=method, USERPWD="alice:wrong").status == 401
    assert fetch(url, HTTPAUTH=method, USERPWD="mallory:s3cret").status == 401


def test_auth_challenges(http_server):
    challenges = [value for name, value in fetch(http_server.url + "/auth/any").headers
                  if name == "WWW-Authenticate"]
    assert challenges[0].startswith('Digest realm="kamhttp", qop="auth"')
    assert challenges[1] == 'Basic realm="kamhttp"'


def test_digest_really_is_digest_and_any_prefers_it(http_server):
    http_server.clear()
    fetch(http_server.url + "/auth/any?user=bob&password=p%40ss", HTTPAUTH=pycurl.HTTPAUTH_ANY,
          USERPWD="bob:p@ss")
    authorization = http_server.requests[-1].header("Authorization")
    assert authorization.startswith("Digest ") and 'username="bob"' in authorization


def test_close_closes_without_reply(http_server):
    assert curl_error(http_server.url + "/close") == 52


def test_unknown_path_is_404(http_server):
    assert fetch(http_server.url + "/nowhere").status == 404


def test_connection_close_header_from_code_closes_the_connection(http_server):
    http_server.clear()
    curl = pycurl.Curl()
    for _ in range(2):
        got = fetch(http_server.url + "/code/200?hdr=Connection:%20close", curl)
        assert [v for n, v in got.headers if n == "Connection"] == ["close"]
    assert len({request.client_port for request in http_server.requests}) == 2

def test_http10_closes_after_each_answer(http_server):
    http_server.clear()
    curl = pycurl.Curl()
    for _ in range(2):
        got = fetch(http_server.url + "/echo", curl, HTTP_VERSION=pycurl.CURL_HTTP_VERSION_1_0)
        assert json.loads(got.body)["http_version"] == "1.0"
        assert ("Connection", "close") in got.headers
    assert len({request.client_port for request in http_server.requests}) == 2


def test_request_bodies_chunked_and_with_expect_continue(http_server):
    http_server.clear()
    curl = pycurl.Curl()
    curl.setopt(pycurl.UPLOAD, 1)
    curl.setopt(pycurl.READFUNCTION, io.BytesIO(b"chunky" * 1000).read)
    got = fetch(http_server.url + "/echo", curl, CUSTOMREQUEST="POST")
    assert json.loads(got.body)["body"] == "chunky" * 1000
    assert http_server.requests[-1].header("Transfer-Encoding") == "chunked"
    big = b"x" * 3_000_000
    got = fetch(http_server.url + "/echo", POSTFIELDS=big)
    assert http_server.requests[-1].header("Expect") == "100-continue"
    assert http_server.requests[-1].body == big


def test_ipv6_loopback():
    try:
        server = servers.start_http_server("::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with server:
        assert server.url == f"http://[::1]:{server.port}"
        assert fetch(server.url + "/code/200?body=six").body == b"six"


def test_servers_run_outside_pytest(tmp_path):
    root = pathlib.Path(__file__).resolve().parent.parent
    process = subprocess.Popen([sys.executable, "-m", "tests.servers", "--tls-dir", str(tmp_path)],
                               cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in process.stdout:  # one JSON document, ends with a lone "}"
            lines.append(line)
            if line == "}\n":
                break
        started = json.loads("".join(lines))
        assert fetch(started["urls"]["http"] + "/code/200?body=cli").body == b"cli"
        assert fetch(started["urls"]["https"] + "/code/200?body=tls",
                     CAINFO=started["tls_files"]["ca_file"]).body == b"tls"
        process.stdin.close()
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# --- HTTPS ----------------------------------------------------------------------------------

def test_https_verifies_with_the_test_ca(https_server, tls_files):
    assert https_server.url.startswith("https://localhost:")
    assert https_server.ca_file == tls_files.ca_file
    got = fetch(https_server.url + "/code/200?body=secure", CAINFO=https_server.ca_file)
    assert (got.status, got.body) == (200, b"secure")
    got = fetch(f"https://127.0.0.1:{https_server.port}/code/204", CAINFO=https_server.ca_file)
    assert got.status == 204


def test_https_is_unverifiable_without_the_test_ca(https_server, tls_files):
    assert curl_error(https_server.url + "/", CAINFO=tls_files.untrusted_ca_file) == 60


def test_https_wrong_host_fails_host_verification_only(https_server):
    assert curl_error(https_server.wrong_host_url + "/", CAINFO=https_server.ca_file) == 60
    got = fetch(https_server.wrong_host_url + "/code/200", CAINFO=https_server.ca_file,
                SSL_VERIFYHOST=0)
    assert got.status == 200


def test_https_untrusted_server_fails_verification(https_untrusted_server, tls_files):
    assert curl_error(https_untrusted_server.url + "/", CAINFO=tls_files.ca_file) == 60
    got = fetch(https_untrusted_server.url + "/code/200", CAINFO=tls_files.untrusted_ca_file)
    assert got.status == 200


def test_https_keep_alive(https_server):
    https_server.clear()
    curl = pycurl.Curl()
    for _ in range(3):
        fetch(https_server.url + "/code/200", curl, CAINFO=https_server.ca_file)
    assert len({request.client_port for request in https_server.requests}) == 1


def test_client_cert_server_records_the_subject(https_client_cert_server, tls_files):
    server = https_client_cert_server
    server.clear()
    got = fetch(server.url + "/echo", CAINFO=server.ca_file, SSLCERT=server.client_cert,
                SSLKEY=server.client_key)
    assert got.status == 200
    assert server.requests[-1].client_cert_subject == tls_files.client_subject
    assert tls_files.client_subject.startswith("CN=kamhttp test client,")
    got = fetch(server.url + "/code/200", CAINFO=server.ca_file,
                SSLCERT=tls_files.client_combined)
    assert got.status == 200


def test_client_cert_server_refuses_a_client_without_certificate(https_client_cert_server):
    server = https_client_cert_server
    server.clear()
    # TLS 1.3 reports the refusal after the handshake: curl sees it as 35, 55 or 56
    assert curl_error(server.url + "/", CAINFO=server.ca_file) in (35, 55, 56)
    assert server.wait_for(lambda: server.errors)
    assert "did not return a certificate" in server.errors[-1]
    assert server.requests == []


# --- HTTP/2 ---------------------------------------------------------------------------------

def test_h2c_prior_knowledge_serves_the_app_over_http2(h2c_server):
    h2c_server.clear()
    curl = pycurl.Curl()
    got = fetch(h2c_server.url + "/echo?x=1", curl, POSTFIELDS="hello",
                HTTP_VERSION=pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
                HTTPHEADER=["X-Custom: yes"])
    assert got.http_version == pycurl.CURL_HTTP_VERSION_2_0
    echoed = json.loads(got.body)
    assert (echoed["method"], echoed["query"], echoed["body"]) == ("POST", "x=1", "hello")
    assert echoed["http_version"] == "2"
    assert ["x-custom", "yes"] in echoed["headers"]
    big = fetch(h2c_server.url + "/bytes?n=3000000", curl,
                HTTP_VERSION=pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, HTTPGET=1)
    assert big.body == bytes_body(3000000)
    code = fetch(h2c_server.url + "/code/503?hdr=X-Why:%20busy", curl,
                 HTTP_VERSION=pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
    assert code.status == 503 and ("x-why", "busy") in code.headers
    assert [request.http_version for request in h2c_server.requests] == ["2", "2", "2"]
    assert len({request.client_port for request in h2c_server.requests}) == 1


def test_h2c_server_still_answers_http1(h2c_server):
    got = fetch(h2c_server.url + "/code/200?body=old")
    assert (got.http_version, got.body) == (pycurl.CURL_HTTP_VERSION_1_1, b"old")


def test_https_h2_by_alpn(tls_files):
    with servers.start_https_server(tls_files, h2=True) as server:
        got = fetch(server.url + "/code/200?body=alpn", CAINFO=tls_files.ca_file)
        assert (got.http_version, got.body) == (pycurl.CURL_HTTP_VERSION_2_0, b"alpn")
        assert server.requests[-1].http_version == "2"


# --- proxy ----------------------------------------------------------------------------------

def test_proxy_forwards_absolute_form_and_keeps_the_client_connection(proxy_server, http_server):
    proxy_server.clear()
    http_server.clear()
    curl = pycurl.Curl()
    first = fetch(http_server.url + "/echo?via=proxy", curl, PROXY=proxy_server.url,
                  POSTFIELDS="payload", HTTPHEADER=["X-A: 1", "X-B: 2"])
    second = fetch(http_server.url + "/bytes?n=70000&chunked=1", curl, PROXY=proxy_server.url,
                   HTTPGET=1)
    echoed = json.loads(first.body)
    assert (echoed["method"], echoed["query"], echoed["body"]) == ("POST", "via=proxy", "payload")
    names = [name for name, _ in echoed["headers"]]
    assert names.index("X-A") < names.index("X-B")
    assert second.body == bytes_body(70000)
    assert [(r.method, r.path) for r in proxy_server.requests] == [
        ("POST", http_server.url + "/echo?via=proxy"),
        ("GET", http_server.url + "/bytes?n=70000&chunked=1")]
    assert first.local_port == second.local_port == proxy_server.requests[0].client_port
    assert [r.path for r in http_server.requests] == ["/echo?via=proxy", "/bytes?n=70000&chunked=1"]


def test_proxy_tunnels_connect(proxy_server, https_server):
    proxy_server.clear()
    https_server.clear()
    got = fetch(https_server.url + "/code/200?body=tunnelled", PROXY=proxy_server.url,
                CAINFO=https_server.ca_file)
    assert got.body == b"tunnelled"
    assert [(r.method, r.path) for r in proxy_server.requests] == [
        ("CONNECT", f"localhost:{https_server.port}")]
    assert https_server.requests[-1].path == "/code/200?body=tunnelled"


def test_proxy_refuses_other_hosts(proxy_server):
    proxy_server.clear()
    got = fetch("http://example.com/", PROXY=proxy_server.url)
    assert got.status == 403
    assert b"example.com" in got.body
    proxy_server.clear()
    assert curl_error("https://example.com/", PROXY=proxy_server.url) == 7  # CONNECT got 403
    assert [(r.method, r.path) for r in proxy_server.requests] == [("CONNECT", "example.com:443")]


def test_proxy_with_credentials_demands_them(http_server):
    with servers.start_proxy_server(credentials=("proxyuser", "proxypass")) as proxy:
        assert fetch(http_server.url + "/code/200", PROXY=proxy.url).status == 407
        got = fetch(http_server.url + "/code/200?body=in", PROXY=proxy.url,
                    PROXYUSERPWD="proxyuser:proxypass")
        assert (got.status, got.body) == (200, b"in")


# --- faults ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fault, options, error", [
    ("silent", {"TIMEOUT_MS": 300}, 28),
    ("slow-headers", {"TIMEOUT_MS": 700}, 28),
    ("trickle", {"TIMEOUT_MS": 500}, 28),
    ("reset", {}, 56),
    ("close", {}, 52),
    ("garbage", {}, 1),
    ("bad-chunked", {}, 56),
    ("huge-headers", {}, 56),
    ("redirect-ftp", {"FOLLOWLOCATION": 1}, 7),
    ("redirect-ftp", {"FOLLOWLOCATION": 1,
                      "REDIR_PROTOCOLS": pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS}, 1),
    ("redirect-file", {"FOLLOWLOCATION": 1}, 1),
    ("1xx", {"TIMEOUT_MS": 500}, 28),
    ("wrong-length", {}, 18),
    ("huge", {"MAXFILESIZE": 1000}, 63),
])
def test_fault_gives_the_curl_error(fault_server, fault, options, error):
    assert curl_error(f"{fault_server.url}/fault/{fault}", **options) == error


def test_refused_url_refuses(fault_server):
    assert curl_error(fault_server.refused_url + "/") == 7


def test_bounded_faults_finish_when_asked_to(fault_server):
    assert fetch(fault_server.url + "/fault/trickle?n=5&interval=0.01").body == b"01234"
    assert fetch(fault_server.url + "/fault/slow-headers?count=3&interval=0.01").body == b"ok"
    assert curl_error(fault_server.url + "/fault/silent?seconds=0.05") == 52
    got = fetch(fault_server.url + "/fault/redirect-file")
    assert (got.status, dict(got.headers)["Location"]) == (302, "file:///etc/passwd")
    assert fetch(fault_server.url + "/fault/nothing").status == 404


def test_huge_streams_the_whole_body(fault_server):
    got = fetch(fault_server.url + "/fault/huge?mb=20")
    assert len(got.body) == 20 << 20
    assert got.body[:1000] == bytes_body(1000)


def test_stop_ends_held_connections_at_once():
    server = servers.start_fault_server()
    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, server.url + "/fault/silent")
    curl.setopt(pycurl.TIMEOUT, 60)
    multi = pycurl.CurlMulti()
    multi.add_handle(curl)
    for _ in range(1000):  # until the request has reached the server
        multi.perform()
        if server.requests:
            break
        multi.select(0.01)
    assert server.wait_for(lambda: server.requests)
    server.stop()
    for _ in range(1000):  # until curl sees the connection end
        multi.perform()
        _, done, failed = multi.info_read()
        if done or failed:
            break
        multi.select(0.05)
    assert failed and failed[0][1] == 52
