"""kamhttp.testing runs asynchronous scripts as Kamailio does: the route suspends the
transaction (KSR.tmx.t_suspend) and returns, kamhttp's real HTTP process — forked by the
runner as evrexec would, with its real transfer process — makes the request against real
servers on 127.0.0.1 and continues the transaction (KSR.tmx.t_continue), and the resume method
runs there with the transaction's AVPs (not the worker's $var); the transcript shows the
suspension, the request, the resumption and the reply it sent."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from kamhttp.cli import main
from kamhttp.core.curlerror import curl_strerror
from kamhttp.testing import Emulator, Session, run_script, sipmsg
from kamhttp.testing.demo import RoutingApi
from kamhttp.testing.errors import ScriptError
from kamhttp.testing.transcript import Resumption

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "kemi_examples")

PROBE = """
import json
import os

import KSR
import kamhttp


def mod_init():
    kamhttp.load_config(os.environ["ASYNC_CONFIG"])
    kamhttp.install(KSR)
    return Handler()


class Handler(kamhttp.AsyncHandler):
    def child_init(self, rank):
        KSR.info("child_init %d\\n" % rank)
        return 0

    def ksr_request_route(self, msg):
        spec = json.loads(KSR.pv.get("$rb") or "{}")
        if spec.get("raw"):                        # the tmx functions by hand
            return self.raw(spec["raw"])
        KSR.pv.sets("$avp(worker)", str(os.getpid()))
        KSR.pv.sets("$var(mine)", "worker only")
        if "chain" in spec:
            KSR.pv.sets("$avp(chain)", json.dumps(spec["chain"]))
        rc = self.call(spec, spec.get("resume", "done"))
        if rc == 0:
            return 1                               # suspended: done() answers
        KSR.err("not suspended: %d\\n" % rc)
        KSR.sl.sl_send_reply(500, "Not Suspended %d" % rc)
        return 1

    @staticmethod
    def call(spec, resume):
        return getattr(KSR.http_client, spec["fn"])(*spec["args"], resume)

    def done(self, msg, *args):
        result = kamhttp.async_result()
        KSR.info("done in %d: code=%d res=%s worker=%s var=%r T=%s:%s\\n" % (
            os.getpid(), result.code, KSR.pv.get("$avp(res)"), KSR.pv.get("$avp(worker)"),
            KSR.pv.get("$var(mine)"), KSR.pv.get("$T(id_index)"), KSR.pv.get("$T(id_label)")))
        chain = KSR.pv.get("$avp(chain)")
        if chain:
            KSR.pv.unset("$avp(chain)")
            KSR.pv.sets("$avp(first)", KSR.pv.get("$avp(res)"))
            if self.call(json.loads(chain), "chained") == 0:
                return 1
        KSR.tm.t_reply(200 if result.code == 200 else 502, "Done %d" % result.code)
        return 1

    def chained(self, msg, *args):
        result = kamhttp.async_result()
        KSR.info("chained: first=%s second=%s\\n" % (KSR.pv.get("$avp(first)"),
                                                   KSR.pv.get("$avp(res)")))
        KSR.tm.t_reply(200, "Chained %d" % result.code)
        return 1

    def broken(self, msg, *args):
        KSR.info("broken resumes\\n")
        raise RuntimeError("resume failed")

    def raw(self, what):
        if what == "twice":
            KSR.info("first %d\\n" % KSR.tmx.t_suspend())
            KSR.info("second %d\\n" % KSR.tmx.t_suspend())
            return 1
        if what == "unknown":
            KSR.info("continue %d\\n" % KSR.tmx.t_continue(4242, 1, "done"))
            KSR.sl.sl_send_reply(404, "No Such Transaction")
            return 1
        if what == "self":                         # continued by its own route, then again
            KSR.tmx.t_suspend()
            index, label = KSR.pv.get("$T(id_index)"), KSR.pv.get("$T(id_label)")
            KSR.pv.sets("$avp(mark)", "from the route")
            KSR.info("continue %d\\n" % KSR.tmx.t_continue(index, label, "by_hand"))
            KSR.info("again %d\\n" % KSR.tmx.t_continue(index, label, "by_hand"))
            return 1
        KSR.tmx.t_suspend()                        # "forever": nobody continues it
        return 1

    def by_hand(self, msg):
        KSR.info("by hand: %s\\n" % KSR.pv.get("$avp(mark)"))
        KSR.tm.t_reply(202, "By Hand")
        return 1
