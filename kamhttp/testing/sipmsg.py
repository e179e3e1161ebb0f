"""SIP messages for the testing kit: parsed from their text, or built with sensible defaults.

A :class:`SipMessage` is immutable: what the script changes ($ru, added headers...) lives in the
message context of the emulator, as Kamailio keeps changes in lumps beside the received buffer.
Besides the text, a message carries where it came from ($si, $sp, $pr) and where it arrived
($Ri, $Rp), which Kamailio takes from the socket.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, cast

from .errors import SipParseError

COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact",
    "k": "Supported", "l": "Content-Length", "m": "Contact", "n": "Identity-Info",
    "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via",
    "x": "Session-Expires", "y": "Identity",
}
"""RFC 3261 7.3.3 and later RFCs: compact header names and their full names."""

MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
"""Headers every request and reply carries (RFC 3261 8.1.1); Kamailio cannot route without."""

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_REQUEST_LINE = re.compile(r"(?P<method>\S+) (?P<uri>\S+) (?P<version>\S+)")
_STATUS_LINE = re.compile(r"(?P<version>SIP/\d\.\d) (?P<code>\d{3})(?: (?P<reason>.*))?")
_URI = re.compile(
    r"(?P<scheme>sips?|tel|urn):(?:(?P<user>[^@;?]*?)(?::(?P<password>[^@;?]*))?@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:;?\[\]]*)(?::(?P<port>\d+))?"
    r"(?P<params>(?:;[^?]*)?)(?P<headers>(?:\?.*)?)$", re.I)


def canonical(name: str) -> str:
    """The lower-case full name of a header name (compact forms expanded): the lookup key."""
    name = name.strip()
    return COMPACT_FORMS.get(name.lower(), name).lower()


@dataclass(frozen=True)
class SipUri:
    """A SIP, SIPS or TEL URI split as Kamailio's parse_uri does (the parts $rU, $rd, $rp read)."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: str | None
    params: str            # with the leading ";" if any
    headers: str           # with the leading "?" if any

    @classmethod
    def parse(cls, text: str) -> "SipUri":
        match = _URI.match(text.strip())
        if not match:
            raise SipParseError(f"not a SIP URI: {text!r} (expected e.g. 'sip:user@host:port')")
        parts = match.groupdict()
        if parts["scheme"].lower() == "tel":     # tel:+4930123;phone-context=...
            number, _, params = text.strip()[4:].partition(";")
            return cls("tel", number, None, "", None, ";" + params if params else "", "")
        if not parts["host"]:
            raise SipParseError(f"SIP URI without host: {text!r}")
        return cls(parts["scheme"].lower(), parts["user"], parts["password"], parts["host"],
                   parts["port"], parts["params"], parts["headers"])

    def param(self, name: str) -> str | None:
        """The value of the URI parameter ``name`` ("" for a flag), None when absent."""
        for item in self.params.split(";")[1:]:
            key, _, value = item.partition("=")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def with_parts(self, **parts: str | None) -> "SipUri":
        # The part names are chosen at run time (the PV being set, the header rewrite), so the
        # checker cannot match each value to its field's type; replace() rejects unknown names.
        return replace(self, **cast("dict[str, Any]", parts))

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{self.params}"
        userinfo = ""
        if self.user:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{self.params}{self.headers}"


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact value: the display name as written (quotes kept, as $fn gives it),
    the URI, and the header parameters (tag)."""

    display: str | None
    uri: str
    params: str

    @classmethod
    def parse(cls, value: str) -> "NameAddr":
        value = value.strip()
        if "<" in value:
            display, _, rest = value.partition("<")
            uri, closed, params = rest.partition(">")
            if not closed:
                raise SipParseError(f"'<' without '>' in {value!r}")
            return cls(display.strip() or None, uri.strip(), params.strip())
        uri, sep, params = value.partition(";")       # addr-spec: parameters belong to the header
        return cls(None, uri.strip(), sep + params if sep else "")

    def param(self, name: str) -> str | None:
        for item in self.params.split(";")[1:]:
            key, _, val = item.partition("=")
            if key.strip().lower() == name.lower():
                return val.strip()
        return None

    def __str__(self) -> str:
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self.uri}>{self.params}"


@dataclass(frozen=True)
class Header:
    name: str      # as written in the message (may be a compact form)
    value: str     # folded lines joined by one space, trimmed

    @property
    def key(self) -> str:
        return canonical(self.name)

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"


@dataclass(frozen=True)
class SipMessage:
    """A SIP request or reply as received, plus the transport facts Kamailio takes from the
    socket (source and local address, protocol)."""

    first_line: str
    headers: tuple[Header, ...]
    body: str = ""
    src_ip: str = "127.0.0.1"
    src_port: int = 5060
    dst_ip: str = "127.0.0.1"
    dst_port: int = 5060
    proto: str = "udp"

    # -- first line
    @property
    def is_request(self) -> bool:
        return not self.first_line.startswith("SIP/")

    @property
    def method(self) -> str:
        """The request method; for a reply the method of its CSeq (as $rm gives)."""
        if self.is_request:
            return self.first_line.split(" ", 1)[0]
        return self.cseq[1]

    @property
    def ruri(self) -> str | None:
        return self.first_line.split(" ")[1] if self.is_request else None

    @property
    def status(self) -> int | None:
        return None if self.is_request else int(self.first_line.split(" ")[1])

    @property
    def reason(self) -> str | None:
        if self.is_request:
            return None
        parts = self.first_line.split(" ", 2)
        return parts[2] if len(parts) == 3 else ""

    # -- headers
    def header(self, name: str) -> str | None:
        """The first header of that name (compact forms match their full names), or None."""
        key = canonical(name)
        return next((h.value for h in self.headers if h.key == key), None)

    def header_values(self, name: str) -> list[str]:
        key = canonical(name)
        return [h.value for h in self.headers if h.key == key]

    @property
    def call_id(self) -> str:
        return self.header("Call-ID") or ""

    @property
    def cseq(self) -> tuple[str, str]:
        number, _, method = (self.header("CSeq") or "").partition(" ")
        return number, method.strip()

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self.header("From") or "")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self.header("To") or "")

    @property
    def text(self) -> str:
        """The message as sent on the wire (CRLF line ends)."""
        lines = [self.first_line, *(str(h) for h in self.headers)]
        return "\r\n".join(lines) + "\r\n\r\n" + self.body

    def with_source(self, ip: str, port: int = 5060, proto: str = "udp") -> "SipMessage":
        return replace(self, src_ip=ip, src_port=port, proto=proto)

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------------------------
# Parsing

def parse(text: str | bytes, *, src_ip: str = "127.0.0.1", src_port: int = 5060,
          proto: str = "udp") -> SipMessage:
    """Parse a SIP request or reply from its text.

    Line ends may be CRLF or LF; folded header lines are joined; repeated headers are kept in
    order; the body is what follows the empty line (cut at Content-Length when that is given).
    Raises SipParseError naming the line and the fault.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SipParseError(f"message is not UTF-8 text: {exc}") from None
    text = text.lstrip("\r\n")
    if not text.strip():
        raise SipParseError("empty message: expected a request line such as "
                            "'INVITE sip:bob@example.com SIP/2.0' or a status line")
    head, body = _split_head(text)
    lines = re.split(r"\r?\n", head)
    first_line = lines[0].rstrip()
    _check_first_line(first_line)
    headers: list[list[str]] = []
    for number, line in enumerate(lines[1:], start=2):
        if line[:1] in (" ", "\t"):
            if not headers:
                raise SipParseError(f"line {number}: continuation line before any header: "
                                    f"{line!r}")
            headers[-1][1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"line {number}: header without ':': {line!r} "
                                "(expected 'Name: value')")
        name = name.strip()
        if not _TOKEN.fullmatch(name):
            raise SipParseError(f"line {number}: invalid header name {name!r} "
                                "(a token: letters, digits, -.!%*_+`'~)")
        headers.append([name, value.strip()])
    message = SipMessage(first_line, tuple(Header(n, v) for n, v in headers), "",
                         src_ip=src_ip, src_port=src_port, proto=proto)
    _check_headers(message)
    return replace(message, body=_body(message, body))


