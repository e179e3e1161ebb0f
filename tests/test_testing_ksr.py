"""kamhttp.testing.ksr: the emulated KSR keeps Kamailio's semantics (observed on Debian's 5.6.3
where noted) - $var per worker and never null, $avp/$xavp per message, message PVs and
transformations, read-only PVs unchanged, KEMI argument checks, header lumps, replies and
relays recorded, unknown names raising."""
from __future__ import annotations

import pytest

from kamhttp.testing.errors import KsrEmulationError
from kamhttp.testing import sipmsg
from kamhttp.testing.ksr import AppPythonMsg, Emulator

INVITE = sipmsg.parse(
    "INVITE sip:bob@example.com:5080;transport=udp SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\r\n"
    "v: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-2\r\n"
    "Via: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bK-3\r\n"
    "From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    "CSeq: 2 INVITE\r\n"
    "User-Agent: softphone/1.0\r\n"
    "Contact: <sip:alice@192.0.2.10>\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 5\r\n\r\nhello", src_ip="192.0.2.10", src_port=5062)


@pytest.fixture
def em():
    emulator = Emulator()
    emulator.worker.rank = 1
    emulator.begin(INVITE)
    return emulator


def test_message_pseudo_variables(em):
    get = em.module.pv.get
    assert get("$ru") == "sip:bob@example.com:5080;transport=udp"
    assert (get("$rU"), get("$rd"), get("$rp")) == ("bob", "example.com", "5080")
    assert (get("$fu"), get("$fU"), get("$fd"), get("$fn"), get("$ft")) == \
        ("sip:alice@atlanta.example.com", "alice", "atlanta.example.com", '"Alice"',
         "9fxced76sl")
    assert (get("$tu"), get("$tU"), get("$td"), get("$tt")) == \
        ("sip:bob@example.com", "bob", "example.com", None)
    assert get("$ci") == "3848276298220188511@atlanta.example.com"
    assert (get("$cs"), get("$rm"), get("$si"), get("$sp")) == ("2", "INVITE", "192.0.2.10", 5062)
    assert (get("$ua"), get("$ct"), get("$cT"), get("$cl")) == \
        ("softphone/1.0", "<sip:alice@192.0.2.10>", "text/plain", 5)
    assert get("$rb") == "hello"
    assert get("$mb") == INVITE.text and get("$ml") == len(INVITE.text)
    assert (get("$rs"), get("$rr"), get("$du")) == (None, None, None)


def test_hdr_with_compact_forms_and_index(em):
    get = em.module.pv.get
    assert get("$hdr(Via)") == "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1"
    assert get("$hdr(v)") == get("$hdr(VIA)") == get("$hdr(Via)")
    assert get("$(hdr(Via)[1])") == "SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-2"
    assert get("$(hdr(Via)[-1])") == "SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bK-3"
    assert get("$(hdr(Via)[3])") is None
    assert get("$hdrc(Via)") == 3 and get("$hdrc(X-None)") == 0
    assert get("$hdr(X-None)") is None


def test_port_is_the_int_5060_when_the_uri_has_none():
    emulator = Emulator()
    emulator.begin(sipmsg.invite("sip:bob@example.com"))
    assert emulator.module.pv.get("$rp") == 5060


def test_transformations(em):
    get = em.module.pv.get
    em.module.pv.sets("$var(x)", "sip:a b;c=d@h")
    assert get("$(var(x){s.escape.param})") == "sip:a%20b%3bc%3dd%40h"
    assert get("$(var(x){s.escape.param}{s.unescape.param})") == "sip:a b;c=d@h"
    assert get("$(fu{s.escape.param})") == "sip:alice%40atlanta.example.com"
    assert get("$(fu{uri.user})") == "alice" and get("$(fu{uri.host})") == \
        "atlanta.example.com"
    assert get("$(fu{uri.user}{s.toupper})") == "ALICE"
    assert get("$(fn{s.tolower}{s.len})") == 7             # the quotes count (5.6.3)
    assert get("$(ru{uri.param,transport})") == "udp"
    assert get("$(ci{s.select,0,@})") == "3848276298220188511"
    assert get("$(rU{s.substr,1,2})") == "ob"


