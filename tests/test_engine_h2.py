"""HTTP/2 with prior knowledge for the v2pk functions, HTTP/1.1 for the others (spec 5.10)."""
from __future__ import annotations

import json

import pytest

import kamhttp
from kamhttp import pv


@pytest.fixture
def modparam():
    kamhttp.reset()
    kamhttp.modparam("query_result", 0)
    yield kamhttp.modparam
    kamhttp.reset()


def test_v2pk_speaks_http2_without_upgrade(modparam, h2c_server):
    assert kamhttp.http_client_request_v2pk("POST", f"{h2c_server.url}/echo", "b=1",
                                            "X-H: 2", "$var(r)") == 200
    document = json.loads(pv.get("$var(r)"))
    assert (document["http_version"], document["method"], document["body"]) == ("2", "POST",
                                                                                "b=1")
    assert ["x-h", "2"] in document["headers"]
    assert kamhttp.http_client.query_request_v2pk("GET", f"{h2c_server.url}/code/204", "", "",
                                                  "$var(r)") == 204


def test_other_functions_stay_on_http11(modparam, h2c_server):
    assert kamhttp.http_client_request("GET", f"{h2c_server.url}/echo", "", "",
                                       "$var(r)") == 200
    assert json.loads(pv.get("$var(r)"))["http_version"] == "1.1"
    assert kamhttp.http_client_request_v2pk("GET", f"{h2c_server.url}/echo", "", "",
                                            "$var(r)") == 200
    assert json.loads(pv.get("$var(r)"))["http_version"] == "2"


def test_v2pk_reuses_its_connection(modparam, h2c_server):
    modparam("keep_connections", 1)
    h2c_server.clear()
    for _ in range(3):
        assert kamhttp.http_client_request_v2pk("GET", f"{h2c_server.url}/code/200", "", "",
                                                "$var(r)") == 200
    assert len({r.client_port for r in h2c_server.requests}) == 1
