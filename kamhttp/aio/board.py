"""State shared by every process of one Kamailio for the asynchronous path, made before fork.

An anonymous shared mapping of a few int64 words: when an HTTP process was last seen alive
(SIP workers refuse a job at once when none is), and the counts of jobs dropped or lost.
Heartbeats are plain word writes (one writer at a time is enough: any live HTTP process keeps
the word in the future); counts are rare events, added under a SharedLock.
"""
from __future__ import annotations

import mmap
import os
import time

from ..core.sharedlock import SharedLock

_WORDS = 8 + 2 * 16
READY_UNTIL = 0       # monotonic ns until which an HTTP process is known to be alive
OVERLOADED = 1        # jobs refused because the queue was full
NO_PROCESS = 2        # jobs refused because no HTTP process was alive
LOST = 3              # transfers lost with an HTTP process that died
DROPPED_SENDS = 4     # fire-and-forget requests dropped (either reason)
TIMED_OUT = 5         # transactions resumed by the deadline backstop
_PROCESSES = 8        # then per HTTP process: its pid and its transfers in flight

ALIVE_NS = 3_000_000_000
"""How long one heartbeat vouches for an HTTP process (it beats at least once a second)."""


class Board:
    def __init__(self) -> None:
        self.map = mmap.mmap(-1, 8 * _WORDS)
        self.words = memoryview(self.map).cast("q")
        self.lock = SharedLock()

    def beat(self) -> None:
        """This HTTP process is alive (for the next ALIVE_NS)."""
        self.words[READY_UNTIL] = time.monotonic_ns() + ALIVE_NS

    def ready(self) -> bool:
        """Whether some HTTP process is alive: one read and one clock call."""
        return self.words[READY_UNTIL] > time.monotonic_ns()

    def add(self, word: int, count: int = 1) -> None:
        with self.lock:
            self.words[word] += count

    def claim(self) -> int:
        """A slot for this HTTP process's in-flight gauge (the last one is shared)."""
        with self.lock:
            for slot in range(_PROCESSES, _WORDS, 2):
                if self.words[slot] in (0, os.getpid()):
                    self.words[slot] = os.getpid()
                    return slot + 1
            return _WORDS - 1

    def in_flight(self) -> dict[int, int]:
        """pid -> transfers in flight, per HTTP process."""
        return {self.words[slot]: self.words[slot + 1]
                for slot in range(_PROCESSES, _WORDS, 2) if self.words[slot]}

    def counts(self) -> dict[str, int]:
        words = self.words
        return {"overloaded": words[OVERLOADED], "no_process": words[NO_PROCESS],
                "lost": words[LOST], "dropped_sends": words[DROPPED_SENDS],
                "timed_out": words[TIMED_OUT]}