def test_var_is_per_worker_never_null_and_kept_across_messages(em):
    pv = em.module.pv
    assert pv.get("$var(n)") == 0 and pv.is_null("$var(n)") is False
    assert pv.seti("$var(n)", 41) is True and pv.get("$var(n)") == 41
    assert pv.sets("$var(s)", "text") is True
    em.end()
    em.begin(sipmsg.options())
    assert pv.get("$var(n)") == 41 and pv.get("$var(s)") == "text"
    assert pv.unset("$var(n)") is True and pv.get("$var(n)") == 0


def test_avp_and_xavp_are_per_message_and_stack(em):
    pv = em.module.pv
    assert pv.get("$avp(route)") is None and pv.is_null("$avp(route)") is True
    pv.sets("$avp(route)", "first")
    pv.sets("$avp(route)", "second")
    assert pv.get("$avp(route)") == "second" and pv.get("$(avp(route)[1])") == "first"
    pv.unset("$avp(route)")
    assert pv.get("$avp(route)") == "first"
    pv.sets("$xavp(call=>target)", "sip:x@h")
    pv.seti("$xavp(call=>tries)", 2)
    assert (pv.get("$xavp(call=>target)"), pv.get("$xavp(call=>tries)")) == ("sip:x@h", 2)
    em.end()
    em.begin(sipmsg.options())
    assert pv.get("$avp(route)") is None and pv.get("$xavp(call=>target)") is None


def test_null_forms_of_get(em):
    pv = em.module.pv
    assert (pv.get("$avp(none)"), pv.gete("$avp(none)"), pv.getw("$avp(none)")) == \
        (None, "", "<null>")                                  # 5.6.3's getw
    assert (pv.getvs("$avp(none)", "dflt"), pv.getvn("$avp(none)", 7)) == ("dflt", 7)


def test_assignments_to_the_request_uri_and_destination(em):
    pv = em.module.pv
    assert pv.sets("$rU", "carol") is True
    assert pv.get("$ru") == "sip:carol@example.com:5080;transport=udp"
    assert pv.sets("$rd", "10.0.0.1") and pv.sets("$rp", "5070")
    assert pv.get("$ru") == "sip:carol@10.0.0.1:5070;transport=udp"
    assert pv.sets("$ru", "sip:dave@192.0.2.99") and pv.get("$rU") == "dave"
    assert pv.sets("$du", "sip:proxy.example.com;lr") and pv.get("$du") == \
        "sip:proxy.example.com;lr"
    assert pv.sets("$ru", "not a uri") is True               # accepted, as in Kamailio...
    assert pv.get("$ru") is None and pv.get("$rU") is None   # ...but it does not parse
    assert "failed to parse the R-URI 'not a uri'" in em.ctx.logs[-1].text
    assert em.module.tm.t_relay() == -1 and em.ctx.relays == []


def test_read_only_pv_is_left_unchanged(em):
    assert em.module.pv.sets("$ci", "other") is True         # 5.6.3 answers True
    assert em.module.pv.get("$ci") == "3848276298220188511@atlanta.example.com"
    assert em.ctx.logs[-1].level == "WARNING" and "$ci is read-only" in em.ctx.logs[-1].text


def test_invalid_pv_name_logs_and_answers_null(em):
    assert em.module.pv.get("$var(x") is None
    assert "invalid pv [$var(x]" in em.ctx.logs[-1].text
    assert em.module.pv.gete("ru") == ""


def test_unknown_pv_class_and_transformation_raise_naming_them(em):
    with pytest.raises(KsrEmulationError, match=r"pseudo-variable \$shv \(in \$shv\(x\)\)"):
        em.module.pv.get("$shv(x)")
    with pytest.raises(KsrEmulationError, match=r"transformation \{s\.sha512\}"):
        em.module.pv.get("$(ru{s.sha512})")


