"""Bad arguments to every script function, cfg and KEMI (issue 7): None or an int where a
string is due, empty strings, an unknown connection, malformed and read-only result PVs, CR/LF
and NUL bytes, 1 MB arguments. Each gives the documented return code, a clear log line (one
line, bounded in length, naming the function) and never an exception; a request is made only
when the arguments allow one, and nothing is ever injected into the request.

Return codes (spec 5.1, 5.2, 11): -1 for an argument the module refuses before the request
(the result variable then keeps its value, B31); -1 with the result "" for an unknown
connection; the curl code with the result "" when libcurl refuses the URL (3) or a string
(43); the HTTP status when the request is fine. ``hdrs`` keeps its documented multi-header
use ("A: 1\\r\\nB: 2" sends two headers); CR/LF in a method or a content type is refused, as
it would inject header lines or a second request.
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from typing import Any, Callable

import pytest

import kamhttp
from kamhttp import pv

MB = 1 << 20
STALE = "stale"
LOG_LINE_LIMIT = 2048
"""A log line about a bad argument names it, it does not copy a megabyte of it."""


@dataclass(frozen=True)
class Function:
    name: str
    call: Callable[..., int]
    args: tuple[str, ...]
    """Argument kinds, in order: conn, path, url, ctype, data, raw, hdrs, method, result,
    mode."""
    kemi: bool = False
    http2: bool = False


K = kamhttp.http_client
FUNCTIONS = [
    Function("http_connect/3", kamhttp.http_connect, ("conn", "path", "result")),
    Function("http_connect/5", kamhttp.http_connect,
             ("conn", "path", "ctype", "data", "result")),
    Function("http_connect_raw", kamhttp.http_connect_raw,
             ("conn", "path", "ctype", "raw", "result")),
    Function("http_get_redirect", kamhttp.http_get_redirect, ("conn", "result")),
    Function("http_client_query/2", kamhttp.http_client_query, ("url", "result")),
    Function("http_client_query/3", kamhttp.http_client_query, ("url", "data", "result")),
    Function("http_client_query/4", kamhttp.http_client_query,
             ("url", "data", "hdrs", "result")),
    Function("http_client_get", kamhttp.http_client_get, ("url", "data", "hdrs", "result")),
    Function("http_client_request", kamhttp.http_client_request,
             ("method", "url", "data", "hdrs", "result")),
    Function("http_client_request_v2pk", kamhttp.http_client_request_v2pk,
             ("method", "url", "data", "hdrs", "result"), http2=True),
    Function("http_client_response_headers_set", kamhttp.http_client_response_headers_set,
             ("mode",)),
    Function("query", K.query, ("url", "result"), kemi=True),
    Function("query_post", K.query_post, ("url", "raw", "result"), kemi=True),
    Function("query_post_hdrs", K.query_post_hdrs, ("url", "raw", "hdrs", "result"),
             kemi=True),
    Function("get_hdrs", K.get_hdrs, ("url", "raw", "hdrs", "result"), kemi=True),
    Function("query_request", K.query_request, ("method", "url", "raw", "hdrs", "result"),
             kemi=True),
    Function("query_request_v2pk", K.query_request_v2pk,
             ("method", "url", "raw", "hdrs", "result"), kemi=True, http2=True),
    Function("curl_connect", K.curl_connect, ("conn", "path", "result"), kemi=True),
    Function("curl_connect_post", K.curl_connect_post,
             ("conn", "path", "ctype", "raw", "result"), kemi=True),
    Function("get_redirect", K.get_redirect, ("conn", "result"), kemi=True),
    Function("response_headers_set", K.response_headers_set, ("mode",), kemi=True),
]
BY_NAME = {f.name: f for f in FUNCTIONS}


@pytest.fixture
def setup(http_server, h2c_server, monkeypatch, caplog):
    monkeypatch.delitem(sys.modules, "KSR", raising=False)   # logs into Python logging
    caplog.set_level(logging.DEBUG, logger="kamhttp")
    kamhttp.reset()
    pv.clear_fallback()
    kamhttp.modparam("query_result", 0)
    kamhttp.modparam("httpcon", f"api=>{http_server.url}")
    kamhttp.modparam("httpcon", f"api2=>{h2c_server.url}")
    http_server.clear()
    h2c_server.clear()
    yield
    kamhttp.reset()
    pv.clear_fallback()


def valid_args(function: Function, http_server, h2c_server) -> dict[str, Any]:
    server = h2c_server if function.http2 else http_server
    return {"conn": "api", "path": "/echo", "url": f"{server.url}/echo", "ctype": "text/plain",
            "data": "d=1", "raw": "d=1", "hdrs": "X-A: 1", "method": "POST",
            "result": "$var(r)", "mode": 1}


def run(function: Function, http_server, h2c_server, **bad: Any) -> int:
    values = valid_args(function, http_server, h2c_server) | bad
    pv.sets("$var(r)", STALE)
    http_server.clear()
    h2c_server.clear()
    return function.call(*(values[kind] for kind in function.args))


def requests(http_server, h2c_server) -> list:
    return http_server.requests + h2c_server.requests


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def assert_one_clear_line(caplog, *words: str) -> None:
    """At least one error line, each a single bounded line, one of them naming `words`."""
    lines = error_lines(caplog)
    assert lines, "no error was logged"
    for line in lines:
        assert "\n" not in line and "\r" not in line, f"log line split by the argument: {line!r}"
        assert len(line) <= LOG_LINE_LIMIT, f"log line of {len(line)} characters"
    assert any(all(word in line for word in words) for line in lines), (words, lines)


def cases(kinds: set[str], functions=FUNCTIONS) -> list:
    return [pytest.param(f, kind, id=f"{f.name}-{kind}")
            for f in functions for kind in f.args if kind in kinds]


def base_name(function: Function) -> str:
    return function.name.partition("/")[0]


# --- wrong types ---------------------------------------------------------------------------------

STRING_KINDS = {"conn", "path", "url", "ctype", "data", "raw", "hdrs", "method", "result"}


WRONG_TYPES = {"None": None, "int": 7, "bytes": b"bytes"}


def wrong_type_cases() -> list:
    """Every string argument with each wrong type; mode with all but an int (its type)."""
    return [pytest.param(f, kind, value, id=f"{f.name}-{kind}-{label}")
            for f in FUNCTIONS for kind in f.args if kind in STRING_KINDS | {"mode"}
            for label, value in WRONG_TYPES.items()
            if not (kind == "mode" and isinstance(value, int))]


@pytest.mark.parametrize("function, kind, value", wrong_type_cases())
def test_wrong_type_is_refused_before_the_request(function, kind, value, setup, caplog,
                                                  http_server, h2c_server):
    rc = run(function, http_server, h2c_server, **{kind: value})
    assert rc == -1
    assert requests(http_server, h2c_server) == []
    assert pv.get("$var(r)") == STALE
    assert_one_clear_line(caplog, base_name(function), repr(value))


# --- empty strings -----------------------------------------------------------------------------

@pytest.mark.parametrize("function, kind", cases({"url", "method", "conn", "result"}))
def test_empty_string(function, kind, setup, caplog, http_server, h2c_server):
    rc = run(function, http_server, h2c_server, **{kind: ""})
    if kind == "conn":                      # no connection is named "": spec 5.2, 5.6
        assert rc == -1 and pv.get("$var(r)") == ""
        assert_one_clear_line(caplog, "No cURL connection found")
    elif kind == "url" and function.kemi:   # KEMI passes "" to libcurl: 3 (spec 11, B22)
        assert rc == 3 and pv.get("$var(r)") == ""
        assert_one_clear_line(caplog, "Malformed URL")
    elif kind == "method" and function.kemi:  # KEMI: "" lets the body choose POST
        assert rc == 200
        assert json.loads(pv.get("$var(r)"))["method"] == "POST"
        return
    elif kind == "url":                     # cfg: "URL has no value", var untouched
        assert rc == -1 and pv.get("$var(r)") == STALE
        assert_one_clear_line(caplog, "URL has no value")
    elif kind == "method":
        assert rc == -1 and pv.get("$var(r)") == STALE
        assert_one_clear_line(caplog, "METHOD has no value")
    else:                                   # result "": not a PV
        assert rc == -1 and pv.get("$var(r)") == STALE
        assert_one_clear_line(caplog, base_name(function), "result")
    assert requests(http_server, h2c_server) == []


# --- unknown connection ------------------------------------------------------------------------

@pytest.mark.parametrize("function, kind", cases({"conn"}))
@pytest.mark.parametrize("name", ["nope", "API", " api", "$var(c)"])
def test_unknown_connection(function, kind, name, setup, caplog, http_server, h2c_server):
    pv.sets("$var(c)", "api")                # a connection name is never PV-expanded
    assert run(function, http_server, h2c_server, conn=name) == -1
    assert pv.get("$var(r)") == ""
    assert requests(http_server, h2c_server) == []
    assert_one_clear_line(caplog, "No cURL connection found", name.strip())


# --- result variables --------------------------------------------------------------------------

BAD_RESULTS = ["$var(", "var(x)", "$var(x) y", "$(var(x)", "$", "$$", "$rm", "$si", "$ci",
               "$curlerror(7)", "$curlredirect", "$httprhdr(X)", "$var(r\x00)",
               "$var(r\r\nx)"]


@pytest.mark.parametrize("function, kind", cases({"result"}))
@pytest.mark.parametrize("name", BAD_RESULTS)
def test_bad_result_variable(function, kind, name, setup, caplog, http_server, h2c_server):
    """Malformed, read-only or control-character PV names: refused before any request."""
    assert run(function, http_server, h2c_server, result=name) == -1
    assert requests(http_server, h2c_server) == []
    assert pv.get("$var(r)") == STALE
    assert_one_clear_line(caplog, base_name(function), "result")


# --- CR, LF and NUL ---------------------------------------------------------------------------

@pytest.mark.parametrize("function, kind", cases({"url", "path"}))
@pytest.mark.parametrize("bad", ["\r\nX-Injected: 1", "\nX-Injected: 1", "\r"],
                         ids=["CRLF", "LF", "CR"])
def test_line_break_in_url_is_a_malformed_url(function, kind, bad, setup, caplog, http_server,
                                              h2c_server):
    good = valid_args(function, http_server, h2c_server)[kind]
    assert run(function, http_server, h2c_server, **{kind: good + bad}) == 3
    assert pv.get("$var(r)") == ""
    assert requests(http_server, h2c_server) == []
    assert_one_clear_line(caplog, "Malformed URL")


@pytest.mark.parametrize("function, kind", cases({"method", "ctype"}))
@pytest.mark.parametrize("bad", ["\r\nX-Injected: 1", "\nX-Injected: 1",
                                 " /smuggled HTTP/1.1\r\nHost: x\r\n\r\nGET", "\x00"],
                         ids=["CRLF", "LF", "smuggling", "NUL"])
def test_line_break_or_nul_in_method_or_content_type_is_refused(function, kind, bad, setup,
                                                                caplog, http_server,
                                                                h2c_server):
    """A method is a token and a content type a header value: a CR, LF or NUL in either
    would add header lines or a second request, so the call is refused (-1) unsent."""
    good = valid_args(function, http_server, h2c_server)[kind]
    rc = run(function, http_server, h2c_server, **{kind: good + bad})
    sent = requests(http_server, h2c_server)
    assert all(not r.header("X-Injected") and "smuggled" not in r.path for r in sent), sent
    assert rc == -1
    assert sent == []
    assert pv.get("$var(r)") == STALE
    assert_one_clear_line(caplog, base_name(function))


@pytest.mark.parametrize("function, kind", cases({"hdrs"}))
def test_hdrs_keeps_its_multi_header_use(function, kind, setup, http_server, h2c_server):
    """spec 5.7: hdrs is one list entry written verbatim, so CRLF separates headers."""
    assert run(function, http_server, h2c_server, hdrs="X-A: 1\r\nX-B: 2") == 200
    (request,) = requests(http_server, h2c_server)
    assert (request.header("X-A"), request.header("X-B")) == ("1", "2")


@pytest.mark.parametrize("function, kind", cases({"url", "path", "hdrs"}))
def test_nul_in_url_or_hdrs_is_refused_by_libcurl(function, kind, setup, caplog, http_server,
                                                  h2c_server):
    """A C string cannot hold a NUL: curl 43 (bad argument), nothing sent."""
    good = valid_args(function, http_server, h2c_server)[kind]
    assert run(function, http_server, h2c_server, **{kind: good + "\x00tail"}) == 43
    assert pv.get("$var(r)") == ""
    assert requests(http_server, h2c_server) == []
    assert_one_clear_line(caplog, "bad argument")


@pytest.mark.parametrize("function, kind", cases({"conn"}))
def test_nul_in_connection_name_is_an_unknown_connection(function, kind, setup, caplog,
                                                         http_server, h2c_server):
    assert run(function, http_server, h2c_server, conn="api\x00") == -1
    assert pv.get("$var(r)") == ""
    assert requests(http_server, h2c_server) == []
    assert_one_clear_line(caplog, "No cURL connection found")


@pytest.mark.parametrize("function, kind", cases({"data", "raw"}))
def test_line_breaks_and_nul_in_data_are_sent_as_data(function, kind, setup, http_server,
                                                      h2c_server):
    """Data is a body, not a header: CR, LF and NUL travel in it unchanged."""
    body = "a\r\nb\x00c"
    assert run(function, http_server, h2c_server, **{kind: body}) == 200
    (request,) = requests(http_server, h2c_server)
    assert request.body == body.encode()


# --- 1 MB arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("function, kind", cases({"data", "raw"}))
def test_megabyte_body_is_sent_whole(function, kind, setup, http_server, h2c_server):
    body = "b" * MB
    assert run(function, http_server, h2c_server, **{kind: body}) == 200
    (request,) = requests(http_server, h2c_server)
    assert request.body == body.encode()


@pytest.mark.parametrize("function, kind", cases({"url", "path", "hdrs", "method", "ctype"}))
def test_megabyte_string_libcurl_cannot_send_gives_minus_one(function, kind, setup, caplog,
                                                            http_server, h2c_server):
    """libcurl refuses a request head over 1 MB with CURLE_TOO_LARGE (100). 100 would read
    as an HTTP status, so the script gets -1 and the log says why."""
    extra = {"url": "?q=" + "a" * MB, "path": "?q=" + "a" * MB, "hdrs": "a" * MB,
             "method": "A" * MB, "ctype": "a" * MB}[kind]
    good = valid_args(function, http_server, h2c_server)[kind]
    rc = run(function, http_server, h2c_server, **{kind: good + extra})
    assert rc == -1, f"{rc}: not -1 (a code >= 100 would read as an HTTP status)"
    assert requests(http_server, h2c_server) == []
    assert_one_clear_line(caplog)


@pytest.mark.parametrize("function, kind", cases({"conn"}))
def test_megabyte_connection_name(function, kind, setup, caplog, http_server, h2c_server):
    assert run(function, http_server, h2c_server, conn="c" * MB) == -1
    assert pv.get("$var(r)") == ""
    assert_one_clear_line(caplog, "No cURL connection found")


# --- the worker goes on ---------------------------------------------------------------------------

def test_every_function_works_after_all_the_bad_calls(setup, http_server, h2c_server):
    """After a storm of bad arguments each function still makes its request."""
    for function in FUNCTIONS:
        for kind in function.args:
            for value in (None, "", "\r\n", "\x00", "$var("):
                run(function, http_server, h2c_server, **{kind: value})
    for function in FUNCTIONS:
        rc = run(function, http_server, h2c_server)
        expected = 1 if "redirect" in function.name or "headers_set" in function.name else 200
        assert rc == expected, function.name


def test_headers_clear_takes_no_argument_or_one_ignored(setup):
    assert kamhttp.http_client_response_headers_clear() == 1
    assert kamhttp.http_client_response_headers_clear("x") == 1
    assert K.response_headers_clear() == 1


# --- the Pythonic request() -----------------------------------------------------------------------

@pytest.mark.parametrize("method, url, headers", [
    ("GET /smuggled HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET", "/echo", None),
    ("G T", "/echo", None),
    ("GE\x00T", "/echo", None),
    ("GET", "/echo", {"X-A": "1\r\nX-Injected: 1"}),
    ("GET", "/echo", {"X-A\r\nX-Injected": "1"}),
    ("GET", "/echo", {"X-A": "1\x00"}),
    ("GET", None, None),
    (None, "/echo", None),
    ("GET", 7, None),
], ids=["method-CRLF", "method-space", "method-NUL", "header-value-CRLF", "header-name-CRLF",
        "header-value-NUL", "url-None", "method-None", "url-int"])
def test_request_refuses_what_would_inject(method, url, headers, setup, caplog, http_server,
                                          h2c_server):
    """request() is called from routing scripts too: a bad argument is a logged -1 and
    nothing is sent, never an exception or an injected header or request. (A list of raw
    header lines keeps the hdrs semantics: CRLF inside one line sends two headers.)"""
    target = f"{http_server.url}{url}" if isinstance(url, str) else url
    http_server.clear()
    result = kamhttp.request(method, target, headers=headers)
    assert result.code == -1
    assert requests(http_server, h2c_server) == []
    assert_one_clear_line(caplog)


# --- the developer API ----------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda url: kamhttp.api.http_connect(None, "/echo"),
    lambda url: kamhttp.api.http_connect("api", 7),
    lambda url: kamhttp.api.http_connect("api", "/echo", "text/plain\r\nX-Injected: 1", "d"),
    lambda url: kamhttp.api.http_client_query(None),
    lambda url: kamhttp.api.http_client_query(url, 5),
    lambda url: kamhttp.api.http_client_query(url, "d", 5),
    lambda url: kamhttp.api.http_client_query_c(url, "d", "text/plain\r\nX-Injected: 1", None),
    lambda url: kamhttp.api.http_client_query_c(url, "d", "text/\x00plain", None),
], ids=["connect-None", "connect-int-url", "connect-ctype-CRLF", "query-None", "query-int-post",
        "query-int-hdrs", "query_c-ctype-CRLF", "query_c-ctype-NUL"])
def test_developer_api_refuses_bad_arguments(call, setup, caplog, http_server, h2c_server):
    """The API of the Developer Guide follows the same rule: (-1, b"") and a log line,
    nothing sent, nothing injected."""
    assert call(f"{http_server.url}/echo") == (-1, b"")
    assert requests(http_server, h2c_server) == []
    assert_one_clear_line(caplog)


# --- inside Kamailio the lines go to Kamailio's log ------------------------------------------------

def test_inside_kamailio_the_log_line_goes_to_ksr(setup, monkeypatch, http_server):
    """With a KSR module (the testing kit's emulator here, app_python3's in Kamailio) the
    error lines reach KSR's log at ERROR level, one line each, prefixed "http_client"."""
    from kamhttp.testing import Emulator
    emulator = Emulator()
    monkeypatch.setitem(sys.modules, "KSR", emulator.module)
    assert kamhttp.http_client_query(None, "$var(r)") == -1
    assert kamhttp.http_client_request("GET\r\nX: 1", f"{http_server.url}/echo", "", "",
                                       "$var(r)") == -1
    assert kamhttp.http_connect("nope", "/echo", "$var(r)") == -1
    lines = emulator.ctx.logs
    assert [line.level for line in lines] == ["ERROR"] * 3
    assert all(line.text.startswith("http_client") and "\n" not in line.text for line in lines)
    assert "url must be a string" in lines[0].text
    assert "not an HTTP token" in lines[1].text
    assert "No cURL connection found: nope" in lines[2].text
