"""The run's transaction store: what tm keeps in shared memory, shared by the kit's processes.

One directory, made before the runner forks kamhttp's HTTP process and the workers, and two
datagram socket pairs that wake whoever waits (a one-byte note per file, sent without
blocking: a note only goes missing when notes are queued already, so the reader wakes anyway).

* ``txn-I-L``: a suspended transaction (a pickled :class:`~.context.Transaction`), written when
  the route — or resume method — that suspended it ends; ``pending-I-L`` while that route
  still runs (t_continue waits for it, as tm's continue waits for the transaction); ``done-I-L``
  once a t_continue took it.
* ``res-NS-PID-N``: a :class:`~.transcript.Resumption`, written by the process that continued
  the transaction; the runner reads and removes them.
* ``proc-PID``: the log lines and HTTP calls of kamhttp's HTTP process and of the transfer
  processes it forks, one length-prefixed frame each, appended as they happen (nothing is
  buffered: a process may end with ``os._exit`` or SIGKILL at any time).
"""
from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import select
import shutil
import socket
import struct
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from .context import Transaction
from .transcript import Resumption

NOT_FOUND = "active transaction not found"
NOT_SUSPENDED = "transaction is not suspended"

_FRAME = struct.Struct("!I")


@dataclass
class ProcessEntry:
    """One record of a kamhttp process, as read back by the runner."""

    ns: int                          # monotonic clock when it was made
    process: str                     # "HTTP process" or "transfer process"
    pid: int
    transaction: tuple[int, int] | None     # the transaction it was made for, if any
    item: Any                        # LogLine or HttpCall


class Store:
    """Made by the runner; every process forked afterwards uses the same one."""

    def __init__(self, timeout: float) -> None:
        self.path = tempfile.mkdtemp(prefix="kamhttp-testing-")
        self.timeout = timeout       # how long a t_continue waits for a route to end
        self.owner = os.getpid()
        self.txn_send, self.txn_recv = _notes()
        self.res_send, self.res_recv = _notes()
        self._seq = itertools.count()
        self._append_pid = 0
        self._append_fd = -1
        self._offsets: dict[str, int] = {}

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _write(self, name: str, data: bytes) -> None:
        """``name`` appears whole or not at all."""
        temporary = self._file(f".{name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, self._file(name))

    # -- transactions
    def mark_pending(self, index: int, label: int) -> None:
        """The transaction is suspended and its route still runs."""
        self._write(f"pending-{index}-{label}", b"")

    def put(self, transaction: Transaction) -> None:
        """The route that suspended it ended: t_continue may take it."""
        name = f"{transaction.index}-{transaction.label}"
        self._write(f"txn-{name}", pickle.dumps(transaction))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._file(f"pending-{name}"))
        _note(self.txn_send)

    def discard_pending(self, index: int, label: int) -> None:
        """Continued while its route still ran (in that route's process)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._file(f"pending-{index}-{label}"))
        self._write(f"done-{index}-{label}", b"")

    def take(self, index: int, label: int) -> Transaction | str:
        """The suspended transaction for t_continue — waiting (up to ``timeout``) while the
        route that suspended it still runs — or why there is none (NOT_FOUND, NOT_SUSPENDED).
        """
        name = f"{index}-{label}"
        deadline = time.monotonic() + self.timeout
        while True:
            # the pending mark first: put() writes the transaction before removing it
            pending = os.path.exists(self._file(f"pending-{name}"))
            claimed = self._file(f".taken-{name}-{os.getpid()}")
            try:
                os.rename(self._file(f"txn-{name}"), claimed)
            except FileNotFoundError:
                if not pending:
                    return NOT_SUSPENDED if os.path.exists(self._file(f"done-{name}")) \
                        else NOT_FOUND
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return NOT_FOUND
                select.select([self.txn_recv], [], [], remaining)
                _drain(self.txn_recv)
                continue
            with open(claimed, "rb") as source:
                data = source.read()
            os.unlink(claimed)
            self._write(f"done-{name}", b"")
            transaction: Transaction = pickle.loads(data)
            return transaction

    # -- resumptions
    def put_resumption(self, resumption: Resumption) -> None:
        self._write(f"res-{time.monotonic_ns():020d}-{os.getpid()}-{next(self._seq)}",
                    pickle.dumps(resumption))
        _note(self.res_send)

    def resumptions(self) -> list[Resumption]:
        """The resumptions written since the last call, oldest first (removed)."""
        found = []
        for name in sorted(n for n in os.listdir(self.path) if n.startswith("res-")):
            path = self._file(name)
            with open(path, "rb") as source:
                found.append(pickle.loads(source.read()))
            os.unlink(path)
        return found

    # -- records of kamhttp's processes
    def append(self, process: str, transaction: tuple[int, int] | None, item: Any) -> None:
        """One record of this process, written through at once."""
        pid = os.getpid()
        if self._append_pid != pid:             # a new process (forked): its own file
            self._append_fd = os.open(self._file(f"proc-{pid}"),
                                      os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                                      0o600)
            self._append_pid = pid
        data = pickle.dumps(ProcessEntry(time.monotonic_ns(), process, pid, transaction, item))
        os.write(self._append_fd, _FRAME.pack(len(data)) + data)

    def process_entries(self) -> list[ProcessEntry]:
        """The records appended since the last call (complete frames only), oldest first."""
        entries = []
        for name in sorted(n for n in os.listdir(self.path) if n.startswith("proc-")):
            offset = self._offsets.get(name, 0)
            with open(self._file(name), "rb") as source:
                source.seek(offset)
                data = source.read()
            pos = 0
            while pos + _FRAME.size <= len(data):
                (size,) = _FRAME.unpack_from(data, pos)
                if pos + _FRAME.size + size > len(data):
                    break
                entries.append(pickle.loads(data[pos + _FRAME.size:pos + _FRAME.size + size]))
                pos += _FRAME.size + size
            self._offsets[name] = offset + pos
        entries.sort(key=lambda entry: entry.ns)
        return entries

    def drain(self) -> None:
        """Forget the notes that woke the runner."""
        _drain(self.res_recv)

    def close(self) -> None:
        """Remove the store (in the process that made it)."""
        if os.getpid() != self.owner:
            return
        for sock in (self.txn_send, self.txn_recv, self.res_send, self.res_recv):
            sock.close()
        if self._append_fd >= 0 and self._append_pid == os.getpid():
            os.close(self._append_fd)
        shutil.rmtree(self.path, ignore_errors=True)


def _notes() -> tuple[socket.socket, socket.socket]:
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    receiver.setblocking(False)
    return sender, receiver


def _note(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):       # full: the reader has notes to wake it already
        sock.send(b"\0")


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while sock.recv(16):
            pass