def _split_head(text: str) -> tuple[str, str]:
    match = re.search(r"\r?\n\r?\n", text)
    if not match:
        return text.rstrip("\r\n"), ""
    return text[:match.start()], text[match.end():]


def _check_first_line(line: str) -> None:
    if line.startswith("SIP/"):
        match = _STATUS_LINE.fullmatch(line)
        if not match:
            raise SipParseError(f"line 1: malformed status line {line!r} "
                                "(expected 'SIP/2.0 <3-digit code> <reason>')")
        code = int(match["code"])
        if not 100 <= code <= 699:
            raise SipParseError(f"line 1: status code {code} out of range (100..699)")
    else:
        match = _REQUEST_LINE.fullmatch(line)
        if not match:
            raise SipParseError(f"line 1: not a SIP request line or status line: {line!r} "
                                "(expected 'METHOD sip:user@host SIP/2.0' or 'SIP/2.0 200 OK')")
        if not _TOKEN.fullmatch(match["method"]):
            raise SipParseError(f"line 1: invalid method {match['method']!r}")
        try:
            SipUri.parse(match["uri"])
        except SipParseError as exc:
            raise SipParseError(f"line 1: invalid Request-URI: {exc}") from None
    version = line.split(" ")[0] if line.startswith("SIP/") else line.rsplit(" ", 1)[-1]
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"line 1: unsupported version {version!r} (expected SIP/2.0)")


