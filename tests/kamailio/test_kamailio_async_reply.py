"""kamhttp's asynchronous functions called in a tm onreply route (issue 12), in a real
Kamailio: kamailio-cfg/kamailio.cfg (tm, tmx, evrexec with kamhttp's HTTP process) runs
tests/kamailio/scripts/async_reply_probe.py, which relays each request to a SIP UAS of the
test and, in the onreply route set by ``KSR.tm.t_on_reply("reply_http")``, calls an async
function on the reply.

What tm 5.6.3 does there (src/modules/tm/t_suspend.c, t_reply.c): ``t_suspend`` on a reply
clones it, with its lumps, into the transaction and marks it suspended, and reply_received()
then neither relays it nor sends it on; ``t_continue`` runs the resume method on that clone in
the process that calls it (kamhttp's HTTP process) as an onreply route (faked_env() restores
TM_ONREPLY_ROUTE, the transaction's AVPs and branch), and relays the reply afterwards, with
the headers the resume method appended, unless the resume method suspended it again.

The tests of a suspended reply assert that the caller got exactly one final reply, the
UAS's (X-Uas-Ruri), relayed only after the resume method ran (it carries what that method
saw: X-Http-*), that the resume ran once, in the HTTP process, as an onreply route, and that
Kamailio logged no failed or second t_continue.  The others show what happens where nothing
is suspended (-1, -3, the core onreply route: the reply is relayed at once), and two limits
of tm's reply suspension: a final reply that comes while a provisional one is suspended is
dropped by tm; a retransmitted 2xx runs the onreply route again, and kamhttp refuses (-1)
to suspend a reply of a transaction whose reply it holds already.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest

from .kamharness import Kamailio, SipClient, SipRequest, SipUas, free_port, parse_reply
from .test_kamailio_async import no_double_resume

RES = "$avp(res)"


class Gate:
    """An HTTP upstream that holds each request until the test releases its path: the test
    knows that a transaction is suspended (its request arrived) and decides when it resumes."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.paths: list[str] = []
        self.released: set[str] = set()
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._accept, daemon=True, name="gate")
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1].decode()
            with self.changed:
                self.paths.append(path)
                self.changed.notify_all()
                if not self.changed.wait_for(lambda: path in self.released, timeout=30):
                    return
            body = path.rsplit("/", 1)[1].encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n"
                         b"\r\n%s" % (len(body), body))

    def wait(self, path: str, count: int = 1, timeout: float = 10) -> None:
        """Until ``count`` requests for ``path`` arrived."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.paths.count(path) >= count, timeout), \
                (path, self.paths)

    def release(self, path: str) -> None:
        with self.changed:
            self.released.add(path)
            self.changed.notify_all()

    def close(self) -> None:
        self.server.close()
        with self.changed:
            self.released.update(self.paths)
            self.changed.notify_all()


class ManualUas:
    """A UAS whose replies the test sends one by one (SipUas answers at once)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[tuple[str, str]] = []
        """(method, Request-URI) of every request that arrived, as SipUas has it."""

    def uri(self, user: str) -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"

    def receive(self, method: str, timeout: float = 10) -> tuple[list[str], tuple]:
        """The next request with ``method`` (head lines, sender); others are recorded."""
        self.sock.settimeout(timeout)
        while True:
            data, peer = self.sock.recvfrom(65535)
            head = data.partition(b"\r\n\r\n")[0].decode("utf-8", "replace").split("\r\n")
            self.received.append(tuple(head[0].split(" ")[:2]))
            if self.received[-1][0] == method:
                return head, peer

    def reply(self, request: tuple[list[str], tuple], code: int, reason: str) -> None:
        head, peer = request
        copied = [line for line in head[1:] if line.split(":", 1)[0].strip().lower()
                  in ("via", "from", "call-id", "cseq")]
        to = next(line for line in head[1:] if line.lower().startswith("to:"))
        lines = [f"SIP/2.0 {code} {reason}", *copied, f"{to};tag=manual{self.port}",
                 f"Contact: <sip:uas@127.0.0.1:{self.port}>",
                 f"X-Uas-Ruri: {head[0].split(' ')[1]}", "Content-Length: 0"]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), peer)

    def close(self) -> None:
        self.sock.close()


