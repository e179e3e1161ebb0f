"""kamhttp's asynchronous functions in a real Kamailio: kamailio-cfg/kamailio.cfg (tm, tmx,
evrexec with kamhttp's HTTP process) runs tests/kamailio/scripts/async_probe.py.

Every test asserts that each SIP request got exactly one final reply carrying what the resume
method saw, and that Kamailio logged no failed or second t_continue.  The faults: the
upstream killed with transfers in flight, an upstream that never answers, and kamhttp's
transfer process killed (SIGKILL) with transfers in flight.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from .kamharness import Kamailio, SipClient, free_port

RES = "$avp(res)"


def yaml_text(http: str, fault: str, dead: str) -> str:
    return f"""\
modparams:
  - connection_timeout: 2
  - keep_connections: 1
  - httpcon: "api=>{http}"
  - httpcon: "patient=>{http};timeout=20"
  - httpcon: "silent=>{fault}/fault/silent;timeout=1"
  - httpcon: "primary=>{dead};failover=api"
"""


@pytest.fixture(scope="module")
def kamailio(start_kamailio, tmp_path_factory, http_server, fault_server) -> Kamailio:
    path = tmp_path_factory.mktemp("async") / "http_client.yaml"
    path.write_text(yaml_text(http_server.url, fault_server.url,
                              f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}"))
    return start_kamailio(script="async_probe.py", env={"PROBE_KAMHTTP_CONFIG": str(path)})


def ask(kamailio: Kamailio, *specs: dict, timeout: float = 30) -> list[dict]:
    """One SIP MESSAGE per spec, all in flight at once; the JSON of each final reply."""
    with SipClient(kamailio.sip_port) as sip:
        requests = [sip.build(body=json.dumps(spec)) for spec in specs]
        replies = sip.send_many(requests, timeout)
    answers = []
    for request in requests:
        reply = replies[request.call_id]
        answer = reply.json()
        answer["sip"] = reply.status
        answers.append(answer)
    return answers


def no_double_resume(kamailio: Kamailio) -> None:
    """Neither tm (a continue of a transaction that is not suspended, or gone) nor kamhttp
    (a failed t_continue) saw a second or a lost resumption."""
    log = kamailio.log()
    for text in ("transaction is not suspended", "active transaction not found",
                 "t_continue(", "called outside a kamhttp resumption"):
        assert text not in log, kamailio.log_tail()


def kemi(fn: str, *args: str) -> dict:
    return {"fn": fn, "args": [*args, RES]}


def test_every_async_function_resumes_with_what_the_sync_call_gives(kamailio, http_server):
    h = http_server.url
    answers = ask(
        kamailio,
        kemi("async_curl_connect", "api", "/code/200?body=one"),
        kemi("async_curl_connect", "api", "/code/404?body=nf"),
        kemi("async_curl_connect", "api", "/code/503?body=gone"),
        kemi("async_curl_connect_post", "api", "/echo", "text/plain", "posted"),
        kemi("async_query", f"{h}/code/200?body=first%0Asecond"),
        kemi("async_query_post", f"{h}/code/201?body=made", "x=1"),
        kemi("async_query_request", "PUT", f"{h}/code/200?body=put", "b", "X-A: 1"),
        {"fn": "async_http_connect", "api": "cfg", "args": ["api", "/code/200?body=cfg", RES]},
        kemi("async_curl_connect", "primary", "/code/200?body=failover"),
    )
    assert [(a["sip"], a["code"], a["dpv"]) for a in answers[:3]] == [
        (200, 200, "one"), (200, 404, "nf"), (200, 503, "")]
    assert json.loads(answers[3]["dpv"])["body"] == "posted"
    assert [(a["code"], a["dpv"]) for a in answers[4:]] == [
        (200, "first"), (201, "made"), (200, "put"), (200, "cfg"), (200, "failover")]
    workers = {a["worker"] for a in answers}
    resumers = {a["resumed_in"] for a in answers}
    assert workers.isdisjoint({str(pid) for pid in resumers})    # resumed elsewhere
    assert "total" in answers[0]["timings"]
    no_double_resume(kamailio)


def test_refusals_are_return_codes_without_suspending(kamailio, http_server):
    answers = ask(
        kamailio,
        {"fn": "async_curl_connect", "args": ["nosuch", "/", RES]},
        {"fn": "async_curl_connect", "args": ["api", "/", "$var(res)"]},
    )
    assert [(a["sip"], a["rc"]) for a in answers] == [(500, -1), (500, -1)]
    assert "does not survive the move" in kamailio.log()


def test_a_resume_method_chains_a_second_async_call(kamailio):
    spec = kemi("async_curl_connect", "api", "/code/200?body=first")
    spec["chain"] = kemi("async_curl_connect", "api", "/code/200?body=second")
    answer, = ask(kamailio, spec)
    assert (answer["sip"], answer["first"]["dpv"], answer["code"], answer["dpv"]) == (
        200, "first", 200, "second")


def test_many_in_flight_and_sip_keeps_answering(kamailio, http_server):
    """200 calls against an API answering after 1 s, with 4 SIP workers: all in flight at
    once (sync, they would take 50 s); OPTIONS answered by the workers meanwhile."""
    specs = [kemi("async_curl_connect", "patient", f"/slow?delay=1&body=n{i}")
             for i in range(200)]
    with SipClient(kamailio.sip_port) as sip:
        requests = [sip.build(body=json.dumps(spec)) for spec in specs]
        for request in requests:
            sip.sock.sendto(request.data, sip.server)
        options = sip.send(sip.build("OPTIONS"), timeout=5)
        replies = sip.send_many(requests, timeout=30)
    assert options.status == 200
    dpvs = sorted(json.loads(replies[r.call_id].body)["dpv"] for r in requests)
    assert dpvs == sorted(f"n{i}" for i in range(200))
    no_double_resume(kamailio)


def test_silent_upstream_resumes_with_28_at_the_timeout(kamailio):
    answers = ask(kamailio, *[kemi("async_curl_connect", "silent", "") for _ in range(20)])
    assert {(a["sip"], a["code"], a["curl_code"]) for a in answers} == {(200, 28, 28)}
    no_double_resume(kamailio)


UPSTREAM = """
import socket
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
held = []
while True:
    conn, _ = server.accept()              # then never answer, until killed
    held.append(conn)
    print("connected", flush=True)
