"""The asynchronous path's shared parts, made once in the main process before Kamailio forks
(by :func:`kamhttp.process.setup`): the hand-over queue and the board."""
from __future__ import annotations

import os
from dataclasses import dataclass

from .board import Board
from .handover import Handover


@dataclass(frozen=True)
class Runtime:
    handover: Handover
    board: Board
    pid: int                 # the process that made them (Kamailio's main process)


_runtime: Runtime | None = None


def prepare(queue_size: int) -> Runtime:
    """Make the queue and the board in this process unless it has them (idempotent)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Handover(queue_size), Board(), os.getpid())
    return _runtime


def get() -> Runtime | None:
    """The shared parts, if they were made (before the fork that started this process)."""
    return _runtime


def reset() -> None:
    """Close and forget the shared parts (a new Kamailio start: the testing kit's runner)."""
    global _runtime
    runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.handover.sender.close()
        runtime.handover.receiver.close()
        runtime.board.lock.close()
