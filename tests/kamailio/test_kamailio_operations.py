"""Operating kamhttp on a running Kamailio with Kamailio's own tools: the counters in
Kamailio's statistics (``cnt.grp_get_all httpclient``, summed over the workers by Kamailio),
the loaded connections and a Prometheus scrape over xhttp (kamailio-cfg/kamailio.cfg with
-A KAMHTTP_OPERATOR_PORT), parsed by prometheus_client's own parser."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .kamharness import SipClient, free_port

RES = "$var(res)"


@pytest.fixture(scope="module")
def operated(start_kamailio, tmp_path_factory, http_server):
    path = tmp_path_factory.mktemp("ops") / "http_client.yaml"
    path.write_text(f"""modparams:
  - latency_metrics: 1
  - keep_connections: 1
  - httpcon: "api=>{http_server.url}"
  - httpcon: "secret=>http://user:hunter2@127.0.0.1:9/x;breaker_failures=50"
connections:
  filed:
    url: {http_server.url}/filed
""")
    port = free_port(socket.SOCK_STREAM)
    kamailio = start_kamailio(script="probe.py", env={"PROBE_KAMHTTP_CONFIG": str(path),
                                                      "PROBE_INSTALL": "1"},
                              defines={"KAMHTTP_OPERATOR_PORT": port})
    return kamailio, f"http://127.0.0.1:{port}", path


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


def test_counters_in_kamailios_own_statistics(operated):
    kamailio, _, _ = operated
    before = kamailio.rpc("cnt.grp_get_all", "httpclient")
    steps = [{"call": "kamhttp.kemi", "fn": "curl_connect", "args": ["api", path, RES],
              "read": [RES]} for path in ("/code/200", "/code/404")]
    with SipClient(kamailio.sip_port) as sip:
        requests = [sip.build(body=json.dumps({"steps": steps})) for _ in range(30)]
        replies = sip.send_many(requests, timeout=30)
    assert len({json.loads(r.body)["pid"] for r in replies.values()}) > 1   # several workers
    after = kamailio.rpc("cnt.grp_get_all", "httpclient")
    assert (after["connok"] - before["connok"], after["connfail"] - before["connfail"]) == (
        30, 30)
    assert after["connections"] == 3
    store = subprocess.run([sys.executable, "-m", "kamhttp", "counters", "--pid",
                            str(kamailio.pid)], capture_output=True, text=True, timeout=30)
    assert json.loads(store.stdout) == after          # python -m kamhttp counters agrees


def test_listcon_of_the_running_server_matches_its_files(operated):
    _, base, path = operated
    served = json.loads(get(f"{base}/kamhttp/listcon"))
    from_file = json.loads(subprocess.run(
        [sys.executable, "-m", "kamhttp", "listcon", str(path)], capture_output=True,
        text=True, timeout=30).stdout)
    assert served == from_file
    assert "hunter2" not in json.dumps(served)


def test_prometheus_scrape_parses_and_its_counts_match(operated):
    kamailio, base, _ = operated
    totals = json.loads(get(f"{base}/kamhttp/counters"))
    families = {f.name: f for f in text_string_to_metric_families(get(f"{base}/metrics"))}
    requests = {s.labels["outcome"]: s.value for s in families["kamhttp_requests"].samples
                if s.name == "kamhttp_requests_total"}
    assert requests == {"ok": totals["connok"], "fail": totals["connfail"]}
    assert families["kamhttp_connections"].samples[0].value == 3
    states = {s.labels["upstream"]: s.value for s in families["kamhttp_breaker_state"].samples}
    assert states.get("connection secret", 0) == 0
    total = families["kamhttp_total_seconds"]
    counts = {s.labels["connection"]: s.value for s in total.samples
              if s.name == "kamhttp_total_seconds_count"}
    assert counts["api"] == totals["connok"] + totals["connfail"]      # every attempt timed
    inf = [s.value for s in total.samples if s.name == "kamhttp_total_seconds_bucket"
           and s.labels == {"connection": "api", "le": "+Inf"}]
    assert inf == [counts["api"]]
    for timer in ("connect", "tls", "first_byte"):
        assert f"kamhttp_{timer}_seconds" in families
    assert "kamhttp_async_in_flight" in families
