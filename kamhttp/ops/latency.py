"""Latency histograms per connection (total, connect, TLS, first byte), for the Prometheus
scrape: with ``latency_metrics`` on, a hook after every attempt reads libcurl's timers and
counts them into this process's row of a table in shared memory made before fork; the scrape
sums the rows of every process.  Each process writes only its own row, so no lock.
"""
from __future__ import annotations

import bisect
import mmap
from typing import TYPE_CHECKING

import pycurl

from ..core.curlerror import BREAKER_OPEN
from ..core.sharedlock import SharedLock

if TYPE_CHECKING:
    from ..core.attempt import Attempt
    from ..core.state import ProcessState

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds in seconds (Prometheus' le); one more bucket counts the rest (+Inf)."""
TIMERS = (("total", pycurl.TOTAL_TIME), ("connect", pycurl.CONNECT_TIME),
          ("tls", pycurl.APPCONNECT_TIME), ("first_byte", pycurl.STARTTRANSFER_TIME))
UPSTREAMS = 64
"""Connections with a row of their own; the direct-URL functions share one ("direct"), and
connections beyond the first UPSTREAMS - 1 share the last."""
PROCESSES = 64
"""Process rows; processes beyond that share the last one (counts may then be lost)."""

_CELLS = len(BUCKETS) + 3          # buckets, +Inf, sum (microseconds), count
_PER_UPSTREAM = len(TIMERS) * _CELLS
_PER_PROCESS = UPSTREAMS * _PER_UPSTREAM
_NAME_BYTES = 128


class Table:
    def __init__(self) -> None:
        self.map = mmap.mmap(-1, 8 * (_PER_PROCESS * PROCESSES + 2))
        self.words = memoryview(self.map).cast("q")      # [0]: rows taken, [1]: names used
        self.names = mmap.mmap(-1, _NAME_BYTES * UPSTREAMS)
        self.lock = SharedLock()

    def __enter__(self) -> None:
        self.lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__()


_table: Table | None = None
_row = -1
_row_pid = 0
_columns: dict[str | None, int] = {}


def prepare() -> Table:
    global _table
    if _table is None:
        _table = Table()
    return _table


def _column(connection: str | None) -> int:
    """The first word of ``connection``'s histograms in a row."""
    column = _columns.get(connection)
    if column is None:
        table = prepare()
        name = (connection or "direct").encode("utf-8", "surrogateescape")[:_NAME_BYTES - 1]
        index = -1
        with table:                                     # the names are shared: look, claim
            for i in range(UPSTREAMS):
                raw = table.names[i * _NAME_BYTES:(i + 1) * _NAME_BYTES].rstrip(b"\0")
                if raw == name or not raw:
                    if not raw:
                        table.names[i * _NAME_BYTES:(i + 1) * _NAME_BYTES] = name.ljust(
                            _NAME_BYTES, b"\0")
                    index = i
                    break
        column = _columns[connection] = (index if index >= 0 else UPSTREAMS - 1) * \
            _PER_UPSTREAM
    return column


def observe(state: ProcessState, attempt: Attempt) -> None:
    """The hook after every attempt (installed when latency_metrics is on)."""
    global _row, _row_pid
    if _row_pid != state.pid:
        table = prepare()
        with table:
            taken = table.words[0]
            table.words[0] = taken + 1
        _row, _row_pid = 2 + min(taken, PROCESSES - 1) * _PER_PROCESS, state.pid
    handle = state.timed
    if handle is None or handle.closed_info is not None or attempt.code == BREAKER_OPEN:
        return
    curl = handle.curl
    words = prepare().words
    base = _row + _column(attempt.connection)
    for _, getinfo_id in TIMERS:
        seconds = curl.getinfo(getinfo_id)
        words[base + bisect.bisect_left(BUCKETS, seconds)] += 1
        words[base + len(BUCKETS) + 1] += round(seconds * 1_000_000)
        words[base + len(BUCKETS) + 2] += 1
        base += _CELLS


def exposition() -> list[str]:
    """The histograms in Prometheus text (cumulative buckets, as the format wants)."""
    table = _table
    if table is None:
        return []
    rows = min(table.words[0], PROCESSES)
    lines: list[str] = []
    for t, (timer, _) in enumerate(TIMERS):
        name = f"kamhttp_{timer}_seconds"
        lines += [f"# HELP {name} libcurl's {timer} time of each attempt, by connection.",
                  f"# TYPE {name} histogram"]
        for u in range(UPSTREAMS):
            raw = table.names[u * _NAME_BYTES:(u + 1) * _NAME_BYTES].rstrip(b"\0")
            if not raw:
                continue
            label = raw.decode("utf-8", "replace").replace("\\", "\\\\").replace('"', '\\"')
            cells = [sum(table.words[2 + r * _PER_PROCESS + u * _PER_UPSTREAM + t * _CELLS + c]
                         for r in range(rows)) for c in range(_CELLS)]
            running = 0
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), cells):
                running += count
                lines.append(f'{name}_bucket{{connection="{label}",le="{bound}"}} {running}')
            lines.append(f'{name}_sum{{connection="{label}"}} {cells[-2] / 1_000_000}')
            lines.append(f'{name}_count{{connection="{label}"}} {cells[-1]}')
    return lines


