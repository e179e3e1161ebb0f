"""Per-process state: what the C module keeps in private (pkg) memory of each worker.

One :class:`ProcessState` per process holds the curl handles, which handle answered last per
connection and in all (their effective URL and Content-Type are read from it only when a
script asks), the captured response headers and the process-local ``response_headers`` flag.
It is created lazily on the first request of a process, never at import or configuration
time: Kamailio runs ``mod_init()`` in the main process and then forks its workers, and a curl
handle (with its sockets and TLS sessions) must never be shared by two processes.

After a fork the child starts with a fresh state.  The parent's handles are not even closed in
the child: closing would send TLS close-notify or HTTP/2 GOAWAY on sockets the parent still
uses.  They are kept alive, unreferenced, for the life of the child (see :func:`_abandon`).
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import pycurl

from .transport import Handle, new_share

if TYPE_CHECKING:
    from .request import Route

RouteKey = str | tuple[None, bool]
"""A connection's name, or one of the direct-URL keys below."""
DIRECT_KEY: RouteKey = (None, False)         # the direct-URL functions' handle and route
DIRECT_H2_KEY: RouteKey = (None, True)       # the same with HTTP/2 prior knowledge

_state: "ProcessState | None" = None


@dataclass
class ProcessState:
    """Everything kamhttp keeps per worker process (never shared between processes)."""

    pid: int
    handles: dict[RouteKey, Handle] = field(default_factory=dict)
    routes: dict[RouteKey, "Route"] = field(default_factory=dict)
    """Prepared under the configuration ``generation``."""
    answered: dict[str, Handle | None] = field(default_factory=dict)
    """Connection -> the handle of its last attempt if that got a response, else None."""
    last: Handle | None = None       # the handle of the last attempt of any function if answered
    timed: Handle | None = None      # the handle of the last attempt, answered or not: its
    #                                  timings are read from it only when asked ($httptime)
    header_lines: list[bytes] = field(default_factory=list)  # raw lines, arrival order
    headers_flag: int | None = None   # set by http_client_response_headers_set(); None: modparam
    share: pycurl.CurlShare | None = None   # TLS sessions and DNS shared by this process's handles
    generation: int = 0               # the configuration the per-connection values belong to
    pools: dict[RouteKey, list[Handle]] = field(default_factory=dict)
    """Idle handles per route of a process with many transfers in flight (the asynchronous
    HTTP process): each transfer runs on a handle of its own."""

    def handle(self, key: RouteKey) -> Handle:
        """This process's handle for ``key``, created on first use."""
        handle = self.handles.get(key)
        if handle is None:
            if self.share is None:
                self.share = new_share()
            handle = self.handles[key] = Handle(key, self.share)
        return handle

    def loan(self, key: RouteKey) -> Handle:
        """An idle handle for ``key`` (its options kept from its last transfer), or a new one:
        for a transfer that runs beside others of the same route."""
        pool = self.pools.get(key)
        if pool:
            return pool.pop()
        if self.share is None:
            self.share = new_share()
        return Handle(key, self.share)

    def give_back(self, handle: Handle) -> None:
        """A loaned handle is idle again (a closed one is dropped)."""
        if handle.closed_info is None:
            self.pools.setdefault(cast(RouteKey, handle.key), []).append(handle)

    def retire(self, handle: Handle) -> None:
        """Close a handle after a TLS connection it must not keep.

        libcurl >= 8.9 shuts a closed TLS connection down gracefully: it sends close_notify
        and parks the socket on the handle until the peer answers or 2 s pass, and only
        drives that list when the handle is used again.  With keep_connections=0 that would
        leave up to 2 s x request rate sockets open; closing the handle (as the C module
        does after every request) closes them at once.  TLS sessions stay in the share.
        """
        key = cast(RouteKey, handle.key)
        if self.handles.get(key) is handle:
            del self.handles[key]
        handle.close()

    def for_generation(self, generation: int) -> "ProcessState":
        """Forget per-connection values recorded under another configuration (the handles
        stay: a route of the new one re-applies its options only where they changed)."""
        if self.generation != generation:
            self.answered.clear()
            self.routes.clear()
            self.generation = generation
        return self

    def redirect_url(self, connection: str) -> str:
        """The effective URL of ``connection``'s last request ("" after a curl error)."""
        handle = self.answered.get(connection)
        return handle.effective_url() if handle is not None else ""

    def content_type(self, connection: str) -> str:
        """The Content-Type of ``connection``'s last response ("" after a curl error)."""
        handle = self.answered.get(connection)
        return handle.content_type() if handle is not None else ""

    @property
    def last_url(self) -> str:
        """$curlredirect: the effective URL of the last request of any function."""
        return self.last.effective_url() if self.last is not None else ""


def process_state() -> ProcessState:
    """This process's state, created on first use and renewed when the pid changed."""
    state = _state
    if state is None or state.pid != os.getpid():
        state = _renew()
    return state


def peek() -> ProcessState | None:
    """This process's state if it exists already (never creates one)."""
    state = _state
    return state if state is not None and state.pid == os.getpid() else None


def reset() -> None:
    """Forget this process's state, closing its handles: a new Kamailio start, for the
    testing kit's runner and for tests."""
    global _state
    state = peek()
    if state is not None:
        for handle in state.handles.values():
            handle.close()
        for pool in state.pools.values():
            for handle in pool:
                handle.close()
    _state = None


def _renew() -> ProcessState:
    global _state
    from .. import process
    process.setup()
    if _state is not None and _state.pid != os.getpid():
        _abandon(_state)
    _state = ProcessState(pid=os.getpid())
    return _state


def after_fork_in_child() -> None:
    """The at-fork hook (installed by :func:`kamhttp.process.setup`): a child starts fresh."""
    global _state
    if _state is not None:
        _abandon(_state)
        _state = None


def _abandon(inherited: ProcessState) -> None:
    """Keep the parent's curl objects alive forever in this child, untouched.

    Dropping the last reference would run curl_easy_cleanup here, which may write to the
    parent's connections.  One extra reference each makes them immortal in this process.
    """
    keep = [handle.curl for handle in inherited.handles.values()]
    keep += [handle.curl for pool in inherited.pools.values() for handle in pool]
    if inherited.share is not None:
        keep.append(inherited.share)
    for obj in keep:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))

