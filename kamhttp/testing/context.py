"""The state the emulated KSR works on: one WorkerState per worker process, one MessageContext
per SIP message (and a faked message for mod_init/child_init, as Kamailio uses outside routes).

$var lives in the worker and survives messages; $avp, $xavp, flags, header changes and the new
Request-URI live in the message context, as in Kamailio.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .sipmsg import SipMessage, parse
from .transcript import HttpCall, LogLine, Relay, Reply

FAKED_MESSAGE = parse(
    "OPTIONS sip:you@kamailio.org SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1\r\n"
    "From: <sip:you@kamailio.org>;tag=123\r\n"
    "To: <sip:you@kamailio.org>\r\n"
    "Call-ID: 123\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n")
"""What KSR functions see outside a route: Kamailio's faked message (core/fmsg.c)."""


@dataclass
class WorkerState:
    rank: int
    vars: dict[str, Any] = field(default_factory=dict)     # $var(name): str or int


@dataclass
class MessageContext:
    message: SipMessage
    worker: WorkerState
    new_uri: str | None = None              # $ru after an assignment
    dst_uri: str | None = None              # $du
    avps: dict[str, list[Any]] = field(default_factory=dict)      # newest value first
    xavps: dict[str, list[dict[str, list[Any]]]] = field(default_factory=dict)
    flags: set[int] = field(default_factory=set)
    added_headers: list[str] = field(default_factory=list)        # raw text, as appended
    inserted_headers: list[str] = field(default_factory=list)     # raw text, before the rest
    removed_headers: set[str] = field(default_factory=set)        # canonical names
    reply_headers: list[str] = field(default_factory=list)        # append_to_reply
    header_rewrites: dict[str, dict[str, str | None]] = field(default_factory=dict)
    transaction: bool = False
    replies: list[Reply] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    http: list[HttpCall] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    timeline: list[Any] = field(default_factory=list)    # the records above, in time order

    def record(self, kind: list[Any], item: Any) -> None:
        kind.append(item)
        self.timeline.append(item)

    @property
    def ruri(self) -> str | None:
        """The current Request-URI ($ru): the new one if the script set it."""
        return self.new_uri if self.new_uri is not None else self.message.ruri

    def log(self, level: str, text: str) -> None:
        self.record(self.logs, LogLine(level, text[:-1] if text.endswith("\n") else text))


def new_context(message: SipMessage | None, worker: WorkerState) -> MessageContext:
    return MessageContext(message if message is not None else FAKED_MESSAGE, worker)
