"""The outage guard against real local servers: every change of the breaker's state, the
failover tried at once while open, the bound on connecting processes (forked workers sharing
the table), and what a kept connection dropped while idle costs."""
from __future__ import annotations

import json
import os
import time

import pytest

import kamhttp
from kamhttp import pv
from kamhttp.core import guard
from tests.servers import PASSWORD, USER

pytestmark = pytest.mark.usefixtures("fresh_config", "fresh_guard")


@pytest.fixture
def fresh_guard():
    guard.reset()
    yield
    guard.reset()

RES = "$var(res)"


def kemi(con: str, path: str) -> int:
    return kamhttp.http_client.curl_connect(con, path, RES)


def breaker(con: str) -> str:
    return pv.get(f"$httpbreaker({con})")


def counts(con: str) -> dict[str, int]:
    shared = guard.table()
    assert shared is not None
    base = shared.find(f"connection {con}")
    assert base is not None
    return guard.counts(base)


def past_cooldown(con: str, cooldown_ms: int) -> None:
    """Wait (bounded) until the open breaker's cool-down has passed: the behaviour under test
    is what happens after it."""
    shared = guard.table()
    assert shared is not None
    base = shared.find(f"connection {con}")
    assert base is not None
    opened = shared.words[base + 3]
    deadline = time.monotonic() + 5
    while time.monotonic_ns() < opened + cooldown_ms * 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.001)


def test_off_by_default_as_in_c(http_server):
    kamhttp.modparam("httpcon", f"api=>{http_server.url}")
    assert [kemi("api", "/code/503") for _ in range(10)] == [503] * 10
    assert breaker("api") == ""


def test_opens_after_consecutive_failures_and_refuses_at_once(http_server):
    kamhttp.modparam("httpcon", f"api=>{http_server.url};breaker_failures=3;"
                     "breaker_cooldown=60000")
    http_server.clear()
    codes = [kemi("api", "/code/503") for _ in range(5)]
    assert codes == [503, 503, 503, -6, -6]
    assert len(http_server.requests) == 3                  # the refused ones never left
    assert breaker("api") == "open"
    assert pv.get("$curlerror(-6)") == "kamhttp: circuit open, no request sent"
    assert (counts("api")["opens"], counts("api")["rejects"]) == (1, 2)


def test_a_success_resets_the_count(http_server):
    kamhttp.modparam("httpcon", f"api=>{http_server.url};breaker_failures=3")
    codes = [kemi("api", p) for p in ("/code/503", "/code/503", "/code/200", "/code/503",
                                      "/code/503", "/code/200")]
    assert codes == [503, 503, 200, 503, 503, 200] and breaker("api") == "closed"


def test_curl_errors_count_and_the_failover_is_tried_at_once(http_server, fault_server):
    kamhttp.modparam("httpcon", f"backup=>{http_server.url}")
    kamhttp.modparam("httpcon", f"dead=>{fault_server.refused_url};failover=backup;"
                     "breaker_failures=2;breaker_cooldown=60000")
    assert [kemi("dead", "/code/200?body=b") for _ in range(4)] == [200] * 4
    assert pv.get(RES) == "b" and breaker("dead") == "open"
    assert counts("dead")["rejects"] == 2                  # attempts 3 and 4 went to backup


def test_half_open_probe_success_closes(http_server):
    kamhttp.modparam("httpcon", f"api=>{http_server.url};breaker_failures=2;"
                     "breaker_cooldown=50")
    assert [kemi("api", "/code/500") for _ in range(2)] == [500, 500]
    assert kemi("api", "/code/200") == -6
    past_cooldown("api", 50)
    http_server.clear()
    assert kemi("api", "/code/200") == 200                 # the probe
    assert len(http_server.requests) == 1 and breaker("api") == "closed"
    assert [kemi("api", "/code/200") for _ in range(3)] == [200] * 3
    c = counts("api")
    assert (c["opens"], c["probes"], c["closes"]) == (1, 1, 1)


def test_half_open_probe_failure_opens_again(http_server):
    kamhttp.modparam("httpcon", f"api=>{http_server.url};breaker_failures=1;"
                     "breaker_cooldown=50")
    assert kemi("api", "/code/502") == 502
    past_cooldown("api", 50)
    assert kemi("api", "/code/502") == 502                 # the probe fails
    assert breaker("api") == "open" and kemi("api", "/code/200") == -6
    assert counts("api")["opens"] == 2


def test_failure_ratio_in_the_window_opens(http_server):
    kamhttp.modparam("httpcon", f"api=>{http_server.url};breaker_ratio=50;"
                     "breaker_window=60;breaker_cooldown=60000")
    paths = ["/code/200", "/code/500"] * 5                 # 10 attempts, half failed
    codes = [kemi("api", p) for p in paths]
    assert codes == [200, 500] * 5 and breaker("api") == "open"
    assert kemi("api", "/code/200") == -6


