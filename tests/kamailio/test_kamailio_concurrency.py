"""Fork safety under SIP load: hundreds of requests in flight across Kamailio's 4 workers, each
reply carrying its own request's HTTP answer, and kamhttp's counters summed over the workers.

kamhttp is configured in mod_init (the main process) and imported before Kamailio forks; curl
handles must then belong to one worker each. Every request here carries a unique token that
travels through a PV, a connection, a direct URL and a POST body; a reply with another
request's token, a socket used by two workers, or a lost count is a failure."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid

import pytest

from .kamharness import HERE, ROOT, Kamailio, SipClient

RES = "$var(res)"
IN_FLIGHT = 240


def yaml_text(http_url: str) -> str:
    return f"""\
modparams:
  - connection_timeout: 5
  - keep_connections: 1
  - httpcon: "api=>{http_url}"
  - httpcon: "refused=>http://127.0.0.1:1"
"""


@pytest.fixture(scope="module")
def kamailio(start_kamailio, tmp_path_factory, http_server) -> Kamailio:
    path = tmp_path_factory.mktemp("concurrency") / "http_client.yaml"
    path.write_text(yaml_text(http_server.url))
    return start_kamailio(script="probe.py", env={"PROBE_KAMHTTP_CONFIG": str(path)})


def counters(kamailio: Kamailio) -> dict[str, int]:
    """What an operator reads: ``python -m kamhttp counters --pid MAINPID``."""
    done = subprocess.run([sys.executable, "-m", "kamhttp", "counters", "--pid",
                           str(kamailio.pid)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return {k: v for k, v in json.loads(done.stdout).items()
            if k in ("connections", "connok", "connfail")}


def token_steps(token: str, http_url: str) -> list[dict]:
    return [
        {"set": "$var(tok)", "value": token},
        {"call": "kamhttp.cfg", "fn": "http_connect",
         "args": ["api", "/code/200?body=$var(tok)", RES], "read": [RES]},
        {"call": "kamhttp.kemi", "fn": "query",
         "args": [f"{http_url}/slow?delay=0.02&body={token}", RES], "read": [RES]},
        {"call": "kamhttp.kemi", "fn": "curl_connect_post",
         "args": ["api", "/echo", "text/plain", token, RES], "read": [RES]},
        {"pv": "$var(tok)", "via": "ksr"},
    ]


def test_requests_in_flight_get_their_own_answers(kamailio, http_server):
    workers = kamailio.worker_pids()
    assert len(workers) == 4, kamailio.log_tail()
    before = counters(kamailio)
    tokens = [f"t{i}-{uuid.uuid4().hex[:12]}" for i in range(IN_FLIGHT)]
    with SipClient(kamailio.sip_port) as sip:
        requests = [sip.build(body=json.dumps({"steps": token_steps(t, http_server.url)}))
                    for t in tokens]
        replies = sip.send_many(requests, timeout=120, retransmit=True)

    port_owner: dict[int, int] = {}
    pids = set()
    for token, request in zip(tokens, requests):
        reply = replies[request.call_id]
        assert reply.status == 200, reply.body
        answer = reply.json()
        _set, connect, query, post, var = answer["steps"]
        assert (connect["rc"], connect["read"][RES]) == (200, token)
        assert (query["rc"], query["read"][RES]) == (200, token)
        echo = json.loads(post["read"][RES])
        assert (post["rc"], echo["method"], echo["body"]) == (200, "POST", token)
        assert var["value"] == token
        pids.add(answer["pid"])
        # a TCP connection (client port) used by two workers would be a handle shared
        # across the fork
        assert port_owner.setdefault(echo["client_port"], answer["pid"]) == answer["pid"]
    assert pids == set(workers), "every worker served requests"
    assert len(port_owner) <= len(workers), "keep_connections reuses one connection per worker"

    # the server saw each token exactly where it was sent: no duplicate, no lost request
    seen = [r.path for r in http_server.requests if "t" in r.path and "-" in r.path]
    for token in tokens[:20]:
        assert sum(token in path for path in seen) == 2, token  # /code and /slow
    after = counters(kamailio)
    assert after["connok"] - before["connok"] == 3 * IN_FLIGHT
    assert after["connfail"] - before["connfail"] == 0


def test_counters_are_summed_over_workers(kamailio, http_server):
    """Failures counted in whatever worker got them add up in the totals (spec 7.2: connok only
    for exactly 200, connfail for any other status and for curl errors)."""
    before = counters(kamailio)
    plan = [("api", "/code/200?body=ok")] * 40 + [("api", "/code/404")] * 30 + \
        [("api", "/code/201")] * 20 + [("refused", "/")] * 10
    with SipClient(kamailio.sip_port) as sip:
        requests = [sip.build(body=json.dumps({"steps": [
            {"call": "kamhttp.kemi", "fn": "curl_connect", "args": [con, path, RES],
             "read": [RES]}]})) for con, path in plan]
        replies = sip.send_many(requests, timeout=60, retransmit=True)
    codes = sorted(replies[r.call_id].json()["steps"][0]["rc"] for r in requests)
    assert codes == sorted([200] * 40 + [404] * 30 + [201] * 20 + [7] * 10)
    assert len({replies[r.call_id].json()["pid"] for r in requests}) > 1
    after = counters(kamailio)
    assert after["connok"] - before["connok"] == 40
    assert after["connfail"] - before["connfail"] == 60
    assert after["connections"] == 2  # every definition in memory (the C module: httpcon only)


@pytest.mark.skipif(shutil.which("sipp") is None,
                    reason="sipp is not installed (apt-get install sip-tester)")
def test_sipp_load(kamailio, tmp_path):
    """SIPp keeps 200 MESSAGEs in flight; the probe answers 200 only when the HTTP answers
    carry the call's own token, so sipp's exit status is 0 only without cross-talk."""
    calls = 400
    command = ["sipp", "-sf", str(HERE / "sipp" / "message_http.xml"), "-key", "api", "api",
               "-i", "127.0.0.1", "-p", "0", "-m", str(calls), "-l", "200", "-r", "2000",
               "-nostdin", "-nd", "-timeout", "90s", "-timeout_error", "-trace_stat",
               "-stf", str(tmp_path / "stats.csv"), "-trace_err",
               "-error_file", str(tmp_path / "errors.log"),
               f"127.0.0.1:{kamailio.sip_port}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    errors = (tmp_path / "errors.log").read_text() if (tmp_path / "errors.log").exists() else ""
    assert done.returncode == 0, f"sipp exit {done.returncode}\n{errors[-3000:]}\n" \
                                 f"{done.stdout[-3000:]}{done.stderr[-2000:]}"
    stats = (tmp_path / "stats.csv").read_text().splitlines()
    header, last = stats[0].split(";"), stats[-1].split(";")
    row = dict(zip(header, last))
    assert int(row["SuccessfulCall(C)"]) == calls
    assert int(row["FailedCall(C)"]) == 0