"""

RES = "$avp(res)"


@pytest.fixture
def refused_url():
    """A loopback URL where nothing listens (the port was bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def probe(tmp_path, http_server, fault_server, refused_url):
    """(script, env): the probe script and its YAML configuration of connections."""
    config = tmp_path / "http_client.yaml"
    config.write_text(f"""\
modparams:
  - connection_timeout: 2
  - keep_connections: 1
  - httpcon: "api=>{http_server.url}"
  - httpcon: "silent=>{fault_server.url}/fault/silent;timeout=1"
  - httpcon: "primary=>{refused_url};failover=api"
""")
    script = tmp_path / "async_script.py"
    script.write_text(textwrap.dedent(PROBE))
    return script, {"ASYNC_CONFIG": str(config)}


def ask(*specs: dict) -> list[sipmsg.SipMessage]:
    return [sipmsg.message("sip:api@example.com", json.dumps(spec),
                           content_type="application/json") for spec in specs]


def kemi(fn: str, *args: str) -> dict:
    return {"fn": fn, "args": [*args, RES]}


def test_a_suspended_route_is_resumed_with_the_body_of_a_real_server(probe, http_server):
    script, env = probe
    http_server.clear()
    t = run_script(script, ask(kemi("async_curl_connect", "api", "/code/200?body=one")),
                   env=env)
    assert t.ok, t.render()
    result = t[0]
    assert result.suspended and not result.awaiting and result.returned == 1
    assert (result.reply.code, result.reply.reason, result.reply.via, result.reply.resume) == \
        (200, "Done 200", "tm", "done")
    resumption, = result.resumptions
    assert isinstance(resumption, Resumption)
    assert (resumption.method, resumption.resume, resumption.code, resumption.suspended) == \
        ("kamhttp_resume", "done", 200, False)
    assert result.transaction == (resumption.index, resumption.label)
    assert resumption.index == 0 == resumption.position
    # resumed in kamhttp's HTTP process: AVPs of the transaction there, the worker's $var not
    assert resumption.process == "HTTP process" and resumption.pid != os.getpid()
    assert f"done in {resumption.pid}: code=200 res=one worker={os.getpid()} var=0 " \
           f"T={resumption.index}:{resumption.label}" in result.log_text("INFO")
    assert result.pvs["$avp(res)"] == "one" and result.pvs["$var(mine)"] == "worker only"
    # the request: made by the transfer process on the real request core, filed under it
    call, = result.http
    assert (call.method, call.url, call.status, call.connection, call.process) == \
        ("GET", f"{http_server.url}/code/200?body=one", 200, "api", "transfer process")
    assert [r.path for r in http_server.requests] == ["/code/200?body=one"]
    # the order: the suspension, the request, the resumption, its reply
    kinds = [type(item).__name__ for item in result.timeline]
    assert kinds[0] == "str" and result.timeline[0].startswith("t_suspend(): transaction 0:")
    assert kinds[kinds.index("HttpCall") + 1:] == ["Resumption", "LogLine", "Reply"]
    rendered = t.render()
    assert "    resume done: 200, by t_continue(0, " in rendered
    assert "    reply  200 Done 200 (tm, from done)" in rendered
    assert "=>     returned; done returned" in rendered
    # the HTTP process started as evrexec starts it: child_init(PROC_RPC), then its loop
    assert [(line.origin, line.text) for line in t.startup] == [
        ("child_init(-2)", "child_init -2"), ("child_init(1)", "child_init 1")]
    assert {record.process for record in t.http_process} <= {"HTTP process",
                                                             "transfer process"}


def test_failover_happens_in_the_transfer_process(probe, refused_url, http_server):
    script, env = probe
    t = run_script(script, ask(kemi("async_curl_connect", "primary", "/code/200?body=over")),
                   env=env)
    assert t.ok, t.render()
    result = t[0]
    assert (result.reply.code, result.pvs["$avp(res)"]) == (200, "over")
    assert [(c.connection, c.status, c.curl_code) for c in result.http] == [
        ("primary", None, 7), ("api", 200, 0)]
    assert result.http[0].url == f"{refused_url}/code/200?body=over"
    assert "FATAL FAILURE: Trying failover to curl con (api)" in result.log_text("ERROR")
    failover, = [line for line in result.logs if "Trying failover" in line.text]
    assert failover.origin == "transfer process"


def test_a_silent_upstream_resumes_with_curl_28(probe, fault_server):
    script, env = probe
    t = run_script(script, ask(kemi("async_curl_connect", "silent", "")), env=env)
    assert t.ok, t.render()
    result = t[0]
    assert (result.reply.code, result.reply.reason) == (502, "Done 28")
    resumption, = result.resumptions
    assert (resumption.code, resumption.curl_code, resumption.curl_error) == \
        (28, 28, curl_strerror(28))
    assert [(c.connection, c.curl_code) for c in result.http] == [("silent", 28)]
    assert f"curl error 28 ({curl_strerror(28)})" in t.render()


def test_a_var_result_is_refused_with_minus_1_and_nothing_is_suspended(probe, http_server):
    script, env = probe
    t = run_script(script, ask({"fn": "async_curl_connect",
                                "args": ["api", "/code/200", "$var(res)"]}), env=env)
    assert t.ok, t.render()
    result = t[0]
    assert (result.reply.code, result.reply.reason, result.reply.via) == \
        (500, "Not Suspended -1", "sl")
    assert not result.suspended and result.resumptions == [] and result.transaction is None
    assert "does not survive the move to the HTTP process" in result.log_text("ERROR")
    assert result.http == []


def test_a_resume_method_chains_a_second_async_call(probe):
    script, env = probe
    spec = kemi("async_curl_connect", "api", "/code/200?body=first")
    spec["chain"] = {"fn": "async_curl_connect", "args": ["api", "/code/201?body=second", RES]}
    t = run_script(script, ask(spec), env=env)
    assert t.ok, t.render()
    result = t[0]
    first, second = result.resumptions
    assert (first.resume, first.code, first.suspended) == ("done", 200, True)
    assert (second.resume, second.code, second.suspended) == ("chained", 201, False)
    assert (first.index, first.label) == (second.index, second.label) == result.transaction
    assert [(c.url.rsplit("/", 2)[-2:], c.status) for c in result.http] == [
        (["code", "200?body=first"], 200), (["code", "201?body=second"], 201)]
    assert (result.reply.code, result.reply.reason, result.reply.resume) == \
        (200, "Chained 201", "chained")
    assert "chained: first=first second=second" in result.log_text()
    assert len(result.replies) == 1
    assert result.timeline.count(first) == 1 and result.timeline.index(first) < \
        result.timeline.index(second)


def test_a_resume_method_that_raises_makes_the_run_fail(probe):
    script, env = probe
    spec = kemi("async_curl_connect", "api", "/code/200?body=x")
    t = run_script(script, ask(dict(spec, resume="broken")), env=env)
    assert not t.ok and t.problems == []
    result = t[0]
    resumption, = result.resumptions
    assert (resumption.resume, resumption.outcome) == ("broken", "error")
    assert "RuntimeError: resume failed" in resumption.error
    assert result.reply is None and "broken resumes" in result.log_text()
    rendered = t.render()
    assert "    ERROR  broken raised:" in rendered
    assert "=>     no reply, no relay (returned; broken error)" in rendered


def test_many_messages_in_forked_workers_are_all_resumed(probe):
    script, env = probe
    specs = [kemi("async_curl_connect", "api", f"/code/200?body=n{i}") for i in range(6)]
    t = run_script(script, ask(*specs), children=3, env=env)
    assert t.ok, t.render()
    assert [m.rank for m in t] == [1, 2, 3, 1, 2, 3]
    assert [(m.reply.code, m.pvs["$avp(res)"]) for m in t] == [
        (200, f"n{i}") for i in range(6)]
    assert len({m.resumptions[0].pid for m in t}) == 1          # one HTTP process for all
    assert sorted(m.transaction[0] for m in t) == list(range(6))
    assert all(len(m.http) == 1 for m in t)


def test_session_sends_and_waits_for_the_resumption(probe):
    script, env = probe
    with Session(script, env=env) as session:
        first = session.send(ask(kemi("async_curl_connect", "api", "/code/200?body=a"))[0])
        assert first.suspended and first.outcome == "returned"
        assert session.wait()
        assert not first.awaiting and first.reply.code == 200     # the same result, resumed
        second = session.send(ask(kemi("async_curl_connect", "api", "/code/404?body=b"))[0])
    assert (second.reply.code, second.pvs["$avp(res)"]) == (502, "b")
    assert session.transcript.ok and [m.index for m in session.transcript] == [0, 1]


def test_without_the_http_process_the_call_answers_minus_3(probe):
    script, env = probe
    t = run_script(script, ask(kemi("async_curl_connect", "api", "/code/200")), env=env,
                   http_process=False)
    assert t.ok, t.render()
    assert (t[0].reply.code, t[0].reply.reason, t[0].suspended) == (500, "Not Suspended -3",
                                                                    False)
    assert "no kamhttp HTTP process is running" in t[0].log_text("ERROR")
    assert t.http_process == [] and [line.origin for line in t.startup] == ["child_init(1)"]


def test_tmx_refusals_and_a_transaction_nobody_continues(probe):
    script, env = probe
    t = run_script(script, ask({"raw": "twice"}, {"raw": "unknown"}, {"raw": "self"},
                               {"raw": "forever"}), env=env, http_process=False)
    twice, unknown, by_self, forever = t
    # as Kamailio 5.6.3 answers (observed): a second t_suspend is 1 and changes nothing
    assert "first 1\nsecond 1" in twice.log_text("INFO")
    assert "t_suspend: transaction is already suspended" in twice.log_text("DEBUG")
    assert "continue -1" in unknown.log_text() and unknown.reply.code == 404
    assert unknown.log_text("WARNING") == (
        "t_continue: active transaction not found\n"
        "t_continue: resuming the processing of transaction [4242:1] failed")
    # continued by its own route: the resume sees the transaction's AVPs, a second is -1
    assert "continue 1\nagain -1" in by_self.log_text("INFO")
    assert "by hand: from the route" in by_self.log_text()
    assert (by_self.reply.code, by_self.reply.resume) == (202, "by_hand")
    assert not by_self.awaiting and by_self.resumptions[0].process == "worker 1"
    assert "transaction is not suspended" in by_self.log_text("WARNING")
    # nobody continues "twice" nor "forever": named at the end, the run not ok
    assert twice.awaiting and forever.awaiting and not t.ok
    assert [p for p in t.problems if "still suspended (no HTTP process runs)" in p] == [
        f"message #1: its transaction 0:{twice.transaction[1]} is still suspended "
        "(no HTTP process runs)",
        f"message #4: its transaction 3:{forever.transaction[1]} is still suspended "
        "(no HTTP process runs)"]
    assert "=>     suspended, not resumed (returned)" in t.render()


def test_emulated_tmx_outside_a_request():
    emulator = Emulator()
    ksr = emulator.module
    assert ksr.pv.get("$T(id_index)") is None
    assert ksr.tmx.t_suspend() == -1                        # mod_init: no request
    assert "t_suspend: cannot create the transaction" in emulator.startup.logs[-1].text
    emulator.begin(sipmsg.reply(sipmsg.invite(), 180, "Ringing"), 0)
    assert ksr.tmx.t_suspend() == -1                        # a reply has no transaction
    emulator.begin(sipmsg.invite(), 5)
    assert ksr.pv.get("$T(id_index)") is None
    assert ksr.tm.t_newtran() == 1 and ksr.pv.get("$T(id_index)") == 5
    assert isinstance(ksr.pv.get("$T(id_label)"), int)
    assert ksr.tmx.t_suspend() == 1 and emulator.ctx.suspended
    with pytest.raises(SystemError):
        ksr.tmx.t_continue("5", 1, "done")                  # KEMI arguments: int, int, str


def test_cli_shows_the_suspension_and_the_resumption(capsys):
    with RoutingApi("primary") as primary, RoutingApi("backup") as backup:
        code = main(["run", os.path.join(EXAMPLES, "routing_lookup_async.py"),
                     "--ruri", "sip:+4930123456@example.com",
                     "--env", f"ROUTING_API={primary.url}",
                     "--env", f"ROUTING_API_BACKUP={backup.url}"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert [(r.path, r.status) for r in primary.requests] == [("/v1/route", 200)]
    assert "    event  t_suspend(): transaction 0:" in out
    assert f"    http   POST {primary.url}/route [routing] -> 200 in " in out
    assert "    resume route_done: 200, by t_continue(0, " in out
    assert "kamhttp_resume) in the HTTP process (pid " in out
    assert "    relay  sip:+4930123456@gw-berlin.example.net:5060 (from route_done)" in out
    assert "=>     returned; route_done returned" in out


def test_cli_in_a_subprocess_with_forked_workers():
    with RoutingApi("primary") as primary, RoutingApi("backup") as backup:
        done = subprocess.run(
            [sys.executable, "-m", "kamhttp", "run",
             os.path.join(EXAMPLES, "routing_lookup_async.py"),
             "--ruri", "sip:+4971100000@example.com", "--count", "3", "--children", "2",
             "--env", f"ROUTING_API={primary.url}", "--env", f"ROUTING_API_BACKUP={backup.url}"],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("    reply  404 Not Found (tm, from route_done)") == 3
    assert done.stdout.count("    resume route_done: 404, by t_continue(") == 3


def test_a_server_stopped_between_messages_is_down_for_the_http_process_too():
    """The HTTP process does not keep the test's listening sockets open: the stopped primary
    refuses (curl 7) and the example fails over to the backup."""
    example = os.path.join(EXAMPLES, "routing_lookup_async.py")
    with RoutingApi("primary") as primary, RoutingApi("backup") as backup:
        env = {"ROUTING_API": primary.url, "ROUTING_API_BACKUP": backup.url}
        with Session(example, env=env) as session:
            up = session.send(sipmsg.invite("sip:+4930123456@example.com"))
            assert session.wait()
            primary.stop()
            down = session.send(sipmsg.invite("sip:+4940987654@example.com"))
    assert session.transcript.ok, session.transcript.render()
    assert [(c.connection, c.status) for c in up.http] == [("routing", 200)]
    assert [(c.connection, c.status, c.curl_code) for c in down.http] == [
        ("routing", None, 7), ("routing_backup", 200, 0)]
    assert down.relay.ruri == "sip:+4940987654@gw-hamburg.example.net:5060"
    assert down.relay.resume == "route_done"
    assert [r.callee for r in backup.requests] == ["+4940987654"]


def test_child_init_of_the_http_process_failing_stops_the_start(tmp_path):
    """app_python3 runs child_init(PROC_RPC) in the evrexec process; -1 there and Kamailio
    does not start."""
    script = tmp_path / "badrpc.py"
    script.write_text(textwrap.dedent("""
        import KSR
        import kamhttp
        def mod_init():
            kamhttp.install(KSR)
            return kamailio()
        class kamailio(kamhttp.AsyncHandler):
            def child_init(self, rank):
                KSR.info("rank %d\\n" % rank)
                return -1 if rank < 0 else 0
            def ksr_request_route(self, msg):
                return 1
        """))
    with pytest.raises(ScriptError, match=r"child_init\(-2\) returned -1") as error:
        run_script(script, [sipmsg.options()])
    assert "kamhttp's HTTP process" in str(error.value) and "rank -2" in str(error.value)
