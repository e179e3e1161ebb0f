"""A raw socket server that misbehaves on purpose, one fault per path. Every fault ends by
itself within MAX_DELAY, and at once when the server stops.

  /fault/silent[?seconds=]          accept, read the request, never answer
  /fault/stale                      answer 200 keeping the connection; close it at the next request
  /fault/slow-headers[?interval=&count=]
                                    status line, then one header line per interval
  /fault/trickle[?n=&interval=]     Content-Length n, then the body one byte per interval
  /fault/reset                      half of a declared body, then a TCP RST
  /fault/close                      read the request, close without a reply
  /fault/garbage                    a status line that is not HTTP
  /fault/bad-chunked                chunked body with an invalid chunk size
  /fault/huge[?mb=100]              an mb-MiB body (PATTERN), streamed, never held in memory
  /fault/huge-headers[?kb=1024]     a header block of about kb KiB
  /fault/redirect-ftp               302 to ftp://127.0.0.1:<refused port>/file
  /fault/redirect-file              302 to file:///etc/passwd
  /fault/1xx[?code=102]             a 1xx interim response and then nothing
  /fault/wrong-length[?claimed=100&sent=10]
                                    Content-Length larger than the body, then close
`.refused_url` points at a port that refuses connections.
"""
from __future__ import annotations

import socket
import struct
import time
import urllib.parse
from typing import Callable

from .app import PATTERN, BadParameter, float_param, int_param
from .base import MAX_DELAY, Request, Server
from .http1 import BadRequest, read_request

Params = dict[str, list[str]]