@pytest.mark.parametrize("call, problem", [
    (lambda k: k.sl.sl_send_reply("404", "Not Found"),
     "KSR.sl.sl_send_reply(): argument 1: 'str' object cannot be interpreted as an integer"),
    (lambda k: k.pv.sets("$var(x)", 5), "KSR.pv.sets(): argument 2 must be str, not int"),
    (lambda k: k.pv.get(5), "KSR.pv.get(): argument 1 must be str, not int"),
    (lambda k: k.info(5), "KSR.info(): argument 1 must be str, not int"),
    (lambda k: k.sl.sl_send_reply(404, "x", 1),
     "KSR.sl.sl_send_reply(): takes exactly 2 arguments (3 given)"),
])
def test_kemi_argument_mismatch_logs_and_raises_like_app_python3(em, call, problem):
    with pytest.raises(SystemError, match="returned a result with an exception set") as error:
        call(em.module)
    assert isinstance(error.value.__cause__, TypeError)
    assert str(error.value.__cause__) == problem
    assert em.ctx.logs[-1].level == "ERROR" and "unable to retrieve" in em.ctx.logs[-1].text
    assert em.ctx.replies == [] and em.module.pv.get("$var(x)") == 0


def test_unknown_functions_raise_naming_them(em):
    ksr = em.module
    with pytest.raises(KsrEmulationError, match=r"KSR\.tm\.t_relay_to_udp\(\) is not emulated"):
        ksr.tm.t_relay_to_udp("1.2.3.4", 5060)
    with pytest.raises(KsrEmulationError, match=r"KSR\.textops is not emulated"):
        ksr.textops.is_present_hf("X")
    with pytest.raises(KsrEmulationError, match="kamhttp.install"):
        ksr.http_client.query("http://x/", "$var(r)")
    assert not hasattr(ksr, "http_client")
    with pytest.raises(KsrEmulationError, match=r"call_function\('record_route'\)"):
        ksr.x.modf("record_route")


def test_logging_is_captured_with_kamailio_levels(em):
    ksr = em.module
    for name in ("dbg", "info", "notice", "warn", "err", "crit"):
        assert ksr.__dict__[name](f"{name} line\n") == 1
    ksr.log("info", "via log\n")
    assert [(line.level, line.text) for line in em.ctx.logs] == [
        ("DEBUG", "dbg line"), ("INFO", "info line"), ("NOTICE", "notice line"),
        ("WARNING", "warn line"), ("ERROR", "err line"), ("CRITICAL", "crit line"),
        ("INFO", "via log")]


def test_header_lumps_are_invisible_to_hdr_but_forwarded(em):
    ksr = em.module
    assert ksr.hdr.append("X-Routed: yes\r\n") == 1
    assert ksr.hdr.is_present("X-Routed") == -1 and ksr.pv.get("$hdr(X-Routed)") is None
    assert ksr.hdr.remove("User-Agent") == 1 and ksr.hdr.remove("X-None") == 1   # 5.6.3
    assert ksr.hdr.is_present("User-Agent") == 1
    assert ksr.hdr.get("Call-ID") == "3848276298220188511@atlanta.example.com"
    ksr.pv.sets("$rU", "carol")
    ksr.pv.sets("$fU", "anonymous")
    assert ksr.pv.get("$fU") == "alice"          # a lump: the received From is read
    assert ksr.tm.t_relay() == 1
    relay = em.ctx.relays[0]
    assert relay.ruri == relay.destination == "sip:carol@example.com:5080;transport=udp"
    lines = relay.message.split("\r\n")
    assert lines[0] == "INVITE sip:carol@example.com:5080;transport=udp SIP/2.0"
    assert "X-Routed: yes" in lines and not any(ln.startswith("User-Agent") for ln in lines)
    assert 'From: "Alice" <sip:anonymous@atlanta.example.com>;tag=9fxced76sl' in lines
    assert relay.message.endswith("\r\n\r\nhello")


def test_header_text_without_crlf_is_flagged(em):
    em.module.hdr.append("X-Glued: 1")
    assert em.ctx.logs[-1].level == "WARNING" and "does not end with \\r\\n" in \
        em.ctx.logs[-1].text


