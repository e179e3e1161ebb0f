"""Basic and Digest authentication with connection credentials, and the proxy rules of the two
function families (spec 2.2, 3.3, 6.1)."""
from __future__ import annotations

import base64
import json

import pytest

import kamhttp
from kamhttp import pv
from tests.servers import PASSWORD, USER


@pytest.fixture
def modparam():
    kamhttp.reset()
    yield kamhttp.modparam
    kamhttp.reset()


def authorizations(server) -> list[str | None]:
    return [r.header("Authorization") for r in server.requests]


@pytest.mark.parametrize("scheme", ["basic", "digest"])
def test_default_authmethod_answers_the_challenge(modparam, http_server, scheme):
    modparam("httpcon", f"auth_{scheme}=>http://{USER}:{PASSWORD}@{http_server.url[7:]}")
    http_server.clear()
    assert kamhttp.http_connect(f"auth_{scheme}", f"/auth/{scheme}", "$var(r)") == 200
    assert pv.get("$var(r)") == f"authenticated {USER}"
    sent = authorizations(http_server)
    assert len(sent) == 2 and sent[0] is None
    assert sent[1].lower().startswith(scheme)


def test_the_method_learnt_is_used_at_once_on_the_next_request(modparam, http_server):
    modparam("httpcon", f"learn=>http://{USER}:{PASSWORD}@{http_server.url[7:]}")
    assert kamhttp.http_connect("learn", "/auth/basic", "$var(r)") == 200
    http_server.clear()
    assert kamhttp.http_connect("learn", "/auth/basic", "$var(r)") == 200
    assert [a.split()[0] for a in authorizations(http_server)] == ["Basic"]


def test_basic_only_is_preemptive(modparam, http_server):
    modparam("authmethod", 1)
    modparam("httpcon", f"auth=>http://{USER}:{PASSWORD}@{http_server.url[7:]}")
    http_server.clear()
    assert kamhttp.http_connect("auth", "/auth/basic", "$var(r)") == 200
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert authorizations(http_server) == [f"Basic {token}"]


def test_wrong_password_gives_401_and_its_body(modparam, http_server):
    modparam("httpcon", f"auth=>http://{USER}:wrong@{http_server.url[7:]}")
    assert kamhttp.http_connect("auth", "/auth/digest", "$var(r)") == 401
    assert pv.get("$var(r)") != ""


def test_credentials_stay_on_their_connection(modparam, http_server):
    modparam("httpcon", f"auth=>http://{USER}:{PASSWORD}@{http_server.url[7:]}")
    modparam("httpcon", f"open=>{http_server.url}")
    assert kamhttp.http_connect("auth", "/auth/basic", "$var(r)") == 200
    http_server.clear()
    assert kamhttp.http_connect("open", "/auth/basic", "$var(r)") == 401
    assert authorizations(http_server) == [None]


def test_connection_uses_the_proxy_only_with_a_port(modparam, http_server, proxy_server):
    modparam("httpproxy", "http://127.0.0.1")
    modparam("httpcon", f"direct=>{http_server.url}")        # port still 0: not proxied
    modparam("httpproxyport", proxy_server.port)
    modparam("httpcon", f"proxied=>{http_server.url}")
    proxy_server.clear()
    assert kamhttp.http_connect("direct", "/echo", "$var(r)") == 200
    assert proxy_server.requests == []
    assert kamhttp.http_connect("proxied", "/echo?via=proxy", "$var(r)") == 200
    assert [r.path for r in proxy_server.requests] == [f"{http_server.url}/echo?via=proxy"]
    assert json.loads(pv.get("$var(r)"))["query"] == "via=proxy"


def test_direct_functions_use_the_proxy_whenever_set(modparam, http_server, proxy_server):
    modparam("httpproxy", proxy_server.url)                   # port 0: still used (B14)
    modparam("query_result", 0)
    proxy_server.clear()
    assert kamhttp.http_client_query(f"{http_server.url}/echo", "$var(r)") == 200
    assert [r.path for r in proxy_server.requests] == [f"{http_server.url}/echo"]