def yaml_text(http: str, gate: str) -> str:
    return f"""\
modparams:
  - connection_timeout: 2
  - httpcon: "api=>{http}"
  - httpcon: "gate=>{gate};timeout=30"
  - httpcon: "dead=>http://127.0.0.1:{free_port(socket.SOCK_STREAM)}"
"""


@pytest.fixture(scope="module")
def gate():
    server = Gate()
    yield server
    server.close()


@pytest.fixture(scope="module")
def reply_kamailio(start_kamailio, tmp_path_factory, http_server, gate):
    """Start a Kamailio running async_reply_probe.py (``defines`` added to the cfg's)."""
    def start(defines=None) -> Kamailio:
        path = tmp_path_factory.mktemp("async-reply") / "http_client.yaml"
        path.write_text(yaml_text(http_server.url, gate.url))
        return start_kamailio(script="async_reply_probe.py", defines=defines,
                              env={"PROBE_KAMHTTP_CONFIG": str(path)})
    return start


@pytest.fixture(scope="module")
def kamailio(reply_kamailio) -> Kamailio:
    return reply_kamailio()


@pytest.fixture
def manual_uas():
    server = ManualUas()
    yield server
    server.close()


@pytest.fixture
def uas():
    with SipUas() as server:
        yield server


def exchange(kamailio: Kamailio, uas: SipUas, specs: list[dict], method: str = "MESSAGE",
             timeout: float = 20) -> tuple[list[SipRequest], dict[str, list]]:
    """One request per spec, all in flight at once, relayed by Kamailio to ``uas``; every
    reply that reached the caller, by Call-ID.  The final replies are awaited, then an
    OPTIONS to Kamailio itself (a fence): what arrived for the requests until its answer is
    returned, so a second relayed reply that Kamailio sent before it is seen."""
    with SipClient(kamailio.sip_port) as sip:
        requests = [sip.build(method, body=json.dumps(spec), uri=uas.uri(f"u{i}"))
                    for i, spec in enumerate(specs)]
        final = sip.send_many(requests, timeout)
        for request in requests:
            if method == "INVITE" and final[request.call_id].status >= 300:
                sip.sock.sendto(request.ack(final[request.call_id]), sip.server)
        fence = sip.build("OPTIONS")
        sip.sock.sendto(fence.data, sip.server)
        seen: dict[str, list] = {r.call_id: [final[r.call_id]] for r in requests}
        sip.sock.settimeout(timeout)
        while True:
            call_id, reply = parse_reply(sip.sock.recv(65535))
            if call_id == fence.call_id:
                break
            seen.setdefault(call_id, []).append(reply)
    return requests, seen


def wait_for_log(kamailio: Kamailio, condition, timeout: float = 10) -> None:
    """Until ``condition(log text)`` holds (Kamailio writes its log as it goes)."""
    deadline = time.monotonic() + timeout
    while not condition(kamailio.log()):
        assert time.monotonic() < deadline, kamailio.log_tail()
        time.sleep(0.02)


def collect(sip: SipClient, call_id: str, until=lambda reply: reply.status >= 200,
            timeout: float = 20) -> list:
    """Every reply for ``call_id`` until one for which ``until`` holds (default: the first
    final one), then until the answer to an OPTIONS to Kamailio (a fence)."""
    replies, fence = [], None
    sip.sock.settimeout(timeout)
    while True:
        got, reply = parse_reply(sip.sock.recv(65535))
        if fence is not None and got == fence.call_id:
            return replies
        if got == call_id:
            replies.append(reply)
            if fence is None and until(reply):
                fence = sip.build("OPTIONS")
                sip.sock.sendto(fence.data, sip.server)


def probe_lines(kamailio: Kamailio, event: str, call_id: str) -> list[dict[str, str]]:
    """The fields of the script's ``kamhttp-probe EVENT call=CALL_ID ...`` log lines."""
    pattern = re.compile(rf"kamhttp-probe {event} call={call_id} (.*)$")
    return [dict(word.split("=", 1) for word in match.group(1).split())
            for line in kamailio.log().splitlines() if (match := pattern.search(line))]


def only_reply(seen: dict[str, list], request: SipRequest):
    """The caller got one final reply for ``request``, nothing else."""
    replies = seen[request.call_id]
    assert [r.status >= 200 for r in replies] == [True], [r.status for r in replies]
    return replies[0]


