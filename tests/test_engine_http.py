"""The request engine over plain HTTP against the real test server: GET/POST selection, URL
joining, Content-Type rules, the hdrs string, result rules, size caps, redirects, timeouts,
connection reuse and isolation between requests (spec 5 and 6)."""
from __future__ import annotations

import json
import resource
import time

import pytest

import kamhttp
from kamhttp import pv
from tests.servers import bytes_body


@pytest.fixture
def modparam():
    kamhttp.reset()
    yield kamhttp.modparam
    kamhttp.reset()


def echo(name: str = "$var(r)") -> dict:
    return json.loads(pv.get(name))


def header(document: dict, name: str) -> list[str]:
    return [v for k, v in document["headers"] if k.lower() == name.lower()]


# --- connections: URL joining, GET/POST, Content-Type (spec 5.3-5.5) ----------------------- --

def test_get_on_connection_joins_the_url(modparam, http_server):
    modparam("httpcon", f"api=>{http_server.url}/echo")
    assert kamhttp.http_connect("api", "a/b?x=1", "$var(r)") == 200
    document = echo()
    assert (document["method"], document["path"], document["query"]) == ("GET", "/echo/a/b",
                                                                          "x=1")
    assert kamhttp.http_connect("api", "", "$var(r)") == 200
    assert echo()["path"] == "/echo"
    assert kamhttp.http_connect("api", "/c", "$var(r)") == 200
    assert echo()["path"] == "/echo/c"


def test_post_sends_data_and_content_type(modparam, http_server):
    modparam("httpcon", f"api=>{http_server.url}")
    assert kamhttp.http_connect("api", "/echo", "application/json", '{"a": 1}', "$var(r)") == 200
    document = echo()
    assert document["method"] == "POST"
    assert document["body"] == '{"a": 1}'
    assert header(document, "Content-Type") == ["application/json"]
    assert header(document, "Content-Length") == ["8"]


def test_post_with_empty_content_type_sends_none(modparam, http_server):
    modparam("httpcon", f"api=>{http_server.url}")
    assert kamhttp.http_connect("api", "/echo", "", "x=1", "$var(r)") == 200
    document = echo()
    assert document["method"] == "POST" and document["body"] == "x=1"
    assert header(document, "Content-Type") == []


def test_post_with_empty_data_is_a_get(modparam, http_server):
    modparam("httpcon", f"api=>{http_server.url}")
    assert kamhttp.http_connect("api", "/echo", "text/plain", "", "$var(r)") == 200
    document = echo()
    assert document["method"] == "GET" and document["body"] == ""
    assert header(document, "Content-Type") == []


def test_default_user_agent_and_empty_user_agent(modparam, http_server):
    modparam("httpcon", f"plain=>{http_server.url}")
    modparam("useragent", "")
    modparam("httpcon", f"silent=>{http_server.url}")
    assert kamhttp.http_connect("plain", "/echo", "$var(r)") == 200
    assert header(echo(), "User-Agent") == [kamhttp.config.params.DEFAULT_USERAGENT]
    assert kamhttp.http_connect("silent", "/echo", "$var(r)") == 200
    assert header(echo(), "User-Agent") == []


# --- direct functions: method selection and the hdrs string (spec 5.7-5.9) ----------------- --

def test_query_get_and_post_with_default_content_type(modparam, http_server):
    modparam("query_result", 0)
    assert kamhttp.http_client_query(f"{http_server.url}/echo", "$var(r)") == 200
    assert echo()["method"] == "GET"
    assert kamhttp.http_client_query(f"{http_server.url}/echo", "a=1", "$var(r)") == 200
    document = echo()
    assert (document["method"], document["body"]) == ("POST", "a=1")
    assert header(document, "Content-Type") == ["application/x-www-form-urlencoded"]


def test_hdrs_string_is_passed_whole(modparam, http_server):
    modparam("query_result", 0)
    assert kamhttp.http_client_query(f"{http_server.url}/echo", "", "X-A: 1\r\nX-B: 2",
                                     "$var(r)") == 200
    document = echo()
    assert header(document, "X-A") == ["1"]
    assert header(document, "X-B") == ["2"]
    assert kamhttp.http_client_query(f"{http_server.url}/echo", "a=1",
                                     "Content-Type: text/plain", "$var(r)") == 200
    assert header(echo(), "Content-Type") == ["text/plain"]


def test_get_with_body_and_custom_method(modparam, http_server):
    modparam("query_result", 0)
    assert kamhttp.http_client_get(f"{http_server.url}/echo", "q=1", "", "$var(r)") == 200
    document = echo()
    assert (document["method"], document["body"]) == ("GET", "q=1")
    assert kamhttp.http_client_request("PUT", f"{http_server.url}/echo", "", "X-T: y",
                                       "$var(r)") == 200
    document = echo()
    assert (document["method"], document["body"]) == ("PUT", "")
    assert header(document, "X-T") == ["y"]
    assert kamhttp.http_client_request("DELETE", f"{http_server.url}/echo", "z", "",
                                       "$var(r)") == 200
    assert (echo()["method"], echo()["body"]) == ("DELETE", "z")


