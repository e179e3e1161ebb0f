"""Response headers and $httprhdr(name) (spec 9.2, 5.11, 5.12): capture per request start,
newest first, case-insensitive, repeated headers, redirects, and the lifetime rules."""
from __future__ import annotations

import pytest

import kamhttp
from kamhttp import pv


@pytest.fixture
def modparam(http_server):
    kamhttp.reset()
    kamhttp.http_client_response_headers_clear()
    kamhttp.modparam("httpcon", f"api=>{http_server.url}")
    yield kamhttp.modparam
    kamhttp.reset()
    kamhttp.core.state.process_state().headers_flag = None
    kamhttp.http_client_response_headers_clear()


def test_no_capture_by_default(modparam):
    assert kamhttp.http_connect("api", "/code/200?hdr=X-A:%201", "$var(r)") == 200
    assert pv.get("$httprhdr(X-A)") is None


def test_capture_with_the_modparam(modparam, http_server):
    modparam("response_headers", 1)
    assert kamhttp.http_connect("api", "/code/200?hdr=X-Case:%20Value&hdr=X-Empty:",
                                "$var(r)") == 200
    assert pv.get("$httprhdr(X-Case)") == "Value"
    assert pv.get("$httprhdr(x-case)") == "Value"
    assert pv.get("$httprhdr(X-CASE)") == "Value"
    assert pv.get("$httprhdr(X-Empty)") == ""
    assert pv.get("$httprhdr(X-Missing)") is None
    assert kamhttp.http_client_query(f"{http_server.url}/code/204?hdr=X-D:%20direct",
                                     "$var(r)") == 204
    assert pv.get("$httprhdr(X-D)") == "direct"
    assert pv.get("$httprhdr(X-Case)") is None        # cleared at the start of the request


def test_repeated_header_gives_the_last_occurrence(modparam):
    modparam("response_headers", 1)
    assert kamhttp.http_connect("api", "/code/200?hdr=X-Rep:%20first&hdr=X-Rep:%20second",
                                "$var(r)") == 200
    assert pv.get("$httprhdr(X-Rep)") == "second"


def test_after_a_redirect_the_final_response_wins(modparam):
    modparam("response_headers", 1)
    assert kamhttp.http_connect("api", "/redirect/302?to=/code/200%3Fbody%3Dabc",
                                "$var(r)") == 200
    assert pv.get("$httprhdr(Content-Length)") == "3"               # final response
    assert pv.get("$httprhdr(Location)") == "/code/200?body=abc"    # only the 302 had it


def test_set_and_clear_in_this_process(modparam):
    assert kamhttp.http_client_response_headers_set(1) == 1
    assert kamhttp.http_connect("api", "/code/200?hdr=X-A:%201", "$var(r)") == 200
    assert pv.get("$httprhdr(X-A)") == "1"
    assert kamhttp.http_client_response_headers_clear() == 1
    assert pv.get("$httprhdr(X-A)") is None
    assert kamhttp.http_connect("api", "/code/200?hdr=X-A:%202", "$var(r)") == 200
    assert pv.get("$httprhdr(X-A)") == "2"
    assert kamhttp.http_client_response_headers_set("0") == 1       # stops and clears
    assert pv.get("$httprhdr(X-A)") is None
    assert kamhttp.http_connect("api", "/code/200?hdr=X-A:%203", "$var(r)") == 200
    assert pv.get("$httprhdr(X-A)") is None


def test_request_while_capture_is_off_keeps_the_old_headers(modparam):
    assert kamhttp.http_client.response_headers_set(1) == 1
    assert kamhttp.http_connect("api", "/code/200?hdr=X-Old:%20yes", "$var(r)") == 200
    kamhttp.core.state.process_state().headers_flag = 0                 # off without clearing
    assert kamhttp.http_connect("api", "/code/200?hdr=X-New:%20no", "$var(r)") == 200
    assert pv.get("$httprhdr(X-Old)") == "yes"
    assert pv.get("$httprhdr(X-New)") is None


def test_mode_from_a_pv(modparam):
    pv.sets("$var(mode)", "1")
    assert kamhttp.http_client_response_headers_set("$var(mode)") == 1
    assert kamhttp.http_connect("api", "/code/200?hdr=X-P:%20v", "$var(r)") == 200
    assert pv.get("$httprhdr(X-P)") == "v"


def test_failover_attempt_recaptures(modparam, http_server, fault_server):
    modparam("response_headers", 1)
    modparam("httpcon", f"backup=>{http_server.url}/code/200?hdr=X-From:%20backup")
    modparam("httpcon", f"primary=>{http_server.url}/code/500?hdr=X-Primary:%201;"
                        "failover=backup")
    assert kamhttp.http_connect("primary", "", "$var(r)") == 200
    assert pv.get("$httprhdr(X-From)") == "backup"
    assert pv.get("$httprhdr(X-Primary)") is None
