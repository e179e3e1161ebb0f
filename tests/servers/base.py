"""What every test server shares: the request record, the threaded listener, the bounds.

Every server binds a free port on a loopback address, serves each connection in its own
thread, records what it received and stops promptly: nothing in here waits longer than
MAX_DELAY, and stop() unblocks every waiting thread.
"""
from __future__ import annotations

import dataclasses
import socket
import threading
from typing import Callable

MAX_DELAY = 30.0
"""No server waits longer than this for anything (a delay asked for, a silent fault)."""
IO_TIMEOUT = MAX_DELAY + 5.0
"""Idle socket timeout: a connection nobody uses ends by itself."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
"""The only hosts a test server will ever connect to (the proxy refuses others)."""


@dataclasses.dataclass(frozen=True)
class Request:
    """One request as a server received it."""

    method: str
    path: str
    """The request target as received: origin-form with its query, or the absolute URL
    (or host:port for CONNECT) at the proxy."""
    headers: tuple[tuple[str, str], ...]
    """(name, value) in wire order; names as the client spelled them (lower case in HTTP/2)."""
    body: bytes
    client_port: int
    http_version: str
    """"1.0", "1.1" or "2"."""
    client_cert_subject: str | None = None
    """RFC 4514 subject of the TLS client certificate, when one was presented."""

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name` (case-insensitive), or `default`."""
        values = self.header_values(name)
        return values[0] if values else default

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in wire order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


def url_host(host: str) -> str:
    """The host as written in a URL (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class Server:
    """A listener on a free loopback port, one thread per connection.

    Subclasses implement handle(sock, client_port). Use start()/stop() or `with`.
    """

    scheme = "http"

    def __init__(self, host: str = "127.0.0.1", url_name: str | None = None) -> None:
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family, backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self._url_name = url_name or host
        self.requests: list[Request] = []
        self.errors: list[str] = []
        """Problems the server met that a test may want to see (failed TLS handshakes...)."""
        self.accepted = 0
        """TCP connections accepted since start (clear() keeps it): compare before and after,
        to see how many connections a client opened."""
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"{type(self).__name__}:{self.port}")

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:41234."""
        return f"{self.scheme}://{url_host(self._url_name)}:{self.port}"

    def start(self) -> "Server":
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut every open connection, wake every waiting thread, join them."""
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() at once on Linux
        except OSError:
            pass
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait `seconds` (capped at MAX_DELAY); False if the server stopped meanwhile."""
        return not self._stopping.wait(max(0.0, min(seconds, MAX_DELAY)))

    def record(self, request: Request) -> None:
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def note_error(self, message: str) -> None:
        with self._changed:
            self.errors.append(message)
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until condition() (checked on each recorded request or error) holds, at most
        `timeout` seconds: for what a server notes after the client has already returned."""
        with self._changed:
            return self._changed.wait_for(condition, timeout=min(timeout, MAX_DELAY))

    def clear(self) -> None:
        """Forget recorded requests and errors (in place: held references see it)."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()

    def track(self, sock: socket.socket) -> None:
        """Have stop() cut this socket (e.g. a TLS wrapper or an upstream connection)."""
        with self._lock:
            self._sockets.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def handle(self, sock: socket.socket, client_port: int) -> None:
        raise NotImplementedError

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                sock, address = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock, address[1]), daemon=True,
                                      name=f"{type(self).__name__}:{self.port}<-{address[1]}")
            with self._lock:
                self._threads.add(thread)
                self.accepted += 1       # before anything is served on it
            thread.start()

    def _serve(self, sock: socket.socket, client_port: int) -> None:
        sock.settimeout(IO_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.track(sock)
        try:
            self.handle(sock, client_port)
        except ConnectionError:
            pass  # the client went away: normal for timeouts, aborts and fault tests
        except (OSError, ValueError) as exc:  # e.g. a socket cut by stop()
            if not self._stopping.is_set():
                self.note_error(f"connection from port {client_port}: {exc!r}")
        finally:
            self.untrack(sock)
            try:
                sock.close()
            except OSError:
                pass
            with self._lock:
                self._threads.discard(threading.current_thread())