def assert_resumed_in_reply_route(kamailio: Kamailio, uas: SipUas, request: SipRequest,
                                  reply, status: int) -> None:
    """The UAS's reply, suspended in the onreply route of a SIP worker and relayed once,
    after kamhttp's HTTP process ran the resume method on it as an onreply route."""
    assert reply.status == status
    assert reply.header("X-Uas-Ruri") == request.uri            # the UAS's own reply
    assert reply.header("X-Before-Suspend") == "yes"              # lumps cloned by t_suspend
    assert reply.header("X-Async-Rc") is None                     # it was suspended
    assert reply.header("X-Reply-Status") == str(status)          # $rs of the cloned reply
    assert (reply.header("X-Suspend-Route"), reply.header("X-Resume-Route")) == \
        ("reply", "reply")
    suspended_in, resumed_in = reply.header("X-Suspended-In"), reply.header("X-Resumed-In")
    assert suspended_in and resumed_in and suspended_in != resumed_in
    routes, = probe_lines(kamailio, "reply-route", request.call_id)
    assert (routes["rc"], routes["pid"], routes["route"]) == ("0", suspended_in, "reply")
    resumed = probe_lines(kamailio, "resumed", request.call_id)
    assert len(resumed) == 1, resumed
    assert (resumed[0]["pid"], resumed[0]["route"]) == (resumed_in, "reply")
    # $T(id_index)/$T(id_label) in the reply route name the transaction t_continue found
    assert (resumed[0]["index"], resumed[0]["label"]) == (routes["index"], routes["label"])
    assert [m for m, uri in uas.received if uri == request.uri and m != "ACK"] == \
        [request.method]


def test_a_reply_suspended_in_the_onreply_route_is_relayed_once_with_the_http_result(
        kamailio, uas, http_server):
    markers = [f"reply{i}" for i in range(8)]
    specs = [{"fn": "async_curl_connect", "args": ["api", f"/code/200?body={m}", RES]}
             if i % 2 else
             {"fn": "async_query", "args": [f"{http_server.url}/code/200?body={m}", RES]}
             for i, m in enumerate(markers)]
    requests, seen = exchange(kamailio, uas, specs)
    for request, marker in zip(requests, markers):
        reply = only_reply(seen, request)
        assert_resumed_in_reply_route(kamailio, uas, request, reply, 200)
        assert (reply.header("X-Http-Code"), reply.header("X-Http-Body")) == ("200", marker)
    assert {r.path for r in http_server.requests if "body=reply" in r.path} == \
        {f"/code/200?body={m}" for m in markers}
    no_double_resume(kamailio)


def test_http_errors_reach_the_resume_method_and_the_reply_is_relayed(kamailio, uas):
    specs = [{"fn": "async_curl_connect", "args": ["api", "/code/404?body=nf", RES]},
             {"fn": "async_curl_connect", "args": ["dead", "/", RES]}]
    requests, seen = exchange(kamailio, uas, specs)
    replies = [only_reply(seen, r) for r in requests]
    for request, reply in zip(requests, replies):
        assert_resumed_in_reply_route(kamailio, uas, request, reply, 200)
    assert [(r.header("X-Http-Code"), r.header("X-Http-Body")) for r in replies] == \
        [("404", "nf"), ("7", "")]                   # curl 7: connection refused
    no_double_resume(kamailio)


def test_a_negative_invite_reply_is_suspended_and_relayed_after_the_resume(kamailio, uas):
    """INVITE answered 486 by the UAS (tm ACKs it itself before the onreply route): the
    suspended 486 is relayed to the caller after the resume, as tm's best final reply."""
    spec = {"fn": "async_curl_connect", "args": ["api", "/code/200?body=busy", RES],
            "on": [486]}
    (request,), seen = exchange(kamailio, uas, [spec], method="INVITE")
    reply = only_reply(seen, request)
    assert_resumed_in_reply_route(kamailio, uas, request, reply, 486)
    assert (reply.header("X-Http-Code"), reply.header("X-Http-Body")) == ("200", "busy")
    no_double_resume(kamailio)


