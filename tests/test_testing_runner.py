"""kamhttp.testing.runner: scripts load as in app_python3 (folder on sys.path, mod_init ->
handler, child_init per worker, routes per message), in-process or in forked workers that are
always reaped, and the transcript records what they did."""
from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from kamhttp.testing.errors import ScriptError
from kamhttp.testing import Session, run_script, sipmsg

COUNTER = """
import os
import KSR
import helper                     # next to the script: its folder is first on sys.path

def mod_init():
    KSR.info("mod_init in %d\\n" % os.getpid())
    return kamailio()

class kamailio:
    def child_init(self, rank):
        KSR.info("child_init %d\\n" % rank)
        return 0

    def ksr_request_route(self, msg):
        count = KSR.pv.get("$var(count)") + 1
        KSR.pv.seti("$var(count)", count)
        KSR.pv.sets("$var(pid)", str(os.getpid()))
        KSR.info(helper.describe(msg.Method, count))
        if msg.Method == "OPTIONS":
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        KSR.tm.t_relay()
        return 1

    def ksr_reply_route(self, msg):
        KSR.info("reply %s\\n" % msg.Status)
        return 1

    def ksr_onsend_route(self, msg):
        KSR.info("onsend %s\\n" % KSR.pv.get("$ru"))
        return 1
"""


def write(folder, name: str, text: str):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def counter(tmp_path):
    write(tmp_path, "helper.py", "def describe(method, n):\n    return f'{method} #{n}\\n'\n")
    return write(tmp_path, "counter.py", COUNTER)


def test_in_process_run_records_routes_logs_replies_relays(counter):
    invite = sipmsg.invite("sip:bob@example.com")
    t = run_script(counter, [invite, sipmsg.options(), sipmsg.reply(invite, 180, "Ringing")])
    assert t.ok and t.children == 1 and len(t) == 3
    assert [(line.origin, line.text) for line in t.startup] == [
        ("mod_init", f"mod_init in {os.getpid()}"), ("child_init(1)", "child_init 1")]
    first, second, third = t
    assert (first.route, first.outcome, first.returned, first.rank) == \
        ("ksr_request_route", "returned", 1, 1)
    assert first.relay.ruri == "sip:bob@example.com" and first.reply is None
    assert first.log_text() == "INVITE #1\nonsend sip:bob@example.com"
    assert first.events == ["ksr_onsend_route"]
    assert (second.reply.code, second.reply.reason, second.relays) == (200, "Keepalive", [])
    assert second.pvs["$var(count)"] == 2                 # $var kept across messages
    assert (third.route, third.log_text()) == ("ksr_reply_route", "reply 180")
    assert "INVITE sip:bob@example.com" in t.render()


def test_loading_is_undone_after_the_run(counter, tmp_path):
    before_path = list(sys.path)
    before_ksr = sys.modules.get("KSR")
    run_script(counter, [sipmsg.options()])
    assert sys.path == before_path
    assert sys.modules.get("KSR") is before_ksr
    assert "helper" not in sys.modules and "counter" not in sys.modules
    # a second run gets a fresh script and fresh helper bound to its own KSR
    t = run_script(counter, [sipmsg.options()])
    assert t[0].pvs["$var(count)"] == 1 and t[0].log_text() == "OPTIONS #1"


def test_forked_workers_run_in_other_processes_and_are_reaped(counter):
    messages = [sipmsg.invite(), sipmsg.options(), sipmsg.invite(), sipmsg.options(),
                sipmsg.invite()]
    t = run_script(counter, messages, children=2)
    assert t.ok and t.children == 2
    assert [m.index for m in t] == [0, 1, 2, 3, 4]
    assert [m.rank for m in t] == [1, 2, 1, 2, 1]                  # round-robin
    assert [m.pvs["$var(count)"] for m in t] == [1, 1, 2, 2, 3]    # $var per worker
    pids = {m.pvs["$var(pid)"] for m in t}
    assert len(pids) == 2 and str(os.getpid()) not in pids
    assert [line.text for line in t.startup] == [
        f"mod_init in {os.getpid()}", "child_init 1", "child_init 2"]
    for pid in pids:            # reaped: no such child any more
        with pytest.raises(ChildProcessError):
            os.waitpid(int(pid), os.WNOHANG)


def test_a_hanging_worker_is_killed_at_the_timeout(tmp_path):
    script = write(tmp_path, "hang.py", """
        import time
        import KSR
        def mod_init():
            return kamailio()
        class kamailio:
            def child_init(self, rank):
                return 0
            def ksr_request_route(self, msg):
                if msg.Method == "INVITE":
                    time.sleep(3600)
                KSR.sl.sl_send_reply(200, "OK")
                return 1
        """)
    start = time.monotonic()
    t = run_script(script, [sipmsg.options(), sipmsg.invite()], children=2, timeout=1.0)
    assert time.monotonic() - start < 1.0 + 2
    assert not t.ok
    assert any("worker 2" in p and "killed" in p for p in t.problems)
    assert [m.index for m in t] == [0] and t[0].reply.code == 200
    assert "no result for message(s) 2" in t.problems


