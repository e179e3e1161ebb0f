"""What travels between kamhttp's processes for one asynchronous request.

A :class:`Job` goes from a SIP worker to an HTTP process (one datagram on the hand-over
queue); an :class:`Outcome` comes back from the transfer process to the HTTP process that
resumes the transaction.  Both are flat tuples in :mod:`marshal` form: the processes run the
same code, and marshal is the cheapest encoding Python has for ints, strings and bytes.
"""
from __future__ import annotations

import marshal
from dataclasses import dataclass, field

from ..core.attempt import Attempt

_current: "Job | None" = None


def current() -> "Job | None":
    """The job this process is handling right now (its attempt starting or ending in the
    transfer process, its resumption in the HTTP process), else None: for observers such as
    the testing kit's transcript."""
    return _current


class handling:
    """Make ``job`` the :func:`current` one for the duration (a class, not a generator:
    it runs twice per transfer)."""

    __slots__ = ("job", "previous")

    def __init__(self, job: "Job") -> None:
        self.job = job
        self.previous: Job | None = None

    def __enter__(self) -> None:
        global _current
        self.previous, _current = _current, self.job

    def __exit__(self, *_exc: object) -> None:
        global _current
        _current = self.previous


NO_TRANSACTION = -1
"""The ``index`` of a fire-and-forget job (``send``): nothing is suspended, nothing resumed."""


@dataclass(slots=True)
class Job:
    """One request to make, and the suspended transaction to continue with its result."""

    index: int                     # $T(id_index), or NO_TRANSACTION
    label: int                     # $T(id_label)
    resume: str                    # the handler method to run with the result
    dpv: str                       # the result PV ($avp/$xavp: it survives the move)
    connection: str | None         # a connection name, or None for a direct URL
    url: str                       # the path on the connection, or the full URL
    method: str | None = None
    content_type: str | None = None
    body: bytes | None = None
    hdrs: str | None = None
    http2: bool = False
    first_line: bool = True        # query_result applies (the direct-URL functions)

    def encode(self) -> bytes:
        return marshal.dumps((self.index, self.label, self.resume, self.dpv, self.connection,
                              self.url, self.method, self.content_type, self.body, self.hdrs,
                              self.http2, self.first_line))

    @classmethod
    def decode(cls, data: bytes) -> "Job":
        return cls(*marshal.loads(data))


@dataclass(slots=True)
class Outcome:
    """What the transfer process made of a job: the fields of its last Attempt."""

    code: int
    status: int = 0
    curl_code: int = 0
    body: bytes = b""
    value: bytes = b""
    truncated: bool = False
    effective_url: str = ""
    content_type: str = ""
    header_lines: list[bytes] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    attempts_ok: int = 0            # the request's attempts (failover included), for the
    attempts_failed: int = 0        # counters the HTTP process adds to Kamailio's

    @classmethod
    def of(cls, attempt: Attempt, ok: int = 0, failed: int = 0) -> "Outcome":
        return cls(attempt.code, attempt.status, attempt.curl_code, attempt.body,
                   attempt.value, attempt.truncated, attempt.effective_url,
                   attempt.content_type, attempt.header_lines or [], attempt.timings,
                   ok, failed)

    def encode(self) -> bytes:
        return marshal.dumps((self.code, self.status, self.curl_code, self.body, self.value,
                              self.truncated, self.effective_url, self.content_type,
                              self.header_lines, self.timings, self.attempts_ok,
                              self.attempts_failed))

    @classmethod
    def decode(cls, data: bytes) -> "Outcome":
        return cls(*marshal.loads(data))