"""


def test_upstream_killed_mid_flight(kamailio):
    """An API process killed (SIGKILL) while 30 transfers wait on it: every call resumes with
    a curl error, none stays suspended."""
    api = subprocess.Popen([sys.executable, "-c", UPSTREAM], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{int(api.stdout.readline())}"
        specs = [{"fn": "async_query", "args": [f"{url}/hang", RES]} for _ in range(30)]
        with SipClient(kamailio.sip_port) as sip:
            requests = [sip.build(body=json.dumps(spec)) for spec in specs]
            for request in requests:
                sip.sock.sendto(request.data, sip.server)
            for _ in range(30):            # every transfer reached the API
                assert api.stdout.readline() == "connected\n"
            os.kill(api.pid, signal.SIGKILL)
            replies = sip.send_many(requests, timeout=15)
    finally:
        api.kill()
        api.wait()
    codes = {json.loads(replies[r.call_id].body)["code"] for r in requests}
    assert codes and all(0 < code < 100 for code in codes), codes
    no_double_resume(kamailio)


def transfer_process(kamailio: Kamailio) -> int:
    """The pid of kamhttp's transfer process (the child of the evrexec HTTP process)."""
    answer, = ask(kamailio, kemi("async_curl_connect", "api", "/code/200?body=x"))
    children = children_of(answer["resumed_in"])
    assert len(children) == 1, children
    return children[0]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def test_transfer_process_killed_with_transfers_in_flight(kamailio, http_server):
    victim = transfer_process(kamailio)
    marker = f"lost{time.monotonic_ns()}"
    specs = [kemi("async_curl_connect", "api", f"/slow?delay=5&body={marker}")
             for _ in range(40)]
    with SipClient(kamailio.sip_port) as sip:
        requests = [sip.build(body=json.dumps(spec)) for spec in specs]
        for request in requests:
            sip.sock.sendto(request.data, sip.server)
        assert http_server.wait_for(lambda: sum(
            marker in r.path for r in http_server.requests) == 40, timeout=10)
        os.kill(victim, signal.SIGKILL)
        replies = sip.send_many(requests, timeout=15)
        options = sip.send(sip.build("OPTIONS"), timeout=5)
    codes = [json.loads(replies[r.call_id].body)["code"] for r in requests]
    assert set(codes) == {-4}                   # kamhttp.HTTP_PROCESS_LOST
    assert options.status == 200
    answer, = ask(kamailio, kemi("async_curl_connect", "api", "/code/200?body=again"))
    assert (answer["code"], answer["dpv"]) == (200, "again")       # a new transfer process
    assert transfer_process(kamailio) != victim
    no_double_resume(kamailio)


