"""The developer API (Developer Guide, spec 10) and the Pythonic request() for fresh scripts."""
from __future__ import annotations

import json

import pytest

import kamhttp
from kamhttp import api


@pytest.fixture
def modparam(http_server):
    kamhttp.reset()
    kamhttp.modparam("httpcon", f"api=>{http_server.url}")
    yield kamhttp.modparam
    kamhttp.reset()


def test_connection_exists(modparam):
    assert kamhttp.http_connection_exists("api") == 1
    assert api.http_connection_exists("API") == 0


def test_content_type_of_the_last_response(modparam, fault_server):
    modparam("httpcon", f"dead=>{fault_server.refused_url}")
    assert kamhttp.http_get_content_type("nope") is None
    assert kamhttp.http_get_content_type("api") == ""
    assert kamhttp.http_connect("api", "/code/200?ctype=application/json", "$var(r)") == 200
    assert kamhttp.http_get_content_type("api") == "application/json"
    assert kamhttp.http_connect("api", "/code/200", "$var(r)") == 200
    assert api.http_get_content_type("api") == ""
    assert kamhttp.http_connect("dead", "/", "$var(r)") == 7
    assert kamhttp.http_get_content_type("dead") == ""


def test_api_http_connect_returns_the_body(modparam):
    code, body = api.http_connect("api", "/echo", None, "data")
    assert code == 200
    document = json.loads(body)
    assert (document["method"], document["body"]) == ("POST", "data")
    assert ["Content-Type", "text/plain"] in document["headers"]
    code, body = api.http_connect("api", None)
    assert (code, body) == (200, b"kamhttp test server\n")
    assert api.http_connect("api", "/code/500?body=x") == (500, b"")
    assert api.http_connect("missing", "/") == (-1, b"")


def test_api_query_follows_query_result(modparam, http_server):
    url = f"{http_server.url}/bytes?n=20&line=ab"
    assert api.http_client_query(url) == (200, b"ab")
    modparam("query_result", 0)
    assert api.http_client_query(url) == (200, b"ab\n" * 6 + b"ab")
    code, body = api.http_client_query_c(f"{http_server.url}/echo", "x", "text/x", "X-Q: 1")
    document = json.loads(body)
    assert (code, document["method"], document["body"]) == (200, "POST", "x")
    assert ["Content-Type", "text/x"] in document["headers"]
    assert ["X-Q", "1"] in document["headers"]


def test_request_direct(modparam, http_server):
    result = kamhttp.request("PUT", f"{http_server.url}/echo", body="x=1",
                             headers={"X-Api": "yes", "Content-Type": "text/plain"})
    assert (result.code, result.status, result.ok, result.curl_code) == (200, 200, True, 0)
    document = result.json()
    assert (document["method"], document["body"]) == ("PUT", "x=1")
    assert ["X-Api", "yes"] in document["headers"]
    assert result.header("content-type") == "application/json"
    assert result.effective_url == f"{http_server.url}/echo"
    assert result.text == result.body.decode()
    assert set(result.timings) >= {"namelookup", "connect", "starttransfer", "total"}
    assert result.timings["total"] >= result.timings["starttransfer"] >= 0


def test_request_keeps_error_bodies_and_the_final_headers(modparam, http_server):
    result = kamhttp.request("GET", f"{http_server.url}/redirect/302?to=/code/503%3Fbody%3Dbusy")
    assert (result.status, result.body) == (503, b"busy")
    assert result.header("Location") is None
    assert result.header("Content-Length") == "4"


def test_request_on_a_connection_with_failover(modparam, http_server, fault_server):
    modparam("httpcon", f"primary=>{fault_server.refused_url};failover=api")
    result = kamhttp.request("POST", "/echo", connection="primary", body=b"\x00binary",
                             headers=["X-B: 1"])
    assert result.status == 200
    assert result.json()["body"] == "\x00binary"


def test_request_failures(modparam, fault_server):
    result = kamhttp.request("GET", fault_server.refused_url)
    assert (result.code, result.status, result.curl_code) == (7, 0, 7)
    assert result.curl_error == kamhttp.core.curlerror.curl_strerror(7)
    result = kamhttp.request("GET", "/", connection="missing")
    assert (result.code, result.status, result.curl_code, result.body) == (-1, 0, 0, b"")
