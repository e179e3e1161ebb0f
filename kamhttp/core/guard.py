"""The outage guard: a circuit breaker per upstream, shared by every process of one Kamailio,
and a bound on the processes that may be connecting to an upstream not known to be alive.

A dead, slow or flapping API must not take the SIP server with it: once an upstream failed
``breaker_failures`` times in a row (or ``breaker_ratio`` percent of the attempts of a
``breaker_window`` in one process), its breaker opens and every request on it is refused at
once (:data:`BREAKER_OPEN`, and the connection's failover is tried instead) until
``breaker_cooldown`` ms passed; then one probe request goes through (half-open) and its
success closes the breaker, its failure opens it again.  While an upstream is not known to
be alive (it failed last, or is being probed), at most ``max_connecting`` processes may be
connecting to it; the others are refused at once too.  A failure is what the failover rule
counts: a curl error or a status >= 500.

The state lives in a table of int64 words in shared memory made before Kamailio forks
(:func:`prepare`), one slot per upstream: a connection definition, or scheme://host:port for
the direct-URL functions.  A healthy upstream costs one read of two words per request and no
write, no lock; every change of state happens under a lock (``lockf``) and is logged once.
"""
from __future__ import annotations

import mmap
import time
import zlib
from typing import Iterator

from ..config.params import ConnectionOptions
from ..log import get_logger, printable
from .curlerror import BREAKER_OPEN, BREAKER_TEXT
from .sharedlock import SharedLock

log = get_logger("guard")

__all__ = ["BREAKER_OPEN", "BREAKER_TEXT", "Guard", "Table", "prepare", "table", "origin"]

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
STATE_NAMES = {CLOSED: "closed", OPEN: "open", HALF_OPEN: "half-open"}
MIN_WINDOW_REQUESTS = 10
"""Attempts a process must have made in a window before breaker_ratio can open it."""

_SLOTS = 512
_WORDS = 16
_NAME_BYTES = 128
# the words of a slot
_KEY, _STATE, _FAILURES, _OPENED_AT, _PROBE_AT, _CONNECTING = 0, 1, 2, 3, 4, 5
_OPENS, _REJECTS, _PROBES, _CLOSES = 6, 7, 8, 9
COUNTS = {"opens": _OPENS, "rejects": _REJECTS, "probes": _PROBES, "closes": _CLOSES}


