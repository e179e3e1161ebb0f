"""The one request handler behind the HTTP/1.1, HTTPS and HTTP/2 servers.

Endpoints (query parameters URL-encoded):
  /code/<N>?body=&ctype=&hdr=Name:%20Value   status N (200..999), repeatable hdr, in order
  /echo[/anything]                           200 JSON: method, path, query, headers, body,
                                             client_port, http_version
  /redirect/<N>?to=<url>                     status N, Location: to (default /echo)
  /loop                                      302, Location: /loop
  /slow?delay=<s>&body=                      waits delay (capped at MAX_DELAY), then 200
  /bytes?n=&chunked=0|1&chunk=&line=&eol=lf|crlf
                                             n bytes of bytes_body(n, line, eol), fixed length
                                             or chunked in chunks of `chunk` bytes
  /auth/basic, /auth/digest, /auth/any[?user=&password=]
                                             401 + challenge(s) until the right credentials,
                                             then 200 "authenticated <user>"
  /close                                     closes the connection without a reply
  /                                          200 "kamhttp test server"
Anything else is 404; a bad parameter is 400 with a body naming it and what is valid.
"""
from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
from typing import Callable, Iterable, Iterator

from . import auth
from .base import MAX_DELAY, Request

MAX_BYTES = 1 << 32
"""Largest /bytes body (streamed, never held in memory)."""
PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""The repeating default /bytes pattern."""


@dataclasses.dataclass(frozen=True)
class Response:
    """What a transport sends back. `length` is the body size when `body` is an iterator."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | Iterable[bytes] = b""
    length: int | None = None
    chunk_size: int | None = None
    """HTTP/1.1: send the body chunked in pieces of this size (None: Content-Length)."""
    drop: bool = False
    """Close the connection without any reply."""

    def pieces(self) -> Iterable[bytes]:
        return (self.body,) if isinstance(self.body, bytes) else self.body

    @property
    def body_length(self) -> int | None:
        return len(self.body) if isinstance(self.body, bytes) else self.length


DROP = Response(status=0, drop=True)


def _unit(line: str | None, eol: str) -> bytes:
    if line is None:
        return PATTERN
    return line.encode("latin-1") + (b"\r\n" if eol == "crlf" else b"\n")


