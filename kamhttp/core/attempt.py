"""The result of one request attempt: the one shape every caller reads.

The script functions read ``code`` and ``value``, :func:`kamhttp.request` and the developer
API the rest, the hooks after an attempt (counters, the testing kit's transcript) whatever
they count.  Details (effective URL, Content-Type, header lines, timings) are filled only
when the caller asked for them: the script path pays for none.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Attempt:
    code: int
    """As the script functions return it: the HTTP status, else the curl code (1..99), else
    -1 (no connection, or a libcurl code from 100 up that a script would read as a status)."""
    status: int = 0
    """The HTTP status, 0 when no response came."""
    curl_code: int = 0
    body: bytes = b""
    """The whole body kept (bounded by maxdatasize / query_maxdatasize), for any status."""
    value: bytes = b""
    """What the result variable gets: the body for statuses 200..499 (its first line with
    query_result=1 on the direct-URL functions), else b""."""
    connection: str | None = None
    url: str = ""
    method: str | None = None
    sent: bytes | None = None
    """The request body sent, if any."""
    seconds: float = 0.0
    truncated: bool = False
    effective_url: str = ""
    content_type: str = ""
    header_lines: list[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)


NO_CONNECTION = Attempt(-1)
"""What a request on an unknown connection gives (logged; nothing was sent)."""
