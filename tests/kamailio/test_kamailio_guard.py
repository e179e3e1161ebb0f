"""The outage guard in a real Kamailio (children 4): an upstream that accepts TCP and never
answers, timeout 1 s, 60 SIP requests at once whose script answers whatever the call gave.
The breaker, shared by the four workers through memory made before the fork, opens after
its failures: the upstream sees a handful of attempts, not 60, and every SIP request is
answered, most of them with the guard's -6 at once (a fallback can answer instead)."""
from __future__ import annotations

import json

from .kamharness import SipClient

RES = "$var(res)"


def test_blackholed_upstream_opens_one_breaker_for_all_workers(start_kamailio, tmp_path,
                                                                fault_server, http_server):
    path = tmp_path / "http_client.yaml"
    path.write_text(f"""modparams:
  - httpcon: "backup=>{http_server.url}"
  - httpcon: "blackhole=>{fault_server.url};timeout=1;breaker_failures=4;breaker_cooldown=60000"
  - httpcon: "guarded=>{fault_server.url};timeout=1;breaker_failures=4;breaker_cooldown=60000;failover=backup"
""")
    kamailio = start_kamailio(script="probe.py", env={"PROBE_KAMHTTP_CONFIG": str(path),
                                                      "PROBE_INSTALL": "1"})
    fault_server.clear()
    step = {"call": "kamhttp.kemi", "fn": "curl_connect",
            "args": ["blackhole", "/fault/silent?seconds=5", RES], "read": [RES]}
    with SipClient(kamailio.sip_port) as sip:
        requests = [sip.build(body=json.dumps({"steps": [step]})) for _ in range(60)]
        replies = sip.send_many(requests, timeout=30)
    codes = [json.loads(replies[r.call_id].body)["steps"][0]["rc"] for r in requests]
    assert set(codes) == {28, -6}
    attempts = len([r for r in fault_server.requests if r.path.startswith("/fault/silent")])
    assert attempts == codes.count(28) and 4 <= attempts <= 4 + 3   # the rest refused
    probe = {"steps": [{"pv": "$httpbreaker(blackhole)"},
                       {"call": "kamhttp.kemi", "fn": "curl_connect",
                        "args": ["guarded", "/code/200?body=fallback", RES], "read": [RES]}]}
    with SipClient(kamailio.sip_port) as sip:
        for _ in range(5):                          # open the second breaker
            sip.send(sip.build(body=json.dumps({"steps": [dict(step, args=[
                "guarded", "/fault/silent?seconds=5", RES])]})), timeout=30)
        answer = sip.send(sip.build(body=json.dumps(probe)), timeout=30).json()
    assert answer["steps"][0]["value"] == "open"
    assert (answer["steps"][1]["rc"], answer["steps"][1]["read"][RES]) == (200, "fallback")