def bytes_body(n: int, line: str | None = None, eol: str = "lf") -> bytes:
    """The body /bytes sends: PATTERN repeated, or `line` + end of line repeated; n bytes."""
    unit = _unit(line, eol)
    return (unit * (n // len(unit) + 1))[:n]


def _stream(unit: bytes, n: int, piece: int) -> Iterator[bytes]:
    """n bytes of `unit` repeated, in pieces of `piece` bytes, without holding n bytes."""
    block = unit * ((piece + len(unit)) // len(unit) + 1)
    for offset in range(0, n, piece):
        start = offset % len(unit)
        yield block[start:start + min(piece, n - offset)]


def _text(status: int, text: str, *headers: tuple[str, str]) -> Response:
    return Response(status, (("Content-Type", "text/plain"),) + headers, text.encode("utf-8"))


class BadParameter(ValueError):
    pass


def int_param(params: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    """Query parameter `name` as an integer in low..high (BadParameter says what is valid)."""
    raw = params.get(name, [str(default)])[-1]
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name}={raw!r}: expected an integer {low}..{high}") from None
    if not low <= value <= high:
        raise BadParameter(f"{name}={value}: expected an integer {low}..{high}")
    return value


def float_param(params: dict[str, list[str]], name: str, default: float, low: float,
                high: float) -> float:
    """Query parameter `name` as a number in low..high (BadParameter says what is valid)."""
    raw = params.get(name, [str(default)])[-1]
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(f"{name}={raw!r}: expected a number {low:g}..{high:g}") from None
    if not low <= value <= high:
        raise BadParameter(f"{name}={raw}: expected a number {low:g}..{high:g}")
    return value


def choice_param(params: dict[str, list[str]], name: str, default: str,
                 valid: tuple[str, ...]) -> str:
    value = params.get(name, [default])[-1]
    if value not in valid:
        raise BadParameter(f"{name}={value!r}: expected one of {', '.join(valid)}")
    return value


class App:
    """Routes a recorded Request to a Response. `wait(seconds) -> bool` is the server's
    stop-aware sleep."""

    def __init__(self, wait: Callable[[float], bool]) -> None:
        self._wait = wait
        self._digest = auth.DigestRealm()

    def respond(self, request: Request) -> Response:
        path, _, query = request.path.partition("?")
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        try:
            return self._route(request, path, query, params)
        except BadParameter as exc:
            return _text(400, f"bad parameter for {path}: {exc}\n")

    def _route(self, request: Request, path: str, query: str,
               params: dict[str, list[str]]) -> Response:
        if path == "/echo" or path.startswith("/echo/"):
            return self._echo(request, path, query)
        if match := re.fullmatch(r"/code/(\d{1,3})", path):
            return self._code(int(match.group(1)), params)
        if match := re.fullmatch(r"/redirect/(\d{1,3})", path):
            return Response(int(match.group(1)), (("Location", params.get("to", ["/echo"])[-1]),))
        if path == "/loop":
            return Response(302, (("Location", "/loop"),))
        if path == "/slow":
            return self._slow(params)
        if path == "/bytes":
            return self._bytes(params)
        if match := re.fullmatch(r"/auth/(basic|digest|any)", path):
            return self._auth(request, match.group(1), params)
        if path == "/close":
            return DROP
        if path == "/":
            return _text(200, "kamhttp test server\n")
        return _text(404, f"no such endpoint: {path}\n")

    @staticmethod
    def _echo(request: Request, path: str, query: str) -> Response:
        document = {
            "method": request.method,
            "path": path,
            "query": query,
            "headers": [list(pair) for pair in request.headers],
            "body": request.body.decode("latin-1"),
            "client_port": request.client_port,
            "http_version": request.http_version,
        }
        return Response(200, (("Content-Type", "application/json"),),
                        json.dumps(document).encode("utf-8"))

    @staticmethod
    def _code(status: int, params: dict[str, list[str]]) -> Response:
        if not 200 <= status <= 999:
            raise BadParameter(f"status {status}: expected 200..999 (1xx: see /fault/1xx)")
        headers: list[tuple[str, str]] = []
        if "ctype" in params:
            headers.append(("Content-Type", params["ctype"][-1]))
        for header in params.get("hdr", []):
            name, colon, value = header.partition(":")
            if not colon or not name.strip():
                raise BadParameter(f"hdr={header!r}: expected 'Name: Value'")
            headers.append((name.strip(), value.strip()))
        body = params.get("body", [""])[-1].encode("utf-8")
        return Response(status, tuple(headers), body)

    def _slow(self, params: dict[str, list[str]]) -> Response:
        delay = float_param(params, "delay", 1.0, 0.0, MAX_DELAY)
        if not self._wait(delay):
            return DROP
        return _text(200, params.get("body", [""])[-1])

    @staticmethod
    def _bytes(params: dict[str, list[str]]) -> Response:
        n = int_param(params, "n", 1024, 0, MAX_BYTES)
        chunked = choice_param(params, "chunked", "0", ("0", "1")) == "1"
        chunk = int_param(params, "chunk", 16384, 1, 1 << 24)
        eol = choice_param(params, "eol", "lf", ("lf", "crlf"))
        unit = _unit(params.get("line", [None])[-1], eol)
        return Response(200, (("Content-Type", "application/octet-stream"),),
                        _stream(unit, n, chunk), length=n, chunk_size=chunk if chunked else None)

    def _auth(self, request: Request, scheme: str, params: dict[str, list[str]]) -> Response:
        user = params.get("user", [auth.USER])[-1]
        password = params.get("password", [auth.PASSWORD])[-1]
        credentials = request.header("Authorization")
        ok = (scheme in ("basic", "any") and auth.check_basic(credentials, user, password)) or (
            scheme in ("digest", "any")
            and self._digest.check(credentials, request.method, request.path, user, password))
        if ok:
            return _text(200, f"authenticated {user}")
        challenges: list[tuple[str, str]] = []
        if scheme in ("digest", "any"):
            challenges.append(("WWW-Authenticate", self._digest.challenge()))
        if scheme in ("basic", "any"):
            challenges.append(("WWW-Authenticate", auth.basic_challenge()))
        return _text(401, "authentication required\n", *challenges)