def test_replies_stateless_and_stateful(em):
    ksr = em.module
    assert ksr.tm.t_check_trans() == -1
    assert ksr.tm.t_reply(486, "Busy") == -1
    assert "no T-state" in em.ctx.logs[-1].text
    ksr.hdr.append_to_reply("Retry-After: 30\r\n")
    assert ksr.sl.send_reply(503, "Later") == 1
    assert ksr.tm.t_newtran() == 1 and ksr.tm.t_check_trans() == 0
    assert ksr.sl.send_reply(480, "Unavailable") == 1 and ksr.tm.t_reply(486, "Busy") == 1
    assert ksr.sl.sl_send_reply(700, "Bad") == -1
    assert [(r.code, r.reason, r.via) for r in em.ctx.replies] == [
        (503, "Later", "sl"), (480, "Unavailable", "tm"), (486, "Busy", "tm")]
    assert em.ctx.replies[0].headers == ["Retry-After: 30"]


def test_relay_goes_to_the_destination_uri(em):
    em.module.pv.sets("$du", "sip:10.0.0.9:5060")
    em.module.tm.t_on_failure("ksr_failure")
    em.module.tm.t_relay()
    assert em.ctx.relays[0].destination == "sip:10.0.0.9:5060"
    assert em.ctx.events == ["t_on_failure('ksr_failure')"]


def test_no_exit_or_drop_in_app_python3(em):
    with pytest.raises(KsrEmulationError, match=r"KSR\.x\.exit: app_python3 has no "
                                                r"KSR\.x\.exit\(\).*sys\.exit\(\)"):
        em.module.x.exit()
    with pytest.raises(KsrEmulationError, match=r"KSR\.x\.drop: app_python3 has no"):
        em.module.x.drop()
    with pytest.raises(KsrEmulationError, match=r"KSR\.drop: app_python3 5\.6 has no"):
        em.module.drop()
    assert not hasattr(em.module.x, "exit")


def test_evalx_expands_pvs_and_prints_null(em):
    assert em.module.pvx.evalx("$var(line)", "$rU from $fd ip=$si:$sp [$avp(x)]") == 1
    assert em.module.pv.get("$var(line)") == \
        "bob from atlanta.example.com ip=192.0.2.10:5062 [<null>]"


def test_method_tests_and_flags(em):
    ksr = em.module
    assert ksr.is_INVITE() is True and ksr.is_BYE() is False
    assert ksr.is_method_in("RI") is True and ksr.is_method_in("BC") is False
    assert ksr.is_method("invite") is True
    assert ksr.setflag(3) is True
    assert ksr.isflagset(3) is True and ksr.isflagset(4) is False


def test_app_python3_msg_object(em):
    msg = AppPythonMsg(em)
    assert (msg.Type, msg.Method, msg.RURI) == \
        ("SIP_REQUEST", "INVITE", "sip:bob@example.com:5080;transport=udp")
    assert msg.src_address == ("192.0.2.10", 5062)
    assert msg.getHeader("via") == "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1"
    assert msg.getHeader("Call-ID") == "3848276298220188511@atlanta.example.com"
    with pytest.raises(RuntimeError, match="no status"):
        msg.Status
    with pytest.raises(AttributeError, match="use msg.Method"):
        msg.getMethod()
    msg.rewrite_ruri("sip:new@example.net")
    assert em.module.pv.get("$ru") == "sip:new@example.net"
    assert msg.RURI == "sip:bob@example.com:5080;transport=udp"   # the received line
    assert msg.call_function("sl_send_reply", "403", "Forbidden") == 1
    assert em.ctx.replies[-1].code == 403
    with pytest.raises(KsrEmulationError, match="call_function\\('record_route'\\)"):
        msg.call_function("record_route")
    assert em.module.x.modf("sl_send_reply", "404", "Not Here") == 1   # = call_function
    assert em.ctx.replies[-1].reason == "Not Here"
    clone = msg.copy()
    msg._invalidate()
    with pytest.raises(RuntimeError, match="self->msg is NULL"):
        msg.Method
    assert clone.Method == "INVITE"
