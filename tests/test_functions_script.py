"""The script-facing function table: which arguments the cfg functions PV-expand, the KEMI
exports (no expansion), result-variable checks, bad arguments and return conventions
(spec 5.1-5.12, 11)."""
from __future__ import annotations

import json
import types

import pytest

import kamhttp
from kamhttp import pv


@pytest.fixture
def modparam(http_server):
    kamhttp.reset()
    pv.clear_fallback()
    kamhttp.modparam("query_result", 0)
    kamhttp.modparam("httpcon", f"api=>{http_server.url}")
    http_server.clear()
    yield kamhttp.modparam
    kamhttp.reset()
    pv.clear_fallback()


def echo() -> dict:
    return json.loads(pv.get("$var(r)"))


# --- cfg functions: what is expanded ----------------------------------------------------------

def test_http_connect_expands_url_and_data_but_not_the_rest(modparam, http_server):
    pv.sets("$var(p)", "echo")
    pv.sets("$var(d)", "dynamic")
    assert kamhttp.http_connect("api", "/$var(p)?u=$null", "text/$var(p)", "x=$var(d)",
                                "$var(r)") == 200
    document = echo()
    assert (document["path"], document["query"]) == ("/echo", "u=<null>")
    assert document["body"] == "x=dynamic"
    assert ["Content-Type", "text/$var(p)"] in document["headers"]


def test_connection_name_is_literal(modparam):
    pv.sets("$var(c)", "api")
    pv.sets("$var(r)", "untouched")
    assert kamhttp.http_connect("$var(c)", "/echo", "$var(r)") == -1
    assert pv.get("$var(r)") == ""


def test_http_connect_raw_sends_data_as_written(modparam):
    pv.sets("$var(p)", "echo")
    assert kamhttp.http_connect_raw("api", "/$var(p)", "application/json",
                                    'raw $var(body) {"a": "$x"}', "$var(r)") == 200
    assert echo()["body"] == 'raw $var(body) {"a": "$x"}'


def test_direct_functions_expand_url_data_hdrs_and_method(modparam, http_server):
    pv.sets("$var(m)", "PUT")
    pv.sets("$var(v)", "42")
    url = f"{http_server.url}/echo?v=$var(v)"
    assert kamhttp.http_client_request("$var(m)", url, "b=$var(v)", "X-V: $var(v)",
                                       "$var(r)") == 200
    document = echo()
    assert (document["method"], document["query"], document["body"]) == ("PUT", "v=42", "b=42")
    assert ["X-V", "42"] in document["headers"]
    assert kamhttp.http_client_get(url, "", "X-V: $var(v)", "$var(r)") == 200
    assert echo()["method"] == "GET"
    assert kamhttp.http_client_query(url, "$var(v)", "X-W: $var(v)", "$var(r)") == 200
    assert echo()["body"] == "42"


@pytest.mark.parametrize("call", [
    lambda: kamhttp.http_client_query("$var(empty)", "$var(r)"),
    lambda: kamhttp.http_client_get("", "", "", "$var(r)"),
    lambda: kamhttp.http_client_request("", "http://127.0.0.1:1/", "", "", "$var(r)"),
    lambda: kamhttp.http_client_request_v2pk("GET", "", "", "", "$var(r)"),
    lambda: kamhttp.http_client_query("http://127.0.0.1:1/$ x", "$var(r)"),
])
def test_evaluation_failure_gives_minus_one_and_leaves_the_result(modparam, http_server, call):
    pv.sets("$var(empty)", "")
    pv.sets("$var(r)", "untouched")
    assert call() == -1
    assert pv.get("$var(r)") == "untouched"
    assert http_server.requests == []


# --- result variables and bad arguments -------------------------------------------------------

@pytest.mark.parametrize("result", ["$rm", "$si", "$var(x", "var(x)", "$var(x) y", "", None, 7])
def test_bad_result_variable_is_refused_before_the_request(modparam, http_server, result):
    assert kamhttp.http_connect("api", "/echo", result) == -1
    assert kamhttp.http_client_query(f"{http_server.url}/echo", result) == -1
    assert kamhttp.http_client.query(f"{http_server.url}/echo", result) == -1
    assert kamhttp.http_client.curl_connect("api", "/echo", result) == -1
    assert http_server.requests == []


@pytest.mark.parametrize("result", ["$var(x)", "$avp(s:x)", "$xavp(a=>b)", "$shv(x)", "$ru",
                                    "$(avp(x)[0])", "$sht(t=>k)", "$dlg_var(x)"])
