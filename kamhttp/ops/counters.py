"""The counters of spec 7.2 (``httpclient.connections``, ``connok``, ``connfail``), as totals
over every worker process of a running Kamailio.

A small file-backed store (``/dev/shm/kamhttp-counters-<main pid>``) is created in the main
process before it forks — when the configuration is finalized (:func:`prepare`), or at the
latest by the before-fork hook — and inherited by every worker.  Each process claims its own
slot once (under a file lock) and then writes only that slot, without a lock; readers sum the
slots.  An operator reads the totals of a running Kamailio with
``python -m kamhttp counters --pid MAINPID``.

``connections`` is the number of connection definitions in memory (all sources, as
documented; the C module counts only httpcon connections).
"""
from __future__ import annotations

import fcntl
import glob
import mmap
import os
import re
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.attempt import Attempt
    from ..core.state import ProcessState

_MAGIC = 0x6B616D6874747031          # "kamhttp1"
_HEADER = 8                           # int64 words: magic, slots, next free, connections, pid
_SLOT = 3                             # int64 words per slot: pid, connok, connfail
SLOTS = 1024
"""Slots in a store; processes beyond that share the last slot, updated under the lock."""
_SIZE = 8 * (_HEADER + _SLOT * SLOTS)
_SHARED_SLOT = _HEADER + _SLOT * (SLOTS - 1)
_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
_NAME = re.compile(r"kamhttp-counters-(\d+)$")


def store_path(pid: int) -> str:
    """Where the store of the Kamailio (or Python) main process ``pid`` lives."""
    return os.path.join(_DIR, f"kamhttp-counters-{pid}")


class _Store:
    """A mapped store: the header and the slots, as one int64 memoryview."""

    def __init__(self, path: str, create: bool) -> None:
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        self.path = path
        self.fd = os.open(path, flags, 0o644)
        if create:
            os.ftruncate(self.fd, _SIZE)
        self.map = mmap.mmap(self.fd, _SIZE)
        self.words = memoryview(self.map).cast("q")
        if create:
            self.words[0] = _MAGIC
            self.words[1] = SLOTS
            self.words[4] = os.getpid()
        elif self.words[0] != _MAGIC:
            raise ValueError(f"{path} is not a kamhttp counter store")

    def claim(self) -> int:
        """A free slot for this process (the last one is shared when all are taken)."""
        with self.locked():
            index = self.words[2]
            if index < SLOTS - 1:
                self.words[2] = index + 1
            else:
                index = SLOTS - 1
            self.words[_HEADER + _SLOT * index] = os.getpid()
        return _HEADER + _SLOT * index

    def locked(self):
        return _FileLock(self.fd)

    def totals(self) -> dict[str, int]:
        words = self.words
        used = min(words[2] + 1, SLOTS)
        ok = sum(words[_HEADER + _SLOT * i + 1] for i in range(used))
        fail = sum(words[_HEADER + _SLOT * i + 2] for i in range(used))
        return {"connections": words[3], "connfail": fail, "connok": ok}


