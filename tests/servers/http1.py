"""HTTP/1.1 on the wire (request parsing, response writing) and the HTTP server that serves
the App over it: plain, TLS, and (with HTTP/2 detection) h2c or h2 by ALPN."""
from __future__ import annotations

import dataclasses
import http
import socket
import ssl
from typing import BinaryIO

from .app import App, Response
from .base import Request, Server

MAX_LINE = 65536
MAX_HEAD = 1 << 20
"""Largest request head accepted (request line and headers)."""
MAX_HEADERS = 2000
MAX_BODY = 64 << 20
"""Largest request body accepted; larger gets 413."""
MAX_REQUESTS_PER_CONNECTION = 100000
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class BadRequest(Exception):
    """The client sent something that is not HTTP/1.x; answered with `status`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class RawRequest:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def _readline(rfile: BinaryIO, what: str) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise BadRequest(f"{what} longer than {MAX_LINE} bytes", 431)
    return line


def read_head(rfile: BinaryIO) -> tuple[str, str, str, tuple[tuple[str, str], ...]] | None:
    """Request line and headers; None when the client closed before sending one."""
    line = b""
    for _ in range(8):  # tolerate a few empty lines between requests (RFC 9112 2.2)
        line = _readline(rfile, "request line")
        if not line:
            return None
        if line.strip():
            break
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {line[:200]!r}: expected 'METHOD target HTTP/1.x'")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    size = len(line)
    for _ in range(MAX_HEADERS + 1):
        raw = _readline(rfile, "header line")
        size += len(raw)
        if size > MAX_HEAD:
            raise BadRequest(f"request head larger than {MAX_HEAD} bytes", 431)
        if raw in (b"\r\n", b"\n"):
            return method, target, version[5:], tuple(headers)
        if not raw:
            raise BadRequest("connection closed inside the request head")
        name, colon, value = raw.decode("latin-1").rstrip("\r\n").partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(f"bad header line {raw[:200]!r}: expected 'Name: value'")
        headers.append((name, value.strip(" \t")))
    raise BadRequest(f"more than {MAX_HEADERS} header lines", 431)


def read_chunked(rfile: BinaryIO) -> bytes:
    body = bytearray()
    while True:  # bounded by MAX_BODY: every turn reads at least one byte or ends
        size_line = _readline(rfile, "chunk size line")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadRequest(f"bad chunk size line {size_line[:100]!r}") from None
        if size == 0:
            for _ in range(MAX_HEADERS):  # trailers
                if _readline(rfile, "trailer line") in (b"\r\n", b"\n", b""):
                    return bytes(body)
            raise BadRequest("too many trailer lines")
        if len(body) + size > MAX_BODY:
            raise BadRequest(f"request body larger than {MAX_BODY} bytes", 413)
        data = rfile.read(size)
        if len(data) < size:
            raise BadRequest("connection closed inside a chunk")
        body += data
        _readline(rfile, "chunk end")


def read_request(rfile: BinaryIO, sock: socket.socket) -> RawRequest | None:
    """One request (head and body); answers `Expect: 100-continue` on `sock`."""
    head = read_head(rfile)
    if head is None:
        return None
    method, target, version, headers = head
    request = RawRequest(method, target, version, headers, b"")
    if (request.header("Expect") or "").lower() == "100-continue" and version == "1.1":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in (request.header("Transfer-Encoding") or "").lower():
        body = read_chunked(rfile)
    else:
        raw_length = request.header("Content-Length") or "0"
        if not raw_length.isdigit():
            raise BadRequest(f"bad Content-Length {raw_length!r}")
        length = int(raw_length)
        if length > MAX_BODY:
            raise BadRequest(f"request body larger than {MAX_BODY} bytes", 413)
        body = rfile.read(length)
        if len(body) < length:
            raise BadRequest("connection closed inside the request body")
    return dataclasses.replace(request, body=body)


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def write_response(sock: socket.socket, response: Response, *, head_only: bool,
                   close: bool) -> None:
    """Status line, headers (adding framing and Connection: close) and the body."""
    status = response.status
    headers = list(response.headers)
    names = {name.lower() for name, _ in headers}
    chunked = False
    if status >= 200 and status not in (204, 304) and not names & {"content-length",
                                                                   "transfer-encoding"}:
        if response.chunk_size is None and response.body_length is not None:
            headers.append(("Content-Length", str(response.body_length)))
        else:
            headers.append(("Transfer-Encoding", "chunked"))
            chunked = True
    if close and "connection" not in names:
        headers.append(("Connection", "close"))
    head = f"HTTP/1.1 {status} {reason(status)}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    sock.sendall(head.encode("latin-1"))
    if head_only or status < 200 or status in (204, 304):
        return
    step = response.chunk_size or MAX_BODY
    for piece in response.pieces():
        if not chunked:
            sock.sendall(piece)
            continue
        for start in range(0, len(piece), step):
            part = piece[start:start + step]
            if part:
                sock.sendall(b"%x\r\n%b\r\n" % (len(part), part))
    if chunked:
        sock.sendall(b"0\r\n\r\n")


def client_cert_subject(sock: socket.socket) -> str | None:
    """RFC 4514 subject of the peer's TLS certificate, if it presented one."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    der = sock.getpeercert(binary_form=True)
    if not der:
        return None
    from cryptography import x509
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