class Table:
    """The shared slots and their lock."""

    def __init__(self) -> None:
        self.map = mmap.mmap(-1, 8 * _WORDS * _SLOTS)
        self.words = memoryview(self.map).cast("q")
        self.names = mmap.mmap(-1, _NAME_BYTES * _SLOTS)   # each slot's upstream, for readers
        self.lock = SharedLock()

    def __enter__(self) -> None:
        self.lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__()

    def slot(self, upstream: str) -> int:
        """The first word of ``upstream``'s slot, claimed on first use (open addressing on
        a stable hash; when the table is full, the last slot is shared)."""
        key = zlib.crc32(upstream.encode("utf-8", "surrogateescape")) + 1
        words = self.words
        with self:
            for probe in range(_SLOTS):
                base = ((key + probe) % _SLOTS) * _WORDS
                if words[base + _KEY] in (0, key):
                    if not words[base + _KEY]:
                        name = upstream.encode("utf-8", "surrogateescape")[:_NAME_BYTES - 1]
                        at = (base // _WORDS) * _NAME_BYTES
                        self.names[at:at + _NAME_BYTES] = name.ljust(_NAME_BYTES, b"\0")
                        words[base + _KEY] = key
                    return base
        return (_SLOTS - 1) * _WORDS

    def find(self, upstream: str) -> int | None:
        """The first word of ``upstream``'s slot if it has one (nothing is claimed)."""
        key = zlib.crc32(upstream.encode("utf-8", "surrogateescape")) + 1
        for probe in range(_SLOTS):
            base = ((key + probe) % _SLOTS) * _WORDS
            found = self.words[base + _KEY]
            if found == key:
                return base
            if found == 0:
                return None
        return None

    def state_of(self, upstream: str) -> str:
        """closed, open or half-open; "" for an upstream without a guard."""
        base = self.find(upstream)
        return "" if base is None else STATE_NAMES[self.words[base + _STATE]]

    def slots(self) -> Iterator[tuple[str, int]]:
        """(upstream, first word) of every claimed slot, by upstream."""
        found = []
        for slot in range(_SLOTS):
            if self.words[slot * _WORDS + _KEY]:
                raw = self.names[slot * _NAME_BYTES:(slot + 1) * _NAME_BYTES]
                found.append((raw.rstrip(b"\0").decode("utf-8", "replace"), slot * _WORDS))
        return iter(sorted(found))


_table: Table | None = None


def prepare() -> Table:
    """Make the shared table in this process unless it has one: before Kamailio forks."""
    global _table
    if _table is None:
        _table = Table()
    return _table


def table() -> Table | None:
    return _table


def reset() -> None:
    """Every breaker closed and forgotten: a new Kamailio start (the testing kit, tests)."""
    if _table is not None:
        _table.words[:] = memoryview(bytes(len(_table.map))).cast("q")
        _table.names[:] = bytes(len(_table.names))


def enabled(options: ConnectionOptions) -> bool:
    return bool(options.breaker_failures or options.breaker_ratio or options.max_connecting)


class Guard:
    """One upstream's breaker as a process uses it: the shared slot, its thresholds, and
    this process's window and part in the current attempt."""

    __slots__ = ("table", "words", "base", "upstream", "failures", "ratio", "window_ns",
                 "cooldown_ns", "max_connecting", "probe_ns", "window_start", "requests",
                 "failed", "probing", "probe_at", "connecting")

    def __init__(self, shared: Table, upstream: str, options: ConnectionOptions,
                 probe_timeout_s: float) -> None:
        self.table, self.words = shared, shared.words
        self.base = shared.slot(upstream)
        self.upstream = upstream
        self.failures = options.breaker_failures
        self.ratio = options.breaker_ratio
        self.window_ns = options.breaker_window * 1_000_000_000
        self.cooldown_ns = options.breaker_cooldown * 1_000_000
        self.max_connecting = options.max_connecting
        self.probe_ns = int(max(probe_timeout_s, 1.0) * 1_000_000_000)
        self.window_start = 0
        self.requests = self.failed = 0
        self.probing = self.connecting = False
        self.probe_at = 0

    @property
    def state(self) -> str:
        return STATE_NAMES.get(self.words[self.base + _STATE], "closed")

    def admit(self) -> bool:
        """Whether a request may go now (False: refused at once, counted)."""
        words, base = self.words, self.base
        if words[base + _STATE] == CLOSED and not words[base + _FAILURES]:
            return True                                  # healthy: two reads, no write
        now = time.monotonic_ns()
        with self.table:
            state = words[base + _STATE]
            if state == OPEN and now >= words[base + _OPENED_AT] + self.cooldown_ns or \
                    state == HALF_OPEN and now >= words[base + _PROBE_AT] + 2 * self.probe_ns:
                words[base + _STATE] = HALF_OPEN          # one probe (again, if the last
                words[base + _PROBE_AT] = now             # one never came back)
                words[base + _PROBES] += 1
                self.probing, self.probe_at = True, now
                log.warning("circuit of %s half-open: one probe request",
                            printable(self.upstream))
                return True
            if state != CLOSED:
                words[base + _REJECTS] += 1
                return False
            if self.max_connecting:
                if words[base + _CONNECTING] >= self.max_connecting:
                    words[base + _REJECTS] += 1
                    return False
                words[base + _CONNECTING] += 1
                self.connecting = True
        return True

    def settle(self, failed: bool) -> None:
        """Count the attempt ``admit`` let through: its failure or success."""
        words, base = self.words, self.base
        if self.ratio:
            self._window(failed)
        if not failed and not self.probing and not self.connecting:
            if words[base + _FAILURES]:
                words[base + _FAILURES] = 0               # alive again (no lock needed)
            return
        with self.table:
            if self.connecting:
                words[base + _CONNECTING] -= 1
                self.connecting = False
            if not failed:
                words[base + _FAILURES] = 0
                if self.probing:
                    self.probing = False
                    if words[base + _STATE] == HALF_OPEN:
                        words[base + _STATE] = CLOSED
                        words[base + _CLOSES] += 1
                        log.warning("circuit of %s closed: the probe succeeded",
                                    printable(self.upstream))
                return
            words[base + _FAILURES] += 1
            if self.probing:
                self.probing = False
                if words[base + _STATE] == HALF_OPEN and words[base + _PROBE_AT] == self.probe_at:
                    self._open("the probe failed")      # only the current probe decides
            elif words[base + _STATE] == CLOSED and (
                    self.failures and words[base + _FAILURES] >= self.failures or
                    self.ratio and self.requests >= MIN_WINDOW_REQUESTS and
                    self.failed * 100 >= self.ratio * self.requests):
                self._open(f"{words[base + _FAILURES]} failures in a row" if self.failures and
                           words[base + _FAILURES] >= self.failures else
                           f"{self.failed} of {self.requests} attempts failed")

    def _open(self, why: str) -> None:
        """Open the breaker (the caller holds the lock)."""
        words, base = self.words, self.base
        words[base + _STATE] = OPEN
        words[base + _OPENED_AT] = time.monotonic_ns()
        words[base + _OPENS] += 1
        log.error("circuit of %s open for %d ms: %s", printable(self.upstream),
                  self.cooldown_ns // 1_000_000, why)

    def _window(self, failed: bool) -> None:
        now = time.monotonic_ns()
        if now - self.window_start > self.window_ns:
            self.window_start, self.requests, self.failed = now, 0, 0
        self.requests += 1
        self.failed += failed



def counts(upstream_base: int) -> dict[str, int]:
    """The counts of one slot (see :data:`COUNTS`) and its state."""
    shared = _table
    if shared is None:
        return {}
    words = shared.words
    result = {name: words[upstream_base + word] for name, word in COUNTS.items()}
    result["state"] = words[upstream_base + _STATE]
    return result


def totals() -> dict[str, int]:
    """opens, rejects, probes and closes summed over every upstream."""
    shared = _table
    if shared is None:
        return {name: 0 for name in COUNTS}
    words = shared.words
    return {name: sum(words[s * _WORDS + word] for s in range(_SLOTS))
            for name, word in COUNTS.items()}


def origin(url: str) -> str:
    """scheme://host:port of a URL (the direct-URL functions' upstream)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if ":" not in authority.rsplit("]", 1)[-1]:
        authority += ":443" if scheme.lower() == "https" else ":80"
    return f"{scheme.lower()}://{authority.lower()}"