class _FileLock:
    """The store's lock between processes.

    A POSIX record lock (lockf), not flock: the workers share the descriptor they inherited,
    and flock belongs to that shared open file description, so it would not keep two
    workers apart (two could claim the same slot and lose increments)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def acquire(self, blocking: bool = True) -> bool:
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_store: _Store | None = None
_slot = -1                 # word index of this process's slot in _store
_slot_pid = 0
_guard = threading.Lock()


def prepare(connections: int | None = None) -> _Store:
    """Create this process tree's store (if this process has none) and record the number of
    connection definitions.  Call in the main process before workers fork."""
    global _store
    with _guard:
        store = _store
        if store is None:
            _sweep_stale()
            path = store_path(os.getpid())
            try:
                store = _Store(path, create=True)
            except FileExistsError:          # a pid reused after a crash: start clean
                os.unlink(path)
                store = _Store(path, create=True)
            _store = store
        if connections is not None:
            store.words[3] = connections
        return store


def count(state: ProcessState, attempt: Attempt) -> None:
    """The hook after every attempt: connok for status 200, else connfail (in the store, and
    in Kamailio's own counters when its cfg registered them)."""
    ok = attempt.status == 200
    add(state.pid, ok)
    if _kamailio_pid != state.pid:
        _bind_kamailio(state.pid)
    if _kamailio_add is not None:
        _kamailio_add(_name("connok" if ok else "connfail"), 1)


def add_to_kamailio(ok: int, failed: int) -> None:
    """Attempts made elsewhere (kamhttp's transfer process, which is no Kamailio process and
    calls no KSR) into Kamailio's counters, from the HTTP process that resumes them."""
    pid = os.getpid()
    if _kamailio_pid != pid:
        _bind_kamailio(pid)
    if _kamailio_add is not None:
        if ok:
            _kamailio_add(_name("connok"), ok)
        if failed:
            _kamailio_add(_name("connfail"), failed)


def not_in_kamailio() -> None:
    """This process must not call Kamailio's counters (the transfer process)."""
    global _kamailio_add, _kamailio_pid
    _kamailio_pid, _kamailio_add = os.getpid(), None


def _name(counter: str) -> str:
    """``httpclient.<counter>``, a new string object each time: Kamailio's counters module
    (5.6.3) writes a NUL over the '.' of the name it is given, which is the buffer of the
    Python string itself, so a reused string would name another counter next time."""
    return "httpclient." + counter


KAMAILIO_COUNTERS = ("connections", "connok", "connfail")
"""Kamailio's counters (module ``counters``, group httpclient), as kamailio-cfg/kamailio.cfg
registers them: ``kamcmd cnt.grp_get_all httpclient`` sums them over every process, as for
the C module."""

_kamailio_add: Any = None
_kamailio_pid = 0
_group_taken = False       # the C http_client module is loaded too: the group is its own


def c_module_owns_the_group() -> None:
    """Kamailio's httpclient counters belong to the C module loaded beside kamhttp (a
    side-by-side setup): kamhttp counts in its own store only."""
    global _group_taken
    _group_taken = True


def _bind_kamailio(pid: int) -> None:
    """Find Kamailio's counters in this process (once; KSR.counters exists only inside
    Kamailio with the counters module, and add() of an unregistered name fails)."""
    global _kamailio_add, _kamailio_pid
    _kamailio_pid, _kamailio_add = pid, None
    ksr = sys.modules.get("KSR")
    if _group_taken:
        return
    counters = getattr(ksr, "counters", None) if ksr is not None else None
    add_ = getattr(counters, "add", None)
    try:
        if add_ is None or add_(_name("connok"), 0) < 0 or add_(_name("connfail"), 0) < 0:
            return
    except Exception:               # the testing kit's KSR has no counters module
        return
    _kamailio_add = add_
    store = prepare(None)
    with store.locked():            # one process reports the connection definitions
        if store.words[5] == 0:
            store.words[5] = pid
            try:
                add_(_name("connections"), store.words[3])
            except Exception:
                pass


def add(pid: int, ok: bool) -> None:
    """+1 connok (``ok``: an attempt that ended with status 200) or connfail (a curl error or
    another status) for process ``pid``: the caller's, from its per-process state, so that
    the request path makes no getpid call of its own."""
    if _slot_pid != pid:
        _claim(pid)
    store = _store
    assert store is not None                 # claimed above
    index = _slot + (1 if ok else 2)
    if _slot == _SHARED_SLOT:
        with store.locked():
            store.words[index] += 1
    else:
        store.words[index] += 1


def _claim(pid: int) -> None:
    """Take this process's slot (once per process)."""
    global _slot, _slot_pid
    _slot = prepare(_connection_count()).claim()
    _slot_pid = pid


def _connection_count() -> int | None:
    """Connection definitions in memory (every worker holds the same configuration)."""
    from .. import config
    try:
        return len(config.current().connections)
    except Exception:          # an unfinished configuration: keep the recorded number
        return None


def totals() -> dict[str, int]:
    """{"connections", "connfail", "connok"} summed over this process tree."""
    return prepare(_connection_count()).totals()


def read(pid: int) -> dict[str, int]:
    """The totals of the running process tree whose main process is ``pid`` (for operators).

    Raises FileNotFoundError when that process has no store."""
    store = _Store(store_path(pid), create=False)
    try:
        return store.totals()
    finally:
        store.words.release()
        store.map.close()
        os.close(store.fd)


def live_pids() -> list[int]:
    """Main processes, still running, that have a counter store."""
    pids = []
    for path in glob.glob(os.path.join(_DIR, "kamhttp-counters-*")):
        match = _NAME.search(path)
        if match and _alive(int(match.group(1))):
            pids.append(int(match.group(1)))
    return sorted(pids)


def _sweep_stale() -> None:
    """Remove stores left by main processes that no longer exist."""
    for path in glob.glob(os.path.join(_DIR, "kamhttp-counters-*")):
        match = _NAME.search(path)
        if match and not _alive(int(match.group(1))):
            try:
                os.unlink(path)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def before_fork() -> None:
    """Workers must inherit a store: create it now if nobody did."""
    if _store is None:
        try:
            prepare(_connection_count())
        except OSError:
            pass      # counting then stays per process; never block a fork


def cleanup() -> None:
    """Remove the store at exit of the process that made it."""
    if _store is not None and _store.words[4] == os.getpid():
        try:
            os.unlink(_store.path)
        except OSError:
            pass

