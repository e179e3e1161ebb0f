"""The state the emulated KSR works on: one WorkerState per worker process, one MessageContext
per SIP message (and a faked message for mod_init/child_init, as Kamailio uses outside routes).

$var lives in the worker and survives messages; $avp, $xavp, flags, header changes and the new
Request-URI live in the message context, as in Kamailio.

A message whose route suspends its transaction (``KSR.tmx.t_suspend()``) leaves a
:class:`Transaction`: what tm keeps in shared memory for ``t_continue`` — the received request,
the message changes saved at t_suspend (tm's save_msg_lumps: R-URI, destination, header
changes, flags) and the transaction's AVPs and XAVPs as the route left them.  Its resumption
runs in a new context made from it (:meth:`Transaction.context`), in whatever process calls
t_continue: the AVPs are there, the worker's $var are not.
"""
from __future__ import annotations

import copy
import zlib
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
class MessageState:
    """What t_suspend saves of the message's changes with its transaction."""

    new_uri: str | None = None
    dst_uri: str | None = None
    flags: set[int] = field(default_factory=set)
    added_headers: list[str] = field(default_factory=list)
    inserted_headers: list[str] = field(default_factory=list)
    removed_headers: set[str] = field(default_factory=set)
    reply_headers: list[str] = field(default_factory=list)
    header_rewrites: dict[str, dict[str, str | None]] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: "MessageContext") -> "MessageState":
        return cls(ctx.new_uri, ctx.dst_uri, set(ctx.flags), list(ctx.added_headers),
                   list(ctx.inserted_headers), set(ctx.removed_headers),
                   list(ctx.reply_headers), copy.deepcopy(ctx.header_rewrites))


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
    position: int | None = None             # the message's place in the run (None: faked)
    tindex: int | None = None               # $T(id_index), $T(id_label) once a transaction
    tlabel: int | None = None               # exists
    suspended: bool = False                 # by t_suspend, until t_continue
    saved: MessageState | None = None       # the changes t_suspend saved
    suspended_ns: int = 0                   # monotonic clock at t_suspend
    resume: str = ""                        # the resume method this context runs for

    def record(self, kind: list[Any], item: Any) -> None:
        kind.append(item)
        self.timeline.append(item)

    @property
    def ruri(self) -> str | None:
        """The current Request-URI ($ru): the new one if the script set it."""
        return self.new_uri if self.new_uri is not None else self.message.ruri

    def log(self, level: str, text: str) -> None:
        self.record(self.logs, LogLine(level, text[:-1] if text.endswith("\n") else text))

    def ensure_transaction(self) -> None:
        """tm's transaction for this request (t_newtran, t_relay, t_suspend): its identifiers
        are the message's place in the run ($T(id_index)) and a label made from its Call-ID
        and CSeq ($T(id_label)), so every process of a run names it alike."""
        self.transaction = True
        if self.tindex is None and self.position is not None:
            ident = f"{self.message.header('Call-ID')}\n{self.message.header('CSeq')}"
            self.tindex = self.position
            self.tlabel = zlib.crc32(ident.encode("utf-8", "surrogateescape")) & 0x7FFFFFFF


@dataclass
class Transaction:
    """A suspended transaction as tm keeps it for t_continue (picklable: it moves between the
    kit's processes)."""

    index: int
    label: int
    position: int
    message: SipMessage
    saved: MessageState
    avps: dict[str, list[Any]]
    xavps: dict[str, list[dict[str, list[Any]]]]
    suspended_ns: int

    @classmethod
    def of(cls, ctx: MessageContext) -> "Transaction":
        """The transaction of a context whose route (or resume) ended with it suspended."""
        assert ctx.suspended and ctx.tindex is not None and ctx.tlabel is not None
        assert ctx.position is not None
        return cls(ctx.tindex, ctx.tlabel, ctx.position, ctx.message,
                   ctx.saved or MessageState.of(ctx), copy.deepcopy(ctx.avps),
                   copy.deepcopy(ctx.xavps), ctx.suspended_ns)

    def context(self, worker: WorkerState, resume: str = "") -> MessageContext:
        """The context t_continue runs the resume method in: the request with the saved
        changes, the transaction's AVPs and XAVPs, the calling process's worker ($var)."""
        saved = copy.deepcopy(self.saved)
        return MessageContext(
            self.message, worker, new_uri=saved.new_uri, dst_uri=saved.dst_uri,
            avps=copy.deepcopy(self.avps), xavps=copy.deepcopy(self.xavps), flags=saved.flags,
            added_headers=saved.added_headers, inserted_headers=saved.inserted_headers,
            removed_headers=saved.removed_headers, reply_headers=saved.reply_headers,
            header_rewrites=saved.header_rewrites, transaction=True, position=self.position,
            tindex=self.index, tlabel=self.label, resume=resume)


def new_context(message: SipMessage | None, worker: WorkerState,
                position: int | None = None) -> MessageContext:
    return MessageContext(message if message is not None else FAKED_MESSAGE, worker,
                          position=position if message is not None else None)
