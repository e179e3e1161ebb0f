"""kamhttp.testing.sipmsg: SIP messages parsed from text (compact forms, folding, repeated
headers, body) and built with defaults; malformed text is refused with the fault named."""
from __future__ import annotations

import pytest

from kamhttp.testing.errors import SipParseError
from kamhttp.testing import sipmsg
from kamhttp.testing.sipmsg import NameAddr, SipUri, parse

INVITE = (
    "INVITE sip:+4930123@example.com:5080;user=phone SIP/2.0\r\n"
    "v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\r\n"
    "Via: SIP/2.0/TCP 192.0.2.20;branch=z9hG4bK-2\r\n"
    "Max-Forwards: 70\r\n"
    "f: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "t: <sip:+4930123@example.com>\r\n"
    "i: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Subject: a very\r\n"
    "   long subject\r\n"
    "\tfolded twice\r\n"
    "X-Custom: one\r\n"
    "x-custom: two\r\n"
    "c: application/sdp\r\n"
    "l: 4\r\n"
    "\r\n"
    "v=0\r\nextra bytes beyond Content-Length")


def test_request_line_compact_forms_folding_repeats_and_body():
    msg = parse(INVITE)
    assert msg.is_request and msg.method == "INVITE"
    assert msg.ruri == "sip:+4930123@example.com:5080;user=phone"
    assert msg.header("Via") == "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1"
    assert msg.header_values("v") == ["SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1",
                                      "SIP/2.0/TCP 192.0.2.20;branch=z9hG4bK-2"]
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.header("Subject") == "a very long subject folded twice"
    assert msg.header_values("X-CUSTOM") == ["one", "two"]
    assert msg.from_ == NameAddr('"Alice Liddell"', "sip:alice@atlanta.example.com",
                                 ";tag=1928301774")
    assert msg.to.uri == "sip:+4930123@example.com"
    assert msg.cseq == ("314159", "INVITE")
    assert msg.header("Content-Type") == "application/sdp"
    assert msg.body == "v=0\r"            # cut at Content-Length: 4


def test_lf_line_ends_and_no_body():
    text = ("OPTIONS sip:example.com SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK-x\n"
            "From: <sip:a@b>;tag=1\nTo: <sip:example.com>\nCall-ID: c1\nCSeq: 7 OPTIONS\n\n")
    msg = parse(text)
    assert msg.method == "OPTIONS" and msg.body == "" and msg.cseq == ("7", "OPTIONS")
    assert msg.text.startswith("OPTIONS sip:example.com SIP/2.0\r\nVia: ")


def test_reply_status_line():
    msg = parse("SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-x\r\n"
                "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: c1\r\n"
                "CSeq: 1 INVITE\r\n\r\n")
    assert not msg.is_request
    assert (msg.status, msg.reason, msg.method, msg.ruri) == (486, "Busy Here", "INVITE", None)


@pytest.mark.parametrize("text, fault", [
    ("", "empty message"),
    ("HELLO\r\n\r\n", "line 1: not a SIP request line"),
    ("INVITE sip:b@h SIP/3.0\r\n", "unsupported version 'SIP/3.0'"),
    ("INVITE bob SIP/2.0\r\n", "line 1: invalid Request-URI"),
    ("SIP/2.0 99 Odd\r\n", "line 1: malformed status line"),
    ("SIP/2.0 700 Odd\r\n", "status code 700 out of range"),
    ("INVITE sip:b@h SIP/2.0\r\n Via: x\r\n", "line 2: continuation line before any header"),
    ("INVITE sip:b@h SIP/2.0\r\nVia SIP/2.0/UDP h\r\n", "line 2: header without ':'"),
    ("INVITE sip:b@h SIP/2.0\r\nBad Name: x\r\n", "line 2: invalid header name 'Bad Name'"),
    ("INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>\r\n",
     "missing mandatory header(s): To, Call-ID, CSeq"),
])
def test_malformed_text_names_the_fault(text, fault):
    with pytest.raises(SipParseError) as error:
        parse(text)
    assert fault in str(error.value)