def _check_headers(message: SipMessage) -> None:
    missing = [name for name in MANDATORY if message.header(name) is None]
    if missing:
        raise SipParseError(f"missing mandatory header(s): {', '.join(missing)} "
                            "(every SIP message needs Via, From, To, Call-ID and CSeq)")
    number, method = message.cseq
    if not number.isdigit() or not _TOKEN.fullmatch(method or "-"):
        raise SipParseError(f"CSeq: {message.header('CSeq')!r} is malformed "
                            "(expected '<number> <METHOD>', e.g. '1 INVITE')")
    if message.is_request and method != message.method:
        raise SipParseError(f"CSeq method {method!r} differs from the request method "
                            f"{message.method!r}")
    for name in ("From", "To"):
        value = message.header(name) or ""
        try:
            SipUri.parse(NameAddr.parse(value).uri)
        except SipParseError as exc:
            raise SipParseError(f"{name}: {value!r}: {exc}") from None


def _body(message: SipMessage, body: str) -> str:
    length = message.header("Content-Length")
    if length is None:
        return body
    if not length.strip().isdigit():
        raise SipParseError(f"Content-Length: {length!r} is not a number")
    expected = int(length)
    raw = body.encode("utf-8")
    if len(raw) < expected:
        hint = " (the body has LF line ends; SIP counts CRLF)" if "\n" in body and \
            "\r\n" not in body else ""
        raise SipParseError(f"Content-Length is {expected} but the body has only "
                            f"{len(raw)} bytes{hint}")
    return raw[:expected].decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# Building

_sequence = itertools.count(1)

DEFAULT_SDP = ("v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\n"
               "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8\r\n"
               "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")


