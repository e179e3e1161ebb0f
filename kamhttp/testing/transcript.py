"""What a script did, as plain data: the transcript the runner returns and tests assert on.

Every record is a picklable dataclass: forked workers send theirs to the parent through a pipe.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass
class LogLine:
    level: str          # Kamailio's level names: DEBUG INFO NOTICE WARNING ERROR CRITICAL
    text: str           # without the trailing newline
    origin: str = ""    # at start-up: "mod_init" or "child_init(rank)"

    def __str__(self) -> str:
        origin = f"{self.origin}: " if self.origin else ""
        return f"{self.level:<8} {origin}{self.text}"


@dataclass
class Reply:
    code: int
    reason: str
    via: str                    # "sl" (stateless) or "tm" (transaction)
    headers: list[str] = field(default_factory=list)   # added with KSR.hdr.append_to_reply

    def __str__(self) -> str:
        extra = "".join(f"\n      {h}" for h in self.headers)
        return f"{self.code} {self.reason} ({self.via}){extra}"


@dataclass
class Relay:
    ruri: str                   # the Request-URI sent ($ru at t_relay)
    destination: str            # where it goes: $du if set, else $ru
    message: str                # the forwarded request, with the script's header changes

    def __str__(self) -> str:
        to = "" if self.destination == self.ruri else f" via {self.destination}"
        return f"{self.ruri}{to}"


@dataclass
class HttpCall:
    """One HTTP request kamhttp performed while the script ran (failover attempts included)."""

    method: str
    url: str
    status: int | None          # the HTTP status, or None on a transport failure
    curl_code: int              # 0, or the libcurl error
    seconds: float
    connection: str | None = None

    def __str__(self) -> str:
        if self.status is not None:
            outcome = str(self.status)
        else:
            from ..core.curlerror import curl_strerror
            outcome = f"curl error {self.curl_code} ({curl_strerror(self.curl_code)})"
        via = f" [{self.connection}]" if self.connection else ""
        return f"{self.method} {self.url}{via} -> {outcome} in {self.seconds * 1000:.1f} ms"


@dataclass
class MessageResult:
    """One SIP message through one route of the script."""

    index: int                  # position in the input, from 0
    rank: int                   # the worker that ran it
    route: str                  # "ksr_request_route" or "ksr_reply_route"
    summary: str                # first line of the received message
    outcome: str                # "returned", "exit" (sys.exit()) or "error" (an exception)
    returned: Any = None        # what the route function returned
    error: str | None = None    # the traceback when outcome is "error"
    replies: list[Reply] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    http: list[HttpCall] = field(default_factory=list)
    events: list[str] = field(default_factory=list)    # t_on_failure(...), setflag(...), ...
    pvs: dict[str, Any] = field(default_factory=dict)  # $ru, $du, $var(*), $avp(*) at the end
    timeline: list[Any] = field(default_factory=list)  # logs, HTTP calls, events, replies
                                                       # and relays in the order they happened

    @property
    def reply(self) -> Reply | None:
        """The last reply sent, or None."""
        return self.replies[-1] if self.replies else None

    @property
    def relay(self) -> Relay | None:
        return self.relays[-1] if self.relays else None

    def log_text(self, level: str | None = None) -> str:
        """The log lines (of one level, if given) joined by newlines: for `in` assertions."""
        return "\n".join(line.text for line in self.logs if level in (None, line.level))

    def render(self) -> str:
        lines = [f"#{self.index + 1} {self.summary}   [worker {self.rank}, {self.route}]"]
        lines += [f"    {_label(item):<6} {item}" for item in self.timeline]
        shown = {k: v for k, v in self.pvs.items() if v is not None}
        lines += [f"    pv     {name} = {value!r}" for name, value in shown.items()]
        if self.outcome == "error":
            lines.append("    ERROR  the route raised:")
            lines += [f"           {row}" for row in (self.error or "").rstrip().splitlines()]
        elif not self.replies and not self.relays and self.route == "ksr_request_route":
            lines.append(f"    =>     no reply, no relay ({self.outcome})")
        else:
            lines.append(f"    =>     {self.outcome}")
        return "\n".join(lines)


def _label(item: Any) -> str:
    return {LogLine: "log", HttpCall: "http", Reply: "reply", Relay: "relay"}.get(
        type(item), "event")


@dataclass
class Transcript:
    """The whole run: start-up logs (mod_init, child_init) and one result per message, in the
    order of the input whichever worker ran them."""

    script: str
    children: int
    startup: list[LogLine] = field(default_factory=list)
    messages: list[MessageResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)    # workers lost, timeouts

    def __getitem__(self, index: int) -> MessageResult:
        return self.messages[index]

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[MessageResult]:
        return iter(self.messages)

    @property
    def ok(self) -> bool:
        """True when every message ran without a Python exception and no worker was lost."""
        return not self.problems and all(m.outcome != "error" for m in self.messages)

    def render(self) -> str:
        workers = "1 worker, in-process" if self.children == 1 else \
            f"{self.children} forked workers"
        lines = [f"script {self.script} ({workers})"]
        lines += [f"  start  {line}" for line in self.startup]
        lines += [m.render() for m in self.messages]
        lines += [f"PROBLEM {p}" for p in self.problems]
        return "\n".join(lines)

    __str__ = render