def _with(**replace: str) -> str:
    headers = {"Via": "SIP/2.0/UDP h;branch=z9hG4bK-x", "From": "<sip:a@h>;tag=1",
               "To": "<sip:b@h>", "Call-ID": "c1", "CSeq": "1 INVITE", **replace}
    return "INVITE sip:b@h SIP/2.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())


@pytest.mark.parametrize("text, fault", [
    (_with(CSeq="1 BYE"), "CSeq method 'BYE' differs from the request method 'INVITE'"),
    (_with(CSeq="one INVITE"), "CSeq: 'one INVITE' is malformed"),
    (_with(From="nobody"), "From: 'nobody': not a SIP URI"),
    (_with(**{"Content-Length": "ten"}) + "\r\n", "Content-Length: 'ten' is not a number"),
    (_with(**{"Content-Length": "10"}) + "\r\nv=0\n", "Content-Length is 10 but the body has "
                                                      "only 4 bytes (the body has LF line ends"),
])
def test_inconsistent_headers_name_the_fault(text, fault):
    with pytest.raises(SipParseError) as error:
        parse(text)
    assert fault in str(error.value)


def test_invite_builder_defaults_round_trip():
    msg = sipmsg.invite("sip:+4930123@example.com", from_uri="sip:alice@example.com",
                        from_name="Alice")
    assert msg.method == "INVITE" and msg.ruri == "sip:+4930123@example.com"
    assert msg.header("Content-Type") == "application/sdp"
    assert int(msg.header("Content-Length")) == len(msg.body.encode()) > 0
    assert msg.from_.display == '"Alice"' and msg.from_.param("tag")
    assert msg.to.uri == "sip:+4930123@example.com"
    assert msg.header("Max-Forwards") == "70" and msg.header("Contact")
    assert msg.cseq == ("1", "INVITE")
    again = parse(msg.text)
    assert again.headers == msg.headers and again.body == msg.body


def test_builders_for_register_options_message_and_reply():
    reg = sipmsg.register("sip:example.com", aor="sip:bob@example.com", expires=600)
    assert reg.method == "REGISTER" and reg.header("Expires") == "600"
    assert reg.from_.uri == reg.to.uri == "sip:bob@example.com"
    opt = sipmsg.options("sip:example.com")
    assert opt.header("Accept") == "application/sdp" and opt.body == ""
    text = sipmsg.message("sip:bob@example.com", "hi there")
    assert (text.body, text.header("Content-Type"), text.header("Content-Length")) == \
        ("hi there", "text/plain", "8")
    ok = sipmsg.reply(reg, 200, "OK", headers=["Expires: 600"])
    assert (ok.status, ok.reason, ok.method) == (200, "OK", "REGISTER")
    assert ok.call_id == reg.call_id and ok.to.param("tag") == "kt-remote"
    assert parse(ok.text).headers == ok.headers


def test_builder_headers_replace_defaults_and_are_checked():
    msg = sipmsg.invite(headers=["User-Agent: softphone 1.0", ("X-Tenant", "acme")],
                        call_id="fixed@host", src_ip="192.0.2.7", src_port=5070)
    assert msg.header_values("User-Agent") == ["softphone 1.0"]
    assert msg.header("X-Tenant") == "acme" and msg.call_id == "fixed@host"
    assert (msg.src_ip, msg.src_port) == ("192.0.2.7", 5070)
    with pytest.raises(SipParseError, match="has no ':'"):
        sipmsg.invite(headers=["X-Broken"])
    with pytest.raises(SipParseError, match="not a SIP URI"):
        sipmsg.invite("bob")


def test_uri_parts():
    uri = SipUri.parse("sips:bob:secret@[2001:db8::1]:5061;transport=tls;lr?subject=x")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == \
        ("sips", "bob", "secret", "[2001:db8::1]", "5061")
    assert uri.param("transport") == "tls" and uri.param("lr") == "" and uri.param("x") is None
    assert str(uri) == "sips:bob:secret@[2001:db8::1]:5061;transport=tls;lr?subject=x"
    tel = SipUri.parse("tel:+4930123;phone-context=example.com")
    assert (tel.scheme, tel.user, tel.host) == ("tel", "+4930123", "")
    assert SipUri.parse("sip:example.com").user is None