def test_a_resume_method_suspends_the_reply_again(kamailio, uas):
    """A chain: the resume method of the reply calls an async function again; tm keeps the
    reply suspended (t_continue sees T_ASYNC_SUSPENDED and does not relay) until the second
    resume, which runs as an onreply route too."""
    spec = {"fn": "async_curl_connect", "args": ["api", "/code/200?body=one", RES],
            "chain": {"fn": "async_curl_connect", "args": ["api", "/code/201?body=two",
                                                           RES]}}
    (request,), seen = exchange(kamailio, uas, [spec])
    reply = only_reply(seen, request)
    assert reply.header("X-Http-First") == "200 one"
    assert (reply.header("X-Http-Code"), reply.header("X-Http-Body")) == ("201", "two")
    assert reply.header("X-Chain-Rc") is None and reply.header("X-Resume-Route") == "reply"
    assert [c["rc"] for c in probe_lines(kamailio, "chain", request.call_id)] == ["0"]
    chained, = probe_lines(kamailio, "chained", request.call_id)
    assert (chained["route"], chained["status"]) == ("reply", "200")
    no_double_resume(kamailio)


def test_nothing_suspended_leaves_the_reply_to_be_relayed_at_once(kamailio, uas):
    """-1 (a $var result: it would not survive the move): nothing suspended, the worker
    relays the reply as it would without the call, and no resume method runs."""
    spec = {"fn": "async_curl_connect", "args": ["api", "/code/200", "$var(res)"]}
    (request,), seen = exchange(kamailio, uas, [spec])
    reply = only_reply(seen, request)
    assert (reply.status, reply.header("X-Uas-Ruri"), reply.header("X-Async-Rc"),
            reply.header("X-Http-Code")) == (200, request.uri, "-1", None)
    assert probe_lines(kamailio, "resumed", request.call_id) == []


def test_no_http_process_relays_the_reply_as_normal(start_kamailio, tmp_path, http_server,
                                                    uas):
    path = tmp_path / "http_client.yaml"
    path.write_text(f'modparams:\n  - httpcon: "api=>{http_server.url}"\n')
    bare = start_kamailio(script="async_reply_probe.py",
                          env={"PROBE_KAMHTTP_CONFIG": str(path)},
                          defines={"KAMHTTP_NO_ASYNC": 1})
    spec = {"fn": "async_curl_connect", "args": ["api", "/code/200?body=never", RES]}
    (request,), seen = exchange(bare, uas, [spec])
    reply = only_reply(seen, request)
    assert (reply.status, reply.header("X-Uas-Ruri"), reply.header("X-Before-Suspend"),
            reply.header("X-Async-Rc"), reply.header("X-Http-Code")) == \
        (200, request.uri, "yes", "-3", None)        # kamhttp.NO_HTTP_PROCESS
    assert probe_lines(bare, "resumed", request.call_id) == []
    assert not [r for r in http_server.requests if "never" in r.path]


def test_the_core_reply_route_cannot_suspend_and_the_reply_goes_on(reply_kamailio, uas,
                                                                     http_server):
    """kemi.reply_route_callback (the core onreply route) runs before tm matches the reply
    to its transaction (core/receive.c: the route, then forward_reply()): there is none, and
    tmx's t_suspend tries to create one for the reply and fails, so kamhttp returns -1 and
    nothing is suspended; the reply is relayed once (the tm onreply route is the place)."""
    core = reply_kamailio(defines={"KEMI_REPLY_ROUTE": "ksr_reply_route"})
    with SipClient(core.sip_port) as sip:
        request = sip.build("MESSAGE", body=json.dumps({"on": []}), uri=uas.uri("core"))
        sip.sock.sendto(request.data, sip.server)
        replies = collect(sip, request.call_id)
    reply, = replies
    assert (reply.status, reply.header("X-Uas-Ruri"), reply.header("X-Async-Rc")) == \
        (200, request.uri, "-1")
    route, = probe_lines(core, "core-reply-route", request.call_id)
    assert route["rc"] == "-1" and route["index"] == "None"      # no $T there
    assert "ki_t_suspend(): cannot create the transaction" in core.log()
    assert probe_lines(core, "resumed", request.call_id) == []
    assert not [r for r in http_server.requests if "body=core" in r.path]