def request(method: str, ruri: str = "sip:bob@example.com", *,
            from_uri: str = "sip:alice@example.com", to_uri: str | None = None,
            from_name: str | None = None, from_tag: str | None = None,
            call_id: str | None = None, cseq: int = 1,
            headers: Iterable[str | tuple[str, str]] = (), body: str = "",
            content_type: str | None = None, contact: str | None = None,
            user_agent: str | None = "kamhttp-testing",
            src_ip: str = "127.0.0.1", src_port: int = 5060, proto: str = "udp") -> SipMessage:
    """A request with every mandatory header filled in; ``headers`` ("Name: value" or pairs)
    are added, replacing a default header of the same name."""
    SipUri.parse(ruri)
    n = next(_sequence)
    tag = from_tag or f"kt{n:04d}"
    to_uri = to_uri or ruri
    display = f'"{from_name}" ' if from_name else ""
    defaults: list[tuple[str, str]] = [
        ("Via", f"SIP/2.0/{proto.upper()} {src_ip}:{src_port};branch=z9hG4bK-kt{n:04d};rport"),
        ("Max-Forwards", "70"),
        ("From", f"{display}<{from_uri}>;tag={tag}"),
        ("To", f"<{to_uri}>"),
        ("Call-ID", call_id or f"kt-{n:04d}-{method.lower()}@{src_ip}"),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact is not None or method in ("INVITE", "REGISTER", "SUBSCRIBE"):
        contact_uri = contact or f"sip:{SipUri.parse(from_uri).user or 'user'}@{src_ip}:{src_port}"
        defaults.append(("Contact", contact_uri if contact_uri.startswith("<") or
                         "*" == contact_uri else f"<{contact_uri}>"))
    if user_agent:
        defaults.append(("User-Agent", user_agent))
    if body:
        defaults.append(("Content-Type", content_type or "text/plain"))
    extra = [_header_pair(h) for h in headers]
    override = {canonical(name) for name, _ in extra}
    pairs = [(k, v) for k, v in defaults if canonical(k) not in override] + extra
    pairs = [(k, v) for k, v in pairs if canonical(k) != "content-length"]
    pairs.append(("Content-Length", str(len(body.encode("utf-8")))))
    first_line = f"{method} {ruri} SIP/2.0"
    message = SipMessage(first_line, tuple(Header(k, v) for k, v in pairs), body,
                         src_ip=src_ip, src_port=src_port, proto=proto)
    _check_headers(message)
    return message


def invite(ruri: str = "sip:bob@example.com", *, body: str | None = None,
           **kwargs) -> SipMessage:
    """An INVITE with an audio SDP offer unless ``body`` is given ("" for none)."""
    if body is None:
        body, kwargs["content_type"] = DEFAULT_SDP, kwargs.get("content_type", "application/sdp")
    return request("INVITE", ruri, body=body, **kwargs)


def register(registrar: str = "sip:example.com", *, aor: str = "sip:alice@example.com",
             expires: int = 3600, **kwargs) -> SipMessage:
    """A REGISTER of ``aor`` (From and To) at ``registrar`` with an Expires header."""
    headers = [("Expires", str(expires)), *kwargs.pop("headers", ())]
    return request("REGISTER", registrar, from_uri=aor, to_uri=aor, headers=headers, **kwargs)


def options(ruri: str = "sip:example.com", **kwargs) -> SipMessage:
    headers = [("Accept", "application/sdp"), *kwargs.pop("headers", ())]
    return request("OPTIONS", ruri, headers=headers, **kwargs)


def message(ruri: str = "sip:bob@example.com", text: str = "Hello", **kwargs) -> SipMessage:
    """A MESSAGE (RFC 3428) carrying ``text`` as text/plain."""
    return request("MESSAGE", ruri, body=text, content_type=kwargs.pop("content_type",
                                                                       "text/plain"), **kwargs)


def reply(req: SipMessage, code: int, reason: str = "", *,
          headers: Iterable[str | tuple[str, str]] = (), body: str = "",
          to_tag: str | None = "kt-remote") -> SipMessage:
    """A reply to ``req`` (for ksr_reply_route): Via, From, To (with a tag), Call-ID, CSeq
    copied from the request."""
    if not 100 <= code <= 699:
        raise SipParseError(f"reply code {code} out of range (100..699)")
    copied = [(h.name, h.value) for h in req.headers
              if h.key in ("via", "from", "to", "call-id", "cseq")]
    if to_tag and code > 100:
        copied = [(n, f"{v};tag={to_tag}" if canonical(n) == "to" and
                   NameAddr.parse(v).param("tag") is None else v) for n, v in copied]
    pairs = copied + [_header_pair(h) for h in headers]
    if body and not any(canonical(n) == "content-type" for n, _ in pairs):
        pairs.append(("Content-Type", "text/plain"))
    pairs.append(("Content-Length", str(len(body.encode("utf-8")))))
    return SipMessage(f"SIP/2.0 {code} {reason}".rstrip(), tuple(Header(k, v) for k, v in pairs),
                      body, src_ip=req.src_ip, src_port=req.src_port, proto=req.proto)


def _header_pair(header: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(header, tuple):
        name, value = header
    else:
        name, colon, value = header.partition(":")
        if not colon:
            raise SipParseError(f"header {header!r} has no ':' (expected 'Name: value')")
    name = name.strip()
    if not _TOKEN.fullmatch(name):
        raise SipParseError(f"invalid header name {name!r}")
    return name, str(value).strip()