def test_direct_url_functions_have_a_breaker_per_host_and_port(http_server, fault_server):
    kamhttp.modparam("breaker_failures", 2)
    kamhttp.modparam("breaker_cooldown", 60000)
    dead = f"{fault_server.refused_url}/x"
    assert [kamhttp.http_client.query(dead, RES) for _ in range(3)] == [7, 7, -6]
    assert kamhttp.http_client.query(f"{http_server.url}/code/200?body=ok", RES) == 200
    assert breaker(fault_server.refused_url) == "open"
    assert breaker(http_server.url) == "closed"


def test_max_connecting_bounds_the_processes_probing_a_failing_upstream(fault_server):
    """Three forked workers call an upstream that failed last (not known to be alive) at
    once: one may connect, the two others get -6 without a connection."""
    kamhttp.modparam("httpcon", f"api=>{fault_server.url};timeout=3;max_connecting=1")
    kamhttp.finalize()
    assert kemi("api", "/fault/reset") > 0                 # a failure: not known alive
    fault_server.clear()
    readers = []
    for _ in range(3):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            rc = kemi("api", "/fault/silent?seconds=1")
            os.write(write_end, json.dumps(rc).encode())
            os._exit(0)
        os.close(write_end)
        readers.append((pid, read_end))
    codes = []
    for pid, read_end in readers:
        with os.fdopen(read_end) as pipe:
            codes.append(json.loads(pipe.read()))
        os.waitpid(pid, 0)
    assert sorted(codes) == [-6, -6, 52]                   # silent 1 s, then closed
    assert len(fault_server.requests) == 1


@pytest.mark.parametrize("close", ["", "?reset=1"])
def test_a_kept_connection_dropped_while_idle_is_retried_by_libcurl(fault_server, close):
    """The server closes the kept connection at the next request without a byte of answer
    (FIN, or RST): libcurl sends a GET again once, on a new connection, so the call
    succeeds."""
    kamhttp.modparam("keep_connections", 1)
    kamhttp.modparam("httpcon", f"api=>{fault_server.url}")
    assert [kemi("api", f"/fault/stale{close}") for _ in range(3)] == [200, 200, 200]
    assert pv.get(RES) == "fresh"


def _methods_seen(server, path: str) -> list[tuple[str, int]]:
    return [(r.method, r.client_port) for r in server.requests if r.path.startswith(path)]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_an_idempotent_request_is_sent_again_when_its_kept_connection_fails(fault_server,
                                                                           method):
    kamhttp.modparam("keep_connections", 1)
    url = f"{fault_server.url}/fault/stale"
    assert kamhttp.http_client_query(url, RES) == 200          # the connection kept
    fault_server.clear()
    assert kamhttp.http_client_request(method, url, "b=1", "", RES) == 200
    seen = _methods_seen(fault_server, "/fault/stale")
    assert [m for m, _ in seen] == [method, method] and seen[0][1] != seen[1][1]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_post_is_never_sent_twice(fault_server, method, caplog):
    """Issue 13.3: the kept connection fails under a POST before any answer; the server may
    have acted on it, so it is not sent again: curl 65, logged; the next one goes on a new
    connection."""
    kamhttp.modparam("keep_connections", 1)
    url = f"{fault_server.url}/fault/stale"
    assert kamhttp.http_client_query(url, RES) == 200
    fault_server.clear()
    assert kamhttp.http_client_request(method, url, "cdr=1", "", RES) == 65
    assert [m for m, _ in _methods_seen(fault_server, "/fault/stale")] == [method]
    assert "not idempotent: not sent again" in caplog.text
    assert kamhttp.http_client_request(method, url, "cdr=2", "", RES) == 200
    assert [m for m, _ in _methods_seen(fault_server, "/fault/stale")] == [method, method]


def test_a_post_does_not_take_a_connection_the_server_closed_while_idle(fault_server):
    """The server closed the kept connection 0 ms after its answer (a short keep-alive
    timeout): libcurl would send on it (it checks connections idle for a second), kamhttp
    sees the close first and the POST goes once, on a new connection."""
    kamhttp.modparam("keep_connections", 1)
    url = f"{fault_server.url}/fault/idle-close?ms=0"
    fault_server.clear()
    assert kamhttp.http_client_query(url, RES) == 200
    assert fault_server.wait_for(lambda: "idle-close: closed" in fault_server.errors)
    kept_port = _methods_seen(fault_server, "/fault/idle-close")[-1][1]
    fault_server.clear()
    assert kamhttp.http_client_request("POST", url, "cdr=1", "", RES) == 200
    seen = _methods_seen(fault_server, "/fault/idle-close")
    assert [m for m, _ in seen] == ["POST"] and seen[0][1] != kept_port


@pytest.mark.parametrize("path, status", [("/auth/digest", 200),
                                          ("/redirect/307?to=/echo", 200)])
def test_a_post_answered_first_is_sent_again_with_its_body(http_server, path, status):
    """An answer came (a Digest challenge, a 307): the body is sent again, as always."""
    kamhttp.modparam("keep_connections", 1)
    kamhttp.modparam("httpcon", f"api=>http://{USER}:{PASSWORD}@{http_server.url[7:]}")
    http_server.clear()
    assert kamhttp.http_connect("api", path, "text/plain", "d=1", RES) == status
    bodies = [r.body for r in http_server.requests]
    assert bodies == [b"d=1", b"d=1"]