class HttpServer(Server):
    """The App over HTTP/1.1 with keep-alive; over TLS when given an SSLContext; HTTP/2 by
    prior knowledge when `h2c`, and by ALPN when the context offers "h2"."""

    def __init__(self, host: str = "127.0.0.1", *, url_name: str | None = None,
                 tls: ssl.SSLContext | None = None, h2c: bool = False) -> None:
        super().__init__(host, url_name)
        self.scheme = "https" if tls else "http"
        self.tls = tls
        self.h2c = h2c
        self.app = App(self.wait)

    def handle(self, sock: socket.socket, client_port: int) -> None:
        subject = None
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.note_error(f"TLS handshake from port {client_port} failed: {exc}")
                return
            self.track(sock)
            subject = client_cert_subject(sock)
            if sock.selected_alpn_protocol() == "h2":
                from . import h2server
                h2server.serve(self, sock, client_port, subject)
                return
        elif self.h2c and _starts_with_preface(sock):
            from . import h2server
            h2server.serve(self, sock, client_port, subject)
            return
        self.serve_http1(sock, client_port, subject)

    def serve_http1(self, sock: socket.socket, client_port: int, subject: str | None) -> None:
        rfile = sock.makefile("rb")
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            try:
                raw = read_request(rfile, sock)
            except BadRequest as exc:
                write_response(sock, Response(exc.status, (("Content-Type", "text/plain"),),
                                              f"{exc}\n".encode()), head_only=False, close=True)
                return
            if raw is None:
                return
            request = Request(raw.method, raw.target, raw.headers, raw.body, client_port,
                              raw.version, subject)
            self.record(request)
            response = self.app.respond(request)
            if response.drop:
                return
            connection = (raw.header("Connection") or "").lower()
            close = ("close" in connection if raw.version == "1.1"
                     else "keep-alive" not in connection) or self.stopping or any(
                name.lower() == "connection" and "close" in value.lower()
                for name, value in response.headers)  # e.g. /code/200?hdr=Connection:%20close
            write_response(sock, response, head_only=raw.method == "HEAD", close=close)
            if close:
                return


def _starts_with_preface(sock: socket.socket) -> bool:
    """Whether the client opened with the HTTP/2 connection preface (without consuming it)."""
    seen = sock.recv(len(H2_PREFACE), socket.MSG_PEEK)
    if seen and H2_PREFACE.startswith(seen) and len(seen) < len(H2_PREFACE):
        seen = sock.recv(len(H2_PREFACE), socket.MSG_PEEK | socket.MSG_WAITALL)
    return seen == H2_PREFACE
