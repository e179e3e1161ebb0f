"""What a script did, as plain data: the transcript the runner returns and tests assert on.

Every record is a picklable dataclass: forked workers send theirs to the parent through a pipe,
kamhttp's HTTP process its resumptions and records through the run's transaction store.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass
class LogLine:
    level: str          # Kamailio's level names: DEBUG INFO NOTICE WARNING ERROR CRITICAL
    text: str           # without the trailing newline
    origin: str = ""    # at start-up: "mod_init" or "child_init(rank)"; from kamhttp's
                        # processes: "HTTP process" or "transfer process"; in a resumption:
                        # the resume method

    def __str__(self) -> str:
        origin = f"{self.origin}: " if self.origin else ""
        return f"{self.level:<8} {origin}{self.text}"


@dataclass
class Reply:
    code: int
    reason: str
    via: str                    # "sl" (stateless) or "tm" (transaction)
    headers: list[str] = field(default_factory=list)   # added with KSR.hdr.append_to_reply
    resume: str = ""            # the resume method that sent it ("" for the route itself)

    def __str__(self) -> str:
        extra = "".join(f"\n      {h}" for h in self.headers)
        where = f", from {self.resume}" if self.resume else ""
        return f"{self.code} {self.reason} ({self.via}{where}){extra}"


@dataclass
class Relay:
    ruri: str                   # the Request-URI sent ($ru at t_relay)
    destination: str            # where it goes: $du if set, else $ru
    message: str                # the forwarded request, with the script's header changes
    resume: str = ""            # the resume method that relayed it ("" for the route itself)

    def __str__(self) -> str:
        to = "" if self.destination == self.ruri else f" via {self.destination}"
        where = f" (from {self.resume})" if self.resume else ""
        return f"{self.ruri}{to}{where}"


@dataclass
class HttpCall:
    """One HTTP request kamhttp performed while the script ran (failover attempts included)."""

    method: str
    url: str
    status: int | None          # the HTTP status, or None on a transport failure
    curl_code: int              # 0, or the libcurl error
    seconds: float
    connection: str | None = None
    process: str = ""           # made by kamhttp's "HTTP process" or "transfer process"

    def __str__(self) -> str:
        if self.status is not None:
            outcome = str(self.status)
        else:
            from ..core.curlerror import curl_strerror
            outcome = f"curl error {self.curl_code} ({curl_strerror(self.curl_code)})"
        via = f" [{self.connection}]" if self.connection else ""
        where = f" (in the {self.process})" if self.process else ""
        return f"{self.method} {self.url}{via} -> {outcome} in {self.seconds * 1000:.1f} ms" \
            f"{where}"


@dataclass
class Resumption:
    """One ``KSR.tmx.t_continue`` of a message's suspended transaction: the resume method run
    in a context made from the transaction (its AVPs, not the worker's $var), in the process
    that continued it (kamhttp's HTTP process), and what it did."""

    index: int                  # the transaction: $T(id_index), $T(id_label)
    label: int
    position: int               # the message's place in the run (MessageResult.index)
    method: str                 # what t_continue ran: "kamhttp_resume" for kamhttp
    resume: str                 # the script's resume method (kamhttp's job), else `method`
    pid: int                    # the process that ran it
    process: str                # "HTTP process", or "worker N" when a worker continued it
    waited: float               # seconds from t_suspend to t_continue
    code: int | None = None     # kamhttp.async_result().code (None: not continued by kamhttp)
    status: int = 0
    curl_code: int = 0
    curl_error: str = ""
    outcome: str = "returned"   # "returned", "exit" (sys.exit()) or "error" (an exception)
    returned: Any = None
    error: str | None = None    # the traceback when outcome is "error"
    suspended: bool = False     # it suspended the transaction again (a chained async call)
    replies: list[Reply] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    http: list[HttpCall] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    timeline: list[Any] = field(default_factory=list)
    pvs: dict[str, Any] = field(default_factory=dict)  # $ru, $du, $avp(*), $xavp at its end
    ns: int = 0                 # monotonic clock when it ended (orders the records)

    @property
    def result(self) -> str:
        """kamhttp's result as the resume method saw it: the code, and the curl error."""
        if self.code is None:
            return "no kamhttp result"
        if self.curl_code:
            return f"curl error {self.curl_code} ({self.curl_error})"
        if self.code < 0:
            return f"{self.code} ({self.curl_error})" if self.curl_error else str(self.code)
        return str(self.code)

    def __str__(self) -> str:
        where = f"the {self.process}" if self.process == "HTTP process" else self.process
        return (f"{self.resume}: {self.result}, by t_continue({self.index}, {self.label}, "
                f"{self.method}) in {where} (pid {self.pid}), "
                f"{self.waited * 1000:.1f} ms after t_suspend")


@dataclass
class ProcessRecord:
    """A log line or HTTP call of kamhttp's HTTP process or its transfer process that belongs
    to no message (start-up, fire-and-forget sends, a lost transfer process)."""

    process: str                # "HTTP process" or "transfer process"
    pid: int
    item: Any                   # LogLine or HttpCall

    def __str__(self) -> str:
        return f"{_label(self.item):<6} {self.item}  [{self.process} {self.pid}]"


@dataclass
class MessageResult:
    """One SIP message through one route of the script, and the resumptions of its
    transaction when the route suspended it (an asynchronous request): their records join the
    message's lists (``reply`` is the last reply, whoever sent it) in the order they came."""

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
    transaction: tuple[int, int] | None = None         # ($T(id_index), $T(id_label)) if any
    suspended: bool = False     # the route ended with its transaction suspended
    resumptions: list[Resumption] = field(default_factory=list)

    @property
    def reply(self) -> Reply | None:
        """The last reply sent, or None."""
        return self.replies[-1] if self.replies else None

    @property
    def relay(self) -> Relay | None:
        return self.relays[-1] if self.relays else None

    @property
    def awaiting(self) -> bool:
        """Whether its transaction is suspended still (no resumption, or the last one
        suspended it again)."""
        return self.resumptions[-1].suspended if self.resumptions else self.suspended

    @property
    def ok(self) -> bool:
        """No Python exception in the route nor in a resume method."""
        return self.outcome != "error" and all(r.outcome != "error" for r in self.resumptions)

    def log_text(self, level: str | None = None) -> str:
        """The log lines (of one level, if given) joined by newlines: for `in` assertions."""
        return "\n".join(line.text for line in self.logs if level in (None, line.level))

    def add_record(self, item: Any) -> None:
        """A log line, HTTP call or event kamhttp's processes made for this message's
        asynchronous request."""
        kinds: dict[type, list[Any]] = {LogLine: self.logs, HttpCall: self.http,
                                        Reply: self.replies, Relay: self.relays}
        kinds.get(type(item), self.events).append(item)
        self.timeline.append(item)

    def add_resumption(self, resumption: Resumption) -> None:
        """A resumption's records after the message's; the pseudo-variables as it left them
        ($var as the route left them: the resumed context has none of the worker's)."""
        self.resumptions.append(resumption)
        self.replies += resumption.replies
        self.relays += resumption.relays
        self.logs += resumption.logs
        self.http += resumption.http
        self.events += resumption.events
        self.timeline += [resumption, *resumption.timeline]
        pvs = {k: v for k, v in resumption.pvs.items() if k in ("$ru", "$du")}
        pvs.update((k, v) for k, v in self.pvs.items() if k.startswith("$var("))
        pvs.update(resumption.pvs)
        self.pvs = pvs

    def render(self) -> str:
        lines = [f"#{self.index + 1} {self.summary}   [worker {self.rank}, {self.route}]"]
        lines += [f"    {_label(item):<6} {item}" for item in self.timeline]
        shown = {k: v for k, v in self.pvs.items() if v is not None}
        lines += [f"    pv     {name} = {value!r}" for name, value in shown.items()]
        if self.outcome == "error":
            lines.append("    ERROR  the route raised:")
            lines += [f"           {row}" for row in (self.error or "").rstrip().splitlines()]
        for resumption in self.resumptions:
            if resumption.outcome == "error":
                lines.append(f"    ERROR  {resumption.resume} raised:")
                lines += [f"           {row}"
                          for row in (resumption.error or "").rstrip().splitlines()]
        outcome = self.outcome
        if self.resumptions:
            last = self.resumptions[-1]
            outcome += f"; {last.resume} {last.outcome}"
        if self.outcome == "error":          # the traceback says it all
            return "\n".join(lines)
        if self.awaiting:
            lines.append(f"    =>     suspended, not resumed ({outcome})")
        elif not self.replies and not self.relays and self.route == "ksr_request_route":
            lines.append(f"    =>     no reply, no relay ({outcome})")
        else:
            lines.append(f"    =>     {outcome}")
        return "\n".join(lines)


def _label(item: Any) -> str:
    return {LogLine: "log", HttpCall: "http", Reply: "reply", Relay: "relay",
            Resumption: "resume"}.get(type(item), "event")


@dataclass
class Transcript:
    """The whole run: start-up logs (mod_init, child_init) and one result per message, in the
    order of the input whichever worker ran them."""

    script: str
    children: int
    startup: list[LogLine] = field(default_factory=list)
    messages: list[MessageResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)    # workers lost, timeouts
    http_process: list[ProcessRecord] = field(default_factory=list)
    """What kamhttp's HTTP process and its transfer process logged or requested for no
    message (the records of a message's asynchronous request are in the message)."""

    def __getitem__(self, index: int) -> MessageResult:
        return self.messages[index]

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[MessageResult]:
        return iter(self.messages)

    @property
    def ok(self) -> bool:
        """True when every message ran without a Python exception (route or resume method),
        no worker was lost and every suspended transaction was resumed."""
        return not self.problems and all(m.ok for m in self.messages)

    def render(self) -> str:
        workers = "1 worker, in-process" if self.children == 1 else \
            f"{self.children} forked workers"
        lines = [f"script {self.script} ({workers})"]
        lines += [f"  start  {line}" for line in self.startup]
        lines += [m.render() for m in self.messages]
        lines += [f"  async  {record}" for record in self.http_process]
        lines += [f"PROBLEM {p}" for p in self.problems]
        return "\n".join(lines)

    __str__ = render