def test_head_request_returns_without_waiting_for_a_body(modparam, http_server):
    # Without NOBODY, libcurl would wait for the announced 5000 bytes until the timeout (28).
    assert kamhttp.http_client_request("HEAD", f"{http_server.url}/bytes?n=5000", "", "",
                                       "$var(r)") == 200
    assert pv.get("$var(r)") == ""


def test_nothing_leaks_from_one_request_into_the_next(modparam, http_server):
    modparam("query_result", 0)
    modparam("keep_connections", 1)
    modparam("httpcon", f"api=>{http_server.url}")
    url = f"{http_server.url}/echo"
    assert kamhttp.http_client_request("PATCH", url, "body", "X-Leak: 1", "$var(r)") == 200
    assert kamhttp.http_client_query(url, "$var(r)") == 200
    document = echo()
    assert (document["method"], document["body"], header(document, "X-Leak")) == ("GET", "", [])
    assert kamhttp.http_client_query(f"http://u:p@{url[7:]}", "$var(r)") == 200
    assert header(echo(), "Authorization") == ["Basic dTpw"]
    assert kamhttp.http_client_query(url, "$var(r)") == 200
    assert header(echo(), "Authorization") == []
    assert kamhttp.http_connect("api", "/echo", "text/x", "d", "$var(r)") == 200
    assert kamhttp.http_connect("api", "/echo", "$var(r)") == 200
    document = echo()
    assert (document["method"], document["body"], header(document, "Content-Type")) == (
        "GET", "", [])


# --- what the result variable gets (spec 5.2, 6.4) --------------------------------------------

@pytest.mark.parametrize("status, kept", [(200, True), (201, True), (302, True), (404, True),
                                          (499, True), (500, False), (503, False)])
def test_result_keeps_the_body_for_200_to_499(modparam, http_server, status, kept):
    modparam("httpredirect", 0)
    modparam("httpcon", f"api=>{http_server.url}")
    assert kamhttp.http_connect("api", f"/code/{status}?body=text", "$var(r)") == status
    assert pv.get("$var(r)") == ("text" if kept else "")


def test_first_line_without_its_line_end(modparam, http_server):
    url = f"{http_server.url}/bytes?n=100&line=first"
    assert kamhttp.http_client_query(url + "&eol=crlf", "$var(r)") == 200
    assert pv.get("$var(r)") == "first"
    assert kamhttp.http_client_query(url + "&eol=lf", "$var(r)") == 200
    assert pv.get("$var(r)") == "first"
    modparam("query_result", 0)
    assert kamhttp.http_client_query(url + "&eol=lf", "$var(r)") == 200
    assert pv.get("$var(r)") == bytes_body(100, "first").decode()


def test_query_maxdatasize_always_applies(modparam, http_server):
    modparam("query_maxdatasize", 5)
    assert kamhttp.http_client_query(f"{http_server.url}/code/200?body=0123456789%0Aabc",
                                     "$var(r)") == 200
    assert pv.get("$var(r)") == "01234"
    assert kamhttp.http_client_query(f"{http_server.url}/code/200?body=01%0A23456789",
                                     "$var(r)") == 200
    assert pv.get("$var(r)") == "01"


@pytest.mark.parametrize("chunked", ["0", "1"])
def test_maxdatasize_cuts_at_exactly_that_many_bytes(modparam, http_server, chunked):
    modparam("maxdatasize", 4096)
    modparam("httpcon", f"api=>{http_server.url}")
    path = f"/bytes?n=1000000&chunked={chunked}&chunk=1000"
    assert kamhttp.http_connect("api", path, "$var(r)") == 200
    assert pv.get("$var(r)") == bytes_body(4096).decode()
    assert kamhttp.http_connect("api", "/bytes?n=4096&chunked=" + chunked, "$var(r)") == 200
    assert pv.get("$var(r)") == bytes_body(4096).decode()


def test_maxdatasize_bounds_memory_on_a_huge_body(modparam, http_server):
    modparam("maxdatasize", 4096)
    modparam("httpcon", f"api=>{http_server.url}")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert kamhttp.http_connect("api", "/bytes?n=100000000&chunk=65536", "$var(r)") == 200
    assert len(pv.get("$var(r)")) == 4096
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 20_000       # the 100 MB body was never held


# --- redirects (spec 5.6, 6.3) ----------------------------------------------------------------

def test_redirect_followed_by_default_and_recorded(modparam, http_server):
    modparam("httpcon", f"api=>{http_server.url}")
    to = "/code/200?body=final"
    assert kamhttp.http_connect("api", f"/redirect/302?to={to}", "$var(r)") == 200
    assert pv.get("$var(r)") == "final"
    assert kamhttp.http_get_redirect("api", "$var(u)") == 1
    assert pv.get("$var(u)") == f"{http_server.url}{to}"
    assert pv.get("$curlredirect") == f"{http_server.url}{to}"