def test_fire_and_forget_and_a_1_mib_body(kamailio, http_server):
    marker = f"sent{time.monotonic_ns()}"
    answers = ask(
        kamailio,
        {"fn": "send", "args": ["POST", f"{http_server.url}/echo?{marker}=1", "cdr", ""]},
        {"fn": "send_connect", "args": ["api", f"/echo?{marker}=2", "text/plain", "event"]},
        {"fn": "async_curl_connect_post", "args": ["api", f"/code/200?body={marker}",
                                                   "application/octet-stream", "", RES],
         "repeat": [3, 1 << 20]},
    )
    assert [(a["sip"], a.get("rc"), a.get("dpv")) for a in answers] == [
        (200, 1, None), (200, 1, None), (200, None, marker)]
    assert http_server.wait_for(lambda: len(
        [r for r in http_server.requests if marker in r.path]) == 3, timeout=10)
    bodies = {r.path.split("?")[0]: r.body for r in http_server.requests if marker in r.path}
    assert (bodies["/echo"] in (b"cdr", b"event"), len(bodies["/code/200"])) == (True, 1 << 20)
    sent = sorted(r.body for r in http_server.requests if marker in r.path and
                  r.path.startswith("/echo"))
    assert sent == [b"cdr", b"event"]


def test_no_http_process_is_a_return_code(start_kamailio, tmp_path, http_server):
    path = tmp_path / "http_client.yaml"
    path.write_text(f'modparams:\n  - httpcon: "api=>{http_server.url}"\n')
    bare = start_kamailio(script="async_probe.py", env={"PROBE_KAMHTTP_CONFIG": str(path)},
                          defines={"KAMHTTP_NO_ASYNC": 1})
    answers = ask(bare, kemi("async_curl_connect", "api", "/code/200"),
                  {"fn": "send", "args": ["GET", f"{http_server.url}/code/200", "", ""]})
    assert [(a["sip"], a["rc"]) for a in answers] == [(500, -3), (200, -3)]


def test_a_full_queue_is_a_return_code_and_every_queued_call_resumes(start_kamailio,
                                                                     tmp_path, http_server):
    """One transfer at a time, a 1 MiB queue and 120 jobs of 30 KiB: the queue takes some,
    refuses the rest with -2 at once (nothing suspended), and every queued call resumes."""
    path = tmp_path / "http_client.yaml"
    path.write_text(f"""modparams:
  - async_max_transfers: 1
  - async_queue_size: 1048576
  - httpcon: "api=>{http_server.url};timeout=20"
""")
    small = start_kamailio(script="async_probe.py", env={"PROBE_KAMHTTP_CONFIG": str(path)})
    specs = [{"fn": "async_curl_connect_post", "args": ["api", "/slow?delay=0.05&body=ok",
                                                        "text/plain", "", RES],
              "repeat": [3, 30 * 1024]} for _ in range(120)]
    answers = ask(small, *specs, timeout=60)
    refused = [a for a in answers if a["sip"] == 500]
    resumed = [a for a in answers if a["sip"] == 200]
    assert {a["rc"] for a in refused} == {-2} and {a["code"] for a in resumed} == {200}
    assert refused and resumed
    no_double_resume(small)
