"""A real forward HTTP proxy: absolute-form requests are forwarded to the origin, CONNECT is
tunnelled. Only loopback origins are reached; anything else is refused with 403."""
from __future__ import annotations

import base64
import http.client
import select
import socket
import urllib.parse

from .app import Response
from .base import IO_TIMEOUT, LOOPBACK_HOSTS, Request, Server
from .http1 import MAX_REQUESTS_PER_CONNECTION, BadRequest, read_request, write_response

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                        "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"})
PROXY_REALM = "kamhttp-proxy"


def _text(status: int, text: str, *headers: tuple[str, str]) -> Response:
    return Response(status, (("Content-Type", "text/plain"),) + headers, f"{text}\n".encode())


class ProxyServer(Server):
    """Records every request that reaches it: `path` is the absolute URL (or host:port for
    CONNECT). With `credentials` (user, password) it demands Basic Proxy-Authorization (407)."""

    def __init__(self, host: str = "127.0.0.1",
                 credentials: tuple[str, str] | None = None) -> None:
        super().__init__(host)
        self.credentials = credentials

    def handle(self, sock: socket.socket, client_port: int) -> None:
        rfile = sock.makefile("rb")
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            try:
                raw = read_request(rfile, sock)
            except BadRequest as exc:
                write_response(sock, _text(exc.status, str(exc)), head_only=False, close=True)
                return
            if raw is None:
                return
            self.record(Request(raw.method, raw.target, raw.headers, raw.body, client_port,
                                raw.version))
            close = ("close" in (raw.header("Connection") or "").lower()
                     or "close" in (raw.header("Proxy-Connection") or "").lower()
                     or raw.version != "1.1" or self.stopping)
            refusal = self._refusal(raw.method, raw.target, raw.header("Proxy-Authorization"))
            if refusal is not None:
                write_response(sock, refusal, head_only=raw.method == "HEAD", close=close)
            elif raw.method == "CONNECT":
                self._tunnel(sock, raw.target)
                return
            else:
                self._forward(sock, raw.method, raw.target, raw.headers, raw.body, close)
            if close:
                return

    def _refusal(self, method: str, target: str, authorization: str | None) -> Response | None:
        """Why this request is not served (a response to send), or None."""
        if self.credentials is not None:
            expected = base64.b64encode(":".join(self.credentials).encode()).decode()
            if authorization != f"Basic {expected}":
                return _text(407, "proxy authentication required",
                             ("Proxy-Authenticate", f'Basic realm="{PROXY_REALM}"'))
        if method == "CONNECT":
            host = target.rpartition(":")[0]
        else:
            parts = urllib.parse.urlsplit(target)
            if parts.scheme != "http" or not parts.netloc:
                return _text(400, f"proxy needs an absolute http:// URL, got {target!r}")
            host = parts.hostname or ""
            host = f"[{host}]" if ":" in host else host
        if host not in LOOPBACK_HOSTS:
            return _text(403, f"proxy refuses {host!r}: only 127.0.0.1, localhost and ::1")
        return None

    def _forward(self, sock: socket.socket, method: str, target: str,
                 headers: tuple[tuple[str, str], ...], body: bytes, close: bool) -> None:
        parts = urllib.parse.urlsplit(target)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                              timeout=IO_TIMEOUT)
        try:
            upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            length_sent = False
            for name, value in headers:  # in order; the body's length as it was received
                if name.lower() == "content-length":
                    value, length_sent = str(len(body)), True
                if name.lower() not in HOP_BY_HOP:
                    upstream.putheader(name, value)
            if body and not length_sent:  # the client sent it chunked
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            if upstream.sock is not None:
                self.track(upstream.sock)
            answer = upstream.getresponse()
        except OSError as exc:
            upstream.close()
            write_response(sock, _text(502, f"proxy cannot reach {target}: {exc}"),
                           head_only=method == "HEAD", close=True)
            return
        try:
            kept = tuple((name, value) for name, value in answer.getheaders()
                         if name.lower() not in HOP_BY_HOP)
            length = answer.getheader("Content-Length")
            response = Response(answer.status, kept, iter(lambda: answer.read(65536), b""),
                                length=int(length) if length and length.isdigit() else None)
            write_response(sock, response, head_only=method == "HEAD", close=close)
        finally:
            if upstream.sock is not None:
                self.untrack(upstream.sock)
            upstream.close()

    def _tunnel(self, sock: socket.socket, target: str) -> None:
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError) as exc:
            write_response(sock, _text(502, f"proxy cannot reach {target}: {exc}"),
                           head_only=False, close=True)
            return
        self.track(upstream)
        try:
            sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _relay(sock, upstream)
        finally:
            self.untrack(upstream)
            upstream.close()


def _relay(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes or both stay idle for IO_TIMEOUT."""
    peer = {one: other, other: one}
    while True:  # ends on EOF, error or idleness; stop() shuts both sockets down
        readable, _, _ = select.select(list(peer), [], [], IO_TIMEOUT)
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            peer[source].sendall(data)