def test_a_final_reply_that_comes_while_a_provisional_one_is_suspended_is_lost(
        kamailio, manual_uas, gate):
    """tm's behaviour, not kamhttp's: suspend only final replies.  A 180 suspended in the
    onreply route; the UAS's 486 then comes: tm ACKs it and runs the onreply route, then
    drops it because the transaction is suspended (t_reply.c reply_received(): "Reply for
    suspended transaction, done."), having stopped the branch's timers for a final reply.
    The resume relays the 180; no final reply follows, from the UAS or tm's timers."""
    path = "/hold/ringing"
    before = kamailio.rpc("tm.stats")["4xx"]
    spec = {"fn": "async_curl_connect", "args": ["gate", path, RES], "on": [180]}
    with SipClient(kamailio.sip_port) as sip:
        request = sip.build("INVITE", body=json.dumps(spec), uri=manual_uas.uri("ringing"))
        sip.sock.sendto(request.data, sip.server)
        invite = manual_uas.receive("INVITE")
        manual_uas.reply(invite, 180, "Ringing")
        gate.wait(path)                                 # the 180 is suspended
        manual_uas.reply(invite, 486, "Busy Here")
        manual_uas.receive("ACK")                        # tm's ACK of the 486
        wait_for_log(kamailio, lambda log: f"reply-passed call={request.call_id}" in log)
        gate.release(path)
        replies = collect(sip, request.call_id, until=lambda r: r.status == 180)
    assert [(r.status, r.header("X-Http-Body")) for r in replies if r.status > 100] == \
        [(180, "ringing")]
    assert kamailio.rpc("tm.stats")["4xx"] == before      # the 486 was never relayed
    passed, = probe_lines(kamailio, "reply-passed", request.call_id)
    assert passed["status"] == "486"
    no_double_resume(kamailio)


def retransmitted_2xx(kamailio: Kamailio, uas: ManualUas, gate: Gate, path: str,
                      guard: bool) -> tuple[SipRequest, list]:
    """An INVITE answered 200; the UAS retransmits the 200 (as it does until the ACK) while
    the first is suspended; then the HTTP request is answered.  The caller's replies."""
    spec = {"fn": "async_curl_connect", "args": ["gate", path, RES], "guard": guard}
    with SipClient(kamailio.sip_port) as sip:
        request = sip.build("INVITE", body=json.dumps(spec), uri=uas.uri("again"))
        sip.sock.sendto(request.data, sip.server)
        invite = uas.receive("INVITE")
        uas.reply(invite, 200, "OK")
        gate.wait(path)                                 # the 200 is suspended
        uas.reply(invite, 200, "OK")                    # its retransmission
        wait_for_log(kamailio, lambda log: len(re.findall(
            rf"kamhttp-probe reply-(?:route|again) call={request.call_id} ", log)) == 2)
        gate.release(path)
        replies = collect(sip, request.call_id)
    return request, [r for r in replies if r.status > 100]


def test_a_script_guard_keeps_a_retransmitted_2xx_from_a_second_suspension(
        kamailio, manual_uas, gate):
    """The onreply route runs for every reply that comes, a retransmitted 2xx of an INVITE
    too, while the first one is suspended; the script asks once per transaction (an AVP of
    the transaction, seen by the retransmission's route): one HTTP request, one resume, the
    200 relayed once with the result."""
    path = "/hold/guarded"
    request, replies = retransmitted_2xx(kamailio, manual_uas, gate, path, guard=True)
    assert [(r.status, r.header("X-Http-Body")) for r in replies] == [(200, "guarded")]
    assert len(probe_lines(kamailio, "reply-again", request.call_id)) == 1
    assert len(probe_lines(kamailio, "resumed", request.call_id)) == 1
    assert gate.paths.count(path) == 1
    no_double_resume(kamailio)


def test_a_retransmitted_2xx_while_suspended_is_not_suspended_again(reply_kamailio,
                                                                    manual_uas, gate):
    """Without a guard in the script: the retransmission's async call must not suspend the
    reply a second time (nor send a second HTTP request whose resume is refused by tm)."""
    own = reply_kamailio()                 # its log sees this test alone
    path = "/hold/unguarded"
    request, replies = retransmitted_2xx(own, manual_uas, gate, path, guard=False)
    assert [(r.status, r.header("X-Http-Body")) for r in replies] == [(200, "unguarded")]
    first, again = probe_lines(own, "reply-route", request.call_id)
    assert first["rc"] == "0" and again["rc"] != "0"
    assert len(probe_lines(own, "resumed", request.call_id)) == 1
    no_double_resume(own)
