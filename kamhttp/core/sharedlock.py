"""The lock of a table in shared memory, made before Kamailio forks: a POSIX record lock
(lockf) on an unlinked file whose descriptor every process inherits.  The kernel releases it
when its holder dies, so a killed process never leaves the table locked."""
from __future__ import annotations

import fcntl
import os
import tempfile


class SharedLock:
    """``with lock:`` around the rare writes of a shared table (never on a healthy path)."""

    def __init__(self) -> None:
        self.fd = os.open(tempfile.gettempdir(), os.O_TMPFILE | os.O_RDWR, 0o600)
        os.set_inheritable(self.fd, True)

    def __enter__(self) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self.fd)