def test_writable_result_variables(modparam, result):
    assert kamhttp.http_connect("api", "/code/200?body=ok", result) == 200
    assert pv.get(result) == "ok"


@pytest.mark.parametrize("call", [
    lambda: kamhttp.http_connect(None, "/echo", "$var(r)"),
    lambda: kamhttp.http_connect("api", 5, "$var(r)"),
    lambda: kamhttp.http_connect("api", "/echo", "text/plain", None, "$var(r)"),
    lambda: kamhttp.http_connect("api", "/echo", "a", "$var(r)"),
    lambda: kamhttp.http_client_query(b"http://127.0.0.1/", "$var(r)"),
    lambda: kamhttp.http_client_query("http://127.0.0.1/", "a", "b", "c", "$var(r)"),
    lambda: kamhttp.http_client.query(None, "$var(r)"),
    lambda: kamhttp.http_client.curl_connect_post("api", "/", 3, "x", "$var(r)"),
    lambda: kamhttp.http_client_response_headers_set("yes"),
])
def test_bad_arguments_give_minus_one_never_an_exception(modparam, http_server, call):
    assert call() == -1
    assert http_server.requests == []


def test_unknown_connection(modparam):
    pv.sets("$var(r)", "untouched")
    assert kamhttp.http_connect("Api", "/echo", "$var(r)") == -1      # names are exact
    assert pv.get("$var(r)") == ""
    assert kamhttp.http_get_redirect("nope", "$var(r)") == -1
    assert pv.get("$var(r)") == ""


def test_redirect_before_any_request_is_empty(modparam):
    pv.sets("$var(u)", "x")
    assert kamhttp.http_get_redirect("api", "$var(u)") == 1
    assert pv.get("$var(u)") == ""


# --- KEMI exports -----------------------------------------------------------------------------

def test_kemi_exports_do_not_expand(modparam, http_server):
    pv.sets("$var(v)", "42")
    url = f"{http_server.url}/echo?v=$var(v)"
    assert kamhttp.http_client.query_post_hdrs(url, "b=$var(v)", "X-V: $var(v)",
                                               "$var(r)") == 200
    document = echo()
    assert (document["query"], document["body"]) == ("v=$var(v)", "b=$var(v)")
    assert ["X-V", "$var(v)"] in document["headers"]
    assert kamhttp.http_client.curl_connect_post("api", "/echo", "text/plain", "$var(v)",
                                                 "$var(r)") == 200
    assert echo()["body"] == "$var(v)"


def test_kemi_query_with_empty_url_reaches_libcurl(modparam):
    pv.sets("$var(r)", "untouched")
    assert kamhttp.http_client.query("", "$var(r)") == 3
    assert pv.get("$var(r)") == ""


def test_kemi_method_selection(modparam, http_server):
    url = f"{http_server.url}/echo"
    assert kamhttp.http_client.query_request("", url, "", "", "$var(r)") == 200
    assert echo()["method"] == "GET"
    assert kamhttp.http_client.query_request("", url, "b", "", "$var(r)") == 200
    assert echo()["method"] == "POST"
    assert kamhttp.http_client.query_request("OPTIONS", url, "", "", "$var(r)") == 200
    assert echo()["method"] == "OPTIONS"
    assert kamhttp.http_client.get_hdrs(url, "b", "X-G: 1", "$var(r)") == 200
    assert (echo()["method"], echo()["body"]) == ("GET", "b")
    assert kamhttp.http_client.query_post(url, "", "$var(r)") == 200
    assert echo()["method"] == "GET"
    assert kamhttp.http_client.curl_connect("api", "/echo", "$var(r)") == 200
    assert kamhttp.http_client.get_redirect("api", "$var(u)") == 1
    assert pv.get("$var(u)") == f"{http_server.url}/echo"


def test_install_makes_the_kemi_exports_ksr_http_client(modparam):
    ksr = types.SimpleNamespace()
    kamhttp.install(ksr)
    assert ksr.http_client is kamhttp.http_client
    for name in ("query", "query_post", "query_post_hdrs", "get_hdrs", "query_request",
                 "query_request_v2pk", "curl_connect", "curl_connect_post", "get_redirect",
                 "response_headers_set", "response_headers_clear"):
        assert callable(getattr(ksr.http_client, name))


def test_curl_error_text(modparam):
    assert kamhttp.http_client_query("http://127.0.0.1:1/", "$var(r)") == 7
    assert pv.get("$curlerror(7)") == kamhttp.core.curlerror.curl_strerror(7) != ""
