"""Failover (spec 6.6): one hop, on curl errors and status >= 500, never on 4xx."""
from __future__ import annotations

import dataclasses
import json

import pytest

import kamhttp
from kamhttp import pv
from kamhttp.ops import counters


@pytest.fixture
def modparam():
    kamhttp.reset()
    yield kamhttp.modparam
    kamhttp.reset()


def test_curl_error_fails_over_with_the_same_arguments(modparam, http_server, fault_server):
    modparam("httpcon", f"backup=>{http_server.url}")
    modparam("httpcon", f"primary=>{fault_server.refused_url};failover=backup")
    http_server.clear()
    assert kamhttp.http_connect("primary", "/echo?x=1", "text/plain", "payload",
                                "$var(r)") == 200
    [request] = http_server.requests
    assert (request.method, request.path, request.body) == ("POST", "/echo?x=1", b"payload")
    assert request.header("Content-Type") == "text/plain"


def test_status_500_fails_over_but_404_does_not(modparam, http_server):
    modparam("httpcon", f"backup=>{http_server.url}/echo")
    modparam("httpcon", f"primary=>{http_server.url}/code;failover=backup")
    assert kamhttp.http_connect("primary", "500", "$var(r)") == 200
    assert json.loads(pv.get("$var(r)"))["path"] == "/echo/500"
    assert kamhttp.http_connect("primary", "404?body=missing", "$var(r)") == 404
    assert pv.get("$var(r)") == "missing"


def test_only_one_hop(modparam, http_server, fault_server):
    modparam("httpcon", f"third=>{http_server.url}/code/200")
    modparam("httpcon", f"second=>{http_server.url}/code/500;failover=third")
    modparam("httpcon", f"first=>{fault_server.refused_url};failover=second")
    http_server.clear()
    assert kamhttp.http_connect("first", "", "$var(r)") == 500
    assert pv.get("$var(r)") == ""
    assert [r.path for r in http_server.requests] == ["/code/500"]


def test_self_loop_tries_twice(modparam, fault_server):
    modparam("httpcon", f"loop=>{fault_server.refused_url};failover=loop")
    before = counters.totals()["connfail"]
    assert kamhttp.http_connect("loop", "/x", "$var(r)") == 7
    assert counters.totals()["connfail"] - before == 2


def test_redirect_url_is_per_attempt(modparam, http_server, fault_server):
    modparam("httpcon", f"backup=>{http_server.url}")
    modparam("httpcon", f"primary=>{fault_server.refused_url};failover=backup")
    assert kamhttp.http_connect("primary", "/code/200", "$var(r)") == 200
    assert kamhttp.http_get_redirect("primary", "$var(u)") == 1
    assert pv.get("$var(u)") == ""
    assert kamhttp.http_get_redirect("backup", "$var(u)") == 1
    assert pv.get("$var(u)") == f"{http_server.url}/code/200"


def test_missing_failover_target_gives_minus_one(modparam, http_server, monkeypatch):
    """The configuration refuses an undefined failover at load, so only a configuration
    built otherwise can lack it: the request side then gives -1 and "", as C does."""
    modparam("httpcon", f"gone=>{http_server.url}")
    modparam("httpcon", f"primary=>{http_server.url}/code/503;failover=gone")
    complete = kamhttp.config.current()
    connections = {name: conn for name, conn in complete.connections.items() if name != "gone"}
    broken = dataclasses.replace(complete, connections=connections)
    monkeypatch.setattr(kamhttp.config, "current", lambda: broken)
    assert kamhttp.http_connect("primary", "", "$var(r)") == -1
    assert pv.get("$var(r)") == ""