def test_a_route_exception_is_recorded_and_the_next_message_runs(tmp_path):
    script = write(tmp_path, "broken.py", """
        import sys
        import KSR
        def mod_init():
            return kamailio()
        class kamailio:
            def child_init(self, rank):
                return 0
            def ksr_request_route(self, msg):
                if msg.Method == "INVITE":
                    raise ValueError("no route for " + KSR.pv.get("$rU"))
                sys.exit()                      # app_python3: the cfg exit
        """)
    t = run_script(script, [sipmsg.invite("sip:bob@example.com"), sipmsg.options()])
    assert not t.ok
    assert t[0].outcome == "error" and "ValueError: no route for bob" in t[0].error
    assert t[1].outcome == "exit"


@pytest.mark.parametrize("body, fault", [
    ("def other():\n    pass\n", "no mod_init() function"),
    ("def mod_init():\n    return None\n", "mod_init() returned None"),
    ("def mod_init():\n    raise RuntimeError('no config')\n", "RuntimeError: no config"),
    ("import KSR\nKSR.nosuch.call()\n", "KSR.nosuch is not emulated"),
    ("class H:\n    pass\ndef mod_init():\n    return H()\n", "no child_init(rank) method"),
    ("class H:\n    def child_init(self, rank):\n        pass\n"
     "def mod_init():\n    return H()\n", "child_init(1) returned None"),
])
def test_start_up_failures_are_script_errors(tmp_path, body, fault):
    script = write(tmp_path, "bad.py", body)
    with pytest.raises(ScriptError) as error:
        run_script(script, [sipmsg.options()])
    assert fault in str(error.value)
    assert sys.modules.get("bad") is None


def test_child_init_failure_in_a_forked_worker(tmp_path):
    script = write(tmp_path, "badchild.py", """
        def mod_init():
            return kamailio()
        class kamailio:
            def child_init(self, rank):
                return -1 if rank == 2 else 0
            def ksr_request_route(self, msg):
                return 1
        """)
    with pytest.raises(ScriptError, match=r"child_init\(2\) returned -1"):
        run_script(script, [sipmsg.options()] * 3, children=2)


def test_missing_script_and_missing_reply_route(tmp_path):
    with pytest.raises(ScriptError, match="no such script file"):
        run_script(tmp_path / "absent.py", [])
    script = write(tmp_path, "noreply.py", """
        def mod_init():
            return kamailio()
        class kamailio:
            def child_init(self, rank):
                return 0
        """)
    t = run_script(script, [sipmsg.reply(sipmsg.invite(), 200, "OK")])
    assert t[0].logs[0].text == "the handler has no ksr_reply_route(msg) method"


def test_session_runs_message_by_message_with_environment(tmp_path):
    script = write(tmp_path, "envscript.py", """
        import os
        import KSR
        def mod_init():
            return kamailio(os.environ["TARGET_HOST"])
        class kamailio:
            def __init__(self, host):
                self.host = host
            def child_init(self, rank):
                return 0
            def ksr_request_route(self, msg):
                KSR.pv.sets("$rd", self.host)
                KSR.tm.t_relay()
                return 1
        """)
    assert "TARGET_HOST" not in os.environ
    with Session(script, env={"TARGET_HOST": "10.1.1.1"}, onsend_route="") as session:
        first = session.send(sipmsg.invite("sip:bob@example.com"))
        assert first.relay.ruri == "sip:bob@10.1.1.1" and first.outcome == "returned"
        second = session.send("INVITE sip:carol@example.com SIP/2.0\r\n"
                              "Via: SIP/2.0/UDP h;branch=z9hG4bK-s\r\n"
                              "From: <sip:a@h>;tag=1\r\nTo: <sip:carol@example.com>\r\n"
                              "Call-ID: s2\r\nCSeq: 1 INVITE\r\n\r\n")
        assert second.relay.ruri == "sip:carol@10.1.1.1"
    assert "TARGET_HOST" not in os.environ
    assert [m.index for m in session.transcript] == [0, 1]


def test_relay_without_the_onsend_method_fails_as_in_app_python3(tmp_path):
    script = write(tmp_path, "noonsend.py", """
        import KSR
        def mod_init():
            return kamailio()
        class kamailio:
            def child_init(self, rank):
                return 0
            def ksr_request_route(self, msg):
                KSR.tm.t_relay()
                KSR.info("not reached\\n")
                return 1
        """)
    t = run_script(script, [sipmsg.invite()])
    assert t[0].outcome == "error" and t[0].relay is not None
    assert "SystemError: <built-in function t_relay> returned a result with an exception " \
        "set" in t[0].error
    assert "AttributeError: 'kamailio' object has no attribute 'ksr_onsend_route'" in \
        t[0].log_text("ERROR")
    assert "not reached" not in t[0].log_text()
    quiet = run_script(script, [sipmsg.invite()], onsend_route="")    # kemi.onsend_route_callback=""
    assert quiet.ok and quiet[0].log_text() == "not reached"


def test_reply_route_name_follows_kemi_reply_route_callback(counter):
    reply = sipmsg.reply(sipmsg.invite(), 486, "Busy Here")
    t = run_script(counter, [reply], reply_route="")
    assert t[0].route == "(no reply route)" and t[0].logs == []
