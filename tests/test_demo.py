"""`python -m kamhttp demo`: the README's first command runs the routing-lookup example on
four INVITEs against a local API, prints each call's HTTP and SIP side, exits 0 and leaves no
server behind."""
from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import threading

from kamhttp.testing import demo
from kamhttp.core.curlerror import curl_strerror


def test_demo_command_prints_the_four_scenarios(tmp_path):
    done = subprocess.run([sys.executable, "-m", "kamhttp", "demo"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    sections = re.split(r"\n(?=\d\. )", out)
    assert len(sections) == 5                       # header, four scenarios (+ summary)
    found, not_found, timeout, failover = sections[1:]
    primary = re.search(r"routing API \(primary\)\s+(http://127\.0\.0\.1:\d+/v1)", out)[1]
    backup = re.search(r"routing API \(backup\)\s+(http://127\.0\.0\.1:\d+/v1)", out)[1]

    assert found.startswith("1. found")
    assert f"HTTP  POST {primary}/route [routing] -> 200 in " in found
    assert "SIP   relayed to sip:+4930123456@gw-berlin.example.net:5060" in found

    assert f"HTTP  POST {primary}/route [routing] -> 404 in " in not_found
    assert "SIP   replied 404 Not Found" in not_found and backup not in not_found

    assert f"POST {primary}/route [routing] -> curl error 28 ({curl_strerror(28)})" in timeout
    assert f"POST {backup}/route [routing_backup] -> curl error 28" in timeout
    assert "SIP   replied 503 Service Unavailable" in timeout

    assert f"POST {primary}/route [routing] -> curl error 7 ({curl_strerror(7)})" in failover
    assert "FATAL FAILURE: Trying failover to curl con (routing_backup)" in failover
    assert f"HTTP  POST {backup}/route [routing_backup] -> 200 in " in failover
    assert "SIP   relayed to sip:+4940987654@gw-hamburg.example.net:5060" in failover
    assert "4 INVITEs, 2 relayed, replies 404, 503; both API servers stopped." in failover


def test_demo_stops_its_servers():
    out = io.StringIO()
    assert demo.main(out=out) == 0
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)/v1", out.getvalue())]
    assert len(set(ports)) == 2
    for port in set(ports):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0       # nothing listens
    assert not [t for t in threading.enumerate() if t.name.startswith("routing-api-")]


def test_routing_api_answers():
    with demo.RoutingApi("test") as api:
        assert api.answer("POST", "/v1/route", b'{"callee": "+4930123456"}') == \
            (200, {"target": demo.ROUTES["+4930123456"], "served_by": "test"})
        assert api.answer("POST", "/v1/route", b'{"callee": "+1"}')[0] == 404
        assert api.answer("POST", "/v1/route", b"not json")[0] == 400
        assert api.answer("GET", "/v1/other", b"")[0] == 404
        assert [r.status for r in api.requests] == [200, 404, 400, 404]
