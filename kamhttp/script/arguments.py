"""Argument checking for every script-facing function, and the never-raise contract.

A bad argument (None or an int where a string is due, a result name that is not a writable
PV, a string that does not parse) raises :class:`BadArgument`, which
:func:`script_function` turns into a logged -1: no exception ever reaches the routing script.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Mapping, TypeVar

from .. import pv
from ..errors import PVError
from ..log import get_logger, printable

log = get_logger("functions")

F = TypeVar("F", bound=Callable[..., int])


class BadArgument(Exception):
    """An argument a script function cannot use; becomes a logged -1."""


def script_function(func: F) -> F:
    """Make a script-facing function total: every failure is logged and gives -1."""
    @functools.wraps(func)
    def wrapper(*args: Any) -> int:
        try:
            return func(*args)
        except BadArgument as exc:
            log.error("%s: %s", func.__name__, exc)
        except Exception:  # never into the routing script
            log.exception("%s: internal error", func.__name__)
        return -1
    return wrapper  # type: ignore[return-value]


def text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    raise BadArgument(f"{what} must be a string, not {printable(repr(value))}")


TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789"
                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
"""The characters of an HTTP token (RFC 9110): methods and header names."""


def method(value: Any) -> str:
    """A method must be an HTTP token: anything else would rewrite the request line."""
    value = text(value, "method")
    if value and not TOKEN.issuperset(value):
        raise BadArgument(f"method {printable(repr(value))} is not an HTTP token "
                          "(valid: GET, POST, PUT, ... letters, digits and !#$%&'*+-.^_`|~)")
    return value


def content_type(value: Any) -> str:
    """A content type becomes a header value: CR, LF or NUL would add header lines."""
    ctype = text(value, "content_type")
    if "\r" in ctype or "\n" in ctype or "\x00" in ctype:
        raise BadArgument(f"content_type {printable(repr(ctype))} contains CR, LF or NUL "
                          "(valid: a media type such as application/json)")
    return ctype


def result_name(value: Any) -> str:
    """A writable PV name (pv caches the verdict per name: one look-up per call)."""
    error = pv.writable_error(value)
    if error is not None:
        raise BadArgument(f"result variable: {error}")
    return value


def expand(value: Any, what: str) -> str:
    """A cfg argument with its PVs evaluated, as the cfg function does."""
    template = text(value, what)
    try:
        return pv.expand(template)
    except PVError as exc:
        raise BadArgument(f"cannot evaluate {what}: {exc}") from None


def encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def body(post: Any, what: str) -> bytes | None:
    """A request body given as str (sent UTF-8) or bytes; None for no body."""
    if post is None or isinstance(post, bytes):
        return post
    if isinstance(post, str):
        return encode(post)
    raise BadArgument(f"{what} must be str or bytes, not {printable(repr(post))}")


def int_mode(mode: Any) -> int:
    """An int, a numeric string or a PV holding one."""
    if isinstance(mode, str) and mode.startswith("$"):
        try:
            mode = pv.get(mode)
        except PVError as exc:
            raise BadArgument(f"mode: {exc}") from None
    if isinstance(mode, bool):
        return int(mode)
    if isinstance(mode, int):
        return mode
    if isinstance(mode, str):
        try:
            return int(mode.strip())
        except ValueError:
            pass
    raise BadArgument(f"mode must be an integer (0 or 1) or a PV holding one, not {mode!r}")


def header_lines(headers: Mapping[str, str] | Iterable[str] | None) -> list[bytes] | None:
    """Request header list entries: a mapping gives one checked field each; raw lines are
    passed whole, like the hdrs argument (a CRLF inside one sends two headers)."""
    if not headers:
        return None
    if isinstance(headers, Mapping):
        lines = []
        for name, value in headers.items():
            if not isinstance(name, str) or not name or not TOKEN.issuperset(name):
                raise BadArgument(f"header name {printable(repr(name))} is not a token")
            value = text(value, f"header {name}")
            if "\r" in value or "\n" in value or "\x00" in value:
                raise BadArgument(f"header {name} value {printable(repr(value))} contains "
                                  "CR, LF or NUL")
            lines.append(encode(f"{name}: {value}"))
        return lines
    if isinstance(headers, (str, bytes)):
        raise BadArgument("headers must be a mapping or a list of lines, not one string")
    return [encode(text(line, "header line")) for line in headers]