class FaultServer(Server):
    """One request per connection; the path picks the fault."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._refuser = socket.socket(family, socket.SOCK_STREAM)
        self._refuser.bind((host, 0))  # bound, never listening: connections are refused
        self.refused_port: int = self._refuser.getsockname()[1]
        self.faults: dict[str, Callable[[socket.socket, Params], None]] = {
            "silent": self._silent, "slow-headers": self._slow_headers,
            "trickle": self._trickle, "reset": self._reset, "close": lambda sock, params: None,
            "garbage": self._garbage, "bad-chunked": self._bad_chunked, "huge": self._huge,
            "huge-headers": self._huge_headers, "redirect-ftp": self._redirect_ftp,
            "redirect-file": self._redirect_file, "1xx": self._interim,
            "wrong-length": self._wrong_length, "stale": self._stale,
            "idle-close": self._idle_close,
        }

    @property
    def refused_url(self) -> str:
        return self.url.rsplit(":", 1)[0] + f":{self.refused_port}"

    def stop(self) -> None:
        super().stop()
        self._refuser.close()

    def handle(self, sock: socket.socket, client_port: int) -> None:
        try:
            raw = read_request(sock.makefile("rb"), sock)
        except BadRequest:
            return
        if raw is None:
            return
        self.record(Request(raw.method, raw.target, raw.headers, raw.body, client_port,
                            raw.version))
        path, _, query = raw.target.partition("?")
        fault = self.faults.get(path.removeprefix("/fault/")) if path.startswith("/fault/") else None
        if fault is None:
            _answer(sock, 404, f"no such fault: {path}; known: /fault/" + ", /fault/".join(self.faults))
            return
        try:
            fault(sock, urllib.parse.parse_qs(query, keep_blank_values=True))
        except BadParameter as exc:
            _answer(sock, 400, f"bad parameter for {path}: {exc}")

    def _stale(self, sock: socket.socket, params: Params) -> None:
        """Answer and keep the connection, then close it on the next request without a
        byte of answer: a kept connection that the server dropped while idle."""
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
        try:
            raw = read_request(sock.makefile("rb"), sock)
        except BadRequest:
            raw = None
        if raw is not None:                      # recorded: what reached the server
            self.record(Request(raw.method, raw.target, raw.headers, raw.body,
                                sock.getpeername()[1], raw.version))
        if "reset" in params:                    # RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _idle_close(self, sock: socket.socket, params: Params) -> None:
        """Answer and keep the connection, then close it (FIN) after ``ms`` milliseconds
        idle: a server's short keep-alive timeout (libcurl checks a kept connection only
        after a second idle)."""
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
        self.wait(float_param(params, "ms", MAX_DELAY * 1000, 0, MAX_DELAY * 1000) / 1000)
        sock.shutdown(socket.SHUT_WR)            # the FIN, then the note a test waits for
        self.note_error("idle-close: closed")

    def _silent(self, sock: socket.socket, params: Params) -> None:
        self.wait(float_param(params, "seconds", MAX_DELAY, 0, MAX_DELAY))

    def _slow_headers(self, sock: socket.socket, params: Params) -> None:
        interval = float_param(params, "interval", 0.5, 0.01, MAX_DELAY)
        count = int_param(params, "count", int(MAX_DELAY / interval), 1, 100000)
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        deadline = time.monotonic() + MAX_DELAY
        for number in range(count):
            if time.monotonic() >= deadline or not self.wait(interval):
                return
            sock.sendall(b"X-Slow-%d: %d\r\n" % (number, number))
        sock.sendall(b"Content-Length: 2\r\n\r\nok")

    def _trickle(self, sock: socket.socket, params: Params) -> None:
        n = int_param(params, "n", 100, 1, 100000)
        interval = float_param(params, "interval", 0.2, 0.01, MAX_DELAY)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
        deadline = time.monotonic() + MAX_DELAY
        for position in range(n):
            if time.monotonic() >= deadline or not self.wait(interval):
                return
            sock.sendall(PATTERN[position % len(PATTERN):][:1])

    @staticmethod
    def _reset(sock: socket.socket, params: Params) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + PATTERN * 1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # closing with a zero linger sends RST instead of FIN

    @staticmethod
    def _garbage(sock: socket.socket, params: Params) -> None:
        sock.sendall(b"\x16\x03 THIS IS NOT HTTP \x00\xff\r\n\r\ngarbage")

    @staticmethod
    def _bad_chunked(sock: socket.socket, params: Params) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\nZZZ-not-hex\r\nmore\r\n0\r\n\r\n")

    def _huge(self, sock: socket.socket, params: Params) -> None:
        size = int_param(params, "mb", 100, 1, 4096) << 20
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\n\r\n" % size)
        block = (PATTERN * (65536 // len(PATTERN) + 1))[:65536 - 65536 % len(PATTERN)]
        sent = 0
        while sent < size and not self.stopping:  # bounded by size
            piece = block[:size - sent]
            sock.sendall(piece)
            sent += len(piece)

    @staticmethod
    def _huge_headers(sock: socket.socket, params: Params) -> None:
        lines = int_param(params, "kb", 1024, 1, 65536)
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        for number in range(lines):  # about 1 KiB per header line
            sock.sendall(b"X-Huge-%d: %s\r\n" % (number, b"h" * 1000))
        sock.sendall(b"Content-Length: 2\r\n\r\nok")

    def _redirect_ftp(self, sock: socket.socket, params: Params) -> None:
        _answer(sock, 302, "", ("Location", f"ftp://127.0.0.1:{self.refused_port}/file"))

    @staticmethod
    def _redirect_file(sock: socket.socket, params: Params) -> None:
        _answer(sock, 302, "", ("Location", "file:///etc/passwd"))

    def _interim(self, sock: socket.socket, params: Params) -> None:
        code = int_param(params, "code", 102, 100, 199)
        sock.sendall(b"HTTP/1.1 %d Interim\r\n\r\n" % code)
        self.wait(MAX_DELAY)

    @staticmethod
    def _wrong_length(sock: socket.socket, params: Params) -> None:
        claimed = int_param(params, "claimed", 100, 1, 1 << 30)
        sent = int_param(params, "sent", 10, 0, claimed - 1)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % claimed
                     + (PATTERN * (sent // len(PATTERN) + 1))[:sent])


def _answer(sock: socket.socket, status: int, text: str, *headers: tuple[str, str]) -> None:
    body = text.encode()
    head = f"HTTP/1.1 {status} Fault\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    sock.sendall(head.encode() + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                 + body)
