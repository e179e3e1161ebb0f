"""HTTPS with the test CA: verification (peer, host), client certificates, tlsversion, and
the handle reuse that keeps TLS cheap (spec 2.2, 6.1)."""
from __future__ import annotations

import json

import pytest

import kamhttp
from kamhttp import pv


TLS_REFUSED = (35, 55, 56)
"""SSL connect error, send failure, receive failure."""


@pytest.fixture
def modparam():
    kamhttp.reset()
    yield kamhttp.modparam
    kamhttp.reset()


def test_https_verified_with_cacert(modparam, https_server):
    modparam("cacert", https_server.ca_file)
    modparam("httpcon", f"tls=>{https_server.url}")
    assert kamhttp.http_connect("tls", "/code/200?body=secure", "$var(r)") == 200
    assert pv.get("$var(r)") == "secure"
    assert kamhttp.http_client_query(f"{https_server.url}/code/200?body=direct",
                                     "$var(r)") == 200
    assert pv.get("$var(r)") == "direct"


def test_cacert_is_read_at_request_time(modparam, https_server):
    modparam("httpcon", f"tls=>{https_server.url}")
    modparam("cacert", https_server.ca_file)      # after the httpcon: still used (spec 2.1)
    assert kamhttp.http_connect("tls", "/code/200", "$var(r)") == 200


def test_wrong_host_and_untrusted_ca_fail_with_60(modparam, https_server,
                                                  https_untrusted_server):
    modparam("cacert", https_server.ca_file)
    modparam("httpcon", f"wrong=>{https_server.wrong_host_url}")
    modparam("httpcon", f"untrusted=>{https_untrusted_server.url}")
    assert kamhttp.http_connect("wrong", "/code/200", "$var(r)") == 60
    assert kamhttp.http_connect("untrusted", "/code/200", "$var(r)") == 60
    assert pv.get("$var(r)") == ""
    assert kamhttp.http_client_query(f"{https_untrusted_server.url}/", "$var(r)") == 60
    assert pv.get("$curlerror(60)") == "SSL peer certificate or SSH remote key was not OK"


def test_verification_can_be_disabled_per_load_order(modparam, https_server,
                                                     https_untrusted_server):
    modparam("cacert", https_server.ca_file)
    modparam("httpcon", f"strict=>{https_untrusted_server.url}")
    modparam("verify_peer", 0)
    modparam("httpcon", f"lax=>{https_untrusted_server.url}")
    modparam("verify_host", 0)
    modparam("verify_peer", 1)
    modparam("httpcon", f"nohost=>{https_server.wrong_host_url}")
    assert kamhttp.http_connect("strict", "/code/200", "$var(r)") == 60
    assert kamhttp.http_connect("lax", "/code/200", "$var(r)") == 200
    assert kamhttp.http_connect("nohost", "/code/200", "$var(r)") == 200


def test_per_connection_verify_keys(modparam, https_server, https_untrusted_server):
    modparam("cacert", https_server.ca_file)
    modparam("httpcon", f"lax=>{https_untrusted_server.url};verify_peer=0;verify_host=0")
    assert kamhttp.http_connect("lax", "/code/200", "$var(r)") == 200


def test_client_certificate_on_connection_and_direct(modparam, https_client_cert_server):
    server = https_client_cert_server
    modparam("cacert", server.ca_file)
    modparam("httpcon", f"anonymous=>{server.url}")
    modparam("client_cert", server.client_cert)
    modparam("client_key", server.client_key)
    modparam("httpcon", f"client=>{server.url}")
    modparam("query_result", 0)
    server.clear()
    assert kamhttp.http_connect("client", "/echo", "$var(r)") == 200
    assert server.requests[-1].client_cert_subject == server.tls_files.client_subject
    assert kamhttp.http_client_query(f"{server.url}/echo", "$var(r)") == 200
    assert server.requests[-1].client_cert_subject == server.tls_files.client_subject
    # TLS 1.3 refuses a missing certificate after the handshake: timing picks the code
    assert kamhttp.http_connect("anonymous", "/echo", "$var(r)") in TLS_REFUSED


def test_client_cert_without_key_is_not_used(modparam, https_client_cert_server):
    server = https_client_cert_server
    modparam("cacert", server.ca_file)
    modparam("client_cert", server.client_cert)
    modparam("httpcon", f"halfway=>{server.url}")
    assert kamhttp.http_connect("halfway", "/echo", "$var(r)") in TLS_REFUSED


def test_refused_tlsversion_is_an_option_error(modparam, https_server):
    modparam("cacert", https_server.ca_file)
    modparam("tlsversion", 3)                 # SSLv3: libcurl refuses the option itself
    modparam("httpcon", f"old=>{https_server.url}")
    https_server.clear()
    assert kamhttp.http_connect("old", "/code/200", "$var(r)") == 43
    assert https_server.requests == []
    modparam("tlsversion", 6)
    modparam("httpcon", f"modern=>{https_server.url}")
    assert kamhttp.http_connect("modern", "/code/200", "$var(r)") == 200


def test_https_connection_is_reused(modparam, https_server):
    modparam("cacert", https_server.ca_file)
    modparam("keep_connections", 1)
    modparam("httpcon", f"tls=>{https_server.url}")
    https_server.clear()
    for _ in range(3):
        assert kamhttp.http_connect("tls", "/echo", "$var(r)") == 200
    assert len({r.client_port for r in https_server.requests}) == 1
    assert json.loads(pv.get("$var(r)"))["http_version"] == "1.1"
