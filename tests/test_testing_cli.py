"""`python -m kamhttp run SCRIPT`: messages from --sip files or built from options, forked
workers, and exit statuses 0 (ran), 1 (a route raised) and 2 (could not start)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from kamhttp.cli import main

SCRIPT = """
import KSR

def mod_init():
    return kamailio()

class kamailio:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        KSR.info("%s %s from %s:%s x=%s\\n" % (KSR.pv.get("$rm"), KSR.pv.get("$ru"),
                 KSR.pv.get("$si"), KSR.pv.get("$sp"), KSR.pv.get("$hdr(X-Tenant)")))
        if KSR.pv.get("$rU") == "crash":
            raise RuntimeError("crash requested")
        if KSR.pv.get("$rU") == "relay":
            KSR.tm.t_relay()
            return 1
        KSR.sl.sl_send_reply(486, "Busy Here")
        return 1
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "busy.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def test_run_a_built_message(script, capsys):
    code = main(["run", str(script), "--method", "message", "--ruri", "sip:carol@example.com",
                 "--header", "X-Tenant: acme", "--body", "hi", "--source", "192.0.2.4:5070"])
    out = capsys.readouterr().out
    assert code == 0
    assert "MESSAGE sip:carol@example.com from 192.0.2.4:5070 x=acme" in out
    assert "reply  486 Busy Here (sl)" in out


def test_run_sip_files_in_forked_workers(script, tmp_path):
    sip = tmp_path / "invite.sip"
    sip.write_text("INVITE sip:dave@example.com SIP/2.0\n"
                   "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-f\n"
                   "f: <sip:alice@example.com>;tag=a\nt: <sip:dave@example.com>\n"
                   "i: file-call\nCSeq: 1 INVITE\n\n")
    done = subprocess.run([sys.executable, "-m", "kamhttp", "run", str(script), "--sip",
                           str(sip), "--count", "4", "--children", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "(2 forked workers)" in done.stdout
    assert done.stdout.count("INVITE sip:dave@example.com from 127.0.0.1:5060 x=None") == 4
    assert done.stdout.count("[worker 1,") == 2 and done.stdout.count("[worker 2,") == 2


def test_exit_statuses(script, tmp_path, capsys):
    assert main(["run", str(script), "--ruri", "sip:crash@example.com"]) == 1
    assert "RuntimeError: crash requested" in capsys.readouterr().out
    bad = tmp_path / "bad.sip"
    bad.write_text("INVITE sip:x@y SIP/2.0\nVia SIP/2.0/UDP h\n")
    assert main(["run", str(script), "--sip", str(bad)]) == 2
    assert "line 2: header without ':'" in capsys.readouterr().err
    assert main(["run", str(script), "--sip", str(bad), "--method", "INVITE"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.py")]) == 2
    assert "no such script file" in capsys.readouterr().err
    assert main(["run", str(script), "--env", "NOEQUALS"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_kemi_callback_names(script, capsys):
    assert main(["run", str(script), "--ruri", "sip:relay@example.com"]) == 1
    assert "no attribute 'ksr_onsend_route'" in capsys.readouterr().out
    assert main(["run", str(script), "--ruri", "sip:relay@example.com", "--onsend-route", ""]) == 0
    assert "relay  sip:relay@example.com" in capsys.readouterr().out