def test_redirect_not_followed(modparam, http_server):
    modparam("httpredirect", 0)
    modparam("httpcon", f"api=>{http_server.url}")
    assert kamhttp.http_connect("api", "/redirect/302?to=/echo", "$var(r)") == 302
    assert kamhttp.http_get_redirect("api", "$var(u)") == 1
    assert pv.get("$var(u)") == f"{http_server.url}/redirect/302?to=/echo"


@pytest.mark.parametrize("status, method, body", [(301, "GET", ""), (302, "GET", ""),
                                                  (303, "GET", ""), (307, "POST", "d=1"),
                                                  (308, "POST", "d=1")])
def test_post_to_get_rules(modparam, http_server, status, method, body):
    modparam("query_result", 0)
    assert kamhttp.http_client_query(f"{http_server.url}/redirect/{status}?to=/echo", "d=1",
                                     "$var(r)") == 200
    document = echo()
    assert (document["method"], document["body"]) == (method, body)


def test_redirect_loop_stops_with_curl_47(modparam, http_server):
    http_server.clear()
    assert kamhttp.http_client_query(f"{http_server.url}/loop", "$var(r)") == 47
    assert pv.get("$var(r)") == ""
    assert len(http_server.requests) == kamhttp.core.transport.MAX_REDIRECTS + 1


def test_only_http_and_https(modparam, http_server):
    assert kamhttp.http_client_query("ftp://127.0.0.1/x", "$var(r)") == 1
    assert kamhttp.http_client_query(f"{http_server.url}/redirect/302?to=ftp://127.0.0.1/x",
                                     "$var(r)") == 1


# --- curl errors ------------------------------------------------------------------------------

def test_curl_errors_are_returned(modparam, fault_server, http_server):
    modparam("httpcon", f"dead=>{fault_server.refused_url}")
    assert kamhttp.http_connect("dead", "/x", "$var(r)") == 7
    assert pv.get("$var(r)") == ""
    assert kamhttp.http_client_query("http://", "$var(r)") == 3
    assert kamhttp.http_client_query(f"{http_server.url}/close", "$var(r)") == 52
    assert kamhttp.http_client_query("http://no-such-host.invalid/", "$var(r)") == 6


def test_netinterface_is_used(modparam, http_server):
    modparam("netinterface", "127.0.0.1")
    assert kamhttp.http_client_query(f"{http_server.url}/code/200", "$var(r)") == 200
    modparam("netinterface", "no-such-interface0")
    modparam("httpcon", f"api=>{http_server.url}")
    assert kamhttp.http_client_query(f"{http_server.url}/code/200", "$var(r)") == 45
    assert kamhttp.http_connect("api", "/code/200", "$var(r)") == 45


@pytest.mark.parametrize("mode, timeout, limit", [(1, 1, 1.0), (2, 300, 0.3)])
def test_timeouts_in_seconds_and_milliseconds(modparam, http_server, mode, timeout, limit):
    modparam("timeout_mode", mode)
    modparam("connection_timeout", timeout)
    modparam("httpcon", f"api=>{http_server.url}")
    for call in (lambda: kamhttp.http_connect("api", "/slow?delay=5", "$var(r)"),
                 lambda: kamhttp.http_client_query(f"{http_server.url}/slow?delay=5",
                                                   "$var(r)")):
        started = time.monotonic()
        assert call() == 28
        elapsed = time.monotonic() - started
        assert limit <= elapsed + 0.05 and elapsed < limit + 2


def test_connection_timeout_overrides_the_default(modparam, http_server):
    modparam("httpcon", f"api=>{http_server.url};timeout=1")
    started = time.monotonic()
    assert kamhttp.http_connect("api", "/slow?delay=5", "$var(r)") == 28
    assert time.monotonic() - started < 3


# --- connection reuse, seen from the server (spec 6.7) ----------------------------------------

def ports(server, n: int) -> list[int]:
    return [r.client_port for r in server.requests[-n:]]


@pytest.mark.parametrize("keep", [0, 1])
def test_connection_reuse_per_keep_connections(modparam, http_server, keep):
    modparam("keep_connections", keep)
    modparam("httpcon", f"api=>{http_server.url}")
    http_server.clear()
    for _ in range(3):
        assert kamhttp.http_connect("api", "/code/200", "$var(r)") == 200
    for _ in range(3):
        assert kamhttp.http_client_query(f"{http_server.url}/code/404", "$var(r)") == 404
    connection_ports, direct_ports = ports(http_server, 6)[:3], ports(http_server, 3)
    if keep:
        assert len(set(connection_ports)) == 1 and len(set(direct_ports)) == 1
    else:
        assert len(set(connection_ports)) == 3 and len(set(direct_ports)) == 3


def test_a_new_configuration_applies_to_the_kept_handle(modparam, http_server):
    modparam("httpcon", f"api=>{http_server.url};useragent=first")
    assert kamhttp.http_connect("api", "/echo", "$var(r)") == 200
    assert header(echo(), "User-Agent") == ["first"]
    kamhttp.reset()
    modparam("httpcon", f"api=>{http_server.url};useragent=second")
    assert kamhttp.http_connect("api", "/echo", "$var(r)") == 200
    assert header(echo(), "User-Agent") == ["second"]
